"""Records the usage service passes to its counters and ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field


class CounterState(BaseModel):
    """A user's counts: today, this period, all time, and bonus uses granted for this period."""

    day: int = 0
    period: int = 0
    total: int = 0
    bonus: int = 0


class CounterWindow(BaseModel):
    """Day and period the counters are kept for, and the lifetime of their keys."""

    user_key: str
    day: str = Field(description="UTC day, YYYY-MM-DD")
    period: str = Field(description="start of the period, ISO 8601")
    day_ttl_seconds: int
    period_ttl_seconds: int


class Reservation(BaseModel):
    """Uses held for one analysis, enough to refund exactly them."""

    analysis_id: str
    platform: str
    user_id: str
    units: int = Field(ge=1)
    day: str
    period: str


class LedgerEntry(BaseModel):
    """One line of the usage ledger; its id makes a use, refund or grant count once."""

    id: str
    kind: str = Field(pattern="^(use|refund|grant)$")
    user_key: str
    platform: str
    user_id: str
    units: int = Field(ge=1)
    day: str
    period: str
    at: datetime
    analysis_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ReserveOutcome:
    """Decision of the counters: admitted, rejected by a limit, or not loaded (rebuild first)."""

    loaded: bool
    admitted: bool = False
    refused_by: str | None = None
    state: CounterState | None = None
