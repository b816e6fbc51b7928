"""The plan table: price and status to limits, yearly prices, the past_due grace period."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from core.models import Platform
from core.plans import PlansFileError, calendar_month, load_plans, resolve_plan
from core.settings import Settings
from core.subscriptions import Subscription, SubscriptionStatus

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=3)
PERIOD_START = datetime(2026, 7, 10, 8, 30, tzinfo=UTC)
PERIOD_END = datetime(2026, 8, 10, 8, 30, tzinfo=UTC)


def _subscription(status=SubscriptionStatus.ACTIVE, *, cents=2900, interval="month", **fields) -> Subscription:
    fields = {"current_period_start": PERIOD_START, "current_period_end": PERIOD_END, **fields}
    return Subscription(platform=Platform.TELEGRAM, user_id="1", status=status, unit_amount=cents,
                        interval=interval, **fields)


@pytest.mark.parametrize(
    ("cents", "interval", "plan", "daily", "period"),
    [
        (900, "month", "basic", 25, 100),
        (1900, "month", "basic", 25, 100),
        (2900, "month", "pro", 100, 500),
        (9900, "month", "elite", None, 3000),
        (500, "month", "free", 3, 15),
        (29000, "year", "basic", 25, 100),   # $290 a year is $24.17 a month
        (34800, "year", "pro", 100, 500),    # $348 a year is $29 a month
        (118800, "year", "elite", None, 3000),
    ],
)
def test_price_picks_tier(cents, interval, plan, daily, period):
    resolved = resolve_plan(load_plans(), _subscription(cents=cents, interval=interval), now=NOW, grace=GRACE)
    assert resolved.plan.id == plan
    assert resolved.plan.daily_limit == daily
    assert resolved.plan.period_limit == period


@pytest.mark.parametrize("status", [SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING])
def test_active_and_trialing_get_tier_and_billing_period(status):
    resolved = resolve_plan(load_plans(), _subscription(status), now=NOW, grace=GRACE)
    assert resolved.plan.id == "pro"
    assert resolved.is_subscriber is True
    assert (resolved.period_start, resolved.period_end) == (PERIOD_START, PERIOD_END)


@pytest.mark.parametrize("status", [
    SubscriptionStatus.CANCELED, SubscriptionStatus.UNPAID, SubscriptionStatus.INCOMPLETE,
    SubscriptionStatus.INCOMPLETE_EXPIRED, SubscriptionStatus.PAUSED,
])
def test_other_statuses_are_free_on_calendar_month(status):
    resolved = resolve_plan(load_plans(), _subscription(status), now=NOW, grace=GRACE)
    assert resolved.plan.id == "free"
    assert resolved.is_subscriber is False
    assert resolved.period_start == datetime(2026, 7, 1, tzinfo=UTC)
    assert resolved.period_end == datetime(2026, 8, 1, tzinfo=UTC)


def test_past_due_keeps_tier_during_grace_then_falls_to_free():
    since = datetime(2026, 7, 13, 9, 0, tzinfo=UTC)
    subscription = _subscription(SubscriptionStatus.PAST_DUE, past_due_since=since)
    table = load_plans()
    assert resolve_plan(table, subscription, now=since + timedelta(days=2, hours=23), grace=GRACE).plan.id == "pro"
    assert resolve_plan(table, subscription, now=since + GRACE, grace=GRACE).plan.id == "free"


def test_no_subscription_is_free():
    resolved = resolve_plan(load_plans(), None, now=NOW, grace=GRACE)
    assert (resolved.plan.id, resolved.plan.daily_limit, resolved.plan.period_limit) == ("free", 3, 15)
    assert resolved.subscription_status is None


def test_stale_billing_period_falls_back_to_calendar_month():
    subscription = _subscription(current_period_start=datetime(2026, 5, 1, tzinfo=UTC),
                                 current_period_end=datetime(2026, 6, 1, tzinfo=UTC))
    resolved = resolve_plan(load_plans(), subscription, now=NOW, grace=GRACE)
    assert resolved.plan.id == "pro"
    assert resolved.period_start == datetime(2026, 7, 1, tzinfo=UTC)


def test_calendar_month_rolls_over_the_year():
    assert calendar_month(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_plans_file_overrides_defaults(tmp_path):
    path = tmp_path / "plans.toml"
    path.write_text('[free]\nname = "Starter"\ndaily_limit = 1\nperiod_limit = 5\n\n'
                    '[[tiers]]\nid = "gold"\nname = "Gold"\nmin_monthly_price = 5\nperiod_limit = 50\n')
    table = load_plans(path)
    assert (table.free.name, table.free.daily_limit, table.free.period_limit) == ("Starter", 1, 5)
    assert table.tier_for_monthly_price(5).id == "gold"
    assert table.tier_for_monthly_price(4.99).id == "free"


def test_invalid_plans_file_named(tmp_path):
    path = tmp_path / "plans.toml"
    path.write_text("[free]\nname = 'Free'\n")
    with pytest.raises(PlansFileError) as caught:
        load_plans(path)
    assert str(caught.value).startswith(f"invalid plans file {path}:")


def test_daily_above_monthly_limit_warned(tmp_path, caplog):
    path = tmp_path / "plans.toml"
    path.write_text('[free]\nname = "Free"\ndaily_limit = 3\nperiod_limit = 10\n\n'
                    '[[tiers]]\nid = "gold"\nname = "Gold"\nmin_monthly_price = 5\ndaily_limit = 80\nperiod_limit = 50\n')
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        table = Settings(_env_file=None, plans_file=path).plan_table()
        assert table.limit_warnings() == [
            "plan gold: daily_limit 80 is above period_limit 50, so the daily limit never applies"]
        # Loaded again in the same process, only the new warning is logged.
        Settings(_env_file=None, plans_file=path, free_daily_limit=20).plan_table()
        Settings(_env_file=None, plans_file=path).plan_table()
    assert [record.getMessage() for record in caplog.records] == [
        "plan limits do not fit together: plan gold: daily_limit 80 is above period_limit 50, so the daily "
        f"limit never applies (plans file {path}, FREE_DAILY_LIMIT None)",
        "plan limits do not fit together: plan free: daily_limit 20 is above period_limit 10, so the daily "
        f"limit never applies (plans file {path}, FREE_DAILY_LIMIT 20)",
    ]
    assert load_plans().limit_warnings() == []
