"""The Notifier port on Telegram: the acknowledgement, progress edited into it, then the analysis.

With a pacer, edits keep to Telegram's pace per chat. Progress that comes
faster is merged (the newest text wins once the chat's turn comes), or
skipped when the bot-wide budget is spent. A final reply waits its turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError

from adapters.backends import Backends
from adapters.redis_pacing import ChatPacer
from adapters.redis_replies import RedisReplyLocks
from bot.telegram import messages
from core.events import Progress, Stage
from core.jobs import JobState
from core.models import Analysis
from core.replies import OnceNotifier, OnceReplies, progress_still_current
from core.settings import Settings

logger = logging.getLogger(__name__)

# Telegram returns RetryAfter when a chat gets messages too fast; wait at most this long, once.
MAX_FLOOD_WAIT_SECONDS = 30.0


class TelegramNotifier:
    """Notifier that sends and edits messages through the Bot API."""

    def __init__(self, bot: Bot, pacer: ChatPacer | None = None,
                 still_current: Callable[[str, Stage], Awaitable[bool]] | None = None) -> None:
        """`still_current(analysis_id, stage)` is asked right before each progress edit; False drops it.

        Final replies take the chat's turn too, so a progress edit checked before
        a final reply always reaches Telegram ahead of it.
        """
        self._bot = bot
        self._pacer = pacer
        self._still_current = still_current
        self._pending: dict[str, tuple[Stage, str]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

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
                if "not modified" in error.message.lower():
                    # The message already shows this text: an earlier delivery edited it.
                    return
                logger.warning("acknowledgement not editable, sending a new message analysis=%s chat=%s error=%s",
                               analysis.id, analysis.chat_id, error.message)
        await self._send(analysis, text)

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        return await self._send(analysis, messages.queued_text(position, charts=len(analysis.images)))

    async def analysis_progress(self, analysis: Analysis, progress: Progress) -> None:
        """Edit the acknowledgement into the progress text, at the chat's pace; never a new message."""
        if analysis.ack_message_id is None:
            return
        if self._pacer is not None and not await self._pacer.progress_allowed():
            logger.info("progress edit skipped, bot-wide budget spent analysis=%s stage=%s",
                        analysis.id, progress.stage.value)
            return
        text = messages.progress_text(progress, charts=len(analysis.images))
        if progress.stage is Stage.QUEUED:
            await self._show_position(analysis, text)
            return
        self._pending[analysis.id] = (progress.stage, text)
        if analysis.id not in self._flushers:
            self._flushers[analysis.id] = asyncio.create_task(self._flush_progress(analysis))

    async def _show_position(self, analysis: Analysis, text: str) -> None:
        """Edit a new queue position in only when the chat's turn is free now.

        Because it never waits, it reaches Telegram ahead of the "analysing"
        edit another worker may send next, which waits for the turn this one
        took (provided this edit completes within the chat's interval).
        """
        if self._pacer is not None and await self._pacer.try_take(analysis.chat_id) > 0:
            return
        if not await self._current(analysis, Stage.QUEUED):
            return
        try:
            await self._bot.edit_message_text(chat_id=int(analysis.chat_id), message_id=int(analysis.ack_message_id),
                                              text=text, parse_mode=ParseMode.HTML)
        except TelegramError as error:
            logger.info("queue position edit not applied analysis=%s chat=%s error=%s",
                        analysis.id, analysis.chat_id, error)

    async def _flush_progress(self, analysis: Analysis) -> None:
        try:
            while (pending := self._pending.pop(analysis.id, None)) is not None:
                if self._pacer is not None:
                    await self._pacer.take(analysis.chat_id)
                    pending = self._pending.pop(analysis.id, pending)
                stage, text = pending
                if not await self._current(analysis, stage):
                    continue
                try:
                    await self._bot.edit_message_text(chat_id=int(analysis.chat_id),
                                                      message_id=int(analysis.ack_message_id),
                                                      text=text, parse_mode=ParseMode.HTML)
                except TelegramError as error:
                    logger.info("progress edit not applied analysis=%s chat=%s error=%s",
                                analysis.id, analysis.chat_id, error)
        finally:
            self._flushers.pop(analysis.id, None)

    async def _current(self, analysis: Analysis, stage: Stage) -> bool:
        return self._still_current is None or await self._still_current(analysis.id, stage)

    async def _before_final(self, analysis: Analysis) -> None:
        """Drop progress not yet shown, wait for an edit in flight, and wait for the chat's turn."""
        self._pending.pop(analysis.id, None)
        flusher = self._flushers.get(analysis.id)
        if flusher is not None:
            await asyncio.gather(flusher, return_exceptions=True)
        if self._pacer is not None:
            await self._pacer.take(analysis.chat_id)

    async def analysis_done(self, analysis: Analysis) -> None:
        await self._before_final(analysis)
        parts = messages.analysis_messages(analysis)
        await self._replace_ack(analysis, parts[0])
        for part in parts[1:]:
            if self._pacer is not None:
                await self._pacer.take(analysis.chat_id)
            await self._send(analysis, part)

    async def analysis_failed(self, analysis: Analysis) -> None:
        await self._before_final(analysis)
        await self._replace_ack(analysis, messages.failure_message(analysis))

    async def analysis_still_working(self, analysis: Analysis) -> None:
        """Tell the trader that a slow analysis is still running."""
        await self._send(analysis, messages.STILL_WORKING)


def once_telegram_notifier(bot: Bot, backends: Backends, settings: Settings) -> OnceNotifier:
    """Build the Telegram notifier the bot and the worker share: paced per chat, final replies sent once."""
    pacer = ChatPacer(backends.redis, private_seconds=settings.chat_edit_interval_seconds,
                      group_seconds=settings.group_chat_edit_interval_seconds)
    analyses = backends.services.analyses
    notifier = TelegramNotifier(bot, pacer, _job_still_at(backends, progress_still_current(analyses)))
    return OnceNotifier(notifier, OnceReplies(RedisReplyLocks(backends.redis), analyses, backends.services.clock))


def _job_still_at(backends: Backends, fallback: Callable[[str, Stage], Awaitable[bool]]):
    """Check a progress edit against the job record in Redis, without a database read.

    A queue position needs the job queued, and the other stages need it running
    with no stop requested. An analysis without a job record is checked by `fallback`.
    """
    async def check(analysis_id: str, stage: Stage) -> bool:
        job = await backends.jobs.registry.get(analysis_id)
        if job is None:
            return await fallback(analysis_id, stage)
        expected = JobState.QUEUED if stage is Stage.QUEUED else JobState.RUNNING
        return job.state is expected and not job.cancel_requested
    return check
