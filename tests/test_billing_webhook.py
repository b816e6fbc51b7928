"""The web app over HTTP: signed Stripe events change plans, Telegram updates arrive by webhook.

The app runs in the test process on the real stores (MongoDB or FerretDB,
Redis), the real python-telegram-bot Application in webhook mode against the
fake Bot API server, and stripe-mock behind STRIPE_API_BASE.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from adapters.backends import build_usage_service
from adapters.mongo import connect
from adapters.mongo_billing import build_billing_services, ensure_billing_indexes
from bot.telegram.billing_notifier import TelegramBillingNotifier
from bot.web.app import WebContext, build_web_app
from bot.web.server import start_telegram_webhook, stop_telegram_webhook
from core.settings import Settings
from core.subscriptions import Subscription
from tests import billing_support as support
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDIS_DATABASE = 8
TELEGRAM_SECRET = "tg-secret-123"
TELEGRAM_WEBHOOK_URL = "https://127.0.0.1:8443/telegram/webhook"
ENDED = ("Your ChartBot subscription has ended, so you are on the Free plan: 3 analyses a day and 15 a month. "
         "Send /subscribe to upgrade again.")


@dataclass
class Stack:
    telegram: FakeTelegramServer
    client: httpx.AsyncClient
    web: WebContext
    settings: Settings
    mongo: AsyncMongoClient
    database: str
    redis: Redis

    @property
    def db(self):
        return self.mongo[self.database]

    async def record(self, user: int) -> Subscription | None:
        return await self.web.billing.subscriptions.get("telegram", str(user))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """The fake Bot API server, the bot in webhook mode, and the web app behind an httpx ASGI client."""
    telegram = FakeTelegramServer()
    await telegram.start()
    database = f"billing_{uuid.uuid4().hex[:10]}"
    redis_url = services_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DATABASE}"
    redis = Redis.from_url(redis_url)
    await redis.flushdb()

    settings = Settings(
        _env_file=None,
        telegram_bot_token=telegram.token, telegram_api_url=telegram.url,
        mongodb_url=services_env["MONGODB_URL"], mongodb_database=database, redis_url=redis_url,
        queue_name=f"chartbot:test:{database}",
        stripe_secret_key=support.SECRET_KEY, stripe_api_base=services_env["STRIPE_API_BASE"],
        stripe_webhook_secret=support.WEBHOOK_SECRET,
        plans_file=support.write_plans_file(tmp_path_factory.mktemp("plans")),
        telegram_webhook_url=TELEGRAM_WEBHOOK_URL, telegram_webhook_secret=TELEGRAM_SECRET,
    )
    application = await start_telegram_webhook(settings)

    mongo = connect(services_env["MONGODB_URL"])
    db = mongo[database]
    await ensure_billing_indexes(db)
    web = WebContext(
        billing=build_billing_services(settings, db, redis),
        notifier=TelegramBillingNotifier(application.bot),
        stripe_webhook_secret=support.WEBHOOK_SECRET,
        telegram=application,
        telegram_secret=TELEGRAM_SECRET,
        health_checks={"mongodb": lambda: db.command("ping"), "redis": redis.ping},
    )

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app(web)),
                               base_url="http://chartbot.test")
    yield Stack(telegram, client, web, settings, mongo, database, redis)
    await client.aclose()
    await stop_telegram_webhook(application)
    await mongo.drop_database(database)
    await mongo.close()
    await redis.delete(settings.queue_name)
    await redis.aclose()
    await telegram.stop()


async def post_event(stack: Stack, payload: dict, *, signature: str | None = "sign") -> httpx.Response:
    data = support.body(payload)
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        headers["Stripe-Signature"] = support.sign(data)
    elif signature is not None:
        headers["Stripe-Signature"] = signature
    return await stack.client.post("/stripe/webhook", content=data, headers=headers)


_update_ids = itertools.count(1)


def telegram_update(user: int, text: str) -> dict:
    message = {"message_id": next(_update_ids), "date": int(time.time()), "text": text,
               "chat": {"id": user, "type": "private", "first_name": "Trader"},
               "from": {"id": user, "is_bot": False, "first_name": "Trader", "language_code": "en"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": next(_update_ids), "message": message}


async def say(stack: Stack, user: int, text: str) -> SentMessage:
    """Send a message to the bot through POST /telegram/webhook and return its one reply."""
    before = len(stack.telegram.chat(user))
    response = await stack.client.post("/telegram/webhook", json=telegram_update(user, text),
                                       headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert response.status_code == 200
    await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) > before, timeout=20)
    return stack.telegram.chat(user)[-1]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


async def test_bad_signatures_rejected_and_change_nothing(stack: Stack):
    user = 5001
    now = _now()
    sub = support.subscription("sub_forged", customer="cus_forged", user_id=user, period_start=now,
                               period_end=now + timedelta(days=30))
    payload = support.event("customer.subscription.created", sub, created=now)
    data = support.body(payload)
    cases = {
        "forged": support.sign(data, secret="whsec_forged"),
        "stale": support.sign(data, timestamp=int(time.time()) - 301),
        "missing": None,
    }
    for case, signature in cases.items():
        response = await post_event(stack, payload, signature=signature)
        assert response.status_code == 400, case
        assert response.json()["error"].startswith("invalid Stripe-Signature: "), case

    assert await stack.record(user) is None
    assert await stack.db.billing_events.count_documents({"_id": payload["id"]}) == 0
    assert await stack.db.billing_customers.count_documents({"_id": "cus_forged"}) == 0
    assert stack.telegram.chat(user) == []


async def test_upgrade_path_then_usage_shows_paid_limits(stack: Stack):
    user = 5002
    now = _now()
    start, end = now - timedelta(days=1), now + timedelta(days=29)
    checkout = support.event("checkout.session.completed",
                             support.checkout_session(customer="cus_up", subscription_id="sub_up", user_id=user),
                             created=now)
    created = support.event("customer.subscription.created",
                            support.subscription("sub_up", customer="cus_up", user_id=user, tier="pro",
                                                 period_start=start, period_end=end),
                            created=now + timedelta(seconds=1))

    first = await post_event(stack, checkout)
    assert (first.status_code, first.json()) == (200, {"received": True, "result": "applied"})
    assert await stack.record(user) is None
    assert (await stack.db.billing_customers.find_one({"_id": "cus_up"}))["user_id"] == str(user)

    second = await post_event(stack, created)
    assert (second.status_code, second.json()) == (200, {"received": True, "result": "applied"})
    record = await stack.record(user)
    assert (record.status.value, record.unit_amount, record.price_id) == ("active", 2900, "price_pro_monthly")
    assert (record.stripe_customer_id, record.stripe_subscription_id) == ("cus_up", "sub_up")
    assert (record.current_period_start, record.current_period_end) == (start, end)
    assert record.last_event_id == created["id"]

    [notice] = stack.telegram.chat(user)
    assert notice.text == (f"✅ You are now on Pro: 500 charts a month, up to 100 a day, renews on {_day(end)}. "
                           "Send /usage to see what you have left.")

    usage = await say(stack, user, "/usage")
    assert usage.text == (
        "<b>📈 Your ChartBot usage</b>\n\n"
        f"<b>Plan:</b> Pro, active, renews on {_day(end)}\n"
        "<b>Today:</b> 0 of 100 (resets at 00:00 UTC)\n"
        f"<b>This billing period:</b> 0 of 500 (resets on {_day(end)})\n"
        "<b>All time:</b> 0 charts analysed"
    )
    assert stack.telegram.buttons(usage.message_id) == [("Manage billing", "billing")]


async def test_deletion_downgrades_to_free(stack: Stack):
    user = 5003
    now = _now()
    start, end = now - timedelta(days=3), now + timedelta(days=27)
    sub = support.subscription("sub_del", customer="cus_del", user_id=user, tier="basic", period_start=start,
                               period_end=end)
    await post_event(stack, support.event("customer.subscription.created", sub, created=now - timedelta(days=3)))
    deleted = {**sub, "status": "canceled"}
    response = await post_event(stack, support.event("customer.subscription.deleted", deleted, created=now))
    assert response.json() == {"received": True, "result": "applied"}

    record = await stack.record(user)
    assert record.status.value == "canceled"
    assert [m.text for m in stack.telegram.chat(user)] == [
        f"✅ You are now on Basic: 100 charts a month, up to 25 a day, renews on {_day(end)}. "
        "Send /usage to see what you have left.",
        ENDED,
    ]
    usage = await say(stack, user, "/usage")
    assert "<b>Plan:</b> Free (your subscription is canceled)\n<b>Today:</b> 0 of 3 (resets at 00:00 UTC)" in usage.text
    assert stack.telegram.buttons(usage.message_id) == [("⭐ Upgrade", "upgrade")]


async def test_past_due_keeps_tier_until_grace_expires(stack: Stack):
    user = 5004
    now = _now()
    start, end = now - timedelta(days=20), now + timedelta(days=10)
    sub = support.subscription("sub_due", customer="cus_due", user_id=user, period_start=start, period_end=end)
    await post_event(stack, support.event("customer.subscription.created", sub, created=now - timedelta(days=20)))
    failed_at = now - timedelta(days=1)
    await post_event(stack, support.event("customer.subscription.updated", {**sub, "status": "past_due"},
                                          created=failed_at))
    retry = now + timedelta(days=2)
    failed = support.invoice(customer="cus_due", subscription_id="sub_due", next_payment_attempt=retry)
    response = await post_event(stack, support.event("invoice.payment_failed", failed, created=failed_at))
    assert response.json() == {"received": True, "result": "applied"}

    record = await stack.record(user)
    assert (record.status.value, record.past_due_since) == ("past_due", failed_at)
    chat = stack.telegram.chat(user)
    assert len(chat) == 2  # the upgrade, then the failed payment; past_due within grace changes no plan
    grace_end = failed_at + timedelta(days=3)
    assert chat[1].text == (
        "⚠️ The payment of $29.00 for your ChartBot subscription failed. Send /billing to update your payment "
        f"method; Stripe tries again on {_day(retry)}. You keep Pro until {_day(grace_end)}."
    )
    assert stack.telegram.buttons(chat[1].message_id) == [("Manage billing", "billing")]

    usage = build_usage_service(stack.settings, stack.db, stack.redis)
    assert (await usage.plan_for("telegram", str(user)))[0].plan.id == "pro"
    usage.clock = lambda: grace_end + timedelta(minutes=1)
    resolved, _ = await usage.plan_for("telegram", str(user))
    assert (resolved.plan.id, resolved.is_subscriber) == ("free", False)

    # A payment that failed longer ago than the grace period ends the plan at once, with a message to the user.
    late = 5005
    sub = support.subscription("sub_late", customer="cus_late", user_id=late, period_start=start, period_end=end)
    await post_event(stack, support.event("customer.subscription.created", sub, created=now - timedelta(days=20)))
    await post_event(stack, support.event("customer.subscription.updated", {**sub, "status": "past_due"},
                                          created=now - timedelta(days=4)))
    assert stack.telegram.chat(late)[-1].text == (
        "Your ChartBot subscription is not paid, so you are on the Free plan: 3 analyses a day and 15 a month. "
        "Send /subscribe to upgrade again."
    )


async def test_same_event_twice_changes_nothing(stack: Stack):
    user = 5006
    now = _now()
    sub = support.subscription("sub_twice", customer="cus_twice", user_id=user, tier="elite",
                               period_start=now, period_end=now + timedelta(days=30))
    payload = support.event("customer.subscription.created", sub, created=now)
    first = await post_event(stack, payload)
    record = await stack.record(user)
    second = await post_event(stack, payload)

    assert first.json()["result"] == "applied"
    assert second.json() == {"received": True, "result": "duplicate"}
    assert await stack.record(user) == record
    assert len(stack.telegram.chat(user)) == 1
    assert await stack.db.billing_events.count_documents({"_id": payload["id"]}) == 1


async def test_older_update_after_newer_is_ignored(stack: Stack):
    user = 5007
    now = _now()
    end = now + timedelta(days=30)
    sub = support.subscription("sub_order", customer="cus_order", user_id=user, period_start=now, period_end=end)
    await post_event(stack, support.event("customer.subscription.created", sub, created=now - timedelta(minutes=5)))
    newer = support.event("customer.subscription.updated", {**sub, "cancel_at_period_end": True},
                          created=now - timedelta(minutes=1))
    older = support.event("customer.subscription.updated",
                          support.subscription("sub_order", customer="cus_order", user_id=user, tier="elite",
                                               period_start=now, period_end=end),
                          created=now - timedelta(minutes=2))
    assert (await post_event(stack, newer)).json()["result"] == "applied"
    assert (await post_event(stack, older)).json() == {"received": True, "result": "stale"}

    record = await stack.record(user)
    assert (record.unit_amount, record.cancel_at_period_end, record.last_event_id) == (2900, True, newer["id"])
    assert stack.telegram.chat(user)[-1].text == (
        f"Your Pro subscription is cancelled: you keep Pro until {_day(end)}, then you are on the Free plan. "
        "Send /billing to renew it before then."
    )


async def test_tie_on_created_settled_from_the_api(stack: Stack):
    user = 5008
    now = _now()
    sub = support.subscription("sub_tie", customer="cus_tie", user_id=user, period_start=now,
                               period_end=now + timedelta(days=30))
    await post_event(stack, support.event("customer.subscription.created", sub, created=now))
    tied = support.event("customer.subscription.updated",
                         support.subscription("sub_tie", customer="cus_tie", user_id=user, tier="elite",
                                              period_start=now, period_end=now + timedelta(days=30)),
                         created=now)
    assert (await post_event(stack, tied)).json()["result"] == "applied"

    # The follow-up fetched sub_tie from stripe-mock, whose fixed subscription bills $20 a month.
    record = await stack.record(user)
    assert (record.unit_amount, record.cancel_at_period_end) == (2000, True)
    assert (record.last_event_id, record.last_event_created) == (tied["id"], now)


async def test_burst_of_shuffled_events_with_duplicates(stack: Stack):
    rng = random.Random(6)
    now = _now()
    unique, newest = [], {}
    for user in range(5100, 5105):
        customer, sub_id = f"cus_burst_{user}", f"sub_burst_{user}"
        base = now - timedelta(hours=1)
        unique.append(support.event("checkout.session.completed",
                                    support.checkout_session(customer=customer, subscription_id=sub_id, user_id=user),
                                    created=base))
        for step in range(1, 27):
            tier = rng.choice(["basic", "pro", "elite"])
            status = rng.choice(["active", "active", "past_due", "trialing"])
            end = base + timedelta(days=30, seconds=step)
            obj = support.subscription(sub_id, customer=customer, user_id=user, tier=tier, status=status,
                                       period_start=base, period_end=end,
                                       cancel_at_period_end=rng.random() < 0.3)
            kind = "customer.subscription.created" if step == 1 else "customer.subscription.updated"
            unique.append(support.event(kind, obj, created=base + timedelta(seconds=step)))
        newest[user] = unique[-1]
    events = unique + [rng.choice(unique) for _ in range(200 - len(unique))]
    rng.shuffle(events)
    assert len(events) == 200

    gate = asyncio.Semaphore(25)

    async def send(payload):
        async with gate:
            return await post_event(stack, payload)

    responses = await asyncio.gather(*(send(payload) for payload in events))
    assert [r.status_code for r in responses] == [200] * 200
    assert sum(r.json()["result"] == "duplicate" for r in responses) >= 200 - len(unique)

    for user, last in newest.items():
        record = await stack.record(user)
        obj = last["data"]["object"]
        item = obj["items"]["data"][0]
        assert record.last_event_id == last["id"], user
        assert record.status.value == obj["status"], user
        assert record.unit_amount == item["price"]["unit_amount"], user
        assert record.cancel_at_period_end is obj["cancel_at_period_end"], user
        assert record.current_period_end == datetime.fromtimestamp(item["current_period_end"], UTC), user
    ids = [payload["id"] for payload in unique]
    assert await stack.db.billing_events.count_documents({"_id": {"$in": ids}}) == len(unique)


async def test_other_events_acknowledged_and_ignored(stack: Stack):
    payload = support.event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}, created=_now())
    response = await post_event(stack, payload)
    assert (response.status_code, response.json()) == (200, {"received": True, "result": "ignored"})
    assert await stack.db.billing_events.count_documents({"_id": payload["id"]}) == 0

    unknown = support.event("invoice.paid", support.invoice(customer="cus_nobody", subscription_id="sub_nobody"),
                            created=_now())
    assert (await post_event(stack, unknown)).json() == {"received": True, "result": "unattributed"}


async def test_invoice_paid_records_payment(stack: Stack):
    user = 5009
    now = _now()
    sub = support.subscription("sub_paid", customer="cus_paid", user_id=user, period_start=now,
                               period_end=now + timedelta(days=30))
    await post_event(stack, support.event("customer.subscription.created", sub, created=now))
    paid = support.event("invoice.paid", support.invoice(customer="cus_paid", subscription_id="sub_paid"),
                         created=now + timedelta(seconds=2))
    assert (await post_event(stack, paid)).json()["result"] == "applied"
    assert (await stack.record(user)).last_payment_at == now + timedelta(seconds=2)
    assert len(stack.telegram.chat(user)) == 1


async def test_telegram_webhook_registered_and_secret_checked(stack: Stack):
    webhook = stack.telegram.webhook
    assert webhook["url"] == TELEGRAM_WEBHOOK_URL
    assert webhook["secret_token"] == TELEGRAM_SECRET
    assert {"message", "callback_query"} <= set(webhook["allowed_updates"])

    user = 5010
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        response = await stack.client.post("/telegram/webhook", json=telegram_update(user, "/help"), headers=headers)
        assert response.status_code == 403
    await asyncio.sleep(0.3)
    assert stack.telegram.chat(user) == []

    reply = await say(stack, user, "/help")
    assert reply.text.startswith("<b>How to use ChartBot</b>")


async def test_healthz_and_metrics(stack: Stack):
    health = await stack.client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})

    metrics = await stack.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'chartbot_stripe_webhook_requests_total{result="applied"}' in metrics.text
    assert 'chartbot_stripe_webhook_requests_total{result="invalid"} 3.0' in metrics.text
    assert 'chartbot_telegram_webhook_updates_total{result="forbidden"} 2.0' in metrics.text
    assert "chartbot_stripe_webhook_seconds_bucket" in metrics.text
