"""Every billing text the Telegram bot sends, as Telegram HTML."""

from __future__ import annotations

from datetime import datetime

from bot.telegram.formatting import escape
from core.billing_records import BillingNotice, NoticeKind
from core.plans import Plan
from core.subscriptions import Subscription, SubscriptionStatus

PAY_BUTTON = "💳 Pay with Stripe"
PORTAL_BUTTON = "Open billing portal"
MANAGE_BILLING_BUTTON = "Manage billing"

NO_SUBSCRIPTION = "You have no subscription yet, so there is nothing to manage. Send /subscribe to choose a plan."

PORTAL = (
    "Manage your ChartBot subscription in Stripe's billing portal: change or cancel your plan, "
    "update your payment method and download invoices. The link expires soon: send /billing for a new one."
)

PLAN_NOT_FOR_SALE = "That plan is not for sale any more. Send /subscribe to see the current plans."

STRIPE_FAILED = "Stripe could not be reached, so no payment page was opened. Please try again in a minute."



def day(moment: datetime) -> str:
    """Return a UTC date for a message, e.g. 2026-08-10."""
    return f"{moment:%Y-%m-%d}"


def money(cents: int, currency: str) -> str:
    """Return an amount in the currency's smallest unit as text, e.g. $29.00 or 29.00 EUR."""
    amount = f"{cents / 100:,.2f}"
    return f"${amount}" if currency.lower() == "usd" else f"{amount} {currency.upper()}"


def allowance(plan: Plan) -> str:
    """Describe a plan's limits, e.g. "500 charts a month, up to 100 a day"."""
    daily = "no daily cap" if plan.daily_limit is None else f"up to {plan.daily_limit:,} a day"
    return f"{plan.period_limit:,} charts a month, {daily}"


def plan_button_label(plan: Plan) -> str:
    """Return the label of the button that buys `plan`."""
    return f"{plan.name}: ${plan.min_monthly_price:,.0f} a month"


def checkout_text(plan: Plan) -> str:
    """Introduce the checkout link for `plan`."""
    return (
        f"⭐ <b>{escape(plan.name)}</b>: {escape(allowance(plan))}.\n\n"
        "Tap the button to pay on Stripe's secure checkout page. The link is valid for 24 hours, "
        "and your plan starts as soon as the payment goes through."
    )


def already_subscribed_text(subscription: Subscription, plan: Plan) -> str:
    """Tell a subscriber that they have a plan already, and offer the portal to change it."""
    status = subscription.status.value.replace("_", " ")
    return (
        f"You already have a subscription: <b>{escape(plan.name)}</b> ({status}). "
        "Change or cancel it, or update your payment method, in Stripe's billing portal."
    )


def notice_text(notice: BillingNotice) -> str:
    """Render a plan change or a failed payment as the message the user gets."""
    plan = notice.plan
    name = escape(plan.name)
    if notice.kind is NoticeKind.PLAN_CHANGED:
        if notice.period_end is None:
            when = ""
        elif notice.status is SubscriptionStatus.TRIALING:
            when = f", trial until {day(notice.period_end)}"
        else:
            when = f", renews on {day(notice.period_end)}"
        return f"✅ You are now on {name}: {escape(allowance(plan))}{when}. Send /usage to see what you have left."
    if notice.kind is NoticeKind.PLAN_ENDED:
        reason = "has ended" if notice.status is SubscriptionStatus.CANCELED else "is not paid"
        return (
            f"Your ChartBot subscription {reason}, so you are on the {name} plan: {escape(free_allowance(plan))}. "
            "Send /subscribe to upgrade again."
        )
    if notice.kind is NoticeKind.CANCELLATION_SCHEDULED:
        end = day(notice.period_end) if notice.period_end else "the end of the billing period"
        return (
            f"Your {name} subscription is cancelled: you keep {name} until {end}, then you are on the Free plan. "
            "Send /billing to renew it before then."
        )
    return payment_failed_text(notice)


def free_allowance(plan: Plan) -> str:
    """Describe the free plan's limits, e.g. "3 analyses a day and 15 a month"."""
    if plan.daily_limit is None:
        return f"{plan.period_limit:,} charts a month"
    return f"{plan.daily_limit:,} analyses a day and {plan.period_limit:,} a month"


def payment_failed_text(notice: BillingNotice) -> str:
    """Tell the user a payment failed and what to do about it."""
    amount = money(notice.amount_due or 0, notice.currency or "usd")
    text = f"⚠️ The payment of {amount} for your ChartBot subscription failed. "
    if notice.next_payment_attempt is not None:
        text += (f"Send /billing to update your payment method; Stripe tries again on "
                 f"{day(notice.next_payment_attempt)}.")
    else:
        text += "Send /billing to update your payment method and pay the invoice."
    if notice.keeps_plan_until is not None:
        text += f" You keep {escape(notice.plan.name)} until {day(notice.keeps_plan_until)}."
    return text
