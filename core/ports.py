"""What the core needs from the outside, declared as protocols.

Implementations live in adapters/ (MongoDB, Redis, taskiq), bot/ (chat
notifiers) and workers/ (the vision model); core/memory.py has in-memory
ones for unit tests and the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from core.models import Analysis, ChartFindings, ChartImage, ImageInfo, ModelAnswer


class AnalysisRepository(Protocol):
    """Stores analysis records."""

    async def add(self, analysis: Analysis) -> None:
        """Insert a new record; its id must be unused."""
        ...

    async def get(self, analysis_id: str) -> Analysis | None:
        """Return the record, or None when there is none."""
        ...

    async def update(self, analysis_id: str, changes: dict[str, Any]) -> None:
        """Set the given fields (by Analysis field name) on one record."""
        ...

    async def list_for_user(self, platform: str, user_id: str, *, limit: int) -> list[Analysis]:
        """Return a user's newest records first."""
        ...


class ImageStore(Protocol):
    """Keeps chart images where the worker can read them."""

    async def put(self, image_id: str, info: ImageInfo, data: bytes) -> None:
        """Store one image under a new id."""
        ...

    async def get(self, image_id: str) -> bytes:
        """Return the image's bytes; raises KeyError when it is missing."""
        ...

    async def delete(self, image_id: str) -> None:
        """Remove an image; removing a missing one is not an error."""
        ...


class UsageCounter(Protocol):
    """Counts uses per user and UTC day, atomically across processes."""

    async def reserve(self, user_key: str, day: str, *, units: int, limit: int) -> tuple[bool, int]:
        """Add `units` to the day's count unless that passes `limit`.

        Returns (admitted, count), where count is the day's count after the
        call (unchanged when not admitted).
        """
        ...

    async def refund(self, user_key: str, day: str, *, units: int, refund_key: str) -> bool:
        """Give `units` back once per `refund_key`; returns False when that key was already refunded."""
        ...

    async def used(self, user_key: str, day: str) -> int:
        """Return the day's count."""
        ...


class AnalysisQueue(Protocol):
    """Hands analyses to the workers."""

    async def enqueue(self, analysis_id: str) -> None:
        """Queue one analysis for a worker."""
        ...


class Notifier(Protocol):
    """Sends what happens to an analysis to the chat it came from."""

    async def analysis_queued(self, analysis: Analysis) -> str | None:
        """Acknowledge a new request; returns the acknowledgement's message id when it has one."""
        ...

    async def analysis_done(self, analysis: Analysis) -> None:
        """Deliver the finished analysis, replacing the acknowledgement where possible."""
        ...

    async def analysis_failed(self, analysis: Analysis) -> None:
        """Tell the user the analysis failed and that the use was refunded."""
        ...


class ChartReader(Protocol):
    """Measures a chart image offline, before any model call."""

    async def read(self, image: ChartImage) -> ChartFindings:
        """Return what the image shows; raises ChartUnreadableError when it cannot be read at all."""
        ...


class ChartAnalyzer(Protocol):
    """Writes the analysis: the vision model, or the offline reading when no model is configured."""

    prompt_version: str

    async def analyze(
        self, images: Sequence[ChartImage], caption: str | None, findings: Sequence[ChartFindings]
    ) -> ModelAnswer:
        """Analyse the charts; `findings` holds the reader's measurements, one per image, or is empty.

        Raises TransientModelError or PermanentModelError.
        """
        ...


class Clock(Protocol):
    """Source of the current time, injected so tests can move it."""

    def __call__(self) -> datetime:
        """Return the current time in UTC, timezone-aware."""
        ...
