"""The ImageStore port on a local folder, for the demo and for running without Cloudinary or GridFS."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from core.models import ImageInfo

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class LocalImageStore:
    """Images as files named after their id in one folder."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, image_id: str) -> Path:
        if not _SAFE_ID.match(image_id):
            raise ValueError(f"invalid image id {image_id!r}: use letters, digits, - and _")
        return self._folder / image_id

    async def put(self, image_id: str, info: ImageInfo, data: bytes) -> None:
        await asyncio.to_thread(self._path(image_id).write_bytes, data)

    async def get(self, image_id: str) -> bytes:
        path = self._path(image_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as error:
            raise KeyError(image_id) from error

    async def delete(self, image_id: str) -> None:
        self._path(image_id).unlink(missing_ok=True)
