"""Stop signals in the worker process: wake the event loop for them, and a last-resort deadline.

taskiq's worker installs its SIGTERM and SIGINT handlers with `signal.signal`,
which does not wake an event loop waiting in `select`: the handler ran only
when some socket next had data, so an idle worker could sit on a stop signal.
`install_stop_handling` moves those handlers onto the running loop (which
wakes it) and starts a deadline: a worker still alive well after its grace
period exits on its own, and another worker takes its unfinished jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

logger = logging.getLogger(__name__)

# Time after the grace period for handing jobs back and closing clients.
SHUTDOWN_MARGIN_SECONDS = 15.0


class InFlightCounter(TaskiqMiddleware):
    """Counts the tasks this process is running and has finished, for the stop log lines."""

    def __init__(self, on_task_error: Callable[[str], None] | None = None) -> None:
        """`on_task_error(task_id)` is called for every task that raised."""
        super().__init__()
        self.on_task_error = on_task_error
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


    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        # taskiq calls on_error before it acknowledges (post_execute comes after), so the broker
        # can still keep the entry.
        if self.on_task_error is not None:
            self.on_task_error(message.task_id)


def _exit_after(seconds: float, counter: InFlightCounter) -> None:
    time.sleep(seconds)
    logger.warning("worker did not stop within %gs of the stop signal; exiting now with %d task(s) finished "
                   "and %d running, which another worker takes over", seconds, counter.finished, counter.running)
    logging.shutdown()
    os._exit(0 if counter.running == 0 else 1)


def install_stop_handling(grace_seconds: float, counter: InFlightCounter, *,
                          margin_seconds: float = SHUTDOWN_MARGIN_SECONDS) -> None:
    """Run taskiq's stop handlers on the running loop, and start the deadline at the first signal.

    Call it from a coroutine in the worker process after taskiq installed its handlers.
    """
    loop = asyncio.get_running_loop()
    started = threading.Event()
    deadline = grace_seconds + margin_seconds

    def on_signal(signum: int, previous: Any) -> None:
        if not started.is_set():
            started.set()
            logger.info("stop signal received; finishing %d running task(s) within %gs", counter.running,
                        grace_seconds)
            threading.Thread(target=_exit_after, args=(deadline, counter), daemon=True).start()
        if callable(previous):
            previous(signum, None)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum, signal.getsignal(signum))
