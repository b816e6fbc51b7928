"""The broker that `taskiq worker workers.app:broker` runs, with its start-up and shutdown hooks."""

from __future__ import annotations

import logging

from taskiq import TaskiqEvents, TaskiqState

from adapters.taskiq_queue import build_redis_broker
from core.settings import Settings
from workers.runtime import open_runtime
from workers.stopping import InFlightCounter, install_stop_handling
from workers.tasks import register_tasks

logger = logging.getLogger(__name__)

settings = Settings()
broker = build_redis_broker(settings)
register_tasks(broker)
# A task that raised is run again after the reclaim time instead of being acknowledged and lost.
in_flight = InFlightCounter(on_task_error=broker.retry_later)
broker.add_middlewares(in_flight)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _startup(state: TaskiqState) -> None:
    state.runtime = await open_runtime(settings, broker)
    state.runner = state.runtime.runner
    install_stop_handling(settings.worker_stop_grace_seconds, in_flight)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _shutdown(state: TaskiqState) -> None:
    runtime = getattr(state, "runtime", None)
    if runtime is not None:
        await runtime.close()
    logger.info("worker stopped consumer=%s finished=%d handed_back=%d", broker.consumer, in_flight.finished,
                broker.handed_back)
