"""Daily usage counters on the real Redis, including concurrent reservations from several processes."""

from __future__ import annotations

import asyncio
import sys

from adapters.redis_usage import RedisUsageCounter

RESERVE_MANY = """
import asyncio, sys
from redis.asyncio import Redis
from adapters.redis_usage import RedisUsageCounter

async def main(url, count):
    redis = Redis.from_url(url)
    counter = RedisUsageCounter(redis)
    results = await asyncio.gather(*(counter.reserve("telegram:7", "2026-01-02", units=1, limit=10)
                                     for _ in range(count)))
    print(sum(1 for admitted, _ in results if admitted))
    await redis.aclose()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_reserve_until_limit_then_refused(redis_client):
    counter = RedisUsageCounter(redis_client)
    results = [await counter.reserve("telegram:1", "2026-01-02", units=1, limit=3) for _ in range(4)]
    assert results == [(True, 1), (True, 2), (True, 3), (False, 3)]
    assert await counter.used("telegram:1", "2026-01-02") == 3
    assert await counter.used("telegram:1", "2026-01-03") == 0
    ttl = await redis_client.ttl("chartbot:usage:day:telegram:1:2026-01-02")
    assert 0 < ttl <= 2 * 24 * 3600


async def test_multi_unit_request_refused_when_it_would_pass_limit(redis_client):
    counter = RedisUsageCounter(redis_client)
    assert await counter.reserve("telegram:2", "2026-01-02", units=2, limit=3) == (True, 2)
    assert await counter.reserve("telegram:2", "2026-01-02", units=2, limit=3) == (False, 2)
    assert await counter.reserve("telegram:2", "2026-01-02", units=1, limit=3) == (True, 3)


async def test_refund_happens_once_per_key(redis_client):
    counter = RedisUsageCounter(redis_client)
    await counter.reserve("telegram:3", "2026-01-02", units=2, limit=3)
    assert await counter.refund("telegram:3", "2026-01-02", units=2, refund_key="a1") is True
    assert await counter.refund("telegram:3", "2026-01-02", units=2, refund_key="a1") is False
    assert await counter.used("telegram:3", "2026-01-02") == 0


async def test_concurrent_reservations_from_two_processes_admit_exactly_limit(services_env, redis_client):
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", RESERVE_MANY, services_env["REDIS_URL"], "100", stdout=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await process.communicate() for process in processes]
    admitted = [int(stdout.decode().strip()) for stdout, _ in outputs]
    assert sum(admitted) == 10
    assert await RedisUsageCounter(redis_client).used("telegram:7", "2026-01-02") == 10
