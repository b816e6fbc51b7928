"""The usage service: reserve and refund uses per plan, show them, grant bonus uses.

Redis counters are the gate. One Lua script checks the daily and the period
limit and counts in the same step, so concurrent requests from any number of
processes never over-admit. The MongoDB ledger is the record of truth, and
the counters are rebuilt from it whenever Redis has lost them.

NOTE: a reservation admitted by Redis is written to the ledger just after.
If Redis loses its data in that moment and another process rebuilds the
counters before the ledger write lands, that one use is not counted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.errors import UsageLimitExceeded
from core.plans import PlanTable, ResolvedPlan, resolve_plan
from core.ports import Clock, SubscriptionRepository, UsageCounters, UsageLedger
from core.subscriptions import Subscription
from core.usage_records import CounterState, CounterWindow, LedgerEntry, Reservation

logger = logging.getLogger(__name__)

# Counters outlive their window by a day, so a late refund still finds them.
_COUNTER_SLACK = timedelta(days=1)


def user_key(platform: str, user_id: str) -> str:
    """Return the key that identifies a user in usage counters and the ledger."""
    return f"{platform}:{user_id}"


def next_day_start(moment: datetime) -> datetime:
    """Return the next UTC midnight after `moment`, when the daily count resets."""
    day = moment.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class UsageSummary:
    """A user's plan, subscription and counts, as /usage shows them."""

    resolved: ResolvedPlan
    subscription: Subscription | None
    counts: CounterState
    day_resets_at: datetime


@dataclass
class UsageService:
    """Plans, counters and ledger behind one interface for the use cases and the adapters."""

    counters: UsageCounters
    ledger: UsageLedger
    subscriptions: SubscriptionRepository
    plans: PlanTable
    past_due_grace: timedelta
    clock: Clock
    _rebuild_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict, init=False, repr=False)

    async def plan_for(self, platform: str, user_id: str) -> tuple[ResolvedPlan, Subscription | None]:
        """Return the user's plan now and their subscription record, if any."""
        subscription = await self.subscriptions.get(platform, user_id)
        resolved = resolve_plan(self.plans, subscription, now=self.clock(), grace=self.past_due_grace)
        return resolved, subscription

    def _window(self, key: str, resolved: ResolvedPlan, now: datetime) -> CounterWindow:
        day_end = next_day_start(now)
        return CounterWindow(
            user_key=key,
            day=now.astimezone(UTC).date().isoformat(),
            period=resolved.period_start.astimezone(UTC).isoformat(),
            day_ttl_seconds=int((day_end - now + _COUNTER_SLACK).total_seconds()),
            period_ttl_seconds=max(60, int((resolved.period_end - now + _COUNTER_SLACK).total_seconds())),
        )

    async def _load(self, window: CounterWindow) -> None:
        """Rebuild the counters of `window` from the ledger; a no-op when another process already did.

        Concurrent requests in this process wait for one rebuild instead of each reading the ledger.
        """
        lock = self._rebuild_locks.setdefault((window.user_key, window.period), asyncio.Lock())
        async with lock:
            if await self.counters.read(window) is not None:
                return
            state = await self.ledger.totals(window.user_key, day=window.day, period=window.period)
            loaded = await self.counters.load(window, state)
        self._rebuild_locks.pop((window.user_key, window.period), None)
        if loaded:
            logger.info("usage counters rebuilt from the ledger user=%s day=%d period=%d total=%d",
                        window.user_key, state.day, state.period, state.total)

    async def _current(self, platform: str, user_id: str) -> tuple[ResolvedPlan, Subscription | None, CounterWindow]:
        resolved, subscription = await self.plan_for(platform, user_id)
        return resolved, subscription, self._window(user_key(platform, user_id), resolved, self.clock())

    async def reserve(self, platform: str, user_id: str, *, units: int, analysis_id: str) -> Reservation:
        """Hold `units` uses for an analysis against the daily and the period limit.

        Raises UsageLimitExceeded naming the limit that refused it; a refusal
        changes no counter and no ledger entry.
        """
        resolved, _, window = await self._current(platform, user_id)
        plan = resolved.plan
        outcome = await self.counters.reserve(window, units=units, daily_limit=plan.daily_limit,
                                              period_limit=plan.period_limit)
        if not outcome.loaded:
            await self._load(window)
            outcome = await self.counters.reserve(window, units=units, daily_limit=plan.daily_limit,
                                                  period_limit=plan.period_limit)
        if not outcome.admitted:
            state = outcome.state or CounterState()
            logger.info("usage rejected user=%s limit=%s plan=%s day=%d period=%d requested=%d",
                        window.user_key, outcome.refused_by, plan.id, state.day, state.period, units)
            raise self._refusal(outcome.refused_by or "period", resolved, state, units)

        reservation = Reservation(analysis_id=analysis_id, platform=platform, user_id=user_id, units=units,
                                  day=window.day, period=window.period)
        try:
            await self.ledger.record(self._entry("use", reservation, id=f"use:{analysis_id}"))
        except Exception:
            logger.exception("ledger write failed, releasing the reservation analysis=%s user=%s",
                             analysis_id, window.user_key)
            await self.counters.refund(window, units=units, refund_key=analysis_id)
            raise
        return reservation

    def _refusal(self, refused_by: str, resolved: ResolvedPlan, state: CounterState, units: int) -> UsageLimitExceeded:
        plan = resolved.plan
        if refused_by == "daily" and plan.daily_limit is not None:
            return UsageLimitExceeded(limit=plan.daily_limit, used=state.day, requested=units,
                                      resets_at=next_day_start(self.clock()), limit_kind="daily",
                                      plan_name=plan.name, is_subscriber=resolved.is_subscriber)
        return UsageLimitExceeded(limit=plan.period_limit + state.bonus, used=state.period, requested=units,
                                  resets_at=resolved.period_end, limit_kind="period", plan_name=plan.name,
                                  is_subscriber=resolved.is_subscriber)

    def _entry(self, kind: str, reservation: Reservation, *, id: str, note: str | None = None) -> LedgerEntry:
        return LedgerEntry(id=id, kind=kind, user_key=user_key(reservation.platform, reservation.user_id),
                           platform=reservation.platform, user_id=reservation.user_id, units=reservation.units,
                           day=reservation.day, period=reservation.period, at=self.clock(),
                           analysis_id=reservation.analysis_id, note=note)

    async def refund(self, reservation: Reservation) -> bool:
        """Give back exactly the reserved uses, once however often it is called; returns False on a repeat."""
        return await self._give_back(reservation, refund_key=reservation.analysis_id)

    async def refund_charts(self, reservation: Reservation, charts: Sequence[int]) -> bool:
        """Give back one use per chart in `charts` of an album, once however often it is called.

        For the images of an album that were not charts or that the model
        could not read, while the rest were analysed. Returns False on a repeat.
        """
        if not 0 < len(charts) < reservation.units:
            raise ValueError(f"a part refund is 1 to {reservation.units - 1} charts, not {len(charts)}")
        part = reservation.model_copy(update={"units": len(charts)})
        numbers = ",".join(str(chart) for chart in charts)
        return await self._give_back(part, refund_key=f"{reservation.analysis_id}:charts",
                                     note=f"refunded charts: {numbers}")

    async def _give_back(self, reservation: Reservation, *, refund_key: str, note: str | None = None) -> bool:
        key = user_key(reservation.platform, reservation.user_id)
        window = CounterWindow(user_key=key, day=reservation.day, period=reservation.period,
                               day_ttl_seconds=60, period_ttl_seconds=60)
        # Counters first, then the ledger: each step is idempotent on its own, so a retried
        # refund after a crash between them completes without counting twice.
        refunded_now = await self.counters.refund(window, units=reservation.units, refund_key=refund_key)
        recorded_now = await self.ledger.record(
            self._entry("refund", reservation, id=f"refund:{refund_key}", note=note)
        )
        if refunded_now or recorded_now:
            logger.info("usage refunded analysis=%s user=%s units=%d", reservation.analysis_id, key,
                        reservation.units)
        return refunded_now or recorded_now

    async def summary(self, platform: str, user_id: str) -> UsageSummary:
        """Return the user's plan and counts for /usage."""
        resolved, subscription, window = await self._current(platform, user_id)
        state = await self.counters.read(window)
        if state is None:
            await self._load(window)
            state = await self.counters.read(window) or CounterState()
        return UsageSummary(resolved=resolved, subscription=subscription, counts=state,
                            day_resets_at=next_day_start(self.clock()))

    async def grant(self, platform: str, user_id: str, units: int, *, note: str | None = None) -> UsageSummary:
        """Add `units` bonus uses to the user's current period, recorded in the ledger."""
        if units < 1:
            raise ValueError(f"a grant must be at least 1 use, not {units}")
        resolved, _, window = await self._current(platform, user_id)
        reservation = Reservation(analysis_id=f"grant-{uuid.uuid4().hex}", platform=platform, user_id=user_id,
                                  units=units, day=window.day, period=window.period)
        # Counters before the ledger: a rebuild racing with this grant can only miss it, never count it twice.
        await self.counters.add_bonus(window, units=units)
        entry = self._entry("grant", reservation, id=reservation.analysis_id, note=note)
        await self.ledger.record(entry.model_copy(update={"analysis_id": None}))
        logger.info("bonus granted user=%s units=%d period=%s", window.user_key, units, window.period)
        return await self.summary(platform, user_id)
