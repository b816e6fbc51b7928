"""The trade journal on MongoDB: entries in `trade_journal`, per-user short id counters, and analysis links.

Short ids must stay unique when several bot processes add entries for one
user at once. FerretDB v1 runs findAndModify as a read followed by a write,
so two callers can receive the same counter value. The unique index on
(platform, user_id, short_id) then rejects the second insert, and the loser
moves the counter past the highest stored short id and tries again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo import to_bson
from core.journal.errors import ShortIdAllocationFailed
from core.journal.models import EntryFields, EntryQuery, EntryStatus, JournalEntry, Owner
from core.journal.ports import GuidedDraftStore
from core.journal.service import JournalServices

logger = logging.getLogger(__name__)

ENTRIES = "trade_journal"
COUNTERS = "trade_journal_counters"
MAX_ALLOCATION_ATTEMPTS = 20
NEWEST_FIRST = [("opened_at", DESCENDING), ("short_id", DESCENDING)]


async def ensure_journal_indexes(db: AsyncDatabase) -> None:
    """Create the journal's indexes, and the one that finds an analysis by its chat message; safe at each start."""
    await db[ENTRIES].create_index(
        [("platform", ASCENDING), ("user_id", ASCENDING), ("short_id", ASCENDING)], name="user_short_id", unique=True
    )
    await db[ENTRIES].create_index(
        [("platform", ASCENDING), ("user_id", ASCENDING), ("opened_at", DESCENDING), ("short_id", DESCENDING)],
        name="user_newest_first",
    )
    await db.analyses.create_index(
        [("platform", ASCENDING), ("chat_id", ASCENDING), ("ack_message_id", ASCENDING)], name="chat_ack_message"
    )
    logger.info("journal indexes ready database=%s", db.name)


def _owner_filter(owner: Owner) -> dict[str, Any]:
    return {"platform": owner.platform.value, "user_id": owner.user_id}


def _query_filter(owner: Owner, query: EntryQuery) -> dict[str, Any]:
    selector = _owner_filter(owner)
    # Status is derived from the exit price, so it is filtered on that field rather than stored.
    if query.status is EntryStatus.OPEN:
        selector["exit_price"] = None
    elif query.status is EntryStatus.CLOSED:
        selector["exit_price"] = {"$ne": None}
    if query.symbol is not None:
        selector["symbol"] = query.symbol
    if query.tag is not None:
        selector["tags"] = query.tag
    return selector


def _to_entry(document: dict[str, Any]) -> JournalEntry:
    document = dict(document)
    document["id"] = document.pop("_id")
    return JournalEntry.model_validate(document)


class MongoJournalRepository:
    """JournalRepository on the `trade_journal` collection."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._entries = db[ENTRIES]
        self._counters = db[COUNTERS]

    async def _next_counter(self, owner: Owner) -> int:
        for _ in range(MAX_ALLOCATION_ATTEMPTS):
            try:
                counter = await self._counters.find_one_and_update(
                    {"_id": owner.key}, {"$inc": {"last": 1}}, upsert=True, return_document=ReturnDocument.AFTER
                )
                return int(counter["last"])
            except DuplicateKeyError:
                # Two first-ever upserts for the user raced; the counter exists now.
                continue
        raise ShortIdAllocationFailed(owner.key, MAX_ALLOCATION_ATTEMPTS)

    async def _move_counter_past_stored(self, owner: Owner) -> None:
        newest = await self._entries.find_one(_owner_filter(owner), projection={"short_id": 1},
                                              sort=[("short_id", DESCENDING)])
        if newest is not None:
            await self._counters.update_one({"_id": owner.key}, {"$max": {"last": newest["short_id"]}}, upsert=True)

    async def add(self, owner: Owner, fields: EntryFields, *, entry_id: str, now: datetime) -> JournalEntry:
        document = {
            **to_bson(fields),
            "_id": entry_id,
            "platform": owner.platform.value,
            "user_id": owner.user_id,
            "created_at": now,
            "updated_at": now,
        }
        for attempt in range(1, MAX_ALLOCATION_ATTEMPTS + 1):
            document["short_id"] = await self._next_counter(owner)
            try:
                await self._entries.insert_one(document)
            except DuplicateKeyError:
                logger.warning("journal short id taken, retrying user=%s short_id=%d attempt=%d",
                               owner.key, document["short_id"], attempt)
                await self._move_counter_past_stored(owner)
                continue
            return _to_entry(document)
        raise ShortIdAllocationFailed(owner.key, MAX_ALLOCATION_ATTEMPTS)

    async def get(self, owner: Owner, short_id: int) -> JournalEntry | None:
        document = await self._entries.find_one({**_owner_filter(owner), "short_id": short_id})
        return None if document is None else _to_entry(document)

    async def update(self, owner: Owner, short_id: int, changes: dict[str, Any]) -> JournalEntry | None:
        selector = {**_owner_filter(owner), "short_id": short_id}
        result = await self._entries.update_one(selector, {"$set": to_bson(changes)})
        if result.matched_count == 0:
            return None
        return await self.get(owner, short_id)

    async def delete(self, owner: Owner, short_id: int) -> bool:
        result = await self._entries.delete_one({**_owner_filter(owner), "short_id": short_id})
        return result.deleted_count == 1

    async def list(self, owner: Owner, query: EntryQuery, *, offset: int, limit: int) -> list[JournalEntry]:
        cursor = self._entries.find(_query_filter(owner, query)).sort(NEWEST_FIRST).skip(offset).limit(limit)
        return [_to_entry(document) async for document in cursor]

    async def count(self, owner: Owner, query: EntryQuery) -> int:
        return await self._entries.count_documents(_query_filter(owner, query))

    async def list_all(self, owner: Owner) -> list[JournalEntry]:
        cursor = self._entries.find(_owner_filter(owner)).sort(NEWEST_FIRST)
        return [_to_entry(document) async for document in cursor]


class MongoAnalysisLinks:
    """AnalysisLinks on the `analyses` collection: the message an analysis is shown in is its edited acknowledgement."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._analyses = db.analyses

    async def find_by_message(self, owner: Owner, *, chat_id: str, message_id: str) -> str | None:
        # NOTE: only the first message of an analysis is its acknowledgement. A reply to a
        # continuation message of a long analysis finds nothing, so that entry stays unlinked.
        document = await self._analyses.find_one(
            {**_owner_filter(owner), "chat_id": chat_id, "ack_message_id": message_id}, projection={"_id": 1}
        )
        return None if document is None else str(document["_id"])


async def open_journal_services(db: AsyncDatabase, *, drafts: GuidedDraftStore) -> JournalServices:
    """Create the journal indexes and return the journal services on `db`."""
    await ensure_journal_indexes(db)
    return JournalServices(entries=MongoJournalRepository(db), analyses=MongoAnalysisLinks(db), drafts=drafts)
