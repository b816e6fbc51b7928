"""Telegram albums: every part goes into the shared album buffer, and the process that closes the album submits it.

Telegram delivers each photo or file of an album (media group) as its own
update, and behind a webhook the updates of one album can reach different bot
processes. Single photos and files never come here.
"""

from __future__ import annotations

import logging

from telegram import Message, ReplyParameters, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes, filters

from bot.telegram import messages
from bot.telegram.handlers import (
    ACCEPTED_DOCUMENT_TYPES,
    SOMETHING_WENT_WRONG,
    BotContext,
    keyboard,
)
from bot.views.usage import Button
from core.albums import AlbumPart, AlbumRole, collect_album
from core.analysis import Upload, check_chart_count, submit_uploads
from core.errors import (
    CaptionTooLong,
    ImageProblem,
    InvalidChartImage,
    InvalidChartInRequest,
    TooManyCharts,
    UsageLimitExceeded,
)
from core.models import Platform

logger = logging.getLogger(__name__)


class _InAlbum(filters.MessageFilter):
    """Messages that belong to an album."""

    def filter(self, message: Message) -> bool:
        return message.media_group_id is not None


IN_ALBUM = _InAlbum(name="IN_ALBUM")


def _context(context: ContextTypes.DEFAULT_TYPE) -> BotContext:
    return context.application.bot_data["chartbot"]


async def album_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle a photo sent as part of an album."""
    message = update.effective_message
    photo = message.photo[-1]
    await _collect(update, context, kind="photo", file_id=photo.file_id, file_size=photo.file_size, mime_type=None)


async def album_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle a file sent as part of an album. Its type is checked when the album is submitted."""
    document = update.effective_message.document
    await _collect(update, context, kind="document", file_id=document.file_id, file_size=document.file_size,
                   mime_type=(document.mime_type or "").lower() or None)


async def _collect(update: Update, context: ContextTypes.DEFAULT_TYPE, *, kind: str, file_id: str,
                   file_size: int | None, mime_type: str | None) -> None:
    bot_context = _context(context)
    if bot_context.albums is None:
        raise RuntimeError("an album part arrived but the bot has no album buffer")
    message = update.effective_message
    part = AlbumPart(
        chat_id=str(message.chat_id),
        media_group_id=str(message.media_group_id),
        message_id=message.message_id,
        user_id=str(update.effective_user.id),
        kind=kind,
        file_id=file_id,
        file_size=file_size,
        mime_type=mime_type,
        caption=message.caption,
    )
    try:
        collection = await collect_album(bot_context.albums, part,
                                         quiet_seconds=bot_context.settings.media_group_quiet_seconds)
    except Exception:
        logger.exception("album buffer failed user=%s chat=%s album=%s message=%s", part.user_id, part.chat_id,
                         part.media_group_id, part.message_id)
        await _reply(context, part.chat_id, part.message_id, SOMETHING_WENT_WRONG)
        return

    if collection.role is AlbumRole.LATE:
        await _reply(context, part.chat_id, part.message_id, messages.ALBUM_PART_LATE)
    elif collection.role is AlbumRole.SUBMIT:
        # NOTE: a process that stops between closing the album and queueing it loses the album without a
        # reply, because the closed parts are no longer in Redis and no other process submits them.
        await _submit_album(context, collection.parts)


async def _reply(context: ContextTypes.DEFAULT_TYPE, chat_id: str, message_id: int, text: str,
                 button: Button | None = None) -> None:
    """Send `text` as a reply to one message of the album, which need not be the update being handled."""
    await context.bot.send_message(
        chat_id=int(chat_id), text=text, parse_mode=ParseMode.HTML, reply_markup=keyboard(button),
        reply_parameters=ReplyParameters(message_id=message_id, allow_sending_without_reply=True),
    )


def _declared_type_problem(part: AlbumPart) -> InvalidChartImage | None:
    """Reject a document whose declared type is not an accepted image, before downloading it."""
    if part.kind != "document" or part.mime_type is None or part.mime_type in ACCEPTED_DOCUMENT_TYPES:
        return None
    problem = ImageProblem.UNSUPPORTED_FORMAT if part.mime_type.startswith("image/") else ImageProblem.NOT_AN_IMAGE
    return InvalidChartImage(problem, part.mime_type)


def _check_before_download(parts: list[AlbumPart], *, max_bytes: int) -> None:
    """Raise InvalidChartInRequest for the first part whose declared type or size rules it out."""
    for position, part in enumerate(parts, start=1):
        problem = _declared_type_problem(part)
        if problem is None and part.file_size is not None and part.file_size > max_bytes:
            problem = InvalidChartImage(ImageProblem.TOO_LARGE, messages.format_megabytes(part.file_size))
        if problem is not None:
            raise InvalidChartInRequest(position=position, count=len(parts), error=problem)


async def _download_all(context: ContextTypes.DEFAULT_TYPE, parts: list[AlbumPart]) -> list[bytes]:
    """Download every part in order; raises InvalidChartInRequest for a file over the Bot API's download limit."""
    contents = []
    for position, part in enumerate(parts, start=1):
        try:
            telegram_file = await context.bot.get_file(part.file_id)
            contents.append(bytes(await telegram_file.download_as_bytearray()))
        except BadRequest as error:
            # The Bot API returns "file is too big" for files over its 20 MB download limit.
            if "too big" not in error.message.lower():
                raise
            too_big = InvalidChartImage(ImageProblem.TOO_LARGE, "over 20 MB")
            raise InvalidChartInRequest(position=position, count=len(parts), error=too_big) from error
    return contents


async def _submit_album(context: ContextTypes.DEFAULT_TYPE, parts: list[AlbumPart]) -> None:
    """Download a closed album's parts and request one analysis of them; refusals reply to its first message."""
    bot_context = _context(context)
    settings, services = bot_context.settings, bot_context.services
    first = parts[0]
    ids = f"user={first.user_id} chat={first.chat_id} album={first.media_group_id}"
    try:
        check_chart_count(len(parts), max_charts=settings.max_charts_per_request)
        _check_before_download(parts, max_bytes=settings.max_image_bytes)
        await context.bot.send_chat_action(chat_id=int(first.chat_id), action=ChatAction.TYPING)
        contents = await _download_all(context, parts)
        uploads = [
            Upload(platform=Platform.TELEGRAM, user_id=part.user_id, chat_id=part.chat_id, data=data,
                   message_id=str(part.message_id), caption=part.caption)
            for part, data in zip(parts, contents, strict=True)
        ]
        await submit_uploads(uploads, services, bot_context.notifier,
                             max_charts=settings.max_charts_per_request, media_group_id=first.media_group_id)
    except (CaptionTooLong, InvalidChartInRequest, TooManyCharts, UsageLimitExceeded) as error:
        logger.info("album rejected %s charts=%d reason=%s", ids, len(parts), error)
        text, button = messages.refusal(error, limits=services.image_limits, now=services.clock())
        await _reply(context, first.chat_id, first.message_id, text, button)
    except TelegramError:
        logger.exception("album download or acknowledgement failed %s", ids)
        await _reply_if_possible(context, first, SOMETHING_WENT_WRONG)
    except Exception:
        logger.exception("album analysis request failed %s", ids)
        await _reply(context, first.chat_id, first.message_id, SOMETHING_WENT_WRONG)


async def _reply_if_possible(context: ContextTypes.DEFAULT_TYPE, part: AlbumPart, text: str) -> None:
    try:
        await _reply(context, part.chat_id, part.message_id, text)
    except TelegramError:
        logger.exception("reply failed chat=%s message=%s", part.chat_id, part.message_id)
