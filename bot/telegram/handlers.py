"""Telegram handlers: parse the update, call the core, reply."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.telegram import billing, messages
from bot.telegram.formatting import escape
from core.ports import AlbumBuffer, Notifier
from bot.views.usage import UPGRADE, Button, usage_view
from core.analysis import AnalysisServices, Upload, submit_upload
from core.errors import CaptionTooLong, ImageProblem, InvalidChartImage, UsageLimitExceeded
from core.journal.service import JournalServices
from core.models import Platform
from core.settings import Settings

logger = logging.getLogger(__name__)

ACCEPTED_DOCUMENT_TYPES = {"image/png", "image/jpeg", "image/webp"}

SOMETHING_WENT_WRONG = (
    "Something went wrong on our side and the chart was not queued. Nothing was counted; please try again in a minute."
)


@dataclass
class BotContext:
    """Services the handlers use, built once when the application starts."""

    settings: Settings
    services: AnalysisServices
    notifier: Notifier
    journal: JournalServices | None = None
    albums: AlbumBuffer | None = None


def _context(context: ContextTypes.DEFAULT_TYPE) -> BotContext:
    return context.application.bot_data["chartbot"]


def keyboard(button: Button | None) -> InlineKeyboardMarkup | None:
    """Return an inline keyboard with one button whose callback data is the button's action."""
    if button is None:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(button.label, callback_data=button.action)]])


async def _reply(message: Message, text: str, button: Button | None = None) -> None:
    await message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=True, reply_markup=keyboard(button))


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: a trader opens the bot."""
    await _reply(update.effective_message, messages.WELCOME)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: a trader asks how to use the bot."""
    bot_context = _context(context)
    plans = bot_context.services.usage.plans
    text = messages.help_text(plans, max_charts=bot_context.settings.max_charts_per_request)
    await _reply(update.effective_message, text)


async def usage_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/usage: a trader asks what their plan allows and what they have used."""
    usage = _context(context).services.usage
    summary = await usage.summary(Platform.TELEGRAM.value, str(update.effective_user.id))
    view = usage_view(summary)
    await _reply(update.effective_message, messages.usage_html(view), view.button)


async def plan_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader presses Upgrade or Manage billing under /usage or a limit message."""
    if update.callback_query.data == UPGRADE:
        await billing.upgrade_pressed(update, context)
    else:
        await billing.billing_pressed(update, context)


async def chart_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader sends a chart as a photo."""
    photo = update.effective_message.photo[-1]
    await _analyse_upload(update, context, file_id=photo.file_id, file_size=photo.file_size)


async def chart_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader sends a file, which must be a PNG, JPEG or WebP chart."""
    message = update.effective_message
    document = message.document
    declared = (document.mime_type or "").lower()
    if declared and declared not in ACCEPTED_DOCUMENT_TYPES:
        problem = ImageProblem.UNSUPPORTED_FORMAT if declared.startswith("image/") else ImageProblem.NOT_AN_IMAGE
        logger.info("document rejected user=%s mime=%s", update.effective_user.id, declared)
        services = _context(context).services
        text, _ = messages.refusal(InvalidChartImage(problem, declared), limits=services.image_limits,
                                   now=services.clock())
        await _reply(message, text)
        return
    await _analyse_upload(update, context, file_id=document.file_id, file_size=document.file_size)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader sends a command the bot does not have."""
    command = (update.effective_message.text or "").split()[0]
    await _reply(update.effective_message, messages.UNKNOWN_COMMAND.format(command=escape(command)))


async def other_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A trader sends text or media that is not a chart or a command."""
    await _reply(update.effective_message, messages.SEND_A_CHART)


async def _download(context: ContextTypes.DEFAULT_TYPE, file_id: str) -> bytes:
    telegram_file = await context.bot.get_file(file_id)
    return bytes(await telegram_file.download_as_bytearray())


async def _analyse_upload(
    update: Update, context: ContextTypes.DEFAULT_TYPE, *, file_id: str, file_size: int | None
) -> None:
    """Download an uploaded chart and submit it to the core, which checks, reserves, stores and queues it."""
    bot_context = _context(context)
    settings = bot_context.settings
    message = update.effective_message
    user_id = update.effective_user.id

    if file_size is not None and file_size > settings.max_image_bytes:
        logger.info("upload rejected before download user=%s size=%d", user_id, file_size)
        await _reply(message, messages.FILE_TOO_LARGE.format(size=messages.format_megabytes(file_size)))
        return

    await message.chat.send_action(ChatAction.TYPING)
    try:
        data = await _download(context, file_id)
    except BadRequest as error:
        # The Bot API returns "file is too big" for files over its 20 MB download limit.
        logger.info("download rejected user=%s error=%s", user_id, error.message)
        if "too big" in error.message.lower():
            await _reply(message, messages.FILE_TOO_LARGE.format(size="over 20 MB"))
        else:
            await _reply(message, SOMETHING_WENT_WRONG)
        return

    upload = Upload(
        platform=Platform.TELEGRAM,
        user_id=str(user_id),
        chat_id=str(message.chat_id),
        message_id=str(message.message_id),
        data=data,
        caption=message.caption,
    )
    services = bot_context.services
    try:
        await submit_upload(upload, services, bot_context.notifier)
    except (CaptionTooLong, InvalidChartImage, UsageLimitExceeded) as error:
        logger.info("upload rejected user=%s reason=%s", user_id, error)
        text, button = messages.refusal(error, limits=services.image_limits, now=services.clock())
        await _reply(message, text, button)
    except TelegramError:
        logger.exception("acknowledgement failed user=%s chat=%s", user_id, message.chat_id)
    except Exception:
        logger.exception("analysis request failed user=%s chat=%s", user_id, message.chat_id)
        await _reply(message, SOMETHING_WENT_WRONG)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log an error a handler raised, with the update's ids."""
    user = getattr(getattr(update, "effective_user", None), "id", None)
    chat = getattr(getattr(update, "effective_chat", None), "id", None)
    logger.error("handler failed user=%s chat=%s", user, chat, exc_info=context.error)
