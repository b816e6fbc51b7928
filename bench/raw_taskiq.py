"""The baseline: taskiq-redis's own RedisStreamBroker and a task that does nothing but note its start.

`taskiq worker bench.raw_taskiq:broker` runs it; RAW_TASKIQ_REDIS_URL and
RAW_TASKIQ_QUEUE choose the Redis and stream.
"""

from __future__ import annotations

import os
import time

from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker

REDIS_URL = os.environ.get("RAW_TASKIQ_REDIS_URL", "redis://127.0.0.1:6379/6")
QUEUE = os.environ.get("RAW_TASKIQ_QUEUE", "bench:raw-taskiq")
STARTS = f"{QUEUE}:starts"

broker = RedisStreamBroker(url=REDIS_URL, queue_name=QUEUE, consumer_group_name="bench")
_redis: Redis | None = None


@broker.task(task_name="bench.noop")
async def noop(kicked_at: float) -> None:
    """Record when the task started, beside when it was sent."""
    global _redis
    started = time.time()
    if _redis is None:
        _redis = Redis.from_url(REDIS_URL)
    await _redis.rpush(STARTS, f"{kicked_at} {started}")
