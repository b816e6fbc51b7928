"""A listing shown a page at a time: its Prev and Next buttons, and editing the message to another page."""

from __future__ import annotations

import logging
from collections.abc import Callable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

logger = logging.getLogger(__name__)

PREV = "◀ Prev"
NEXT = "Next ▶"


def prev_next_row(page: int, pages: int, page_data: Callable[[int], str]) -> list[InlineKeyboardButton]:
    """Return the Prev and Next buttons a page needs: none on a single page, one at either end.

    `page_data(n)` returns the callback data that shows page `n`.
    """
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton(PREV, callback_data=page_data(page - 1)))
    if page < pages:
        buttons.append(InlineKeyboardButton(NEXT, callback_data=page_data(page + 1)))
    return buttons


async def edit_in_place(update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None) -> bool:
    """Replace the pressed button's message; returns False when Telegram no longer lets the bot edit it."""
    try:
        await update.callback_query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=keyboard)
    except BadRequest as error:
        # Telegram rejects an edit that changes nothing with "message is not modified".
        if "not modified" in error.message.lower():
            return True
        logger.warning("message not editable user=%s data=%r error=%s", update.effective_user.id,
                       (update.callback_query.data or "")[:64], error.message)
        return False
    return True
