"""Billing stores: processed webhook events and customer links in MongoDB, per-user locks in Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis
from redis.exceptions import LockError

from adapters.mongo_usage import MongoSubscriptionRepository, RedisCachedSubscriptions
from adapters.stripe_billing import build_stripe_gateway
from core.analysis import utc_now
from core.billing import BillingServices
from core.billing_records import BillingUser
from core.models import Platform
from core.settings import Settings
from core.subscriptions import Subscription

logger = logging.getLogger(__name__)


async def ensure_billing_indexes(db: AsyncDatabase) -> None:
    """Create the billing indexes; safe to run at each start. Event and customer ids are the unique `_id`."""
    await db.billing_customers.create_index([("platform", ASCENDING), ("user_id", ASCENDING)], name="user")


class MongoProcessedEvents:
    """ProcessedEvents in `billing_events`: the event id is the `_id`, so a second insert of one id fails."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db.billing_events

    async def seen(self, event_id: str) -> bool:
        return await self._collection.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def record(self, event_id: str, *, event_type: str, created: datetime, result: str) -> bool:
        document = {"_id": event_id, "type": event_type, "created": created, "result": result,
                    "processed_at": datetime.now(UTC)}
        try:
            await self._collection.insert_one(document)
        except DuplicateKeyError:
            return False
        return True


class MongoBillingCustomers:
    """BillingCustomers in `billing_customers`, one document per Stripe customer id."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db.billing_customers

    async def link(self, customer_id: str, user: BillingUser) -> None:
        try:
            await self._collection.update_one(
                {"_id": customer_id},
                {"$set": {"platform": user.platform.value, "user_id": user.user_id},
                 "$setOnInsert": {"linked_at": datetime.now(UTC)}},
                upsert=True,
            )
        except DuplicateKeyError:
            # Two processes inserted the same customer at once, and the other insert stored the same link.
            pass

    async def user_for(self, customer_id: str) -> BillingUser | None:
        document = await self._collection.find_one({"_id": customer_id})
        if document is None:
            return None
        return BillingUser(platform=Platform(document["platform"]), user_id=document["user_id"])

    async def customer_for(self, user: BillingUser) -> str | None:
        cursor = self._collection.find({"platform": user.platform.value, "user_id": user.user_id})
        documents = await cursor.sort("linked_at", DESCENDING).limit(1).to_list()
        return documents[0]["_id"] if documents else None


class BillingSubscriptionStore:
    """SubscriptionRepository for the billing rules: reads MongoDB directly, writes through the Redis cache.

    The webhook compares each event with the stored record, so it must not read
    the cached copy, which can be up to a minute old. Writing through the cache
    drops that copy for every other reader.
    """

    def __init__(self, db: AsyncDatabase, redis: Redis) -> None:
        self._source = MongoSubscriptionRepository(db)
        self._cached = RedisCachedSubscriptions(self._source, redis)

    async def get(self, platform: str, user_id: str) -> Subscription | None:
        return await self._source.get(platform, user_id)

    async def put(self, subscription: Subscription) -> None:
        await self._cached.put(subscription)


class RedisBillingLocks:
    """BillingLocks on redis-py's lock (SET NX with an expiry, released only by its holder)."""

    def __init__(self, redis: Redis, *, hold_seconds: float = 30.0, wait_seconds: float = 10.0) -> None:
        self._redis = redis
        self._hold_seconds = hold_seconds
        self._wait_seconds = wait_seconds

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._redis.lock(f"chartbot:lock:{key}", timeout=self._hold_seconds,
                                blocking_timeout=self._wait_seconds)
        if not await lock.acquire():
            raise TimeoutError(f"lock {key} still taken after {self._wait_seconds:g}s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError:
                logger.warning("lock expired before its holder released it key=%s hold_seconds=%g",
                               key, self._hold_seconds)


def build_billing_services(settings: Settings, db: AsyncDatabase, redis: Redis) -> BillingServices:
    """Build the billing rules on MongoDB, Redis and Stripe (no gateway when STRIPE_SECRET_KEY is not set)."""
    return BillingServices(
        gateway=build_stripe_gateway(settings),
        subscriptions=BillingSubscriptionStore(db, redis),
        customers=MongoBillingCustomers(db),
        processed=MongoProcessedEvents(db),
        locks=RedisBillingLocks(redis),
        plans=settings.plan_table(),
        past_due_grace=timedelta(days=settings.past_due_grace_days),
        clock=utc_now,
    )
