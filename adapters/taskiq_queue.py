"""The taskiq broker both sides share, and the queue port the bot enqueues through."""

from __future__ import annotations

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from adapters.redis_stream import ReliableStreamBroker, StreamTimings
from core.settings import Settings

# Names are fixed so a process started under another module path still matches the worker's tasks.
from core.jobs import ANALYZE_TASK_NAME
CONSUMER_GROUP = "chartbot-workers"


def build_redis_broker(settings: Settings) -> ReliableStreamBroker:
    """Create the stream broker the bot, the scheduler and the workers share.

    There is no result backend: an analysis's outcome lives in MongoDB and a
    job's in the job registry, so results kept by taskiq would only use memory.
    """
    settings.require("redis_url")
    assert settings.redis_url is not None
    return ReliableStreamBroker(
        settings.redis_url,
        stream=settings.queue_name,
        group=CONSUMER_GROUP,
        timings=StreamTimings(reclaim_seconds=settings.worker_reclaim_seconds),
    )


class TaskiqAnalysisQueue:
    """AnalysisQueue that sends the analysis id to the worker task by name."""

    def __init__(self, broker: AsyncBroker) -> None:
        self._kicker = AsyncKicker(task_name=ANALYZE_TASK_NAME, broker=broker, labels={})

    async def enqueue(self, analysis_id: str) -> None:
        await self._kicker.kiq(analysis_id)
