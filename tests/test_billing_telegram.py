"""/subscribe, /billing and the plan buttons end to end: `chartbot telegram` as a child process, the fake
Bot API server, and stripe-mock behind a recording proxy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests import billing_support as support
from tests.fakes.stripe_recorder import StripeRecorder
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage
from tests.processes import ChartBotProcess, start_polling_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")

REDIS_DATABASE = 9
SUCCESS_URL = "https://t.me/chartbot_test_bot?start=paid"
CANCEL_URL = "https://t.me/chartbot_test_bot?start=cancelled"
PLANS = (
    "<b>⭐ ChartBot plans</b>\n\n"
    "• Basic: $9 a month, 100 charts a month, up to 25 a day\n"
    "• Pro: $29 a month, 500 charts a month, up to 100 a day\n"
    "• Elite: $99 a month, 3,000 charts a month, no daily cap\n\n"
)
PLAN_BUTTONS = [("Basic: $9 a month", "subscribe:basic"), ("Pro: $29 a month", "subscribe:pro"),
                ("Elite: $99 a month", "subscribe:elite")]
CHOOSE = "Choose a plan to pay on Stripe's secure checkout page. It starts as soon as the payment goes through."
NOT_SET_UP = "Payments are not set up on this bot yet: ask its operator to upgrade your plan."
PORTAL = (
    "Manage your ChartBot subscription in Stripe's billing portal: change or cancel your plan, "
    "update your payment method and download invoices. The link expires soon: send /billing for a new one."
)


@dataclass
class Stack:
    telegram: FakeTelegramServer
    stripe: StripeRecorder
    mongo: AsyncMongoClient
    database: str
    bot: ChartBotProcess

    @property
    def db(self):
        return self.mongo[self.database]


def _env(telegram: FakeTelegramServer, services_env: dict[str, str], database: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_URL": telegram.url,
        "MONGODB_URL": services_env["MONGODB_URL"],
        "MONGODB_DATABASE": database,
        "REDIS_URL": services_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DATABASE}",
        "QUEUE_NAME": f"chartbot:test:{database}",
        "DO_NOT_TRACK": "1",
    }


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """The bot with Stripe configured: STRIPE_API_BASE is the recording proxy in front of stripe-mock."""
    telegram = FakeTelegramServer()
    await telegram.start()
    stripe = StripeRecorder(upstream=services_env["STRIPE_API_BASE"])
    await stripe.start()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    database = f"billing_tg_{uuid.uuid4().hex[:10]}"
    env = {
        **_env(telegram, services_env, database),
        "STRIPE_SECRET_KEY": support.SECRET_KEY,
        "STRIPE_API_BASE": stripe.url,
        "PLANS_FILE": str(support.write_plans_file(tmp_path_factory.mktemp("plans"))),
        "CHECKOUT_SUCCESS_URL": SUCCESS_URL,
        "CHECKOUT_CANCEL_URL": CANCEL_URL,
    }
    redis = Redis.from_url(env["REDIS_URL"])
    await redis.flushdb()
    await redis.aclose()
    bot = await start_polling_bot(telegram, env, tmp_path_factory.mktemp("billing-logs") / "bot.log")
    yield Stack(telegram, stripe, mongo, database, bot)
    status = await bot.stop()
    await mongo.drop_database(database)
    await mongo.close()
    await stripe.stop()
    await telegram.stop()
    assert status == 0, bot.log()[-3000:]


async def say(stack: Stack, user: int, text: str) -> SentMessage:
    """Send a message as the user and return the bot's one new message."""
    before = len(stack.telegram.chat(user))
    stack.telegram.send_text(user, text)
    try:
        await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) > before, timeout=20)
    except AssertionError:
        raise AssertionError(f"no reply to {text!r}; bot log:\n{stack.bot.log()[-3000:]}") from None
    return stack.telegram.chat(user)[-1]


async def press(stack: Stack, user: int, message_id: int, data: str) -> SentMessage:
    """Press an inline button as the user and return the bot's one new message."""
    before = len(stack.telegram.chat(user))
    stack.telegram.press_button(user, message_id, data)
    await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) > before, timeout=20)
    return stack.telegram.chat(user)[-1]


def url_buttons(message: SentMessage) -> list[tuple[str, str]]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [(button["text"], button["url"]) for row in rows for button in row if "url" in button]


async def _link_customer(stack: Stack, user: int, customer: str) -> None:
    await stack.db.billing_customers.insert_one({"_id": customer, "platform": "telegram", "user_id": str(user)})


async def test_commands_registered_with_help(stack: Stack):
    commands = [c["command"] for c in stack.telegram.commands]
    assert commands[:5] == ["start", "help", "usage", "subscribe", "billing"]
    reply = await say(stack, 3000, "/help")
    assert "/subscribe: pay for a plan with more analyses\n" in reply.text
    assert "/billing: manage your subscription, payment method and invoices\n" in reply.text


async def test_subscribe_lists_plans_with_one_button_each(stack: Stack):
    reply = await say(stack, 3001, "/subscribe")
    assert reply.text == PLANS + CHOOSE
    assert stack.telegram.buttons(reply.message_id) == PLAN_BUTTONS
    assert stack.stripe.requests == []


async def test_plan_button_opens_checkout(stack: Stack):
    user = 3002
    plans = await say(stack, user, "/subscribe")
    checkout = await press(stack, user, plans.message_id, "subscribe:pro")

    assert checkout.text == (
        "⭐ <b>Pro</b>: 500 charts a month, up to 100 a day.\n\n"
        "Tap the button to pay on Stripe's secure checkout page. The link is valid for 24 hours, "
        "and your plan starts as soon as the payment goes through."
    )
    [(label, url)] = url_buttons(checkout)
    assert label == "💳 Pay with Stripe"
    assert url.startswith("https://checkout.stripe.com/")
    [sent] = stack.stripe.to("POST", "/v1/checkout/sessions")
    assert sent.params == {
        "mode": "subscription",
        "line_items[0][price]": "price_pro_monthly",
        "line_items[0][quantity]": "1",
        "client_reference_id": f"telegram-{user}",
        "metadata[platform]": "telegram",
        "metadata[user_id]": str(user),
        "metadata[plan_id]": "pro",
        "subscription_data[metadata][platform]": "telegram",
        "subscription_data[metadata][user_id]": str(user),
        "subscription_data[metadata][plan_id]": "pro",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
    }


async def test_returning_customer_checkout_reuses_customer(stack: Stack):
    user = 3003
    await _link_customer(stack, user, "cus_returning")
    plans = await say(stack, user, "/subscribe")
    await press(stack, user, plans.message_id, "subscribe:basic")
    sent = stack.stripe.to("POST", "/v1/checkout/sessions")[-1]
    assert (sent.params["customer"], sent.params["line_items[0][price]"]) == ("cus_returning", "price_basic_monthly")


async def test_upgrade_button_under_usage_lists_plans(stack: Stack):
    user = 3004
    usage = await say(stack, user, "/usage")
    assert stack.telegram.buttons(usage.message_id) == [("⭐ Upgrade", "upgrade")]
    plans = await press(stack, user, usage.message_id, "upgrade")
    assert plans.text == PLANS + CHOOSE
    assert stack.telegram.buttons(plans.message_id) == PLAN_BUTTONS


async def test_billing_without_customer_says_how_to_subscribe(stack: Stack):
    requests_before = len(stack.stripe.requests)
    reply = await say(stack, 3005, "/billing")
    assert reply.text == (
        "You have no subscription yet, so there is nothing to manage. Send /subscribe to choose a plan."
    )
    assert url_buttons(reply) == []
    assert len(stack.stripe.requests) == requests_before


async def test_billing_opens_portal(stack: Stack):
    user = 3006
    await _link_customer(stack, user, "cus_portal_user")
    reply = await say(stack, user, "/billing")
    assert reply.text == PORTAL
    [(label, url)] = url_buttons(reply)
    assert label == "Open billing portal"
    assert url.startswith("https://")
    sent = stack.stripe.to("POST", "/v1/billing_portal/sessions")[-1]
    assert sent.params == {"customer": "cus_portal_user"}


async def test_subscriber_offered_portal_instead_of_plans(stack: Stack):
    user = 3007
    await stack.db.subscriptions.insert_one({
        "platform": "telegram", "user_id": str(user), "status": "active", "unit_amount": 2900, "currency": "usd",
        "interval": "month", "interval_count": 1, "cancel_at_period_end": False,
        "stripe_customer_id": "cus_subscriber", "stripe_subscription_id": "sub_subscriber",
    })
    checkouts_before = len(stack.stripe.to("POST", "/v1/checkout/sessions"))
    reply = await say(stack, user, "/subscribe")
    assert reply.text == (
        "You already have a subscription: <b>Pro</b> (active). "
        "Change or cancel it, or update your payment method, in Stripe's billing portal."
    )
    [(label, _)] = url_buttons(reply)
    assert label == "Open billing portal"
    assert stack.stripe.to("POST", "/v1/billing_portal/sessions")[-1].params == {"customer": "cus_subscriber"}
    assert len(stack.stripe.to("POST", "/v1/checkout/sessions")) == checkouts_before


async def test_stripe_failure_reported(stack: Stack):
    user = 3008
    plans = await say(stack, user, "/subscribe")
    stack.stripe.fail_status = 500
    try:
        reply = await press(stack, user, plans.message_id, "subscribe:elite")
    finally:
        stack.stripe.fail_status = None
    assert reply.text == "Stripe could not be reached, so no payment page was opened. Please try again in a minute."
    assert url_buttons(reply) == []


async def test_plan_not_for_sale(stack: Stack):
    user = 3009
    plans = await say(stack, user, "/subscribe")
    reply = await press(stack, user, plans.message_id, "subscribe:platinum")
    assert reply.text == "That plan is not for sale any more. Send /subscribe to see the current plans."


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def unpaid_stack(services_env, tmp_path_factory):
    """The bot without STRIPE_SECRET_KEY: payments are not set up."""
    telegram = FakeTelegramServer()
    await telegram.start()
    database = f"billing_off_{uuid.uuid4().hex[:10]}"
    bot = await start_polling_bot(telegram, _env(telegram, services_env, database),
                           tmp_path_factory.mktemp("billing-off-logs") / "bot.log")
    yield telegram, bot
    status = await bot.stop()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"])
    await mongo.drop_database(database)
    await mongo.close()
    await telegram.stop()
    assert status == 0, bot.log()[-3000:]


async def test_without_stripe_key_payments_not_set_up(unpaid_stack):
    telegram, _ = unpaid_stack
    user = 3100
    telegram.send_text(user, "/subscribe")
    await telegram.wait_for(lambda: len(telegram.chat(user)) == 1, timeout=20)
    plans = telegram.chat(user)[0]
    assert plans.text == PLANS + NOT_SET_UP
    assert telegram.buttons(plans.message_id) == []

    telegram.send_text(user, "/billing")
    await telegram.wait_for(lambda: len(telegram.chat(user)) == 2, timeout=20)
    assert telegram.chat(user)[1].text == (
        "Payments are not set up on this bot yet: ask its operator about your subscription."
    )
