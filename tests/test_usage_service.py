"""The usage service on the real Redis counters and the MongoDB ledger (FerretDB in `make test`)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from adapters.mongo_usage import MongoSubscriptionRepository, MongoUsageLedger, ensure_usage_indexes
from adapters.redis_usage import RedisUsageCounters
from core.errors import UsageLimitExceeded
from core.models import Platform
from core.plans import load_plans
from core.subscriptions import Subscription, SubscriptionStatus
from core.usage import UsageService


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def clock():
    return Clock(datetime(2026, 3, 31, 22, 0, tzinfo=UTC))


@pytest_asyncio.fixture
async def usage(mongo_db, redis_client, clock):
    await ensure_usage_indexes(mongo_db)
    return UsageService(
        counters=RedisUsageCounters(redis_client),
        ledger=MongoUsageLedger(mongo_db),
        subscriptions=MongoSubscriptionRepository(mongo_db),
        plans=load_plans(),
        past_due_grace=timedelta(days=3),
        clock=clock,
    )


async def _reserve(usage: UsageService, user: str, n: int, *, units: int = 1):
    return [await usage.reserve("telegram", user, units=units, analysis_id=f"{user}-a{i}") for i in range(n)]


async def test_daily_limit_refuses_with_reset_time(usage, clock):
    await _reserve(usage, "u1", 3)
    with pytest.raises(UsageLimitExceeded) as caught:
        await usage.reserve("telegram", "u1", units=1, analysis_id="u1-a9")
    error = caught.value
    assert (error.limit_kind, error.limit, error.used, error.requested) == ("daily", 3, 3, 1)
    assert error.resets_at == datetime(2026, 4, 1, tzinfo=UTC)
    assert error.plan_name == "Free"
    summary = await usage.summary("telegram", "u1")
    assert (summary.counts.day, summary.counts.period, summary.counts.total) == (3, 3, 3)
    assert len(await usage.ledger.entries("telegram:u1", limit=50)) == 3


async def test_day_and_month_rollover(usage, clock):
    await _reserve(usage, "u2", 3)
    clock.now = datetime(2026, 4, 1, 0, 5, tzinfo=UTC)
    summary = await usage.summary("telegram", "u2")
    assert (summary.counts.day, summary.counts.period, summary.counts.total) == (0, 0, 3)
    assert summary.resolved.period_end == datetime(2026, 5, 1, tzinfo=UTC)
    await usage.reserve("telegram", "u2", units=1, analysis_id="u2-next")
    summary = await usage.summary("telegram", "u2")
    assert (summary.counts.day, summary.counts.period, summary.counts.total) == (1, 1, 4)


async def test_period_limit_refuses_across_days(usage, clock):
    clock.now = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    for day in range(5):
        clock.now = datetime(2026, 3, 1 + day, 10, 0, tzinfo=UTC)
        await _reserve(usage, f"u3-d{day}", 0)
        for i in range(3):
            await usage.reserve("telegram", "u3", units=1, analysis_id=f"u3-{day}-{i}")
    clock.now = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    with pytest.raises(UsageLimitExceeded) as caught:
        await usage.reserve("telegram", "u3", units=1, analysis_id="u3-over")
    assert (caught.value.limit_kind, caught.value.limit, caught.value.used) == ("period", 15, 15)
    assert caught.value.resets_at == datetime(2026, 4, 1, tzinfo=UTC)


async def test_subscriber_allowance_resets_on_renewal_date(usage, clock):
    start = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
    await usage.subscriptions.put(Subscription(
        platform=Platform.TELEGRAM, user_id="u4", status=SubscriptionStatus.ACTIVE, unit_amount=900,
        current_period_start=start, current_period_end=datetime(2026, 4, 20, 15, 0, tzinfo=UTC)))
    await _reserve(usage, "u4", 5)
    summary = await usage.summary("telegram", "u4")
    assert summary.resolved.plan.id == "basic"
    assert (summary.counts.day, summary.counts.period) == (5, 5)

    clock.now = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)  # a new month, the same billing period
    assert (await usage.summary("telegram", "u4")).counts.period == 5

    await usage.subscriptions.put(Subscription(
        platform=Platform.TELEGRAM, user_id="u4", status=SubscriptionStatus.ACTIVE, unit_amount=900,
        current_period_start=datetime(2026, 4, 20, 15, 0, tzinfo=UTC),
        current_period_end=datetime(2026, 5, 20, 15, 0, tzinfo=UTC)))
    clock.now = datetime(2026, 4, 20, 16, 0, tzinfo=UTC)
    summary = await usage.summary("telegram", "u4")
    assert (summary.counts.period, summary.counts.total) == (0, 5)
    assert summary.resolved.period_end == datetime(2026, 5, 20, 15, 0, tzinfo=UTC)


async def test_refund_exactly_once_even_when_retried(usage):
    [reservation] = await _reserve(usage, "u5", 1, units=2)
    assert await usage.refund(reservation) is True
    assert await usage.refund(reservation) is False
    assert await usage.refund(reservation) is False
    summary = await usage.summary("telegram", "u5")
    assert (summary.counts.day, summary.counts.period, summary.counts.total) == (0, 0, 0)
    kinds = sorted(e.kind for e in await usage.ledger.entries("telegram:u5", limit=10))
    assert kinds == ["refund", "use"]


async def test_refund_retried_after_crash_between_counter_and_ledger(usage):
    [reservation] = await _reserve(usage, "u6", 1)
    window_refund = await usage.counters.refund(
        (await usage._current("telegram", "u6"))[2], units=1, refund_key=reservation.analysis_id)
    assert window_refund is True  # the counters were refunded, then the process died before the ledger write
    assert await usage.refund(reservation) is True  # the retry writes the ledger line only
    summary = await usage.summary("telegram", "u6")
    assert (summary.counts.day, summary.counts.total) == (0, 0)
    await usage.counters._redis.flushdb()
    rebuilt = await usage.summary("telegram", "u6")
    assert (rebuilt.counts.day, rebuilt.counts.total) == (0, 0)


async def test_counters_rebuilt_from_ledger_after_redis_loses_them(usage, redis_client):
    reservations = await _reserve(usage, "u7", 3)
    await usage.refund(reservations[0])
    await usage.grant("telegram", "u7", 4, note="support apology")
    await redis_client.flushdb()

    summary = await usage.summary("telegram", "u7")
    assert (summary.counts.day, summary.counts.period, summary.counts.total, summary.counts.bonus) == (2, 2, 2, 4)
    await usage.reserve("telegram", "u7", units=1, analysis_id="u7-after")
    with pytest.raises(UsageLimitExceeded) as caught:
        await usage.reserve("telegram", "u7", units=1, analysis_id="u7-over")
    assert (caught.value.limit_kind, caught.value.used) == ("daily", 3)


async def test_grant_raises_period_allowance(usage, clock):
    clock.now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    summary = await usage.grant("telegram", "u8", 10, note="contest winner")
    assert summary.counts.bonus == 10
    entries = await usage.ledger.entries("telegram:u8", limit=5)
    assert [(e.kind, e.units, e.note) for e in entries] == [("grant", 10, "contest winner")]
    for day in range(8):
        clock.now = datetime(2026, 3, 10 + day, 9, 0, tzinfo=UTC)
        for i in range(3):
            await usage.reserve("telegram", "u8", units=1, analysis_id=f"u8-{day}-{i}")
    clock.now = datetime(2026, 3, 18, 9, 0, tzinfo=UTC)
    await usage.reserve("telegram", "u8", units=1, analysis_id="u8-last")
    with pytest.raises(UsageLimitExceeded) as caught:
        await usage.reserve("telegram", "u8", units=1, analysis_id="u8-over")
    assert (caught.value.limit_kind, caught.value.limit, caught.value.used) == ("period", 25, 25)


RESERVE_MANY = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from adapters.mongo_usage import MongoSubscriptionRepository, MongoUsageLedger
from adapters.redis_usage import RedisUsageCounters
from core.errors import UsageLimitExceeded
from core.plans import load_plans
from core.usage import UsageService

async def main(redis_url, mongo_url, database, worker, count):
    redis = Redis.from_url(redis_url)
    mongo = AsyncMongoClient(mongo_url, tz_aware=True)
    db = mongo[database]
    plans = load_plans()
    plans = plans.model_copy(update={"free": plans.free.model_copy(update={"daily_limit": 1000,
                                                                            "period_limit": 1000})})
    usage = UsageService(RedisUsageCounters(redis), MongoUsageLedger(db), MongoSubscriptionRepository(db), plans,
                         timedelta(days=3), lambda: datetime(2026, 3, 31, 22, 0, tzinfo=UTC))
    async def one(i):
        try:
            await usage.reserve("telegram", "crowd", units=1, analysis_id=f"p{worker}-{i}")
            return 1
        except UsageLimitExceeded:
            return 0
    print(sum(await asyncio.gather(*(one(i) for i in range(count)))))
    await redis.aclose()
    await mongo.close()

asyncio.run(main(*sys.argv[1:4], sys.argv[4], int(sys.argv[5])))
"""


async def test_concurrent_reservations_from_processes_admit_exactly_what_is_left(usage, services_env, mongo_db):
    usage.plans = usage.plans.model_copy(update={"free": usage.plans.free.model_copy(
        update={"daily_limit": 1000, "period_limit": 1000})})
    # 990 earlier uses in the ledger, so 10 are left once the counters are rebuilt from it.
    await mongo_db.usage_ledger.insert_many([
        {"_id": f"use:old-{i}", "kind": "use", "user_key": "telegram:crowd", "platform": "telegram",
         "user_id": "crowd", "units": 1, "day": "2026-03-31", "period": "2026-03-01T00:00:00+00:00",
         "at": datetime(2026, 3, 31, 21, 0, tzinfo=UTC), "analysis_id": f"old-{i}", "note": None}
        for i in range(990)
    ])
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", RESERVE_MANY, services_env["REDIS_URL"], services_env["MONGODB_URL"],
            mongo_db.name, str(worker), "70", stdout=asyncio.subprocess.PIPE)
        for worker in range(3)
    ]
    outputs = [await process.communicate() for process in processes]
    admitted = [int(stdout.decode().strip()) for stdout, _ in outputs]
    assert sum(admitted) == 10
    summary = await usage.summary("telegram", "crowd")
    assert (summary.counts.day, summary.counts.period, summary.counts.total) == (1000, 1000, 1000)
    assert await mongo_db.usage_ledger.count_documents({"user_key": "telegram:crowd", "kind": "use"}) == 1000

