"""The BillingNotifier port on Telegram: plan changes and failed payments sent to the user's private chat."""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode

from bot.telegram import billing_messages
from bot.views.usage import BILLING
from core.billing_records import BillingNotice, NoticeKind
from core.models import Platform

logger = logging.getLogger(__name__)


class TelegramBillingNotifier:
    """BillingNotifier that sends through the Bot API; a Telegram user's private chat id is their user id."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def notify(self, notice: BillingNotice) -> None:
        if notice.user.platform is not Platform.TELEGRAM:
            logger.warning("billing notice for another platform not sent event=%s user=%s:%s",
                           notice.event_id, notice.user.platform.value, notice.user.user_id)
            return
        markup = None
        if notice.kind is NoticeKind.PAYMENT_FAILED:
            button = InlineKeyboardButton(billing_messages.MANAGE_BILLING_BUTTON, callback_data=BILLING)
            markup = InlineKeyboardMarkup([[button]])
        await self._bot.send_message(chat_id=int(notice.user.user_id), text=billing_messages.notice_text(notice),
                                     parse_mode=ParseMode.HTML, reply_markup=markup)
        logger.info("billing notice sent event=%s kind=%s user=%s", notice.event_id, notice.kind.value,
                    notice.user.user_id)
