"""The final reply of an analysis, sent once however often its job is delivered.

Two deliveries of one job can run at once (a worker thought dead comes back)
or one after another (a worker died after replying, before acknowledging).
Before the final reply, a delivery takes the analysis's reply lock (Redis
SET NX with a lease). While it holds the lock, it checks `replied_at` on the
record, sends, and writes `replied_at`. A second delivery waits for the lock, then finds
`replied_at` and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from core.errors import ReplyNotSent
from core.events import Progress, Stage
from core.models import Analysis, AnalysisStatus
from core.ports import AnalysisRepository, Clock, Notifier, ReplyLocks

logger = logging.getLogger(__name__)

REPLY_LEASE_SECONDS = 60.0
LOCK_POLL_SECONDS = 0.2
RECORD_ATTEMPTS = 3


class OnceReplies:
    """Wraps the sending of final replies so each analysis gets one."""

    def __init__(self, locks: ReplyLocks, analyses: AnalysisRepository, clock: Clock, *,
                 lease_seconds: float = REPLY_LEASE_SECONDS) -> None:
        self._locks = locks
        self._analyses = analyses
        self._clock = clock
        self._lease = lease_seconds

    async def _acquire(self, analysis_id: str) -> str | None:
        give_up = time.monotonic() + self._lease
        while True:
            token = await self._locks.acquire(analysis_id, lease_seconds=self._lease)
            if token is not None or time.monotonic() >= give_up:
                return token
            await asyncio.sleep(LOCK_POLL_SECONDS)

    async def _record_reply(self, analysis_id: str) -> None:
        """Write `replied_at`, trying three times; raising would deliver the job again and reply twice."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                await self._analyses.update(analysis_id, {"replied_at": self._clock()})
                return
            except Exception:
                if attempt == RECORD_ATTEMPTS:
                    logger.exception("final reply sent but not recorded analysis=%s", analysis_id)
                    return
                logger.warning("recording the final reply failed, trying again analysis=%s attempt=%d",
                               analysis_id, attempt)
                await asyncio.sleep(attempt)

    async def send(self, analysis: Analysis, deliver: Callable[[Analysis], Awaitable[None]]) -> bool:
        """Call `deliver(analysis)` unless this analysis's final reply was already sent; True when it ran."""
        try:
            token = await self._acquire(analysis.id)
        except Exception as error:
            raise ReplyNotSent(f"reply lock of analysis {analysis.id} unavailable: {error!r}") from error
        if token is None:
            logger.warning("reply lock still held after %gs; not replying analysis=%s", self._lease, analysis.id)
            return False
        try:
            try:
                current = await self._analyses.get(analysis.id)
            except Exception as error:
                raise ReplyNotSent(f"record of analysis {analysis.id} unreadable: {error!r}") from error
            if current is not None and current.replied_at is not None:
                logger.info("final reply already sent analysis=%s", analysis.id)
                return False
            try:
                await deliver(analysis)
            except Exception:
                logger.exception("final reply not delivered analysis=%s chat=%s", analysis.id, analysis.chat_id)
                return False
            # NOTE: a worker killed between the send above and this write leaves no record of the reply;
            # the next delivery, after the lease, replies again. The window is one MongoDB update.
            await self._record_reply(analysis.id)
            return True
        finally:
            try:
                await self._locks.release(analysis.id, token)
            except Exception:
                logger.exception("reply lock not released; it expires in %gs analysis=%s", self._lease, analysis.id)


class OnceNotifier:
    """A Notifier whose final replies (done, failed) go through OnceReplies; the rest passes straight on."""

    def __init__(self, inner: Notifier, replies: OnceReplies) -> None:
        self._inner = inner
        self._replies = replies

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        return await self._inner.analysis_queued(analysis, position=position)

    async def analysis_progress(self, analysis: Analysis, progress: Progress) -> None:
        await self._inner.analysis_progress(analysis, progress)

    async def analysis_done(self, analysis: Analysis) -> None:
        await self._replies.send(analysis, self._inner.analysis_done)

    async def analysis_failed(self, analysis: Analysis) -> None:
        await self._replies.send(analysis, self._inner.analysis_failed)

    async def analysis_still_working(self, analysis: Analysis) -> None:
        await self._inner.analysis_still_working(analysis)


def progress_still_current(analyses: AnalysisRepository) -> Callable[[str, Stage], Awaitable[bool]]:
    """Return a check that a progress edit of `stage` still describes the analysis (no final reply yet)."""
    async def check(analysis_id: str, stage: Stage) -> bool:
        current = await analyses.get(analysis_id)
        if current is None or current.replied_at is not None:
            return False
        expected = AnalysisStatus.QUEUED if stage is Stage.QUEUED else AnalysisStatus.RUNNING
        return current.status is expected
    return check
