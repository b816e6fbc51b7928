"""/usage and the limit refusal as platform-neutral views: rows of plain text and one button."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.errors import UsageLimitExceeded
from core.plans import Plan, PlanTable
from core.subscriptions import SubscriptionStatus
from core.usage import UsageSummary

UPGRADE = "upgrade"
BILLING = "billing"


@dataclass(frozen=True)
class Button:
    """A button under a message; `action` names what pressing it does."""

    label: str
    action: str


@dataclass(frozen=True)
class UsageView:
    """A titled list of label and value rows with one button."""

    title: str
    rows: list[tuple[str, str]]
    button: Button


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _button(is_subscriber: bool) -> Button:
    return Button("Manage billing", BILLING) if is_subscriber else Button("⭐ Upgrade", UPGRADE)


def _plan_row(summary: UsageSummary) -> str:
    resolved, subscription = summary.resolved, summary.subscription
    name = resolved.plan.name
    if not resolved.is_subscriber or subscription is None:
        if subscription is not None and subscription.status is not SubscriptionStatus.ACTIVE:
            return f"{name} (your subscription is {subscription.status.value.replace('_', ' ')})"
        return name
    end = _day(resolved.period_end)
    if subscription.status is SubscriptionStatus.TRIALING:
        return f"{name}, trial until {end}"
    if subscription.status is SubscriptionStatus.PAST_DUE:
        return f"{name}, payment past due: update your payment method to keep it"
    if subscription.cancel_at_period_end:
        return f"{name}, active, ends on {end}"
    return f"{name}, active, renews on {end}"


def usage_view(summary: UsageSummary) -> UsageView:
    """Render a user's plan and counts."""
    plan, counts = summary.resolved.plan, summary.counts
    if plan.daily_limit is None:
        today = f"{counts.day} (no daily cap)"
    else:
        today = f"{counts.day} of {plan.daily_limit} (resets at 00:00 UTC)"
    period_limit = plan.period_limit + counts.bonus
    period = f"{counts.period} of {period_limit}"
    if counts.bonus:
        period += f", including {counts.bonus} bonus"
    period += f" (resets on {_day(summary.resolved.period_end)})"
    period_label = "This billing period" if summary.resolved.is_subscriber else "This month"
    rows = [
        ("Plan", _plan_row(summary)),
        ("Today", today),
        (period_label, period),
        ("All time", f"{counts.total} {'chart' if counts.total == 1 else 'charts'} analysed"),
    ]
    return UsageView(title="📈 Your ChartBot usage", rows=rows, button=_button(summary.resolved.is_subscriber))


def _time_until(moment: datetime, now: datetime) -> str:
    minutes = max(1, int((moment - now).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def limit_refusal(error: UsageLimitExceeded, *, now: datetime) -> tuple[str, Button]:
    """Explain which limit refused a request, the numbers, and when it resets."""
    window = "today" if error.limit_kind == "daily" else (
        "this billing period" if error.is_subscriber else "this month")
    left = max(0, error.limit - error.used)
    text = f"🚫 You have used {error.used} of your {error.limit} chart analyses for {window} on the {error.plan_name} plan."
    if error.requested > 1 and left:
        charts = "1 chart" if left == 1 else f"{left} charts"
        text += (f" This request needs {error.requested} and {left} {'is' if left == 1 else 'are'} left: "
                 f"send at most {charts} now.")
    if error.limit_kind == "daily":
        text += f" The limit resets at {error.resets_at:%H:%M} UTC on {_day(error.resets_at)}"
    else:
        text += f" Your allowance resets on {_day(error.resets_at)} at {error.resets_at:%H:%M} UTC"
    text += f" (in {_time_until(error.resets_at, now)}). This request was not counted."
    return text, _button(error.is_subscriber)


def _price(plan: Plan) -> str:
    return f"${plan.min_monthly_price:,.0f} a month"


def plans_overview(table: PlanTable) -> list[str]:
    """Describe each paid plan: price and allowance, one line each."""
    lines = []
    for tier in sorted(table.tiers, key=lambda t: t.min_monthly_price):
        daily = "no daily cap" if tier.daily_limit is None else f"up to {tier.daily_limit:,} a day"
        lines.append(f"{tier.name}: {_price(tier)}, {tier.period_limit:,} charts a month, {daily}")
    return lines
