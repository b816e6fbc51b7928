"""In-memory implementations of the core's ports, for unit tests and the demo.

They keep state in one process, so they are never used where several bot or
worker processes run side by side.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from core.billing_records import BillingUser
from core.models import Analysis, ImageInfo
from core.subscriptions import Subscription
from core.usage_records import CounterState, CounterWindow, LedgerEntry, ReserveOutcome


class InMemoryAnalysisRepository:
    """Analysis records in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, Analysis] = {}

    async def add(self, analysis: Analysis) -> None:
        if analysis.id in self.records:
            raise KeyError(f"analysis {analysis.id} already exists")
        self.records[analysis.id] = analysis

    async def get(self, analysis_id: str) -> Analysis | None:
        return self.records.get(analysis_id)

    async def update(self, analysis_id: str, changes: dict[str, Any]) -> None:
        current = self.records[analysis_id]
        self.records[analysis_id] = Analysis.model_validate({**current.model_dump(), **changes})

    def _mine(self, platform: str, user_id: str) -> list[Analysis]:
        return [a for a in self.records.values() if a.platform.value == platform and a.user_id == user_id]

    async def list_for_user(self, platform: str, user_id: str, *, limit: int, skip: int = 0) -> list[Analysis]:
        mine = sorted(self._mine(platform, user_id), key=lambda a: a.created_at, reverse=True)
        return mine[skip : skip + limit]

    async def count_for_user(self, platform: str, user_id: str) -> int:
        return len(self._mine(platform, user_id))

    async def archive_pending(self, *, limit: int) -> list[Analysis]:
        pending = sorted((a for a in self.records.values() if a.archive_pending), key=lambda a: a.created_at)
        return pending[:limit]


class InMemoryImageStore:
    """Image bytes in a dict."""

    def __init__(self) -> None:
        self.images: dict[str, tuple[ImageInfo, bytes]] = {}

    async def put(self, image_id: str, info: ImageInfo, data: bytes) -> None:
        self.images[image_id] = (info, data)

    async def get(self, image_id: str) -> bytes:
        return self.images[image_id][1]

    async def delete(self, image_id: str) -> None:
        self.images.pop(image_id, None)


class InMemoryUsageCounters:
    """UsageCounters in dicts; atomic because one event loop runs each call to the end."""

    def __init__(self) -> None:
        self.loaded: set[tuple[str, str]] = set()
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.refunded: set[str] = set()

    def _state(self, window: CounterWindow) -> CounterState:
        key = window.user_key
        return CounterState(day=self.counts[(key, "day:" + window.day)],
                            period=self.counts[(key, "period:" + window.period)],
                            total=self.counts[(key, "total")],
                            bonus=self.counts[(key, "bonus:" + window.period)])

    def _add(self, window: CounterWindow, units: int) -> None:
        for name in ("day:" + window.day, "period:" + window.period, "total"):
            self.counts[(window.user_key, name)] = max(0, self.counts[(window.user_key, name)] + units)

    async def reserve(self, window: CounterWindow, *, units: int, daily_limit: int | None,
                      period_limit: int) -> ReserveOutcome:
        if (window.user_key, window.period) not in self.loaded:
            return ReserveOutcome(loaded=False)
        state = self._state(window)
        if daily_limit is not None and state.day + units > daily_limit:
            return ReserveOutcome(loaded=True, refused_by="daily", state=state)
        if state.period + units > period_limit + state.bonus:
            return ReserveOutcome(loaded=True, refused_by="period", state=state)
        self._add(window, units)
        return ReserveOutcome(loaded=True, admitted=True, state=self._state(window))

    async def refund(self, window: CounterWindow, *, units: int, refund_key: str) -> bool:
        if refund_key in self.refunded:
            return False
        self.refunded.add(refund_key)
        self._add(window, -units)
        return True

    async def read(self, window: CounterWindow) -> CounterState | None:
        if (window.user_key, window.period) not in self.loaded:
            return None
        return self._state(window)

    async def load(self, window: CounterWindow, state: CounterState) -> bool:
        if (window.user_key, window.period) in self.loaded:
            return False
        key = window.user_key
        self.counts[(key, "day:" + window.day)] = state.day
        self.counts[(key, "period:" + window.period)] = state.period
        self.counts[(key, "total")] = state.total
        self.counts[(key, "bonus:" + window.period)] = state.bonus
        self.loaded.add((key, window.period))
        return True

    async def add_bonus(self, window: CounterWindow, *, units: int) -> None:
        if (window.user_key, window.period) in self.loaded:
            self.counts[(window.user_key, "bonus:" + window.period)] += units


def sum_ledger(entries: list[LedgerEntry], *, day: str, period: str) -> CounterState:
    """Sum ledger entries into counts: uses minus refunds, and grants as bonus."""
    state = CounterState()
    for entry in entries:
        if entry.kind == "grant":
            if entry.period == period:
                state.bonus += entry.units
            continue
        sign = 1 if entry.kind == "use" else -1
        state.total += sign * entry.units
        if entry.day == day:
            state.day += sign * entry.units
        if entry.period == period:
            state.period += sign * entry.units
    return state


class InMemoryUsageLedger:
    """UsageLedger in a dict keyed by entry id."""

    def __init__(self) -> None:
        self.entries_by_id: dict[str, LedgerEntry] = {}

    async def record(self, entry: LedgerEntry) -> bool:
        if entry.id in self.entries_by_id:
            return False
        self.entries_by_id[entry.id] = entry
        return True

    async def totals(self, user_key: str, *, day: str, period: str) -> CounterState:
        mine = [e for e in self.entries_by_id.values() if e.user_key == user_key]
        return sum_ledger(mine, day=day, period=period)

    async def entries(self, user_key: str, *, limit: int) -> list[LedgerEntry]:
        mine = [e for e in self.entries_by_id.values() if e.user_key == user_key]
        return sorted(mine, key=lambda e: e.at, reverse=True)[:limit]


class InMemorySubscriptionRepository:
    """Subscriptions in a dict keyed by platform and user id."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Subscription] = {}

    async def get(self, platform: str, user_id: str) -> Subscription | None:
        return self.records.get((platform, user_id))

    async def put(self, subscription: Subscription) -> None:
        self.records[(subscription.platform.value, subscription.user_id)] = subscription


class InMemoryBillingCustomers:
    """BillingCustomers in a dict keyed by customer id."""

    def __init__(self) -> None:
        self.users: dict[str, BillingUser] = {}

    async def link(self, customer_id: str, user: BillingUser) -> None:
        self.users[customer_id] = user

    async def user_for(self, customer_id: str) -> BillingUser | None:
        return self.users.get(customer_id)

    async def customer_for(self, user: BillingUser) -> str | None:
        return next((customer for customer, owner in self.users.items() if owner == user), None)


class InMemoryProcessedEvents:
    """ProcessedEvents in a dict keyed by event id."""

    def __init__(self) -> None:
        self.results: dict[str, str] = {}

    async def seen(self, event_id: str) -> bool:
        return event_id in self.results

    async def record(self, event_id: str, *, event_type: str, created: datetime, result: str) -> bool:
        if event_id in self.results:
            return False
        self.results[event_id] = result
        return True


class InMemoryBillingLocks:
    """BillingLocks on one asyncio.Lock per key."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._locks[key]:
            yield


class InMemoryReplyLocks:
    """ReplyLocks for one process, with leases on the monotonic clock."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[str, float]] = {}

    async def acquire(self, analysis_id: str, *, lease_seconds: float) -> str | None:
        now = time.monotonic()
        held = self._locks.get(analysis_id)
        if held is not None and held[1] > now:
            return None
        token = uuid.uuid4().hex
        self._locks[analysis_id] = (token, now + lease_seconds)
        return token

    async def release(self, analysis_id: str, token: str) -> None:
        held = self._locks.get(analysis_id)
        if held is not None and held[0] == token:
            del self._locks[analysis_id]
