"""The worker's stop deadline: a process whose stop hangs exits on its own after the grace period."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.processes import ROOT

HANGING_PROCESS = """
import logging, signal, sys, time
from workers.stopping import InFlightCounter, install_stop_deadline

logging.basicConfig(level=logging.INFO, format="%(message)s")
signal.signal(signal.SIGTERM, lambda *_: print("previous handler ran", flush=True))
counter = InFlightCounter()
counter.running = int(sys.argv[1])
install_stop_deadline(0.5, counter)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _hang_then_stop(running: int) -> tuple[int, str, float]:
    process = subprocess.Popen([sys.executable, "-c", HANGING_PROCESS, str(running)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    process.terminate()
    output, _ = process.communicate(timeout=20)
    return process.returncode, output, time.monotonic() - started


def test_hung_stop_exits_zero_with_nothing_running():
    status, output, elapsed = _hang_then_stop(0)
    assert status == 0
    assert "previous handler ran" in output
    assert "worker did not stop within 0.5s of the stop signal; exiting now with 0 task(s) finished, none running" in output
    assert 0.4 < elapsed < 10


def test_hung_stop_with_running_task_exits_one():
    status, output, _ = _hang_then_stop(2)
    assert status == 1
    assert "2 running, which Redis delivers again to another worker" in output
