"""The journal use cases on the in-memory ports: add, link, list, close, edit, delete, guided entry, export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from core.journal import service
from core.journal.errors import (
    EntryAlreadyClosed,
    GuidedDraftMissing,
    InvalidJournalEntry,
    JournalEntryNotFound,
    JournalParseError,
)
from core.journal.export import CSV_COLUMNS, entries_to_csv
from core.journal.memory import InMemoryAnalysisLinks, InMemoryGuidedDraftStore, InMemoryJournalRepository
from core.journal.models import EntryQuery, EntryStatus, JournalEntry, Owner, Side
from core.journal.parser import CloseRequest, EditRequest, parse_add
from core.journal.service import JournalServices, MessageRef
from core.models import Platform

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
ALICE = Owner(Platform.TELEGRAM, "1")
BOB = Owner(Platform.TELEGRAM, "2")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def journal() -> JournalServices:
    return JournalServices(entries=InMemoryJournalRepository(), analyses=InMemoryAnalysisLinks(),
                           drafts=InMemoryGuidedDraftStore(), clock=Clock())


async def test_add_sets_times_and_short_ids_per_user(journal):
    first = await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 0.5"))
    second = await service.add_entry(journal, ALICE, parse_add("ETHUSDT short 3000 size 1 exit 2900"))
    other = await service.add_entry(journal, BOB, parse_add("BTCUSDT long 42000 size 0.5"))
    assert (first.short_id, second.short_id, other.short_id) == (1, 2, 1)
    assert first.opened_at == NOW
    assert first.closed_at is None
    assert second.status is EntryStatus.CLOSED
    assert second.closed_at == NOW


async def test_add_rejects_future_opening(journal):
    with pytest.raises(InvalidJournalEntry) as caught:
        await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 1 opened 2026-05-11"))
    assert caught.value.field == "opened_at"


async def test_reply_to_analysis_links_entry(journal):
    journal.analyses.links[(ALICE, "100", "55")] = "analysis-1"
    linked = await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 1"),
                                     reply_to=MessageRef(chat_id="100", message_id="55"))
    unlinked = await service.add_entry(journal, BOB, parse_add("BTCUSDT long 42000 size 1"),
                                       reply_to=MessageRef(chat_id="100", message_id="55"))
    assert linked.analysis_id == "analysis-1"
    assert unlinked.analysis_id is None


async def test_list_pages_and_filters(journal):
    for index in range(12):
        journal.clock.now = NOW + timedelta(minutes=index)
        symbol = "BTCUSDT" if index % 2 else "ETHUSDT"
        await service.add_entry(journal, ALICE, parse_add(f"{symbol} long 100 size 1 #t{index % 3}"))
    journal.clock.now = NOW + timedelta(hours=1)
    page = await service.list_entries(journal, ALICE, EntryQuery(), page=3)
    assert (page.page, page.pages, page.total) == (3, 3, 12)
    assert [entry.short_id for entry in page.entries] == [2, 1]
    last = await service.list_entries(journal, ALICE, EntryQuery(), page=9)
    assert last.page == 3
    btc = await service.list_entries(journal, ALICE, EntryQuery(symbol="BTCUSDT", tag="t1"))
    # Index 1 and 7 are odd (BTCUSDT) with index % 3 == 1 (#t1): short ids 2 and 8.
    assert [entry.short_id for entry in btc.entries] == [8, 2]


async def test_close_adds_fees_and_rejects_second_close(journal):
    await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 0.5 fees 1"))
    closed = await service.close_entry(journal, ALICE, CloseRequest(short_id=1, exit_price=45000, fees=2))
    assert closed.fees == 3
    assert closed.pnl == 1497
    assert closed.closed_at == NOW
    with pytest.raises(EntryAlreadyClosed):
        await service.close_entry(journal, ALICE, CloseRequest(short_id=1, exit_price=46000))


async def test_close_of_other_users_entry_not_found(journal):
    await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 0.5"))
    with pytest.raises(JournalEntryNotFound):
        await service.close_entry(journal, BOB, CloseRequest(short_id=1, exit_price=45000))
    assert (await service.get_entry(journal, ALICE, 1)).exit_price is None


async def test_edit_checks_whole_entry(journal):
    await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 1 sl 41000"))
    with pytest.raises(InvalidJournalEntry) as caught:
        await service.edit_entry(journal, ALICE, EditRequest(short_id=1, field="side", value=Side.SHORT))
    assert caught.value.field == "stop_loss"
    edited = await service.edit_entry(journal, ALICE, EditRequest(short_id=1, field="stop_loss", value=None))
    assert edited.stop_loss is None
    reopened = await service.edit_entry(journal, ALICE, EditRequest(short_id=1, field="exit_price", value=43000))
    assert reopened.closed_at == NOW
    reopened = await service.edit_entry(journal, ALICE, EditRequest(short_id=1, field="exit_price", value=None))
    assert reopened.status is EntryStatus.OPEN
    assert reopened.closed_at is None
    with pytest.raises(InvalidJournalEntry):
        await service.edit_entry(journal, ALICE, EditRequest(short_id=1, field="closed_at", value=NOW))


async def test_delete_one_entry_ids_not_reused(journal):
    for _ in range(3):
        await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 1"))
    await service.delete_entry(journal, ALICE, 3)
    with pytest.raises(JournalEntryNotFound):
        await service.delete_entry(journal, ALICE, 3)
    assert [entry.short_id for entry in await service.all_entries(journal, ALICE)] == [2, 1]
    fresh = await service.add_entry(journal, ALICE, parse_add("BTCUSDT long 42000 size 1"))
    assert fresh.short_id == 4


async def test_guided_entry_end_to_end(journal):
    journal.analyses.links[(ALICE, "100", "55")] = "analysis-1"
    draft = await service.start_guided(journal, ALICE, reply_to=MessageRef(chat_id="100", message_id="55"))
    assert draft.current.field == "symbol"
    answers = ["solusdt", "short", "150", "10", "160", "skip", "140", "1.5", "#Range news", "faded the pump"]
    entry = None
    for answer in answers:
        draft, entry = await service.answer_guided(journal, ALICE, answer)
    assert entry is not None
    assert (entry.symbol, entry.side, entry.entry_price, entry.size) == ("SOLUSDT", Side.SHORT, 150, 10)
    assert (entry.stop_loss, entry.take_profit, entry.exit_price, entry.fees) == (160, None, 140, 1.5)
    assert entry.tags == ("range", "news")
    assert entry.note == "faded the pump"
    assert entry.analysis_id == "analysis-1"
    assert entry.pnl == 98.5
    assert await journal.drafts.get(ALICE) is None


async def test_guided_bad_answer_keeps_step(journal):
    await service.start_guided(journal, ALICE)
    for answer in ["BTCUSDT", "long", "42000", "1"]:
        await service.answer_guided(journal, ALICE, answer)
    with pytest.raises(JournalParseError) as caught:
        await service.answer_guided(journal, ALICE, "43000")
    assert caught.value.field == "stop_loss"
    assert caught.value.reason == "the stop loss must be below the entry price for a long"
    with pytest.raises(JournalParseError) as caught:
        await service.start_guided(journal, ALICE)
        await service.answer_guided(journal, ALICE, "skip")
    assert caught.value.reason == "the symbol is required"
    assert (await journal.drafts.get(ALICE)).step == 0


async def test_guided_answer_without_draft(journal):
    with pytest.raises(GuidedDraftMissing):
        await service.answer_guided(journal, ALICE, "BTCUSDT")
    assert await service.cancel_guided(journal, ALICE) is False


def test_csv_neutralises_formulas():
    fields = parse_add('BTCUSDT long 42000 size 1 note =HYPERLINK("x")')
    entry = JournalEntry(**fields.model_dump(exclude={"opened_at"}), id="e1", short_id=1,
                         platform=Platform.TELEGRAM, user_id="1", opened_at=NOW, created_at=NOW, updated_at=NOW)
    rows = list(csv.reader(io.StringIO(entries_to_csv([entry]))))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1][CSV_COLUMNS.index("note")] == '\'=HYPERLINK("x")'
