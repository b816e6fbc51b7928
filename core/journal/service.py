"""Use cases of the trade journal: add, list, show, close, edit, delete, stats, export and the guided form."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from core.journal.errors import EntryAlreadyClosed, GuidedDraftMissing, InvalidJournalEntry, JournalEntryNotFound
from core.journal.guided import GuidedDraft, apply_answer, draft_fields
from core.journal.models import EntryFields, EntryQuery, JournalEntry, Owner, check_entry, check_levels, check_times
from core.journal.parser import CloseRequest, EditRequest
from core.journal.ports import AnalysisLinks, GuidedDraftStore, JournalRepository
from core.journal.stats import ALL_TIME, JournalStats, StatsPeriod, compute_stats
from core.ports import Clock

logger = logging.getLogger(__name__)

PAGE_SIZE = 5


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class JournalServices:
    """The ports the journal use cases run on."""

    entries: JournalRepository
    analyses: AnalysisLinks
    drafts: GuidedDraftStore
    clock: Clock = utc_now
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class MessageRef:
    """A chat message that a command replied to."""

    chat_id: str
    message_id: str


@dataclass(frozen=True)
class EntryPage:
    """One page of a journal listing; `page` is 1-based and at most `pages`."""

    entries: list[JournalEntry]
    page: int
    pages: int
    total: int
    query: EntryQuery


async def add_entry(services: JournalServices, owner: Owner, fields: EntryFields, *,
                    reply_to: MessageRef | None = None) -> JournalEntry:
    """Store a new entry; when it replies to one of the user's analyses, link the entry to it.

    A missing opening time becomes now, and an exit price without a closing
    time closes the trade now. Raises InvalidJournalEntry.
    """
    now = services.clock()
    analysis_id = fields.analysis_id
    if analysis_id is None and reply_to is not None:
        analysis_id = await services.analyses.find_by_message(owner, chat_id=reply_to.chat_id,
                                                              message_id=reply_to.message_id)
    opened_at = fields.opened_at or now
    closed_at = fields.closed_at
    if fields.exit_price is not None and closed_at is None:
        closed_at = max(now, opened_at)
    check_levels(fields.side, fields.entry_price, fields.stop_loss, fields.take_profit)
    check_times(opened_at, closed_at, now=now)

    complete = fields.model_copy(update={"opened_at": opened_at, "closed_at": closed_at, "analysis_id": analysis_id})
    entry = await services.entries.add(owner, complete, entry_id=uuid.uuid4().hex, now=now)
    logger.info("journal entry added user=%s entry=%s short_id=%d analysis=%s",
                owner.key, entry.id, entry.short_id, analysis_id)
    return entry


async def get_entry(services: JournalServices, owner: Owner, short_id: int) -> JournalEntry:
    """Return the user's entry; raises JournalEntryNotFound."""
    entry = await services.entries.get(owner, short_id)
    if entry is None:
        raise JournalEntryNotFound(short_id)
    return entry


async def list_entries(services: JournalServices, owner: Owner, query: EntryQuery, *, page: int = 1) -> EntryPage:
    """Return one page of the user's entries, newest first; a page past the end shows the last page."""
    total = await services.entries.count(owner, query)
    pages = max(1, math.ceil(total / services.page_size))
    page = min(max(1, page), pages)
    entries = await services.entries.list(owner, query, offset=(page - 1) * services.page_size,
                                          limit=services.page_size)
    return EntryPage(entries=entries, page=page, pages=pages, total=total, query=query)


async def close_entry(services: JournalServices, owner: Owner, request: CloseRequest) -> JournalEntry:
    """Record the exit price of an open trade, now; fees given here are added to those already recorded.

    Raises JournalEntryNotFound and EntryAlreadyClosed.
    """
    entry = await get_entry(services, owner, request.short_id)
    if entry.exit_price is not None:
        raise EntryAlreadyClosed(entry.short_id, entry.exit_price)
    now = services.clock()
    changes = {
        "exit_price": request.exit_price,
        "closed_at": max(now, entry.opened_at),
        "fees": entry.fees + (request.fees or 0.0),
        "updated_at": now,
    }
    closed = await services.entries.update(owner, entry.short_id, changes)
    if closed is None:
        raise JournalEntryNotFound(entry.short_id)
    logger.info("journal entry closed user=%s short_id=%d", owner.key, entry.short_id)
    return closed


def _edit_changes(entry: JournalEntry, request: EditRequest, now: datetime) -> dict:
    changes: dict = {request.field: request.value}
    if request.field == "tags" and request.value is None:
        changes["tags"] = ()
    if request.field == "exit_price":
        if request.value is None:
            changes["closed_at"] = None
        elif entry.closed_at is None:
            changes["closed_at"] = max(now, entry.opened_at)
    if request.field == "closed_at" and entry.exit_price is None:
        raise InvalidJournalEntry("closed_at", "cannot be set on an open trade: close it with /journal close first")
    return changes


async def edit_entry(services: JournalServices, owner: Owner, request: EditRequest) -> JournalEntry:
    """Change one field, then check the whole entry again; raises JournalEntryNotFound and InvalidJournalEntry."""
    entry = await get_entry(services, owner, request.short_id)
    now = services.clock()
    changes = _edit_changes(entry, request, now)
    candidate = JournalEntry.model_validate({**entry.model_dump(), **changes})
    check_entry(candidate, now=now)
    edited = await services.entries.update(owner, entry.short_id, {**changes, "updated_at": now})
    if edited is None:
        raise JournalEntryNotFound(entry.short_id)
    logger.info("journal entry edited user=%s short_id=%d field=%s", owner.key, entry.short_id, request.field)
    return edited


async def delete_entry(services: JournalServices, owner: Owner, short_id: int) -> None:
    """Remove one of the user's entries; raises JournalEntryNotFound when it is already gone."""
    if not await services.entries.delete(owner, short_id):
        raise JournalEntryNotFound(short_id)
    logger.info("journal entry deleted user=%s short_id=%d", owner.key, short_id)


async def journal_stats(services: JournalServices, owner: Owner, period: StatsPeriod = ALL_TIME) -> JournalStats:
    """Compute the statistics of the user's trades closed in the period."""
    entries = await services.entries.list_all(owner)
    return compute_stats(entries, period=period, now=services.clock())


async def all_entries(services: JournalServices, owner: Owner) -> list[JournalEntry]:
    """Return every entry of the user, newest first, for an export."""
    return await services.entries.list_all(owner)


async def start_guided(services: JournalServices, owner: Owner, *, reply_to: MessageRef | None = None) -> GuidedDraft:
    """Begin a guided entry, replacing any unfinished one; a reply to an analysis links the entry to it."""
    analysis_id = None
    if reply_to is not None:
        analysis_id = await services.analyses.find_by_message(owner, chat_id=reply_to.chat_id,
                                                              message_id=reply_to.message_id)
    draft = GuidedDraft(analysis_id=analysis_id, started_at=services.clock())
    await services.drafts.put(owner, draft)
    logger.info("guided journal entry started user=%s analysis=%s", owner.key, analysis_id)
    return draft


async def answer_guided(services: JournalServices, owner: Owner,
                        text: str) -> tuple[GuidedDraft, JournalEntry | None]:
    """Apply the user's answer to their draft; after the last answer the entry is stored and the draft removed.

    Returns the draft after the answer and the new entry once it exists.
    Raises GuidedDraftMissing and JournalParseError (the draft is unchanged).
    """
    draft = await services.drafts.get(owner)
    if draft is None:
        raise GuidedDraftMissing(f"no guided journal entry in progress for {owner.key}")
    draft = apply_answer(draft, text)
    if not draft.complete:
        await services.drafts.put(owner, draft)
        return draft, None
    entry = await add_entry(services, owner, draft_fields(draft))
    await services.drafts.delete(owner)
    return draft, entry


async def cancel_guided(services: JournalServices, owner: Owner) -> bool:
    """Drop the user's unfinished guided entry; returns False when there was none."""
    cancelled = await services.drafts.delete(owner)
    if cancelled:
        logger.info("guided journal entry cancelled user=%s", owner.key)
    return cancelled
