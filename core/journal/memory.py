"""In-memory implementations of the journal ports, for unit tests and the demo.

They keep state in one process, so they are never used where several bot
processes run side by side.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.journal.guided import GuidedDraft
from core.journal.models import EntryFields, EntryQuery, JournalEntry, Owner


def matches(entry: JournalEntry, query: EntryQuery) -> bool:
    """Return True when the entry passes every filter of the query."""
    if query.status is not None and entry.status is not query.status:
        return False
    if query.symbol is not None and entry.symbol != query.symbol:
        return False
    return query.tag is None or query.tag in entry.tags


class InMemoryJournalRepository:
    """Journal entries in a dict keyed by owner and short id."""

    def __init__(self) -> None:
        self.entries: dict[tuple[Owner, int], JournalEntry] = {}
        self.last_short_id: dict[Owner, int] = {}

    async def add(self, owner: Owner, fields: EntryFields, *, entry_id: str, now: datetime) -> JournalEntry:
        # Like the MongoDB counter, numbers of deleted entries are not given out again.
        short_id = self.last_short_id.get(owner, 0) + 1
        self.last_short_id[owner] = short_id
        entry = JournalEntry(**fields.model_dump(), id=entry_id, short_id=short_id, platform=owner.platform,
                             user_id=owner.user_id, created_at=now, updated_at=now)
        self.entries[(owner, short_id)] = entry
        return entry

    async def get(self, owner: Owner, short_id: int) -> JournalEntry | None:
        return self.entries.get((owner, short_id))

    async def update(self, owner: Owner, short_id: int, changes: dict[str, Any]) -> JournalEntry | None:
        current = self.entries.get((owner, short_id))
        if current is None:
            return None
        updated = JournalEntry.model_validate({**current.model_dump(), **changes})
        self.entries[(owner, short_id)] = updated
        return updated

    async def delete(self, owner: Owner, short_id: int) -> bool:
        return self.entries.pop((owner, short_id), None) is not None

    def _newest_first(self, owner: Owner) -> list[JournalEntry]:
        mine = [entry for (entry_owner, _), entry in self.entries.items() if entry_owner == owner]
        mine.sort(key=lambda e: (e.opened_at, e.short_id), reverse=True)
        return mine

    async def list(self, owner: Owner, query: EntryQuery, *, offset: int, limit: int) -> list[JournalEntry]:
        found = [entry for entry in self._newest_first(owner) if matches(entry, query)]
        return found[offset : offset + limit]

    async def count(self, owner: Owner, query: EntryQuery) -> int:
        return sum(1 for entry in self._newest_first(owner) if matches(entry, query))

    async def list_all(self, owner: Owner) -> list[JournalEntry]:
        return self._newest_first(owner)


class InMemoryAnalysisLinks:
    """Analysis ids by (owner, chat id, message id), filled in by the test."""

    def __init__(self) -> None:
        self.links: dict[tuple[Owner, str, str], str] = {}

    async def find_by_message(self, owner: Owner, *, chat_id: str, message_id: str) -> str | None:
        return self.links.get((owner, chat_id, message_id))


class InMemoryGuidedDraftStore:
    """Guided drafts in a dict, without expiry."""

    def __init__(self) -> None:
        self.drafts: dict[Owner, GuidedDraft] = {}

    async def get(self, owner: Owner) -> GuidedDraft | None:
        return self.drafts.get(owner)

    async def put(self, owner: Owner, draft: GuidedDraft) -> None:
        self.drafts[owner] = draft

    async def delete(self, owner: Owner) -> bool:
        return self.drafts.pop(owner, None) is not None
