"""Stripe webhook payloads for the billing tests, signed with Stripe's scheme, and a plans file with price ids."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.processes import ROOT

WEBHOOK_SECRET = "whsec_test_secret"
SECRET_KEY = "sk_test_chartbot"
PRICE_IDS = {"basic": "price_basic_monthly", "pro": "price_pro_monthly", "elite": "price_elite_monthly"}
AMOUNTS = {"basic": 900, "pro": 2900, "elite": 9900}


def write_plans_file(directory: Path) -> Path:
    """Write the shipped plans file with a Stripe price id on every tier; returns its path."""
    text = (ROOT / "core" / "plans.toml").read_text()
    for tier, price_id in PRICE_IDS.items():
        text = text.replace(f'id = "{tier}"\nstripe_price_id = ""', f'id = "{tier}"\nstripe_price_id = "{price_id}"')
    path = directory / "plans.toml"
    path.write_text(text)
    return path


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Return a Stripe-Signature header: t=TIMESTAMP,v1=hex HMAC-SHA256 of "TIMESTAMP.PAYLOAD" under the secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(event_type: str, obj: dict[str, Any], *, created: datetime, event_id: str | None = None) -> dict[str, Any]:
    """Wrap a Stripe object in an event envelope."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(created.timestamp()),
        "type": event_type,
        "livemode": False,
        "data": {"object": obj},
    }


def subscription(subscription_id: str, *, customer: str, user_id: int | None, status: str = "active",
                 tier: str = "pro", amount: int | None = None, interval: str = "month",
                 period_start: datetime, period_end: datetime, cancel_at_period_end: bool = False) -> dict[str, Any]:
    """Return a subscription object in the current API shape: the billing period is on the item."""
    metadata = {"platform": "telegram", "user_id": str(user_id)} if user_id is not None else {}
    price = {"id": PRICE_IDS[tier], "object": "price", "currency": "usd",
             "unit_amount": AMOUNTS[tier] if amount is None else amount,
             "recurring": {"interval": interval, "interval_count": 1}}
    item = {"id": f"si_{subscription_id}", "object": "subscription_item", "price": price, "quantity": 1,
            "current_period_start": int(period_start.timestamp()),
            "current_period_end": int(period_end.timestamp())}
    return {"id": subscription_id, "object": "subscription", "customer": customer, "status": status,
            "cancel_at_period_end": cancel_at_period_end, "metadata": metadata,
            "items": {"object": "list", "data": [item]}}


def checkout_session(*, customer: str, subscription_id: str, user_id: int) -> dict[str, Any]:
    """Return a completed Checkout Session in subscription mode, as the bot created it."""
    return {"id": f"cs_test_{uuid.uuid4().hex[:16]}", "object": "checkout.session", "mode": "subscription",
            "customer": customer, "subscription": subscription_id, "client_reference_id": f"telegram-{user_id}",
            "metadata": {"platform": "telegram", "user_id": str(user_id), "plan_id": "pro"},
            "status": "complete", "payment_status": "paid"}


def invoice(*, customer: str, subscription_id: str, amount: int = 2900,
            next_payment_attempt: datetime | None = None) -> dict[str, Any]:
    """Return an invoice in the current API shape: the subscription is under parent.subscription_details."""
    return {"id": f"in_{uuid.uuid4().hex[:16]}", "object": "invoice", "customer": customer, "currency": "usd",
            "amount_due": amount,
            "next_payment_attempt": int(next_payment_attempt.timestamp()) if next_payment_attempt else None,
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": subscription_id, "metadata": {}}}}


def body(payload: dict[str, Any]) -> bytes:
    """Serialize an event as Stripe sends it."""
    return json.dumps(payload).encode()
