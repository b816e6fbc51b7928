"""The Notifier port on Telegram: the acknowledgement, then the analysis edited into it."""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter

from bot.telegram import messages
from core.models import Analysis

logger = logging.getLogger(__name__)

# Telegram returns RetryAfter when a chat gets messages too fast; wait at most this long, once.
MAX_FLOOD_WAIT_SECONDS = 30.0


class TelegramNotifier:
    """Notifier that sends and edits messages through the Bot API."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def _call(self, method, /, **kwargs):
        try:
            return await method(**kwargs)
        except RetryAfter as error:
            delay = error.retry_after if isinstance(error.retry_after, int | float) else error.retry_after.total_seconds()
            if delay > MAX_FLOOD_WAIT_SECONDS:
                raise
            logger.warning("Telegram flood control, waiting %.1fs chat=%s", delay, kwargs.get("chat_id"))
            await asyncio.sleep(delay)
            return await method(**kwargs)

    async def _send(self, analysis: Analysis, text: str) -> str:
        reply_to = None
        if analysis.message_id is not None:
            reply_to = ReplyParameters(message_id=int(analysis.message_id), allow_sending_without_reply=True)
        sent = await self._call(
            self._bot.send_message,
            chat_id=int(analysis.chat_id),
            text=text,
            parse_mode=ParseMode.HTML,
            reply_parameters=reply_to,
        )
        return str(sent.message_id)

    async def _replace_ack(self, analysis: Analysis, text: str) -> None:
        """Edit the acknowledgement into `text`, or send `text` as a new message when the edit is impossible."""
        if analysis.ack_message_id is not None:
            try:
                await self._call(
                    self._bot.edit_message_text,
                    chat_id=int(analysis.chat_id),
                    message_id=int(analysis.ack_message_id),
                    text=text,
                    parse_mode=ParseMode.HTML,
                )
                return
            except BadRequest as error:
                logger.warning("acknowledgement not editable, sending a new message analysis=%s chat=%s error=%s",
                               analysis.id, analysis.chat_id, error.message)
        await self._send(analysis, text)

    async def analysis_queued(self, analysis: Analysis) -> str | None:
        return await self._send(analysis, messages.QUEUED)

    async def analysis_done(self, analysis: Analysis) -> None:
        parts = messages.analysis_messages(analysis)
        await self._replace_ack(analysis, parts[0])
        for part in parts[1:]:
            await self._send(analysis, part)

    async def analysis_failed(self, analysis: Analysis) -> None:
        await self._replace_ack(analysis, messages.failure_message(analysis))

    async def analysis_still_working(self, analysis: Analysis) -> None:
        """Tell the trader that a slow analysis is still running."""
        await self._send(analysis, messages.STILL_WORKING)
