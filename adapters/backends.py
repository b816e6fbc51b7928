"""Open and close the production backends (MongoDB, Redis, the taskiq queue) once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from taskiq import AsyncBroker

from datetime import timedelta

from adapters.mongo import MongoAnalysisRepository, MongoImageStore, connect, ensure_indexes
from adapters.mongo_usage import (
    MongoSubscriptionRepository,
    MongoUsageLedger,
    RedisCachedSubscriptions,
    ensure_usage_indexes,
)
from adapters.redis_jobs import RedisJobControl, RedisJobRegistry, Retention
from adapters.redis_usage import RedisUsageCounters
from adapters.taskiq_queue import TaskiqAnalysisQueue
from core.analysis import AnalysisServices, utc_now
from core.settings import Settings
from core.usage import UsageService

logger = logging.getLogger(__name__)


@dataclass
class Backends:
    """The clients a process holds, and the analysis services built on them."""

    mongo: AsyncMongoClient
    redis: Redis
    services: AnalysisServices | None
    jobs: RedisJobControl | None = None

    async def close(self) -> None:
        """Close the clients."""
        await self.redis.aclose()
        await self.mongo.close()
        logger.info("backends closed")


def build_usage_service(settings: Settings, db, redis: Redis) -> UsageService:
    """Build the usage service on Redis counters and the MongoDB ledger and subscriptions."""
    return UsageService(
        counters=RedisUsageCounters(redis),
        ledger=MongoUsageLedger(db),
        subscriptions=RedisCachedSubscriptions(MongoSubscriptionRepository(db), redis),
        plans=settings.plan_table(),
        past_due_grace=timedelta(days=settings.past_due_grace_days),
        clock=utc_now,
    )


async def _connect(settings: Settings) -> tuple[AsyncMongoClient, Redis]:
    settings.require("mongodb_url", "redis_url")
    assert settings.mongodb_url is not None and settings.redis_url is not None
    mongo = connect(settings.mongodb_url)
    db = mongo[settings.mongodb_database]
    await ensure_indexes(db)
    await ensure_usage_indexes(db)
    redis = Redis.from_url(settings.redis_url)
    await redis.ping()
    return mongo, redis


async def open_usage(settings: Settings) -> tuple[Backends, UsageService]:
    """Connect for the operator's usage commands, which need no queue."""
    mongo, redis = await _connect(settings)
    usage = build_usage_service(settings, mongo[settings.mongodb_database], redis)
    return Backends(mongo=mongo, redis=redis, services=None), usage


async def open_backends(settings: Settings, broker: AsyncBroker) -> Backends:
    """Connect to MongoDB and Redis, create the indexes, and build the analysis services."""
    mongo, redis = await _connect(settings)
    db = mongo[settings.mongodb_database]
    retention = Retention(completed_seconds=settings.job_completed_retention_seconds,
                          failed_seconds=settings.job_failed_retention_seconds)
    jobs = RedisJobControl(RedisJobRegistry(redis, retention=retention), broker)
    services = AnalysisServices(
        analyses=MongoAnalysisRepository(db),
        images=MongoImageStore(db),
        usage=build_usage_service(settings, db, redis),
        queue=TaskiqAnalysisQueue(broker),
        image_limits=settings.image_limits(),
        jobs=jobs,
    )
    logger.info("backends ready database=%s", settings.mongodb_database)
    return Backends(mongo=mongo, redis=redis, services=services, jobs=jobs)
