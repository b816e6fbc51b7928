"""A trade journal entry and the values derived from it: status, P&L and R multiple.

Derived values are properties computed from the stored fields on every read,
so they never go stale after an edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from core.journal.errors import InvalidJournalEntry
from core.models import Platform

SYMBOL_MAX_CHARS = 16
TAG_MAX_CHARS = 20
MAX_TAGS = 10
NOTE_MAX_CHARS = 500

# Symbols are stored upper-case; tags lower-case and starting with a letter, so "#3" is never a tag.
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9./_-]*")
TAG_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")


class Side(str, Enum):
    """Direction of a trade."""

    LONG = "long"
    SHORT = "short"


class EntryStatus(str, Enum):
    """Whether a trade still runs: an entry is closed once it has an exit price."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Owner:
    """The chat user a journal belongs to."""

    platform: Platform
    user_id: str

    @property
    def key(self) -> str:
        """Return "platform:user_id", the user's key in logs and Redis."""
        return f"{self.platform.value}:{self.user_id}"


class EntryFields(BaseModel):
    """The fields a trader records about a trade; prices are in the quote currency of the symbol."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(min_length=1, max_length=SYMBOL_MAX_CHARS)
    side: Side
    entry_price: float = Field(gt=0, allow_inf_nan=False)
    size: float = Field(gt=0, allow_inf_nan=False, description="units of the base asset")
    stop_loss: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    take_profit: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    exit_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    fees: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="total fees in quote currency")
    opened_at: datetime | None = Field(default=None, description="UTC; None means the time the entry is added")
    closed_at: datetime | None = None
    tags: tuple[str, ...] = Field(default=(), max_length=MAX_TAGS)
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    analysis_id: str | None = None


class JournalEntry(EntryFields):
    """A stored journal entry with its ids and its derived values."""

    id: str = Field(description="database id, never shown to the user")
    short_id: int = Field(gt=0, description="per-user number shown in chat: 1, 2, 3...")
    platform: Platform
    user_id: str
    opened_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def owner(self) -> Owner:
        """Return the user the entry belongs to."""
        return Owner(self.platform, self.user_id)

    @property
    def status(self) -> EntryStatus:
        """Return CLOSED once the entry has an exit price."""
        return EntryStatus.OPEN if self.exit_price is None else EntryStatus.CLOSED

    @property
    def position_value(self) -> float:
        """Return entry price times size, in quote currency."""
        return self.entry_price * self.size

    @property
    def pnl(self) -> float | None:
        """Return the net P&L in quote currency (after fees), or None while the trade is open."""
        if self.exit_price is None:
            return None
        direction = 1 if self.side is Side.LONG else -1
        return (self.exit_price - self.entry_price) * self.size * direction - self.fees

    @property
    def pnl_percent(self) -> float | None:
        """Return the net P&L as a percentage of the position value at entry."""
        pnl = self.pnl
        return None if pnl is None else pnl / self.position_value * 100

    @property
    def risk(self) -> float | None:
        """Return the initial risk in quote currency (distance to the stop loss times size), or None without a stop."""
        if self.stop_loss is None:
            return None
        return abs(self.entry_price - self.stop_loss) * self.size

    @property
    def r_multiple(self) -> float | None:
        """Return the net P&L in units of the initial risk, or None when open or without a stop loss."""
        pnl, risk = self.pnl, self.risk
        if pnl is None or risk is None:
            return None
        return pnl / risk


@dataclass(frozen=True)
class EntryQuery:
    """Filters of a journal listing; None matches everything."""

    status: EntryStatus | None = None
    symbol: str | None = None
    tag: str | None = None


def check_levels(side: Side, entry_price: float, stop_loss: float | None, take_profit: float | None) -> None:
    """Raise InvalidJournalEntry when the stop loss or take profit sits on the wrong side of the entry."""
    if side is Side.LONG:
        if stop_loss is not None and stop_loss >= entry_price:
            raise InvalidJournalEntry("stop_loss", "must be below the entry price for a long")
        if take_profit is not None and take_profit <= entry_price:
            raise InvalidJournalEntry("take_profit", "must be above the entry price for a long")
    else:
        if stop_loss is not None and stop_loss <= entry_price:
            raise InvalidJournalEntry("stop_loss", "must be above the entry price for a short")
        if take_profit is not None and take_profit >= entry_price:
            raise InvalidJournalEntry("take_profit", "must be below the entry price for a short")


def check_times(opened_at: datetime, closed_at: datetime | None, *, now: datetime) -> None:
    """Raise InvalidJournalEntry when a time lies in the future or the close precedes the open."""
    if opened_at > now:
        raise InvalidJournalEntry("opened_at", "must not be in the future")
    if closed_at is not None:
        if closed_at > now:
            raise InvalidJournalEntry("closed_at", "must not be in the future")
        if closed_at < opened_at:
            raise InvalidJournalEntry("closed_at", "must not be before the opening time")


def check_entry(entry: JournalEntry, *, now: datetime) -> None:
    """Check the rules that tie an entry's fields together; raises InvalidJournalEntry."""
    check_levels(entry.side, entry.entry_price, entry.stop_loss, entry.take_profit)
    check_times(entry.opened_at, entry.closed_at, now=now)

