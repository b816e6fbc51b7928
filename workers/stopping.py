"""A deadline on the worker's stop: a worker that has not exited a grace period after
SIGTERM or SIGINT exits on its own, and Redis delivers its unacknowledged jobs again.

taskiq 0.13's receiver can stay blocked after a stop signal with its Redis stream
read still pending. In this project's end-to-end runs that happened in about one
stop in five under load; without the deadline the process lives on until a
supervisor kills it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

logger = logging.getLogger(__name__)


class InFlightCounter(TaskiqMiddleware):
    """Counts the tasks this process is running, for the stop deadline's log line and exit status."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.running = 0
        self.finished = 0

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        with self._lock:
            self.running += 1
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        with self._lock:
            self.running -= 1
            self.finished += 1


def _exit_after(grace_seconds: float, counter: InFlightCounter) -> None:
    time.sleep(grace_seconds)
    running = counter.running
    handed_back = f"{running} running, which Redis delivers again to another worker" if running else "none running"
    logger.warning("worker did not stop within %gs of the stop signal; exiting now with %d task(s) finished, %s",
                   grace_seconds, counter.finished, handed_back)
    logging.shutdown()
    os._exit(0 if running == 0 else 1)


def install_stop_deadline(grace_seconds: float, counter: InFlightCounter) -> None:
    """Start a countdown to a forced exit at the first stop signal, keeping taskiq's own handlers.

    Call it in the worker process after taskiq has installed its signal handlers.
    """
    started = threading.Event()

    def chain(previous: Any):
        def handler(signum: int, frame: Any) -> None:
            if not started.is_set():
                started.set()
                threading.Thread(target=_exit_after, args=(grace_seconds, counter), daemon=True).start()
            if callable(previous):
                previous(signum, frame)

        return handler

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, chain(signal.getsignal(signum)))
