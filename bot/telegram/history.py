"""/history on Telegram: a trader's past analyses five a page, and any one of them shown again.

Every button's callback data is signed for the user who may press it
(bot.telegram.signed_callbacks), so a forged or another user's button is
rejected before any lookup. An analysis is then shown only when the presser
owns it (core.history.owned_analysis).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.telegram import messages, signed_callbacks
from bot.telegram.formatting import escape
from bot.telegram.paged_listing import edit_in_place, prev_next_row
from bot.views.history import HistoryView, history_view, utc_minute
from core.analysis import AnalysisServices
from core.history import AnalysisNotFound, ChartSource, chart_sources, history_page, owned_analysis
from core.models import Analysis, AnalysisStatus, Platform

logger = logging.getLogger(__name__)

PREFIX = "h"

USAGE = "Send /history for your newest analyses, or /history PAGE for another page, for example /history 2."
HISTORY_FAILED = "Your history could not be loaded because of a problem on our side. Please try again in a minute."
FOREIGN_BUTTON = "This button is invalid or belongs to another user's history."
ANALYSIS_GONE = "This analysis is no longer available. Send /history for your current list."
STALE_LIST = "This list can no longer be changed. Send /history for a new one."
STILL_QUEUED = "⏳ This analysis is still queued. Its result will appear in the chat where you sent the chart."
STILL_RUNNING = "🔎 This analysis is running now. Its result will appear in the chat where you sent the chart."
CHART_LOST = "🖼 The chart of this analysis is no longer stored, so only its analysis is shown."


@dataclass(frozen=True)
class PageButton:
    """Show page `page` of the presser's history."""

    page: int


@dataclass(frozen=True)
class AnalysisButton:
    """Show analysis `analysis_id` again: its charts, then its text."""

    analysis_id: str


def callback_key(bot_token: str) -> bytes:
    """Derive the signing key of the /history buttons from the bot token."""
    return signed_callbacks.callback_key(bot_token, purpose="history")


def page_data(key: bytes, user_id: str, page: int) -> str:
    """Return the signed callback data of a Prev or Next button."""
    return signed_callbacks.sign(key, PREFIX, user_id, f"p|{page}")


def analysis_data(key: bytes, user_id: str, analysis_id: str) -> str:
    """Return the signed callback data of an analysis's button; a 32-character id leaves 15 bytes spare."""
    return signed_callbacks.sign(key, PREFIX, user_id, f"a|{analysis_id}")


def read(key: bytes, user_id: str, data: str | None) -> PageButton | AnalysisButton | None:
    """Return the action of a pressed button, or None when the data is not a /history button signed for this user."""
    body = signed_callbacks.verify(key, PREFIX, user_id, data)
    if body is None:
        return None
    kind, _, value = body.partition("|")
    if kind == "p" and value.isascii() and value.isdigit():
        return PageButton(page=int(value))
    if kind == "a" and value and "|" not in value:
        return AnalysisButton(analysis_id=value)
    return None


def charts_lost(missing: int, total: int) -> str:
    """Say which stored charts are gone; with one chart, that only the analysis is shown."""
    if total == 1:
        return CHART_LOST
    verb = "is" if missing == 1 else "are"
    return f"🖼 {missing} of the {total} charts of this analysis {verb} no longer stored."


def page_text(view: HistoryView) -> str:
    """Render a /history page's message as Telegram HTML; its rows are the buttons."""
    return f"<b>{escape(view.title)}</b>\n\n{escape(view.text)}"


def chart_caption(analysis: Analysis) -> str:
    """Return the caption over the charts, with the time the analysis was requested."""
    noun = "Chart" if len(analysis.images) == 1 else "Charts"
    return f"🗂 {noun} of your analysis of {utc_minute(analysis.created_at)} UTC"


def analysis_texts(analysis: Analysis) -> list[str]:
    """Render an analysis again in its current state: the analysis, why it failed, or that it is not finished."""
    if analysis.status is AnalysisStatus.DONE:
        return messages.analysis_messages(analysis)
    if analysis.status is AnalysisStatus.FAILED:
        return [messages.failure_message(analysis)]
    return [STILL_QUEUED if analysis.status is AnalysisStatus.QUEUED else STILL_RUNNING]


def _services(context: ContextTypes.DEFAULT_TYPE) -> AnalysisServices:
    return context.application.bot_data["chartbot"].services


def _keyboard(context: ContextTypes.DEFAULT_TYPE, user_id: str, view: HistoryView) -> InlineKeyboardMarkup | None:
    key = callback_key(context.bot.token)
    rows = [[InlineKeyboardButton(row.label, callback_data=analysis_data(key, user_id, row.analysis_id))]
            for row in view.rows]
    paging = prev_next_row(view.page, view.pages, lambda number: page_data(key, user_id, number))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(rows) if rows else None


async def _view(context: ContextTypes.DEFAULT_TYPE, user_id: str, page: int) -> HistoryView:
    analyses = _services(context).analyses
    return history_view(await history_page(analyses, Platform.TELEGRAM, user_id, page=page))


def _page_argument(args: list[str]) -> int | None:
    """Return the page /history requests (1 without an argument), or None when the arguments are not a page."""
    if not args:
        return 1
    if len(args) == 1 and args[0].isascii() and args[0].isdigit() and len(args[0]) <= 6:
        return int(args[0])
    return None


async def history_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/history [PAGE]: a trader lists their past analyses, newest first."""
    message = update.effective_message
    user_id = str(update.effective_user.id)
    page = _page_argument(context.args or [])
    if page is None:
        logger.info("history arguments rejected user=%s text=%r", user_id, (message.text or "")[:64])
        await message.reply_text(escape(USAGE), parse_mode=ParseMode.HTML, do_quote=True)
        return
    try:
        view = await _view(context, user_id, page)
    except Exception:
        logger.exception("history listing failed user=%s page=%d", user_id, page)
        await message.reply_text(HISTORY_FAILED, parse_mode=ParseMode.HTML, do_quote=True)
        return
    logger.info("history listed user=%s page=%d of %d", user_id, view.page, view.pages)
    await message.reply_text(page_text(view), parse_mode=ParseMode.HTML, do_quote=True,
                             reply_markup=_keyboard(context, user_id, view))


async def _send_charts(bot: Bot, chat_id: int, analysis: Analysis, sources: list[ChartSource]) -> None:
    """Send the charts that are still available: one as a photo, several as an album, captioned once."""
    available = [source for source in sources if not source.missing]
    caption = chart_caption(analysis)
    if len(available) == 1:
        only = available[0]
        await bot.send_photo(chat_id, photo=only.url or only.data, caption=caption)
    elif available:
        media = [InputMediaPhoto(media=source.url or source.data, caption=caption if index == 0 else None)
                 for index, source in enumerate(available)]
        await bot.send_media_group(chat_id, media=media)
    missing = len(sources) - len(available)
    if missing:
        await bot.send_message(chat_id, charts_lost(missing, len(sources)), parse_mode=ParseMode.HTML)


async def _show_analysis(context: ContextTypes.DEFAULT_TYPE, chat_id: int, analysis: Analysis) -> None:
    images = _services(context).images
    sources = await chart_sources(analysis, images)
    try:
        await _send_charts(context.bot, chat_id, analysis, sources)
    except BadRequest as error:
        if not any(source.url for source in sources):
            raise
        # Telegram fetches an archive URL itself and rejects the photo when it cannot, so the stored bytes go instead.
        logger.warning("archived chart rejected, sending the stored one analysis=%s error=%s",
                       analysis.id, error.message)
        await _send_charts(context.bot, chat_id, analysis,
                           await chart_sources(analysis, images, use_archive=False))
    for text in analysis_texts(analysis):
        await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)


async def history_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle a press on a /history button: Prev or Next, or one of the trader's analyses."""
    query = update.callback_query
    user_id = str(query.from_user.id)
    action = read(callback_key(context.bot.token), user_id, query.data)
    if action is None:
        logger.warning("history button rejected user=%s data=%r", user_id, (query.data or "")[:64])
        await query.answer(FOREIGN_BUTTON, show_alert=True)
        return
    try:
        if isinstance(action, PageButton):
            view = await _view(context, user_id, action.page)
        else:
            analysis = await owned_analysis(_services(context).analyses, Platform.TELEGRAM, user_id,
                                            action.analysis_id)
    except AnalysisNotFound:
        logger.info("history analysis not available user=%s analysis=%s", user_id, action.analysis_id)
        await query.answer(ANALYSIS_GONE, show_alert=True)
        return
    except Exception:
        logger.exception("history button failed user=%s action=%s", user_id, action)
        await query.answer(HISTORY_FAILED, show_alert=True)
        return
    if isinstance(action, PageButton):
        edited = await edit_in_place(update, page_text(view), _keyboard(context, user_id, view))
        await query.answer(None if edited else STALE_LIST, show_alert=not edited)
        return
    await query.answer()
    logger.info("history analysis shown user=%s analysis=%s status=%s", user_id, analysis.id, analysis.status.value)
    await _show_analysis(context, update.effective_chat.id, analysis)


HANDLERS: list[BaseHandler] = [
    CommandHandler("history", history_command),
    CallbackQueryHandler(history_button, pattern=rf"^{PREFIX}\|"),
]
