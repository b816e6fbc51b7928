"""Plans and how a user's subscription resolves to one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from core.subscriptions import Subscription, SubscriptionStatus


class PlansFileError(ValueError):
    """The plans file is missing, unreadable or invalid."""


class Plan(BaseModel):
    """Allowance of a plan; `daily_limit` None means no daily cap."""

    id: str
    name: str
    daily_limit: int | None = Field(default=None, ge=0)
    period_limit: int = Field(ge=0)
    min_monthly_price: float = Field(default=0, ge=0, description="in the currency's main unit, e.g. dollars")
    stripe_price_id: str | None = Field(default=None, description="Stripe price that /subscribe sells for this tier")


class PlanTable(BaseModel):
    """The free plan and the paid tiers, cheapest first."""

    free: Plan
    tiers: list[Plan]

    def tier_for_monthly_price(self, monthly_price: float) -> Plan:
        """Return the highest tier whose minimum price the monthly price reaches, else the free plan."""
        chosen = self.free
        for tier in sorted(self.tiers, key=lambda t: t.min_monthly_price):
            if monthly_price + 1e-9 >= tier.min_monthly_price:
                chosen = tier
        return chosen

    def tier(self, tier_id: str) -> Plan | None:
        """Return the paid tier with id `tier_id`, or None."""
        return next((tier for tier in self.tiers if tier.id == tier_id), None)

    def limit_warnings(self) -> list[str]:
        """Describe each plan whose daily limit is above its monthly one, so that the daily limit never applies."""
        return [
            f"plan {plan.id}: daily_limit {plan.daily_limit} is above period_limit {plan.period_limit}, "
            "so the daily limit never applies"
            for plan in [self.free, *self.tiers]
            if plan.daily_limit is not None and plan.daily_limit > plan.period_limit
        ]

    def tiers_for_sale(self) -> list[Plan]:
        """Return the paid tiers that have a Stripe price id, cheapest first."""
        return sorted((tier for tier in self.tiers if tier.stripe_price_id), key=lambda t: t.min_monthly_price)


def load_plans(path: Path | None = None) -> PlanTable:
    """Read the plans file at `path`, or the defaults shipped in core/plans.toml."""
    try:
        if path is None:
            text = resources.files("core").joinpath("plans.toml").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
        free = Plan(id="free", **data["free"])
        return PlanTable(free=free, tiers=[Plan(**tier) for tier in data.get("tiers", [])])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValidationError) as error:
        raise PlansFileError(f"invalid plans file {path or 'core/plans.toml'}: {error}") from error


@dataclass(frozen=True)
class ResolvedPlan:
    """The plan a user is on now, and the period their period limit counts in."""

    plan: Plan
    subscription_status: SubscriptionStatus | None
    is_subscriber: bool
    period_start: datetime
    period_end: datetime


def calendar_month(moment: datetime) -> tuple[datetime, datetime]:
    """Return the start and end (exclusive) of the UTC calendar month containing `moment`."""
    moment = moment.astimezone(UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _grants_tier(subscription: Subscription, now: datetime, grace: timedelta) -> bool:
    if subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        return True
    if subscription.status is SubscriptionStatus.PAST_DUE:
        since = subscription.past_due_since or subscription.current_period_end
        return since is not None and now < since + grace
    return False


def resolve_plan(table: PlanTable, subscription: Subscription | None, *, now: datetime,
                 grace: timedelta) -> ResolvedPlan:
    """Decide a user's plan from their subscription record.

    Active and trialing subscriptions get the tier of their monthly price;
    past_due keeps it for `grace` after the payment first failed; every other
    status is the free plan. A subscriber's period is the billing period, a
    free user's the calendar month; a billing period that does not contain
    `now` (a record not updated since its renewal) falls back to the month.
    """
    status = subscription.status if subscription else None
    month_start, month_end = calendar_month(now)
    if subscription is None or not _grants_tier(subscription, now, grace):
        return ResolvedPlan(plan=table.free, subscription_status=status, is_subscriber=False,
                            period_start=month_start, period_end=month_end)

    plan = table.tier_for_monthly_price(subscription.monthly_price())
    start, end = subscription.current_period_start, subscription.current_period_end
    if plan.id == table.free.id or start is None or end is None or not start <= now < end + grace:
        start, end = month_start, month_end
    return ResolvedPlan(plan=plan, subscription_status=status, is_subscriber=plan.id != table.free.id,
                        period_start=start, period_end=end)
