"""The Stripe side of billing: the BillingGateway on the stripe SDK, and webhook verification and parsing.

Subscriptions are read in both shapes Stripe has served: the billing period
on the subscription item (API versions from 2025-03-31) or on the
subscription itself (earlier versions), and an invoice's subscription under
`parent.subscription_details` or at the top level.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import stripe

from core.billing_records import (
    BillingEvent,
    BillingEventType,
    BillingUser,
    CheckoutCompleted,
    CheckoutRequest,
    CheckoutSession,
    InvoiceState,
    SubscriptionState,
)
from core.models import Platform
from core.settings import Settings
from core.subscriptions import SubscriptionStatus

logger = logging.getLogger(__name__)


class InvalidWebhook(ValueError):
    """A webhook request whose signature is missing, invalid or too old, or whose body is not an event."""


class StripeBillingGateway:
    """BillingGateway on `stripe.StripeClient`, with its async HTTP client, pointed at STRIPE_API_BASE."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {"platform": request.user.platform.value, "user_id": request.user.user_id,
                    "plan_id": request.plan_id}
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": request.price_id, "quantity": 1}],
            "client_reference_id": client_reference_id(request.user),
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer_id:
            params["customer"] = request.customer_id
        session = await self._client.v1.checkout.sessions.create_async(params=params)
        return CheckoutSession(id=session.id, url=session.url)

    async def create_portal_session(self, *, customer_id: str, return_url: str | None) -> str:
        params: dict[str, Any] = {"customer": customer_id}
        if return_url:
            params["return_url"] = return_url
        session = await self._client.v1.billing_portal.sessions.create_async(params=params)
        return session.url

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        subscription = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        return subscription_state(subscription.to_dict())


def build_stripe_gateway(settings: Settings) -> StripeBillingGateway | None:
    """Create the gateway for STRIPE_SECRET_KEY and STRIPE_API_BASE, or None when the key is not set."""
    if settings.stripe_secret_key is None or not settings.stripe_secret_key.get_secret_value():
        return None
    client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        http_client=stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds),
        max_network_retries=2,
    )
    return StripeBillingGateway(client)


def client_reference_id(user: BillingUser) -> str:
    """Return the Checkout client_reference_id for a user, e.g. telegram-123 (letters, digits and dashes only)."""
    return f"{user.platform.value}-{user.user_id}"


def _user_from_reference(reference: str | None) -> BillingUser | None:
    if not reference or "-" not in reference:
        return None
    platform, user_id = reference.split("-", 1)
    return _user(platform, user_id)


def _user(platform: str | None, user_id: str | None) -> BillingUser | None:
    if not platform or not user_id or platform not in {p.value for p in Platform}:
        return None
    return BillingUser(platform=Platform(platform), user_id=user_id)


def _user_from_metadata(metadata: dict[str, Any] | None) -> BillingUser | None:
    metadata = metadata or {}
    return _user(metadata.get("platform"), metadata.get("user_id"))


def _id(value: Any) -> str | None:
    """Return the id of an expandable field, which is an id string or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _time(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def subscription_state(data: dict[str, Any]) -> SubscriptionState:
    """Parse a Stripe subscription object; the first item's price sets the amount and interval."""
    items = (data.get("items") or {}).get("data") or [{}]
    item = items[0]
    price = item.get("price") or data.get("plan") or {}
    recurring = price.get("recurring") or {"interval": price.get("interval", "month"),
                                           "interval_count": price.get("interval_count", 1)}
    quantity = item.get("quantity") or 1
    start = item.get("current_period_start", data.get("current_period_start"))
    end = item.get("current_period_end", data.get("current_period_end"))
    return SubscriptionState(
        subscription_id=data["id"],
        customer_id=_id(data.get("customer")),
        status=SubscriptionStatus(data["status"]),
        price_id=price.get("id"),
        unit_amount=(price.get("unit_amount") or 0) * quantity,
        currency=price.get("currency") or data.get("currency") or "usd",
        interval=recurring.get("interval") or "month",
        interval_count=recurring.get("interval_count") or 1,
        current_period_start=_time(start),
        current_period_end=_time(end),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        user=_user_from_metadata(data.get("metadata")),
    )


def _checkout_completed(data: dict[str, Any]) -> CheckoutCompleted:
    return CheckoutCompleted(
        session_id=data["id"],
        customer_id=_id(data.get("customer")),
        subscription_id=_id(data.get("subscription")),
        user=_user_from_metadata(data.get("metadata")) or _user_from_reference(data.get("client_reference_id")),
    )


def _invoice(data: dict[str, Any]) -> InvoiceState:
    details = (data.get("parent") or {}).get("subscription_details") or {}
    return InvoiceState(
        invoice_id=data["id"],
        customer_id=_id(data.get("customer")),
        subscription_id=_id(details.get("subscription") or data.get("subscription")),
        amount_due=data.get("amount_due") or 0,
        currency=data.get("currency") or "usd",
        next_payment_attempt=_time(data.get("next_payment_attempt")),
    )


def billing_event(data: dict[str, Any]) -> BillingEvent:
    """Turn a Stripe event object into a BillingEvent; unhandled types and other checkout modes carry no payload."""
    obj = data["data"]["object"]
    event = BillingEvent(id=data["id"], type=data["type"], created=_time(data["created"]))
    if data["type"] == BillingEventType.CHECKOUT_COMPLETED.value:
        if obj.get("mode") == "subscription":
            event.checkout = _checkout_completed(obj)
    elif data["type"].startswith("customer.subscription.") and data["type"] in {t.value for t in BillingEventType}:
        event.subscription = subscription_state(obj)
    elif data["type"] in (BillingEventType.INVOICE_PAID.value, BillingEventType.INVOICE_PAYMENT_FAILED.value):
        event.invoice = _invoice(obj)
    return event


def verify_event(payload: bytes, signature: str | None, *, secret: str, tolerance_seconds: int) -> BillingEvent:
    """Check the Stripe-Signature header (HMAC-SHA256 of "timestamp.body", v1 scheme) and parse the event.

    Raises InvalidWebhook when the header is missing or does not match, the
    timestamp is older than `tolerance_seconds`, or the body is not an event.
    """
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance_seconds)
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook(f"invalid Stripe-Signature: {error.user_message or error}") from None
    except UnicodeDecodeError:
        raise InvalidWebhook("invalid webhook body: not UTF-8") from None
    try:
        return billing_event(json.loads(payload))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidWebhook(f"invalid webhook body: {error}") from None
