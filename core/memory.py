"""In-memory implementations of the core's ports, for unit tests and the demo.

They keep state in one process, so they are never used where several bot or
worker processes run side by side.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from core.models import Analysis, ImageInfo


class InMemoryAnalysisRepository:
    """Analysis records in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, Analysis] = {}

    async def add(self, analysis: Analysis) -> None:
        if analysis.id in self.records:
            raise KeyError(f"analysis {analysis.id} already exists")
        self.records[analysis.id] = analysis

    async def get(self, analysis_id: str) -> Analysis | None:
        return self.records.get(analysis_id)

    async def update(self, analysis_id: str, changes: dict[str, Any]) -> None:
        current = self.records[analysis_id]
        self.records[analysis_id] = Analysis.model_validate({**current.model_dump(), **changes})

    async def list_for_user(self, platform: str, user_id: str, *, limit: int) -> list[Analysis]:
        mine = [a for a in self.records.values() if a.platform.value == platform and a.user_id == user_id]
        mine.sort(key=lambda a: a.created_at, reverse=True)
        return mine[:limit]


class InMemoryImageStore:
    """Image bytes in a dict."""

    def __init__(self) -> None:
        self.images: dict[str, tuple[ImageInfo, bytes]] = {}

    async def put(self, image_id: str, info: ImageInfo, data: bytes) -> None:
        self.images[image_id] = (info, data)

    async def get(self, image_id: str) -> bytes:
        return self.images[image_id][1]

    async def delete(self, image_id: str) -> None:
        self.images.pop(image_id, None)


class InMemoryUsageCounter:
    """Daily counts in a dict; atomic because one event loop runs each call to the end."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.refunded: set[str] = set()

    async def reserve(self, user_key: str, day: str, *, units: int, limit: int) -> tuple[bool, int]:
        current = self.counts[(user_key, day)]
        if current + units > limit:
            return False, current
        self.counts[(user_key, day)] = current + units
        return True, current + units

    async def refund(self, user_key: str, day: str, *, units: int, refund_key: str) -> bool:
        if refund_key in self.refunded:
            return False
        self.refunded.add(refund_key)
        self.counts[(user_key, day)] = max(0, self.counts[(user_key, day)] - units)
        return True

    async def used(self, user_key: str, day: str) -> int:
        return self.counts[(user_key, day)]
