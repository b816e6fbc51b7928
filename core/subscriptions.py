"""A user's subscription as the billing side records it."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

from core.models import Platform


class SubscriptionStatus(str, Enum):
    """Stripe's subscription statuses."""

    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


class Subscription(BaseModel):
    """The subscription record the usage service reads to pick a plan."""

    platform: Platform
    user_id: str
    status: SubscriptionStatus
    unit_amount: int = Field(ge=0, description="price per interval in the currency's smallest unit (cents)")
    currency: str = "usd"
    interval: Literal["day", "week", "month", "year"] = "month"
    interval_count: int = Field(default=1, ge=1)
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    past_due_since: datetime | None = None
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    updated_at: datetime | None = None
    price_id: str | None = Field(default=None, description="the Stripe price the subscription bills")
    last_event_created: datetime | None = Field(
        default=None, description="`created` time of the newest Stripe event applied; older events are ignored")
    last_event_id: str | None = None
    last_payment_at: datetime | None = Field(default=None, description="when the latest invoice was paid")

    def monthly_price(self) -> float:
        """Return the price per month in the currency's main unit; a yearly price counts as its monthly equivalent."""
        months_per_interval = {"day": 1 / 30, "week": 7 / 30, "month": 1.0, "year": 12.0}[self.interval]
        return self.unit_amount / 100 / (months_per_interval * self.interval_count)
