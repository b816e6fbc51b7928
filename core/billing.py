"""Stripe subscriptions as rules on ports: checkout, the Customer Portal, and the webhook events.

Guarantees across any number of web processes:

- idempotent: an event id is recorded under a unique key once its change is
  written. An event whose id is recorded, or is the last one applied to the
  user's record, changes nothing again;
- order-safe: a user's record keeps the `created` time of the newest event
  applied, and an older event is dropped. Stripe's `created` has one-second
  resolution, so two events of one subscription in the same second tie: the
  one that arrives last is applied and the subscription is fetched from the
  API afterwards (`refresh_subscription`) to settle which state is current;
- one writer at a time per user: the read, compare and write of a user's
  record run under a lock shared by every process (Redis in production).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.billing_records import (
    LIVE_STATUSES,
    BillingEvent,
    BillingEventType,
    BillingNotice,
    BillingUser,
    CheckoutRequest,
    CheckoutSession,
    EventOutcome,
    NoticeKind,
    SubscriptionState,
)
from core.errors import ChartBotError
from core.plans import Plan, PlanTable, resolve_plan
from core.ports import BillingCustomers, BillingGateway, BillingLocks, Clock, ProcessedEvents, SubscriptionRepository
from core.subscriptions import Subscription, SubscriptionStatus

logger = logging.getLogger(__name__)

HANDLED_EVENT_TYPES = frozenset(event_type.value for event_type in BillingEventType)


class PaymentsNotConfigured(ChartBotError):
    """The bot has no payment provider (STRIPE_SECRET_KEY is not set)."""

    def __init__(self) -> None:
        super().__init__("payments are not configured: STRIPE_SECRET_KEY is not set")


class PlanNotForSale(ChartBotError):
    """The requested tier does not exist or has no Stripe price id."""

    def __init__(self, plan_id: str) -> None:
        super().__init__(f"plan {plan_id!r} is not for sale: no paid tier with that id has a stripe_price_id")
        self.plan_id = plan_id


class AlreadySubscribed(ChartBotError):
    """The user has a live subscription, so a second checkout would bill them twice."""

    def __init__(self, subscription: Subscription) -> None:
        super().__init__(f"user {subscription.user_id} already has subscription {subscription.stripe_subscription_id}")
        self.subscription = subscription


class NoBillingAccount(ChartBotError):
    """The user has no Stripe customer, so there is no portal to open."""

    def __init__(self, user: BillingUser) -> None:
        super().__init__(f"user {user.platform.value}:{user.user_id} has no Stripe customer")
        self.user = user


@dataclass(frozen=True)
class BillingServices:
    """The ports and settings the billing rules run on; `gateway` is None when payments are not configured."""

    gateway: BillingGateway | None
    subscriptions: SubscriptionRepository
    customers: BillingCustomers
    processed: ProcessedEvents
    locks: BillingLocks
    plans: PlanTable
    past_due_grace: timedelta
    clock: Clock


@dataclass(frozen=True)
class PlansOffer:
    """Tiers for sale and the user's subscription, which /subscribe shows; a live one makes a checkout pointless."""

    tiers: list[Plan]
    subscription: Subscription | None
    payments_enabled: bool

    @property
    def has_live_subscription(self) -> bool:
        return self.subscription is not None and self.subscription.status in LIVE_STATUSES


def _gateway(services: BillingServices) -> BillingGateway:
    if services.gateway is None:
        raise PaymentsNotConfigured()
    return services.gateway


def _lock_key(user: BillingUser) -> str:
    return f"billing:{user.platform.value}:{user.user_id}"


async def plans_offer(services: BillingServices, user: BillingUser) -> PlansOffer:
    """Return the tiers the user can buy and their current subscription, if any."""
    subscription = await services.subscriptions.get(user.platform.value, user.user_id)
    return PlansOffer(tiers=services.plans.tiers_for_sale(), subscription=subscription,
                      payments_enabled=services.gateway is not None)


async def start_checkout(services: BillingServices, user: BillingUser, plan_id: str, *, success_url: str,
                         cancel_url: str) -> CheckoutSession:
    """Create a Checkout Session for the tier `plan_id`, reusing the user's Stripe customer when there is one.

    Raises PaymentsNotConfigured, PlanNotForSale, or AlreadySubscribed when the
    user has an active, trialing or past_due subscription.
    """
    gateway = _gateway(services)
    plan = services.plans.tier(plan_id)
    if plan is None or not plan.stripe_price_id:
        raise PlanNotForSale(plan_id)
    current = await services.subscriptions.get(user.platform.value, user.user_id)
    if current is not None and current.status in LIVE_STATUSES:
        raise AlreadySubscribed(current)
    customer_id = current.stripe_customer_id if current is not None else None
    customer_id = customer_id or await services.customers.customer_for(user)
    request = CheckoutRequest(user=user, plan_id=plan.id, price_id=plan.stripe_price_id, customer_id=customer_id,
                              success_url=success_url, cancel_url=cancel_url)
    session = await gateway.create_checkout_session(request)
    logger.info("checkout session created user=%s:%s plan=%s session=%s customer=%s",
                user.platform.value, user.user_id, plan.id, session.id, customer_id)
    return session


async def open_portal(services: BillingServices, user: BillingUser, *, return_url: str | None) -> str:
    """Create a Customer Portal session for the user and return its URL.

    Raises PaymentsNotConfigured, or NoBillingAccount when the user never completed a checkout.
    """
    gateway = _gateway(services)
    current = await services.subscriptions.get(user.platform.value, user.user_id)
    customer_id = current.stripe_customer_id if current is not None else None
    customer_id = customer_id or await services.customers.customer_for(user)
    if not customer_id:
        raise NoBillingAccount(user)
    url = await gateway.create_portal_session(customer_id=customer_id, return_url=return_url)
    logger.info("portal session created user=%s:%s customer=%s", user.platform.value, user.user_id, customer_id)
    return url


async def _user_for(services: BillingServices, event: BillingEvent) -> BillingUser | None:
    if event.checkout is not None:
        user, customer_id = event.checkout.user, event.checkout.customer_id
    elif event.subscription is not None:
        user, customer_id = event.subscription.user, event.subscription.customer_id
    elif event.invoice is not None:
        user, customer_id = None, event.invoice.customer_id
    else:
        return None
    if user is not None:
        if customer_id:
            await services.customers.link(customer_id, user)
        return user
    return await services.customers.user_for(customer_id) if customer_id else None


async def handle_event(services: BillingServices, event: BillingEvent) -> EventOutcome:
    """Apply one verified webhook event to the user's subscription record.

    Returns the outcome with the notices to send and the subscription to
    refresh afterwards; neither is sent here, so the webhook can respond first.
    """
    if event.type not in HANDLED_EVENT_TYPES or (event.checkout, event.subscription, event.invoice) == (None,) * 3:
        return EventOutcome(event_id=event.id, result="ignored")
    if await services.processed.seen(event.id):
        return EventOutcome(event_id=event.id, result="duplicate")

    user = await _user_for(services, event)
    if user is None:
        # NOTE: an invoice event that arrives before any checkout or subscription event of its customer
        # cannot be attributed and is dropped; Stripe sends those first in practice, but does not promise it.
        logger.warning("billing event for an unknown customer ignored event=%s type=%s", event.id, event.type)
        await services.processed.record(event.id, event_type=event.type, created=event.created,
                                        result="unattributed")
        return EventOutcome(event_id=event.id, result="unattributed")

    async with services.locks.hold(_lock_key(user)):
        if await services.processed.seen(event.id):
            return EventOutcome(event_id=event.id, result="duplicate")
        current = await services.subscriptions.get(user.platform.value, user.user_id)
        outcome = await _apply(services, event, user, current)
        first = await services.processed.record(event.id, event_type=event.type, created=event.created,
                                                result=outcome.result)
    if not first:
        return EventOutcome(event_id=event.id, result="duplicate", user=user)
    logger.info("billing event handled event=%s type=%s user=%s:%s result=%s notices=%d", event.id, event.type,
                user.platform.value, user.user_id, outcome.result, len(outcome.notices))
    return outcome


async def _apply(services: BillingServices, event: BillingEvent, user: BillingUser,
                 current: Subscription | None) -> EventOutcome:
    if event.checkout is not None:
        return await _apply_checkout(services, event, user, current)
    if event.subscription is not None:
        return await _apply_subscription(services, event, user, current)
    assert event.invoice is not None
    return await _apply_invoice(services, event, user, current)


async def _apply_checkout(services: BillingServices, event: BillingEvent, user: BillingUser,
                          current: Subscription | None) -> EventOutcome:
    """Link the checkout's customer and subscription to a record that does not name them yet."""
    checkout = event.checkout
    assert checkout is not None
    if current is not None and current.stripe_subscription_id is None:
        linked = current.model_copy(update={"stripe_customer_id": checkout.customer_id or current.stripe_customer_id,
                                            "stripe_subscription_id": checkout.subscription_id,
                                            "updated_at": services.clock()})
        await services.subscriptions.put(linked)
    return EventOutcome(event_id=event.id, result="applied", user=user)


def _supersedes(current: Subscription | None, state: SubscriptionState, event: BillingEvent) -> str | None:
    """Return why `state` must not replace `current` (already, stale, ended), or None when it may."""
    if current is None:
        return None
    if current.last_event_id == event.id:
        return "already"
    if current.last_event_created is not None and event.created < current.last_event_created:
        return "stale"
    other = current.stripe_subscription_id not in (None, state.subscription_id)
    if other and current.status in LIVE_STATUSES and state.status not in LIVE_STATUSES:
        # The user has another, live subscription: an ended one must not hide it.
        return "ended"
    return None


def subscription_record(user: BillingUser, state: SubscriptionState, current: Subscription | None, *,
                        created: datetime, event_id: str, now: datetime) -> Subscription:
    """Build the user's record from a subscription state; past_due_since is kept while the status stays past_due."""
    same = current is not None and current.stripe_subscription_id == state.subscription_id
    past_due_since = None
    if state.status is SubscriptionStatus.PAST_DUE:
        kept = current.past_due_since if same and current.status is SubscriptionStatus.PAST_DUE else None
        past_due_since = kept or created
    return Subscription(
        platform=user.platform,
        user_id=user.user_id,
        status=state.status,
        unit_amount=state.unit_amount,
        currency=state.currency,
        interval=state.interval,
        interval_count=state.interval_count,
        current_period_start=state.current_period_start,
        current_period_end=state.current_period_end,
        cancel_at_period_end=state.cancel_at_period_end,
        past_due_since=past_due_since,
        stripe_customer_id=state.customer_id or (current.stripe_customer_id if current else None),
        stripe_subscription_id=state.subscription_id,
        updated_at=now,
        price_id=state.price_id,
        last_event_created=created,
        last_event_id=event_id,
        last_payment_at=current.last_payment_at if same else None,
    )


async def _apply_subscription(services: BillingServices, event: BillingEvent, user: BillingUser,
                              current: Subscription | None) -> EventOutcome:
    state = event.subscription
    assert state is not None
    reason = _supersedes(current, state, event)
    if reason is not None:
        logger.info("subscription event not applied event=%s subscription=%s reason=%s",
                    event.id, state.subscription_id, reason)
        return EventOutcome(event_id=event.id, result="duplicate" if reason == "already" else "stale", user=user)

    tie = (current is not None and current.stripe_subscription_id == state.subscription_id
           and current.last_event_created == event.created)
    record = subscription_record(user, state, current, created=event.created, event_id=event.id,
                                 now=services.clock())
    await services.subscriptions.put(record)
    return EventOutcome(event_id=event.id, result="applied", user=user,
                        notices=plan_notices(services, user, current, record, event_id=event.id),
                        refresh_subscription_id=state.subscription_id if tie else None)


async def _apply_invoice(services: BillingServices, event: BillingEvent, user: BillingUser,
                         current: Subscription | None) -> EventOutcome:
    invoice = event.invoice
    assert invoice is not None
    ours = current is not None and invoice.subscription_id in (None, current.stripe_subscription_id)
    if event.type == BillingEventType.INVOICE_PAID.value:
        if ours and (current.last_payment_at is None or current.last_payment_at < event.created):
            await services.subscriptions.put(current.model_copy(update={"last_payment_at": event.created,
                                                                        "updated_at": services.clock()}))
        return EventOutcome(event_id=event.id, result="applied", user=user)

    if ours and current.last_payment_at is not None and current.last_payment_at >= event.created:
        # A later payment succeeded, so this failure needs no action any more.
        return EventOutcome(event_id=event.id, result="stale", user=user)
    resolved = resolve_plan(services.plans, current if ours else None, now=services.clock(),
                            grace=services.past_due_grace)
    keeps_until = None
    if resolved.is_subscriber:
        keeps_until = ((current.past_due_since if current else None) or event.created) + services.past_due_grace
    notice = BillingNotice(kind=NoticeKind.PAYMENT_FAILED, user=user, plan=resolved.plan, event_id=event.id,
                           status=current.status if current else None, amount_due=invoice.amount_due,
                           currency=invoice.currency, next_payment_attempt=invoice.next_payment_attempt,
                           keeps_plan_until=keeps_until)
    return EventOutcome(event_id=event.id, result="applied", user=user, notices=[notice])


def plan_notices(services: BillingServices, user: BillingUser, before: Subscription | None,
                 after: Subscription, *, event_id: str) -> list[BillingNotice]:
    """Return the notice a record change calls for: a new plan, the end of a plan, or a scheduled cancellation."""
    now = services.clock()
    old = resolve_plan(services.plans, before, now=now, grace=services.past_due_grace)
    new = resolve_plan(services.plans, after, now=now, grace=services.past_due_grace)
    common = {"user": user, "plan": new.plan, "event_id": event_id, "status": after.status}
    if new.plan.id != old.plan.id:
        if new.is_subscriber:
            return [BillingNotice(kind=NoticeKind.PLAN_CHANGED, period_end=new.period_end, **common)]
        return [BillingNotice(kind=NoticeKind.PLAN_ENDED, **common)]
    newly_cancelled = after.cancel_at_period_end and not (before is not None and before.cancel_at_period_end)
    if new.is_subscriber and newly_cancelled:
        return [BillingNotice(kind=NoticeKind.CANCELLATION_SCHEDULED, period_end=new.period_end, **common)]
    return []


async def refresh_subscription(services: BillingServices, user: BillingUser, subscription_id: str, *,
                               created: datetime, event_id: str) -> list[BillingNotice]:
    """Fetch a subscription from the API and apply it, unless an event newer than `created` was applied since.

    Settles two events of one subscription that tied on `created`; returns the notices the change calls for.
    """
    state = await _gateway(services).retrieve_subscription(subscription_id)
    async with services.locks.hold(_lock_key(user)):
        current = await services.subscriptions.get(user.platform.value, user.user_id)
        if current is None or current.stripe_subscription_id != subscription_id:
            return []
        if current.last_event_created is not None and current.last_event_created > created:
            return []
        record = subscription_record(user, state, current, created=created, event_id=event_id,
                                     now=services.clock())
        await services.subscriptions.put(record)
    logger.info("subscription refreshed from the API subscription=%s user=%s:%s status=%s",
                subscription_id, user.platform.value, user.user_id, state.status.value)
    return plan_notices(services, user, current, record, event_id=event_id)
