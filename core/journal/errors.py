"""Exceptions the journal use cases raise; the chat adapters turn each into a message."""

from __future__ import annotations

from core.errors import ChartBotError


class JournalError(ChartBotError):
    """Base class of the journal's errors."""


class JournalParseError(JournalError):
    """A journal command could not be read.

    `token` is the word that failed to parse, or None when something is
    missing. `command` names the form to show ("add", "close", "edit", ...),
    and `field` the entry field being read, where one is known.
    """

    def __init__(self, reason: str, *, token: str | None, command: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token = token
        self.command = command
        self.field = field


class InvalidJournalEntry(JournalError):
    """Values that parse on their own but break a rule together, such as a stop loss above a long's entry."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class JournalEntryNotFound(JournalError):
    """The user has no entry with this short id."""

    def __init__(self, short_id: int) -> None:
        super().__init__(f"journal entry {short_id} not found")
        self.short_id = short_id


class EntryAlreadyClosed(JournalError):
    """A close was requested for an entry that already has an exit price."""

    def __init__(self, short_id: int, exit_price: float) -> None:
        super().__init__(f"journal entry {short_id} is already closed at {exit_price}")
        self.short_id = short_id
        self.exit_price = exit_price


class GuidedDraftMissing(JournalError):
    """An answer arrived for a guided entry that was finished, cancelled or expired."""


class ShortIdAllocationFailed(JournalError):
    """No free per-user short id was found after the maximum number of attempts."""

    def __init__(self, user_key: str, attempts: int) -> None:
        super().__init__(f"no free journal short id for {user_key} after {attempts} attempts")
        self.user_key = user_key
        self.attempts = attempts
