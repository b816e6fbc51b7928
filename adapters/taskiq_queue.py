"""The taskiq broker both sides share, and the queue port the bot enqueues through."""

from __future__ import annotations

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from core.settings import Settings

# Names are fixed so a process started under another module path still matches the worker's tasks.
from core.jobs import ANALYZE_TASK_NAME
CONSUMER_GROUP = "chartbot-workers"


def build_redis_broker(settings: Settings) -> AsyncBroker:
    """Create the RedisStreamBroker (acknowledged delivery) with a Redis result backend."""
    settings.require("redis_url")
    assert settings.redis_url is not None
    broker = RedisStreamBroker(
        url=settings.redis_url,
        queue_name=settings.queue_name,
        consumer_group_name=CONSUMER_GROUP,
        # A group created after jobs were queued still delivers them.
        consumer_id="0",
        # Without a timeout a worker killed while holding the reclaim lock blocks reclaim for all.
        unacknowledged_lock_timeout=30,
        # Take one job per read so one worker cannot hold every queued job.
        xread_count=1,
    )
    backend = RedisAsyncResultBackend(redis_url=settings.redis_url, result_ex_time=settings.result_ttl_seconds)
    return broker.with_result_backend(backend)


class TaskiqAnalysisQueue:
    """AnalysisQueue that sends the analysis id to the worker task by name."""

    def __init__(self, broker: AsyncBroker) -> None:
        self._kicker = AsyncKicker(task_name=ANALYZE_TASK_NAME, broker=broker, labels={})

    async def enqueue(self, analysis_id: str) -> None:
        await self._kicker.kiq(analysis_id)
