"""The worker's stop handling: a stop signal wakes an idle event loop at once, and a stop that
still hangs ends at the deadline."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.processes import ROOT

# Like taskiq's worker: the stop handler is installed with signal.signal, then the loop waits
# with no socket activity at all. The handler must still run at once.
IDLE_PROCESS = """
import asyncio, logging, signal, sys, time
from workers.stopping import InFlightCounter, install_stop_handling

logging.basicConfig(level=logging.INFO, format="%(message)s")
signal.signal(signal.SIGTERM, lambda *_: print(f"previous handler ran {time.monotonic():.3f}", flush=True))
counter = InFlightCounter()
counter.running = int(sys.argv[1])

async def main():
    install_stop_handling(0.2, counter, margin_seconds=0.3)
    print(f"ready {time.monotonic():.3f}", flush=True)
    await asyncio.get_running_loop().create_future()

asyncio.run(main())
"""


def _stop_idle_process(running: int) -> tuple[int, list[str], float]:
    process = subprocess.Popen([sys.executable, "-c", IDLE_PROCESS, str(running)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout.readline().startswith("ready ")
    signalled = time.monotonic()
    process.terminate()
    output, _ = process.communicate(timeout=20)
    return process.returncode, output.splitlines(), signalled


def test_stop_signal_wakes_idle_loop():
    status, lines, signalled = _stop_idle_process(0)
    assert status == 0
    handler_ran = float(next(line for line in lines if line.startswith("previous handler ran")).split()[-1])
    assert handler_ran - signalled < 0.3
    assert "stop signal received; finishing 0 running task(s) within 0.2s" in lines
    assert lines[-1] == ("worker did not stop within 0.5s of the stop signal; exiting now with 0 task(s) finished "
                         "and 0 running, which another worker takes over")


def test_hung_stop_exits_one():
    status, lines, _ = _stop_idle_process(2)
    assert status == 1
    assert lines[-1].endswith("0 task(s) finished and 2 running, which another worker takes over")
