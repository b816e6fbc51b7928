"""Storage ports of the journal use cases, declared as protocols.

MongoDB implementations live in adapters/mongo_journal.py, the Redis draft
store in adapters/redis_journal_drafts.py, and in-memory ones for unit tests
in core/journal/memory.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from core.journal.guided import GuidedDraft
from core.journal.models import EntryFields, EntryQuery, JournalEntry, Owner


class JournalRepository(Protocol):
    """Stores journal entries; every method is scoped to one owner, so no call reaches another user's entry."""

    async def add(self, owner: Owner, fields: EntryFields, *, entry_id: str, now: datetime) -> JournalEntry:
        """Insert an entry under the owner's next free short id; `fields.opened_at` must be set."""
        ...

    async def get(self, owner: Owner, short_id: int) -> JournalEntry | None:
        """Return the owner's entry with that short id, or None."""
        ...

    async def update(self, owner: Owner, short_id: int, changes: dict[str, Any]) -> JournalEntry | None:
        """Set the given fields (by JournalEntry name) and return the entry after the change, or None when missing."""
        ...

    async def delete(self, owner: Owner, short_id: int) -> bool:
        """Remove one entry; returns False when the owner has no entry with that short id."""
        ...

    async def list(self, owner: Owner, query: EntryQuery, *, offset: int, limit: int) -> list[JournalEntry]:
        """Return matching entries newest first (by opening time, then short id)."""
        ...

    async def count(self, owner: Owner, query: EntryQuery) -> int:
        """Return how many entries match."""
        ...

    async def list_all(self, owner: Owner) -> list[JournalEntry]:
        """Return all of the owner's entries, newest first."""
        ...


class AnalysisLinks(Protocol):
    """Finds the chart analysis that a chat message shows."""

    async def find_by_message(self, owner: Owner, *, chat_id: str, message_id: str) -> str | None:
        """Return the id of the owner's analysis delivered in that message, or None."""
        ...


class GuidedDraftStore(Protocol):
    """Keeps each user's guided entry between messages, visible to every bot process."""

    async def get(self, owner: Owner) -> GuidedDraft | None:
        """Return the user's draft, or None when there is none or it expired."""
        ...

    async def put(self, owner: Owner, draft: GuidedDraft) -> None:
        """Store the draft, replacing any earlier one, and restart its expiry."""
        ...

    async def delete(self, owner: Owner) -> bool:
        """Remove the draft; returns False when there was none."""
        ...
