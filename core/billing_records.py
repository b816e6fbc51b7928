"""Records the billing rules exchange with the payment provider, the stores and the chat notifier.

The Stripe adapter turns Stripe's JSON into these, so the rules in
core/billing.py never see a provider's object shapes.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

from core.models import Platform
from core.plans import Plan
from core.subscriptions import SubscriptionStatus

# Statuses under which a subscription still bills the customer, so a second checkout would double-charge.
LIVE_STATUSES = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE})


class BillingUser(BaseModel):
    """The chat user a payment belongs to."""

    model_config = {"frozen": True}

    platform: Platform
    user_id: str


class CheckoutRequest(BaseModel):
    """Parameters of a Checkout Session for one subscription."""

    user: BillingUser
    plan_id: str
    price_id: str
    customer_id: str | None = Field(default=None, description="the user's existing Stripe customer, reused")
    success_url: str
    cancel_url: str


class CheckoutSession(BaseModel):
    """A created Checkout Session: its id and the hosted page the user pays on."""

    id: str
    url: str


class SubscriptionState(BaseModel):
    """A Stripe subscription as one event or API call reported it."""

    subscription_id: str
    customer_id: str | None
    status: SubscriptionStatus
    price_id: str | None = None
    unit_amount: int = Field(ge=0, description="price per interval in the currency's smallest unit (cents)")
    currency: str = "usd"
    interval: Literal["day", "week", "month", "year"] = "month"
    interval_count: int = Field(default=1, ge=1)
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    user: BillingUser | None = Field(default=None, description="from the subscription's metadata, when set")


class CheckoutCompleted(BaseModel):
    """A finished Checkout Session in subscription mode."""

    session_id: str
    customer_id: str | None
    subscription_id: str | None
    user: BillingUser | None = Field(default=None, description="from metadata or client_reference_id")


class InvoiceState(BaseModel):
    """The parts of an invoice the billing rules read."""

    invoice_id: str
    customer_id: str | None
    subscription_id: str | None
    amount_due: int = Field(default=0, ge=0, description="in the currency's smallest unit")
    currency: str = "usd"
    next_payment_attempt: datetime | None = None


class BillingEventType(str, Enum):
    """The Stripe event types the billing rules act on; every other type is acknowledged and ignored."""

    CHECKOUT_COMPLETED = "checkout.session.completed"
    SUBSCRIPTION_CREATED = "customer.subscription.created"
    SUBSCRIPTION_UPDATED = "customer.subscription.updated"
    SUBSCRIPTION_DELETED = "customer.subscription.deleted"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"


class BillingEvent(BaseModel):
    """One verified webhook event; exactly one of the payload fields is set for a handled type."""

    id: str
    type: str
    created: datetime
    checkout: CheckoutCompleted | None = None
    subscription: SubscriptionState | None = None
    invoice: InvoiceState | None = None


class NoticeKind(str, Enum):
    """Reason the bot writes to a user about billing."""

    PLAN_CHANGED = "plan_changed"
    PLAN_ENDED = "plan_ended"
    CANCELLATION_SCHEDULED = "cancellation_scheduled"
    PAYMENT_FAILED = "payment_failed"


class BillingNotice(BaseModel):
    """A message to a user about their plan or a payment, sent after the webhook response."""

    kind: NoticeKind
    user: BillingUser
    plan: Plan
    event_id: str
    status: SubscriptionStatus | None = None
    period_end: datetime | None = None
    amount_due: int | None = None
    currency: str | None = None
    next_payment_attempt: datetime | None = None
    keeps_plan_until: datetime | None = Field(default=None, description="end of the past_due grace period")


class EventOutcome(BaseModel):
    """Result of handling one event: `result` is applied, duplicate, stale, ignored or unattributed."""

    event_id: str
    result: Literal["applied", "duplicate", "stale", "ignored", "unattributed"]
    notices: list[BillingNotice] = Field(default_factory=list)
    refresh_subscription_id: str | None = Field(
        default=None, description="a subscription to fetch from the API, because two events tied on `created`")
    user: BillingUser | None = None
