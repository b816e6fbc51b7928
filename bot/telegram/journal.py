"""Telegram handlers of /journal: the subcommands, the inline buttons and the guided entry.

The guided entry's answers live in the Redis draft store, not in the
ConversationHandler: its per-process state only routes the next text
message. A process that did not see the conversation start still takes an
answer, because the questions ask for a reply (ForceReply) and a reply to a
question is an entry point, as is /cancel.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.equity_chart import render_equity_curve
from bot.telegram import jobs, journal_callbacks
from bot.telegram import journal_messages as texts
from bot.telegram.journal_callbacks import PageButton
from bot.telegram.paged_listing import edit_in_place, prev_next_row
from core.journal import service
from core.journal.errors import (
    EntryAlreadyClosed,
    GuidedDraftMissing,
    InvalidJournalEntry,
    JournalEntryNotFound,
    JournalParseError,
)
from core.journal.export import entries_to_csv
from core.journal.guided import GUIDED_STEPS, GuidedStep
from core.journal.models import Owner
from core.journal.parser import (
    parse_add,
    parse_close,
    parse_edit,
    parse_entry_id,
    parse_list_query,
    parse_no_arguments,
    parse_period,
)
from core.journal.service import EntryPage, JournalServices, MessageRef
from core.models import Platform

logger = logging.getLogger(__name__)

ASKING = 0
_COMMAND_TEXT = re.compile(r"/\S*\s*(?P<rest>.*)", re.DOTALL)

Subcommand = Callable[[Update, ContextTypes.DEFAULT_TYPE, str], Awaitable[None]]


def _services(context: ContextTypes.DEFAULT_TYPE) -> JournalServices:
    return context.application.bot_data["chartbot"].journal


def _owner(update: Update) -> Owner:
    return Owner(Platform.TELEGRAM, str(update.effective_user.id))


def _key(context: ContextTypes.DEFAULT_TYPE) -> bytes:
    return journal_callbacks.callback_key(context.bot.token)


def _reply_ref(message: Message) -> MessageRef | None:
    """Return the bot message that `message` replies to, where a linked analysis may be found."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != message.get_bot().id:
        return None
    return MessageRef(chat_id=str(message.chat_id), message_id=str(replied.message_id))


async def _reply(message: Message, text: str, *, reply_markup=None) -> None:
    await message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=True, reply_markup=reply_markup)


def _split_subcommand(text: str) -> tuple[str, str]:
    """Split "/journal close 3 45000" into ("close", "3 45000")."""
    rest = _COMMAND_TEXT.fullmatch(text.strip()).group("rest")
    parts = rest.split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _page_keyboard(context: ContextTypes.DEFAULT_TYPE, user_id: str, page: EntryPage) -> InlineKeyboardMarkup | None:
    key = _key(context)
    buttons = prev_next_row(page.page, page.pages,
                            lambda number: journal_callbacks.page_data(key, user_id, number, page.query))
    return InlineKeyboardMarkup([buttons]) if buttons else None


def _delete_keyboard(context: ContextTypes.DEFAULT_TYPE, user_id: str, short_id: int) -> InlineKeyboardMarkup:
    key = _key(context)
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("🗑 Delete", callback_data=journal_callbacks.delete_data(key, user_id, short_id,
                                                                                     confirm=True)),
        InlineKeyboardButton("Keep", callback_data=journal_callbacks.delete_data(key, user_id, short_id,
                                                                                confirm=False)),
    ]])


async def _add(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    message = update.effective_message
    fields = parse_add(rest)
    entry = await service.add_entry(_services(context), _owner(update), fields, reply_to=_reply_ref(message))
    await _reply(message, texts.entry_added(entry))


async def _list(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    query = parse_list_query(rest.split())
    page = await service.list_entries(_services(context), _owner(update), query, page=1)
    keyboard = _page_keyboard(context, str(update.effective_user.id), page)
    await _reply(update.effective_message, texts.entry_page(page), reply_markup=keyboard)


async def _show(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    short_id = parse_entry_id(rest.split(), command="show")
    entry = await service.get_entry(_services(context), _owner(update), short_id)
    await _reply(update.effective_message, texts.entry_card(entry))


async def _close(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    request = parse_close(rest.split())
    entry = await service.close_entry(_services(context), _owner(update), request)
    await _reply(update.effective_message, texts.entry_closed(entry))


async def _edit(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    request = parse_edit(rest)
    try:
        entry = await service.edit_entry(_services(context), _owner(update), request)
    except InvalidJournalEntry as error:
        logger.info("journal edit rejected user=%s short_id=%d error=%s", update.effective_user.id,
                    request.short_id, error)
        await _reply(update.effective_message, texts.invalid_entry(error, request.short_id))
        return
    await _reply(update.effective_message, texts.entry_edited(entry, request.field))


async def _delete(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    short_id = parse_entry_id(rest.split(), command="delete")
    entry = await service.get_entry(_services(context), _owner(update), short_id)
    keyboard = _delete_keyboard(context, str(update.effective_user.id), short_id)
    await _reply(update.effective_message, texts.confirm_delete(entry), reply_markup=keyboard)


async def _stats(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    message = update.effective_message
    period = parse_period(rest.split())
    stats = await service.journal_stats(_services(context), _owner(update), period)
    await _reply(message, texts.stats_text(stats))
    if stats.trades == 0:
        return
    # Drawing 200 trades took about 0.1 s of CPU on a 2-core test machine, so it runs in a thread.
    image = await asyncio.to_thread(render_equity_curve, stats.equity_curve,
                                    title=f"Equity curve, {stats.period.label}")
    await message.reply_photo(photo=image, caption=texts.equity_caption(stats), parse_mode=ParseMode.HTML,
                              do_quote=True)


async def _export(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    message = update.effective_message
    parse_no_arguments(rest.split(), command="export")
    services = _services(context)
    entries = await service.all_entries(services, _owner(update))
    if not entries:
        await _reply(message, texts.NOTHING_TO_EXPORT)
        return
    document = entries_to_csv(entries).encode("utf-8")
    filename = f"journal-{services.clock():%Y-%m-%d}.csv"
    await message.reply_document(document=document, filename=filename, caption=texts.export_caption(len(entries)),
                                 parse_mode=ParseMode.HTML, do_quote=True)


async def _help(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> None:
    await _reply(update.effective_message, texts.JOURNAL_HELP)


SUBCOMMANDS: dict[str, Subcommand] = {
    "add": _add, "list": _list, "show": _show, "close": _close, "edit": _edit, "delete": _delete,
    "stats": _stats, "export": _export, "help": _help,
}


async def journal_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/journal [list|add|show|close|edit|delete|stats|export] ...: a trader works with their journal."""
    message = update.effective_message
    user_id = update.effective_user.id
    word, rest = _split_subcommand(message.text or "")
    name = word.lower() or "list"
    subcommand = SUBCOMMANDS.get(name)
    if subcommand is None:
        logger.info("journal subcommand unknown user=%s word=%r", user_id, word[:32])
        await _reply(message, texts.unknown_subcommand(word))
        return
    logger.info("journal command user=%s subcommand=%s", user_id, name)
    try:
        await subcommand(update, context, rest)
    except (JournalParseError, JournalEntryNotFound, EntryAlreadyClosed, InvalidJournalEntry) as error:
        logger.info("journal command rejected user=%s subcommand=%s error=%s", user_id, name, error)
        await _reply(message, texts.rejection(error))
    except Exception:
        logger.exception("journal command failed user=%s subcommand=%s", user_id, name)
        await _reply(message, texts.JOURNAL_FAILED)


async def journal_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader presses a journal button: Prev or Next in a listing, Delete or Keep under a deletion."""
    query = update.callback_query
    user_id = str(query.from_user.id)
    action = journal_callbacks.read(_key(context), user_id, query.data)
    if action is None:
        logger.warning("journal button rejected user=%s data=%r", user_id, (query.data or "")[:64])
        await query.answer(texts.FOREIGN_BUTTON, show_alert=True)
        return
    services = _services(context)
    owner = _owner(update)
    if isinstance(action, PageButton):
        page = await service.list_entries(services, owner, action.query, page=action.page)
        edited = await edit_in_place(update, texts.entry_page(page), _page_keyboard(context, user_id, page))
    elif action.confirm:
        try:
            await service.delete_entry(services, owner, action.short_id)
            text = texts.entry_deleted(action.short_id)
        except JournalEntryNotFound:
            text = texts.already_deleted(action.short_id)
        edited = await edit_in_place(update, text)
        if not edited:
            await query.answer(text, show_alert=True)
            return
    else:
        edited = await edit_in_place(update, texts.entry_kept(action.short_id))
    await query.answer(None if edited else texts.STALE_BUTTON)


def _step_of(field: str | None) -> GuidedStep:
    return next(step for step in GUIDED_STEPS if step.field == field)


async def _ask(message: Message, step: GuidedStep, text: str | None = None) -> None:
    placeholder = texts.PLACEHOLDERS.get(step.field)
    await _reply(message, text or texts.question(step),
                 reply_markup=ForceReply(selective=True, input_field_placeholder=placeholder))


async def guided_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """/journal add with no fields: a trader starts the guided entry."""
    message = update.effective_message
    draft = await service.start_guided(_services(context), _owner(update), reply_to=_reply_ref(message))
    await _ask(message, draft.current)
    return ASKING


async def guided_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """A trader answers a question of the guided entry."""
    message = update.effective_message
    try:
        draft, entry = await service.answer_guided(_services(context), _owner(update), message.text or "")
    except GuidedDraftMissing:
        logger.info("guided journal answer without a draft user=%s", update.effective_user.id)
        await _reply(message, texts.GUIDED_DRAFT_GONE)
        return ConversationHandler.END
    except JournalParseError as error:
        logger.info("guided journal answer rejected user=%s error=%s", update.effective_user.id, error)
        step = _step_of(error.field)
        await _ask(message, step, texts.guided_problem(error, step))
        return ASKING
    if entry is not None:
        await _reply(message, texts.entry_added(entry))
        return ConversationHandler.END
    await _ask(message, draft.current)
    return ASKING


async def guided_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """/cancel: a trader stops the guided entry, or without one cancels their newest analysis."""
    cancelled = await service.cancel_guided(_services(context), _owner(update))
    if cancelled:
        await _reply(update.effective_message, texts.GUIDED_CANCELLED)
    else:
        await jobs.cancel_command(update, context)
    return ConversationHandler.END


class _ReplyToGuidedQuestion(filters.MessageFilter):
    """Messages that reply to one of this bot's guided-entry questions."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(
            replied is not None
            and replied.from_user is not None
            and replied.from_user.id == message.get_bot().id
            and (replied.text or "").startswith(texts.QUESTION_TITLE)
        )


# NOTE: without a JobQueue (the python-telegram-bot[job-queue] extra) the conversation has no
# timeout. A process therefore keeps routing a user's plain text to guided_answer after the Redis
# draft expired or was finished in another process, and that user gets GUIDED_DRAFT_GONE once.
GUIDED_ENTRY = ConversationHandler(
    entry_points=[
        CommandHandler("journal", guided_start, filters=filters.Regex(re.compile(r"^/journal(@\w+)?\s+add\s*$",
                                                                                 re.IGNORECASE))),
        CommandHandler("cancel", guided_cancel),
        MessageHandler(filters.TEXT & ~filters.COMMAND & _ReplyToGuidedQuestion(), guided_answer),
    ],
    states={ASKING: [MessageHandler(filters.TEXT & ~filters.COMMAND, guided_answer)]},
    fallbacks=[],
    allow_reentry=True,
    name="journal_guided_entry",
)

HANDLERS: list[BaseHandler] = [
    GUIDED_ENTRY,
    CommandHandler("journal", journal_command),
    CallbackQueryHandler(journal_button, pattern=rf"^{journal_callbacks.PREFIX}\|"),
]
