"""The usage ledger and the subscription records in MongoDB."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from adapters.mongo import to_bson
from core.memory import sum_ledger
from core.subscriptions import Subscription
from core.usage_records import CounterState, LedgerEntry


async def ensure_usage_indexes(db: AsyncDatabase) -> None:
    """Create the ledger and subscription indexes; safe to run at each start."""
    await db.usage_ledger.create_index([("user_key", ASCENDING), ("at", DESCENDING)], name="user_newest_first")
    await db.subscriptions.create_index([("platform", ASCENDING), ("user_id", ASCENDING)], name="user",
                                        unique=True)


class MongoUsageLedger:
    """UsageLedger in `usage_ledger`; the entry id is the document _id, so each entry counts once."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db.usage_ledger

    async def record(self, entry: LedgerEntry) -> bool:
        document = to_bson(entry)
        document["_id"] = document.pop("id")
        try:
            await self._collection.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def totals(self, user_key: str, *, day: str, period: str) -> CounterState:
        # NOTE: this sums all of a user's entries in Python, a few thousand a year on the largest plan.
        # A yearly rollup would bound the work if users ever keep far more.
        cursor = self._collection.find({"user_key": user_key})
        entries = [_to_entry(document) async for document in cursor]
        return sum_ledger(entries, day=day, period=period)

    async def entries(self, user_key: str, *, limit: int) -> list[LedgerEntry]:
        cursor = self._collection.find({"user_key": user_key}).sort("at", DESCENDING).limit(limit)
        return [_to_entry(document) async for document in cursor]


def _to_entry(document: dict) -> LedgerEntry:
    document = dict(document)
    document["id"] = document.pop("_id")
    return LedgerEntry.model_validate(document)


class MongoSubscriptionRepository:
    """Subscriptions in `subscriptions`, one document per platform and user."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db.subscriptions

    async def get(self, platform: str, user_id: str) -> Subscription | None:
        document = await self._collection.find_one({"platform": platform, "user_id": user_id}, {"_id": 0})
        return None if document is None else Subscription.model_validate(document)

    async def put(self, subscription: Subscription) -> None:
        document = to_bson(subscription)
        await self._collection.replace_one(
            {"platform": document["platform"], "user_id": document["user_id"]}, document, upsert=True
        )


class RedisCachedSubscriptions:
    """SubscriptionRepository that keeps each record in Redis for a short time in front of MongoDB.

    Every chart request resolves the user's plan, so this saves a database read
    per request. `put` writes MongoDB first and then drops the cached copy, so
    a change is seen at once by every process; a reader that raced with the
    write can keep the old record for at most CACHE_SECONDS.
    """

    CACHE_SECONDS = 60
    _NONE = b"none"

    def __init__(self, inner: MongoSubscriptionRepository, redis: Redis) -> None:
        self._inner = inner
        self._redis = redis

    @staticmethod
    def _key(platform: str, user_id: str) -> str:
        return f"chartbot:subscription:{platform}:{user_id}"

    async def get(self, platform: str, user_id: str) -> Subscription | None:
        key = self._key(platform, user_id)
        cached = await self._redis.get(key)
        if cached == self._NONE:
            return None
        if cached is not None:
            return Subscription.model_validate_json(cached)
        subscription = await self._inner.get(platform, user_id)
        value = self._NONE if subscription is None else subscription.model_dump_json()
        await self._redis.set(key, value, ex=self.CACHE_SECONDS)
        return subscription

    async def put(self, subscription: Subscription) -> None:
        await self._inner.put(subscription)
        await self._redis.delete(self._key(subscription.platform.value, subscription.user_id))
