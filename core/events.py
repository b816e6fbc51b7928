"""Events of an analysis as it moves (progress, completed, failed) and the handlers that follow them.

`AnalysisEvents` is itself a Notifier: the worker hands it to the runner, and
every registered handler hears each event. A handler that raises is logged
with the analysis id and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ReplyNotSent
from core.models import Analysis

logger = logging.getLogger(__name__)


class Stage(StrEnum):
    """The stage of an analysis between its acknowledgement and its final reply."""

    QUEUED = "queued"
    ANALYSING = "analysing"
    RETRYING = "retrying"


@dataclass(frozen=True)
class Progress:
    """One progress event: the stage, and the queue position or attempt numbers where they apply."""

    stage: Stage
    position: int | None = None
    attempt: int | None = None
    max_attempts: int | None = None


ProgressHandler = Callable[[Analysis, Progress], Awaitable[None]]
OutcomeHandler = Callable[[Analysis], Awaitable[None]]


class AnalysisEvents:
    """Registered handlers for progress, completed and failed events."""

    def __init__(self) -> None:
        self._progress: list[ProgressHandler] = []
        self._completed: list[OutcomeHandler] = []
        self._failed: list[OutcomeHandler] = []
        self._still_working: list[OutcomeHandler] = []

    def on_progress(self, handler: ProgressHandler) -> None:
        """Call `handler(analysis, progress)` on every progress event."""
        self._progress.append(handler)

    def on_completed(self, handler: OutcomeHandler) -> None:
        """Call `handler(analysis)` when an analysis is done."""
        self._completed.append(handler)

    def on_failed(self, handler: OutcomeHandler) -> None:
        """Call `handler(analysis)` when an analysis failed (refunded)."""
        self._failed.append(handler)

    def on_still_working(self, handler: OutcomeHandler) -> None:
        """Call `handler(analysis)` when a running analysis passes its notice delay."""
        self._still_working.append(handler)

    async def _emit(self, event: str, analysis: Analysis, handlers: list, *args: object) -> None:
        """Call every handler; a ReplyNotSent is raised again after the others ran, so the job is retried."""
        not_sent: ReplyNotSent | None = None
        for handler in handlers:
            try:
                await handler(analysis, *args)
            except ReplyNotSent as error:
                not_sent = not_sent or error
            except Exception:
                logger.exception("%s handler failed analysis=%s chat=%s handler=%s", event, analysis.id,
                                 analysis.chat_id, getattr(handler, "__qualname__", handler))
        if not_sent is not None:
            raise not_sent

    async def analysis_progress(self, analysis: Analysis, progress: Progress) -> None:
        await self._emit("progress", analysis, self._progress, progress)

    async def analysis_done(self, analysis: Analysis) -> None:
        await self._emit("completed", analysis, self._completed)

    async def analysis_failed(self, analysis: Analysis) -> None:
        await self._emit("failed", analysis, self._failed)

    async def analysis_still_working(self, analysis: Analysis) -> None:
        await self._emit("still-working", analysis, self._still_working)

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        """Raise NotImplementedError: the bot sends the acknowledgement, not the worker's events."""
        raise NotImplementedError("the worker does not acknowledge new analyses")
