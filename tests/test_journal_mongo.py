"""The journal repository and analysis links on the test MongoDB server (FerretDB, or mongod where installed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pymongo import AsyncMongoClient

from adapters.mongo_journal import (
    COUNTERS,
    ENTRIES,
    MongoAnalysisLinks,
    MongoJournalRepository,
    ensure_journal_indexes,
    open_journal_services,
)
from core.journal import service
from core.journal.memory import InMemoryGuidedDraftStore
from core.journal.models import EntryFields, EntryQuery, EntryStatus, Owner, Side
from core.journal.parser import CloseRequest, parse_add
from core.models import Platform

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
ALICE = Owner(Platform.TELEGRAM, "1")
BOB = Owner(Platform.TELEGRAM, "2")


def _fields(text: str, *, minutes: int = 0) -> EntryFields:
    return parse_add(text).model_copy(update={"opened_at": NOW + timedelta(minutes=minutes)})


async def test_entry_round_trip_with_derived_values(mongo_db):
    await ensure_journal_indexes(mongo_db)
    repository = MongoJournalRepository(mongo_db)
    fields = _fields("ethusdt short 3000 sl 3100 size 2 exit 2900 fees 4 #Range #news note faded <it> & left")
    fields = fields.model_copy(update={"closed_at": NOW + timedelta(hours=3)})
    added = await repository.add(ALICE, fields, entry_id="e1", now=NOW)
    assert added.short_id == 1

    loaded = await repository.get(ALICE, 1)
    assert loaded == added
    assert loaded.symbol == "ETHUSDT"
    assert loaded.side is Side.SHORT
    assert loaded.tags == ("range", "news")
    assert loaded.note == "faded <it> & left"
    assert loaded.status is EntryStatus.CLOSED
    assert loaded.pnl == 196
    assert loaded.r_multiple == 0.98

    raw = await mongo_db[ENTRIES].find_one({"_id": "e1"})
    assert raw["platform"] == "telegram"
    assert raw["user_id"] == "1"
    assert "status" not in raw
    assert "pnl" not in raw


async def test_indexes_created(mongo_db):
    await ensure_journal_indexes(mongo_db)
    await ensure_journal_indexes(mongo_db)
    indexes = await mongo_db[ENTRIES].index_information()
    assert indexes["user_short_id"]["key"] == [("platform", 1), ("user_id", 1), ("short_id", 1)]
    assert indexes["user_short_id"]["unique"] is True
    assert indexes["user_newest_first"]["key"] == [("platform", 1), ("user_id", 1), ("opened_at", -1),
                                                   ("short_id", -1)]
    analyses = await mongo_db.analyses.index_information()
    assert analyses["chat_ack_message"]["key"] == [("platform", 1), ("chat_id", 1), ("ack_message_id", 1)]


async def test_short_ids_unique_under_concurrency(mongo_db, services_env):
    """Two clients, as two bot processes would hold, add 30 entries for one user at once."""
    await ensure_journal_indexes(mongo_db)
    second_client = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    try:
        repositories = [MongoJournalRepository(mongo_db), MongoJournalRepository(second_client[mongo_db.name])]
        adds = [
            repositories[index % 2].add(ALICE, _fields("BTCUSDT long 42000 size 1", minutes=index),
                                        entry_id=f"c{index}", now=NOW)
            for index in range(30)
        ]
        entries = await asyncio.gather(*adds)
    finally:
        await second_client.close()
    short_ids = sorted(entry.short_id for entry in entries)
    assert len(set(short_ids)) == 30
    stored = await mongo_db[ENTRIES].distinct("short_id", {"user_id": "1"})
    assert sorted(stored) == short_ids
    assert short_ids[0] == 1


async def test_short_ids_not_reused_after_delete(mongo_db):
    await ensure_journal_indexes(mongo_db)
    repository = MongoJournalRepository(mongo_db)
    for index in range(3):
        await repository.add(ALICE, _fields("BTCUSDT long 42000 size 1"), entry_id=f"d{index}", now=NOW)
    assert await repository.delete(ALICE, 3) is True
    assert await repository.delete(ALICE, 3) is False
    fourth = await repository.add(ALICE, _fields("BTCUSDT long 42000 size 1"), entry_id="d3", now=NOW)
    assert fourth.short_id == 4
    first_of_bob = await repository.add(BOB, _fields("BTCUSDT long 42000 size 1"), entry_id="d4", now=NOW)
    assert first_of_bob.short_id == 1


async def test_lost_counter_moves_past_stored_ids(mongo_db):
    await ensure_journal_indexes(mongo_db)
    repository = MongoJournalRepository(mongo_db)
    for index in range(5):
        await repository.add(ALICE, _fields("BTCUSDT long 42000 size 1"), entry_id=f"l{index}", now=NOW)
    await mongo_db[COUNTERS].delete_many({})
    entry = await repository.add(ALICE, _fields("BTCUSDT long 42000 size 1"), entry_id="l5", now=NOW)
    assert entry.short_id == 6


async def test_list_filters_and_pages_newest_first(mongo_db):
    await ensure_journal_indexes(mongo_db)
    repository = MongoJournalRepository(mongo_db)
    for index in range(23):
        symbol = "BTCUSDT" if index % 2 else "ETHUSDT"
        text = f"{symbol} long 100 size 1" + (" exit 110" if index % 3 == 0 else "") + f" #t{index % 4}"
        await repository.add(ALICE, _fields(text, minutes=index), entry_id=f"p{index}", now=NOW)
    await repository.add(BOB, _fields("BTCUSDT long 100 size 1"), entry_id="bob", now=NOW)

    everything = EntryQuery()
    assert await repository.count(ALICE, everything) == 23
    pages = [await repository.list(ALICE, everything, offset=offset, limit=5) for offset in range(0, 25, 5)]
    assert [[entry.short_id for entry in page] for page in pages] == [
        [23, 22, 21, 20, 19], [18, 17, 16, 15, 14], [13, 12, 11, 10, 9], [8, 7, 6, 5, 4], [3, 2, 1],
    ]
    closed = await repository.list(ALICE, EntryQuery(status=EntryStatus.CLOSED), offset=0, limit=50)
    assert [entry.short_id for entry in closed] == [22, 19, 16, 13, 10, 7, 4, 1]
    assert await repository.count(ALICE, EntryQuery(status=EntryStatus.OPEN)) == 15
    btc_t1 = await repository.list(ALICE, EntryQuery(symbol="BTCUSDT", tag="t1"), offset=0, limit=50)
    assert [entry.short_id for entry in btc_t1] == [22, 18, 14, 10, 6, 2]
    assert [entry.short_id for entry in await repository.list_all(BOB)] == [1]


async def test_update_and_delete_scoped_to_owner(mongo_db):
    await ensure_journal_indexes(mongo_db)
    repository = MongoJournalRepository(mongo_db)
    await repository.add(ALICE, _fields("BTCUSDT long 42000 size 1"), entry_id="a1", now=NOW)
    assert await repository.update(BOB, 1, {"exit_price": 1.0}) is None
    assert await repository.delete(BOB, 1) is False
    updated = await repository.update(ALICE, 1, {"exit_price": 43000.0, "closed_at": NOW, "tags": ("x",)})
    assert updated.status is EntryStatus.CLOSED
    assert updated.tags == ("x",)
    cleared = await repository.update(ALICE, 1, {"exit_price": None, "closed_at": None})
    assert cleared.status is EntryStatus.OPEN
    assert await repository.count(ALICE, EntryQuery(status=EntryStatus.OPEN)) == 1


async def test_analysis_link_by_acknowledgement_message(mongo_db):
    await mongo_db.analyses.insert_one({"_id": "an-1", "platform": "telegram", "user_id": "1", "chat_id": "1",
                                        "ack_message_id": "1005", "status": "done"})
    links = MongoAnalysisLinks(mongo_db)
    assert await links.find_by_message(ALICE, chat_id="1", message_id="1005") == "an-1"
    assert await links.find_by_message(ALICE, chat_id="1", message_id="1006") is None
    assert await links.find_by_message(BOB, chat_id="1", message_id="1005") is None


async def test_close_use_case_on_mongo(mongo_db):
    journal = await open_journal_services(mongo_db, drafts=InMemoryGuidedDraftStore())
    journal = service.JournalServices(entries=journal.entries, analyses=journal.analyses, drafts=journal.drafts,
                                      clock=lambda: NOW)
    await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 sl 41000 size 0.5 fees 1"))
    closed = await service.close_entry(journal, ALICE, CloseRequest(short_id=1, exit_price=45000, fees=1))
    assert closed.fees == 2
    assert closed.pnl == 1498
    assert closed.r_multiple == 2.996
    reloaded = await service.get_entry(journal, ALICE, 1)
    assert reloaded == closed
