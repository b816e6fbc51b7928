"""Telegram billing: /subscribe and the plan buttons open Stripe Checkout, /billing opens the Customer Portal."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.telegram import billing_messages, messages
from core import billing
from core.billing import AlreadySubscribed, BillingServices, NoBillingAccount, PaymentsNotConfigured, PlanNotForSale
from core.billing_records import BillingUser
from core.models import Platform
from core.plans import PlanTable, resolve_plan
from core.settings import Settings
from core.subscriptions import Subscription

logger = logging.getLogger(__name__)

# Callback data of a plan button is this prefix and the tier id, e.g. "subscribe:pro".
SUBSCRIBE_PREFIX = "subscribe:"


def _services(context: ContextTypes.DEFAULT_TYPE) -> BillingServices:
    return context.application.bot_data["billing"]


def _settings(context: ContextTypes.DEFAULT_TYPE) -> Settings:
    return context.application.bot_data["settings"]


def _user(update: Update) -> BillingUser:
    return BillingUser(platform=Platform.TELEGRAM, user_id=str(update.effective_user.id))


def _link_button(label: str, url: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, url=url)]])


async def _send(message: Message, text: str, markup: InlineKeyboardMarkup | None = None, *,
                quote: bool = True) -> None:
    await message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=quote, reply_markup=markup)


async def subscribe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/subscribe: a trader asks for the paid plans."""
    await show_plans(update, context, update.effective_message, quote=True)


async def billing_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/billing: a trader asks to manage their subscription."""
    await show_portal(update, context, update.effective_message, quote=True)


async def upgrade_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader presses Upgrade under /usage or a limit message."""
    await update.callback_query.answer()
    await show_plans(update, context, update.callback_query.message, quote=False)


async def billing_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader presses Manage billing under /usage, a limit message or a payment notice."""
    await update.callback_query.answer()
    await show_portal(update, context, update.callback_query.message, quote=False)


async def plan_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader presses one plan's button under the plan list."""
    query = update.callback_query
    await query.answer()
    plan_id = query.data.removeprefix(SUBSCRIBE_PREFIX)
    services, settings = _services(context), _settings(context)
    fallback = f"https://t.me/{context.bot.username}"
    try:
        session = await billing.start_checkout(
            services, _user(update), plan_id,
            success_url=settings.checkout_success_url or fallback,
            cancel_url=settings.checkout_cancel_url or fallback,
        )
    except PaymentsNotConfigured:
        await _send(query.message, messages.BILLING_NOT_SET_UP, quote=False)
        return
    except PlanNotForSale:
        await _send(query.message, billing_messages.PLAN_NOT_FOR_SALE, quote=False)
        return
    except AlreadySubscribed as error:
        await _offer_portal(query.message, context, error.subscription, quote=False)
        return
    except Exception:
        logger.exception("checkout session failed user=%s plan=%s", update.effective_user.id, plan_id)
        await _send(query.message, billing_messages.STRIPE_FAILED, quote=False)
        return
    plan = services.plans.tier(plan_id)
    assert plan is not None
    await _send(query.message, billing_messages.checkout_text(plan),
                _link_button(billing_messages.PAY_BUTTON, session.url), quote=False)


def _plans_keyboard(table: PlanTable) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(billing_messages.plan_button_label(tier),
                                  callback_data=SUBSCRIBE_PREFIX + tier.id)]
            for tier in table.tiers_for_sale()]
    return InlineKeyboardMarkup(rows)


async def show_plans(update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message, *, quote: bool) -> None:
    """Reply with the plans for sale and one button each, or the portal for a user who has a subscription."""
    services = _services(context)
    offer = await billing.plans_offer(services, _user(update))
    if offer.has_live_subscription and offer.payments_enabled:
        assert offer.subscription is not None
        await _offer_portal(message, context, offer.subscription, quote=quote)
        return
    if not offer.payments_enabled or not offer.tiers:
        await _send(message, messages.upgrade_text(services.plans), quote=quote)
        return
    for_sale = PlanTable(free=services.plans.free, tiers=offer.tiers)
    text = messages.upgrade_text(for_sale, payments_enabled=True)
    await _send(message, text, _plans_keyboard(for_sale), quote=quote)


async def _offer_portal(message: Message, context: ContextTypes.DEFAULT_TYPE, subscription: Subscription, *,
                        quote: bool) -> None:
    services = _services(context)
    resolved = resolve_plan(services.plans, subscription, now=services.clock(), grace=services.past_due_grace)
    text = billing_messages.already_subscribed_text(subscription, resolved.plan)
    user = BillingUser(platform=subscription.platform, user_id=subscription.user_id)
    try:
        url = await billing.open_portal(services, user, return_url=_settings(context).billing_portal_return_url)
    except NoBillingAccount:
        await _send(message, text, quote=quote)
        return
    except Exception:
        logger.exception("portal session failed user=%s", subscription.user_id)
        await _send(message, billing_messages.STRIPE_FAILED, quote=quote)
        return
    await _send(message, text, _link_button(billing_messages.PORTAL_BUTTON, url), quote=quote)


async def show_portal(update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message, *, quote: bool) -> None:
    """Reply with a Customer Portal link, or explain how to subscribe when the user has no Stripe customer."""
    services = _services(context)
    try:
        url = await billing.open_portal(services, _user(update),
                                        return_url=_settings(context).billing_portal_return_url)
    except PaymentsNotConfigured:
        await _send(message, messages.BILLING_NOT_SET_UP, quote=quote)
        return
    except NoBillingAccount:
        await _send(message, billing_messages.NO_SUBSCRIPTION, quote=quote)
        return
    except Exception:
        logger.exception("portal session failed user=%s", update.effective_user.id)
        await _send(message, billing_messages.STRIPE_FAILED, quote=quote)
        return
    await _send(message, billing_messages.PORTAL, _link_button(billing_messages.PORTAL_BUTTON, url), quote=quote)


HANDLERS: list[BaseHandler] = [
    CommandHandler("subscribe", subscribe_command),
    CommandHandler("billing", billing_command),
    CallbackQueryHandler(plan_chosen, pattern=f"^{SUBSCRIBE_PREFIX}[A-Za-z0-9_-]+$"),
]
