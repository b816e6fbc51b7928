"""The Stripe adapter on the real stripe SDK against stripe-mock, with every request recorded by a proxy."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from adapters.mongo_billing import build_billing_services, ensure_billing_indexes
from adapters.stripe_billing import InvalidWebhook, StripeBillingGateway, build_stripe_gateway, subscription_state
from adapters.stripe_billing import verify_event
from core import billing
from core.billing import AlreadySubscribed, NoBillingAccount, PaymentsNotConfigured, PlanNotForSale
from core.billing_records import BillingUser, CheckoutRequest
from core.models import Platform
from core.settings import Settings
from core.subscriptions import Subscription, SubscriptionStatus
from tests import billing_support as support
from tests.fakes.stripe_recorder import StripeRecorder

USER = BillingUser(platform=Platform.TELEGRAM, user_id="42")


@pytest_asyncio.fixture
async def recorder(services_env):
    proxy = StripeRecorder(upstream=services_env["STRIPE_API_BASE"])
    await proxy.start()
    yield proxy
    await proxy.stop()


def _settings(recorder: StripeRecorder, tmp_path, **overrides) -> Settings:
    values = {"stripe_secret_key": support.SECRET_KEY, "stripe_api_base": recorder.url,
              "plans_file": support.write_plans_file(tmp_path), **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture
def gateway(recorder, tmp_path) -> StripeBillingGateway:
    built = build_stripe_gateway(_settings(recorder, tmp_path))
    assert built is not None
    return built


@pytest_asyncio.fixture
async def services(recorder, tmp_path, mongo_db, redis_client):
    await ensure_billing_indexes(mongo_db)
    return build_billing_services(_settings(recorder, tmp_path), mongo_db, redis_client)


async def test_checkout_session_sends_subscription_parameters(gateway, recorder):
    request = CheckoutRequest(user=USER, plan_id="pro", price_id="price_pro_monthly", customer_id="cus_existing",
                              success_url="https://t.me/chartbot_test_bot?paid",
                              cancel_url="https://t.me/chartbot_test_bot")
    session = await gateway.create_checkout_session(request)

    [sent] = recorder.to("POST", "/v1/checkout/sessions")
    assert sent.params == {
        "mode": "subscription",
        "line_items[0][price]": "price_pro_monthly",
        "line_items[0][quantity]": "1",
        "client_reference_id": "telegram-42",
        "metadata[platform]": "telegram",
        "metadata[user_id]": "42",
        "metadata[plan_id]": "pro",
        "subscription_data[metadata][platform]": "telegram",
        "subscription_data[metadata][user_id]": "42",
        "subscription_data[metadata][plan_id]": "pro",
        "success_url": "https://t.me/chartbot_test_bot?paid",
        "cancel_url": "https://t.me/chartbot_test_bot",
        "customer": "cus_existing",
    }
    assert sent.authorization == f"Bearer {support.SECRET_KEY}"
    assert session.id.startswith("cs_test_")
    assert session.url.startswith("https://checkout.stripe.com/")


async def test_checkout_without_customer_omits_it(gateway, recorder):
    request = CheckoutRequest(user=USER, plan_id="basic", price_id="price_basic_monthly",
                              success_url="https://example.test/ok", cancel_url="https://example.test/no")
    await gateway.create_checkout_session(request)
    [sent] = recorder.to("POST", "/v1/checkout/sessions")
    assert "customer" not in sent.params
    assert sent.params["line_items[0][price]"] == "price_basic_monthly"


async def test_portal_session_sends_customer_and_return_url(gateway, recorder):
    url = await gateway.create_portal_session(customer_id="cus_portal", return_url="https://t.me/chartbot_test_bot")
    [sent] = recorder.to("POST", "/v1/billing_portal/sessions")
    assert sent.params == {"customer": "cus_portal", "return_url": "https://t.me/chartbot_test_bot"}
    assert url.startswith("https://")

    await gateway.create_portal_session(customer_id="cus_portal", return_url=None)
    assert recorder.to("POST", "/v1/billing_portal/sessions")[1].params == {"customer": "cus_portal"}


async def test_retrieve_subscription_reads_item_period(gateway, recorder):
    state = await gateway.retrieve_subscription("sub_fetched")
    assert [r.method for r in recorder.to("GET", "/v1/subscriptions/sub_fetched")] == ["GET"]
    # stripe-mock v0.203.0 returns its fixed subscription, whose first item has a $20 monthly price.
    assert state.subscription_id == "sub_fetched"
    assert state.status is SubscriptionStatus.ACTIVE
    assert (state.unit_amount, state.currency, state.interval, state.interval_count) == (2000, "usd", "month", 1)
    assert state.current_period_start == datetime.fromtimestamp(1896570518, UTC)
    assert state.customer_id == "cus_QXg1o8vcGmoR32"


def test_subscription_state_reads_older_api_shape():
    data = {"id": "sub_old", "customer": {"id": "cus_old"}, "status": "past_due", "cancel_at_period_end": False,
            "current_period_start": 1700000000, "current_period_end": 1731622400,
            "metadata": {"platform": "telegram", "user_id": "7"},
            "items": {"data": [{"price": {"id": "price_year", "unit_amount": 34800, "currency": "usd",
                                          "recurring": {"interval": "year", "interval_count": 1}},
                                "quantity": 1}]}}
    state = subscription_state(data)
    assert state.customer_id == "cus_old"
    assert state.current_period_start == datetime.fromtimestamp(1700000000, UTC)
    assert (state.unit_amount, state.interval, state.price_id) == (34800, "year", "price_year")
    assert state.user == BillingUser(platform=Platform.TELEGRAM, user_id="7")


def _signed_event() -> bytes:
    now = datetime.now(UTC)
    sub = support.subscription("sub_sig", customer="cus_sig", user_id=9, period_start=now,
                               period_end=now + timedelta(days=30))
    return support.body(support.event("customer.subscription.updated", sub, created=now, event_id="evt_sig"))


def test_verify_event_accepts_valid_signature():
    payload = _signed_event()
    event = verify_event(payload, support.sign(payload), secret=support.WEBHOOK_SECRET, tolerance_seconds=300)
    assert event.id == "evt_sig"
    assert event.subscription is not None
    assert event.subscription.user == BillingUser(platform=Platform.TELEGRAM, user_id="9")


@pytest.mark.parametrize(("case", "header"), [
    ("forged", lambda payload: support.sign(payload, secret="whsec_forged")),
    ("stale", lambda payload: support.sign(payload, timestamp=int(time.time()) - 301)),
    ("missing", lambda payload: None),
    ("garbled", lambda payload: "v1=abc"),
    ("other body", lambda payload: support.sign(payload + b" ")),
])
def test_verify_event_rejects_bad_signature(case, header):
    payload = _signed_event()
    with pytest.raises(InvalidWebhook) as caught:
        verify_event(payload, header(payload), secret=support.WEBHOOK_SECRET, tolerance_seconds=300)
    assert str(caught.value).startswith("invalid Stripe-Signature: "), case


def test_verify_event_rejects_non_event_body():
    payload = json.dumps({"hello": "world"}).encode()
    with pytest.raises(InvalidWebhook) as caught:
        verify_event(payload, support.sign(payload), secret=support.WEBHOOK_SECRET, tolerance_seconds=300)
    assert str(caught.value).startswith("invalid webhook body: ")


async def test_start_checkout_reuses_linked_customer(services, recorder):
    await services.customers.link("cus_linked", USER)
    session = await billing.start_checkout(services, USER, "elite", success_url="https://example.test/ok",
                                           cancel_url="https://example.test/no")
    [sent] = recorder.to("POST", "/v1/checkout/sessions")
    assert sent.params["customer"] == "cus_linked"
    assert sent.params["line_items[0][price]"] == "price_elite_monthly"
    assert session.url.startswith("https://checkout.stripe.com/")


async def test_start_checkout_refused_for_live_subscription(services, recorder):
    for status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE):
        await services.subscriptions.put(Subscription(
            platform=Platform.TELEGRAM, user_id="42", status=status, unit_amount=2900,
            stripe_customer_id="cus_live", stripe_subscription_id="sub_live"))
        with pytest.raises(AlreadySubscribed):
            await billing.start_checkout(services, USER, "pro", success_url="https://example.test/ok",
                                         cancel_url="https://example.test/no")
    assert recorder.requests == []


async def test_start_checkout_after_cancellation_reuses_customer(services, recorder):
    await services.subscriptions.put(Subscription(
        platform=Platform.TELEGRAM, user_id="42", status=SubscriptionStatus.CANCELED, unit_amount=2900,
        stripe_customer_id="cus_returning", stripe_subscription_id="sub_old"))
    await billing.start_checkout(services, USER, "pro", success_url="https://example.test/ok",
                                 cancel_url="https://example.test/no")
    assert recorder.to("POST", "/v1/checkout/sessions")[0].params["customer"] == "cus_returning"


async def test_start_checkout_refuses_unknown_plan(services, recorder):
    with pytest.raises(PlanNotForSale):
        await billing.start_checkout(services, USER, "platinum", success_url="https://example.test/ok",
                                     cancel_url="https://example.test/no")
    assert recorder.requests == []


async def test_open_portal_needs_a_customer(services, recorder):
    with pytest.raises(NoBillingAccount):
        await billing.open_portal(services, USER, return_url=None)
    assert recorder.requests == []


async def test_payments_not_configured_without_secret_key(recorder, tmp_path, mongo_db, redis_client):
    services = build_billing_services(_settings(recorder, tmp_path, stripe_secret_key=None), mongo_db, redis_client)
    with pytest.raises(PaymentsNotConfigured):
        await billing.start_checkout(services, USER, "pro", success_url="https://example.test/ok",
                                     cancel_url="https://example.test/no")
    with pytest.raises(PaymentsNotConfigured):
        await billing.open_portal(services, USER, return_url=None)
    assert recorder.requests == []
