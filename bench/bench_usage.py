"""Reservations per second and reservation latency on the real Redis and MongoDB-compatible store.

Run with `make bench` (which starts the services) or `python -m bench.bench_usage` while
`make services` runs. Each reservation is what a chart request does: resolve the plan
(one subscription read), the Redis Lua gate, and one ledger insert.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from adapters.backends import build_usage_service
from adapters.mongo_usage import ensure_usage_indexes
from bench.common import median, percentile, services_env, verdict, write_results
from core.settings import Settings
from core.usage import UsageService

GOAL_PER_SECOND = 2000
GOAL_P99_MS = 5.0


def _service(redis: Redis, db) -> UsageService:
    """Build the usage service as production does, on a free plan without limits."""
    usage = build_usage_service(Settings(), db, redis)
    unlimited = usage.plans.free.model_copy(update={"daily_limit": None, "period_limit": 10**9})
    usage.plans = usage.plans.model_copy(update={"free": unlimited})
    return usage


async def _run(usage: UsageService, *, clients: int, total: int, users: int) -> dict[str, float]:
    latencies: list[float] = []
    per_client = total // clients

    async def client(index: int) -> None:
        for n in range(per_client):
            user = f"bench-{(index * per_client + n) % users}"
            started = time.perf_counter()
            await usage.reserve("telegram", user, units=1, analysis_id=uuid.uuid4().hex)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "reservations": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": median(latencies),
        "p99_ms": percentile(latencies, 0.99),
    }


async def main(total: int) -> dict:
    env = services_env()
    redis = Redis.from_url(env["REDIS_URL"])
    mongo = AsyncMongoClient(env["MONGODB_URL"], tz_aware=True)
    database = f"bench_usage_{uuid.uuid4().hex[:8]}"
    db = mongo[database]
    await ensure_usage_indexes(db)
    usage = _service(redis, db)
    try:
        await _run(usage, clients=10, total=200, users=100)  # warm the connections and the counters
        runs = [await _run(usage, clients=clients, total=total, users=100) for clients in (1, 50)]
    finally:
        await mongo.drop_database(database)
        await mongo.close()
        await redis.aclose()
    return {"store": env["MONGODB_URL"].split("@")[-1], "runs": runs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reservations", type=int, default=3000, help="reservations per run")
    arguments = parser.parse_args()
    results = asyncio.run(main(arguments.reservations))
    for run in results["runs"]:
        print(f"{run['clients']} client(s): {run['reservations']} reservations")
        print("  " + verdict("reservations per second", run["per_second"], f">= {GOAL_PER_SECOND}",
                             run["per_second"] >= GOAL_PER_SECOND))
        print(f"  p50 latency: {run['p50_ms']:.2f} ms")
        print("  " + verdict("p99 latency", run["p99_ms"], f"<= {GOAL_P99_MS} ms", run["p99_ms"] <= GOAL_P99_MS, " ms"))
    print(f"written to {write_results('usage', results)}")
