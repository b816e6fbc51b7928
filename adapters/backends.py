"""Open and close the production backends (MongoDB, Redis, the taskiq queue) once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from taskiq import AsyncBroker

from adapters.mongo import MongoAnalysisRepository, MongoImageStore, connect, ensure_indexes
from adapters.redis_usage import RedisUsageCounter
from adapters.taskiq_queue import TaskiqAnalysisQueue
from core.analysis import AnalysisServices
from core.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Backends:
    """The clients a process holds, and the analysis services built on them."""

    mongo: AsyncMongoClient
    redis: Redis
    services: AnalysisServices

    async def close(self) -> None:
        """Close the clients."""
        await self.redis.aclose()
        await self.mongo.close()
        logger.info("backends closed")


async def open_backends(settings: Settings, broker: AsyncBroker) -> Backends:
    """Connect to MongoDB and Redis, create the indexes, and build the analysis services."""
    settings.require("mongodb_url", "redis_url")
    assert settings.mongodb_url is not None and settings.redis_url is not None
    mongo = connect(settings.mongodb_url)
    db = mongo[settings.mongodb_database]
    await ensure_indexes(db)
    redis = Redis.from_url(settings.redis_url)
    await redis.ping()
    services = AnalysisServices(
        analyses=MongoAnalysisRepository(db),
        images=MongoImageStore(db),
        usage=RedisUsageCounter(redis),
        queue=TaskiqAnalysisQueue(broker),
        daily_limit=settings.free_daily_limit,
        image_limits=settings.image_limits(),
    )
    logger.info("backends ready database=%s", settings.mongodb_database)
    return Backends(mongo=mongo, redis=redis, services=services)
