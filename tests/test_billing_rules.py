"""The billing rules on in-memory ports: past_due tracking, several subscriptions, duplicates and refreshes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.telegram.billing_messages import notice_text
from core import billing
from core.billing import BillingServices
from core.billing_records import (
    BillingEvent,
    BillingUser,
    CheckoutCompleted,
    InvoiceState,
    NoticeKind,
    SubscriptionState,
)
from core.memory import (
    InMemoryBillingCustomers,
    InMemoryBillingLocks,
    InMemoryProcessedEvents,
    InMemorySubscriptionRepository,
)
from core.models import Platform
from core.plans import load_plans
from core.subscriptions import SubscriptionStatus

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
USER = BillingUser(platform=Platform.TELEGRAM, user_id="77")
PERIOD_END = datetime(2026, 8, 10, tzinfo=UTC)


class FakeGateway:
    """Returns a fixed subscription state, as the API would after the tied events."""

    def __init__(self, state: SubscriptionState) -> None:
        self.state = state
        self.retrieved: list[str] = []

    async def create_checkout_session(self, request):
        raise AssertionError("not used")

    async def create_portal_session(self, *, customer_id, return_url):
        raise AssertionError("not used")

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        self.retrieved.append(subscription_id)
        return self.state


def _services(gateway=None) -> BillingServices:
    return BillingServices(gateway=gateway, subscriptions=InMemorySubscriptionRepository(),
                           customers=InMemoryBillingCustomers(), processed=InMemoryProcessedEvents(),
                           locks=InMemoryBillingLocks(), plans=load_plans(), past_due_grace=timedelta(days=3),
                           clock=lambda: NOW)


def _state(status="active", *, sub="sub_1", cents=2900, cancel=False, user=USER) -> SubscriptionState:
    return SubscriptionState(subscription_id=sub, customer_id="cus_1", status=SubscriptionStatus(status),
                             unit_amount=cents, current_period_start=datetime(2026, 7, 10, tzinfo=UTC),
                             current_period_end=PERIOD_END, cancel_at_period_end=cancel, user=user)


_counter = iter(range(1, 10_000))


def _event(state: SubscriptionState, *, minutes: int, kind: str = "customer.subscription.updated",
           event_id: str | None = None) -> BillingEvent:
    return BillingEvent(id=event_id or f"evt_{next(_counter)}", type=kind,
                        created=NOW - timedelta(minutes=60 - minutes), subscription=state)


async def _record(services: BillingServices):
    return await services.subscriptions.get("telegram", "77")


async def test_past_due_since_kept_then_cleared():
    services = _services()
    await billing.handle_event(services, _event(_state(), minutes=1, kind="customer.subscription.created"))
    first = _event(_state("past_due"), minutes=2)
    await billing.handle_event(services, first)
    await billing.handle_event(services, _event(_state("past_due", cancel=True), minutes=3))
    assert (await _record(services)).past_due_since == first.created

    await billing.handle_event(services, _event(_state("active"), minutes=4))
    assert (await _record(services)).past_due_since is None


async def test_ended_subscription_does_not_hide_live_one():
    services = _services()
    await billing.handle_event(services, _event(_state(sub="sub_new"), minutes=5, kind="customer.subscription.created"))
    outcome = await billing.handle_event(services, _event(_state("canceled", sub="sub_old"), minutes=6,
                                                          kind="customer.subscription.deleted"))
    assert outcome.result == "stale"
    assert (await _record(services)).stripe_subscription_id == "sub_new"


async def test_new_subscription_replaces_ended_one():
    services = _services()
    await billing.handle_event(services, _event(_state("canceled", sub="sub_old"), minutes=1))
    outcome = await billing.handle_event(services, _event(_state(sub="sub_new", cents=9900), minutes=2,
                                                          kind="customer.subscription.created"))
    assert [n.kind for n in outcome.notices] == [NoticeKind.PLAN_CHANGED]
    assert outcome.notices[0].plan.id == "elite"
    assert (await _record(services)).stripe_subscription_id == "sub_new"


async def test_concurrent_duplicates_apply_once():
    services = _services()
    event = _event(_state(), minutes=1, kind="customer.subscription.created", event_id="evt_same")
    outcomes = await asyncio.gather(*(billing.handle_event(services, event) for _ in range(10)))
    assert sorted(o.result for o in outcomes) == ["applied"] + ["duplicate"] * 9
    assert sum(len(o.notices) for o in outcomes) == 1


async def test_checkout_links_customer_for_later_invoices():
    services = _services()
    checkout = BillingEvent(id="evt_co", type="checkout.session.completed", created=NOW,
                            checkout=CheckoutCompleted(session_id="cs_1", customer_id="cus_9", subscription_id="sub_9",
                                                       user=USER))
    assert (await billing.handle_event(services, checkout)).result == "applied"
    failed = BillingEvent(id="evt_inv", type="invoice.payment_failed", created=NOW,
                          invoice=InvoiceState(invoice_id="in_1", customer_id="cus_9", subscription_id="sub_9",
                                               amount_due=900))
    outcome = await billing.handle_event(services, failed)
    assert outcome.user == USER
    [notice] = outcome.notices
    assert (notice.kind, notice.plan.id, notice.keeps_plan_until) == (NoticeKind.PAYMENT_FAILED, "free", None)
    assert notice_text(notice) == (
        "⚠️ The payment of $9.00 for your ChartBot subscription failed. "
        "Send /billing to update your payment method and pay the invoice."
    )


async def test_payment_failure_after_later_payment_needs_no_notice():
    services = _services()
    await billing.handle_event(services, _event(_state(), minutes=1, kind="customer.subscription.created"))
    paid = BillingEvent(id="evt_paid", type="invoice.paid", created=NOW,
                        invoice=InvoiceState(invoice_id="in_2", customer_id="cus_1", subscription_id="sub_1"))
    await billing.handle_event(services, paid)
    failed = BillingEvent(id="evt_failed", type="invoice.payment_failed", created=NOW - timedelta(hours=1),
                          invoice=InvoiceState(invoice_id="in_1", customer_id="cus_1", subscription_id="sub_1"))
    outcome = await billing.handle_event(services, failed)
    assert (outcome.result, outcome.notices) == ("stale", [])


async def test_refresh_skipped_after_newer_event():
    gateway = FakeGateway(_state(cents=900))
    services = _services(gateway)
    tied = _event(_state(), minutes=1)
    await billing.handle_event(services, tied)
    await billing.handle_event(services, _event(_state(cents=9900), minutes=2))
    notices = await billing.refresh_subscription(services, USER, "sub_1", created=tied.created, event_id=tied.id)
    assert notices == []
    assert (await _record(services)).unit_amount == 9900
    assert gateway.retrieved == ["sub_1"]


@pytest.mark.parametrize(("status", "expected"), [
    ("active", "✅ You are now on Pro: 500 charts a month, up to 100 a day, renews on 2026-08-10. "
               "Send /usage to see what you have left."),
    ("trialing", "✅ You are now on Pro: 500 charts a month, up to 100 a day, trial until 2026-08-10. "
                 "Send /usage to see what you have left."),
])
async def test_plan_change_notice_text(status, expected):
    services = _services()
    outcome = await billing.handle_event(services, _event(_state(status), minutes=1))
    [notice] = outcome.notices
    assert notice_text(notice) == expected
