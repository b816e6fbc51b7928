"""Chat albums: the parts of one album arrive as separate updates, possibly at different bot processes.

Each process that receives a part adds it to a shared AlbumBuffer, waits out
the quiet time and then tries to close the album. The buffer closes an album
once, and only after no part arrived for the quiet time, so exactly one of
those processes gets every part and submits the analysis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from core.ports import AlbumBuffer

logger = logging.getLogger(__name__)


class AlbumPart(BaseModel):
    """One photo or file of an album, as the chat adapter received it, before it is downloaded."""

    chat_id: str
    media_group_id: str
    message_id: int
    user_id: str
    kind: Literal["photo", "document"]
    file_id: str
    file_size: int | None = Field(default=None, description="bytes, as the platform reported it")
    mime_type: str | None = Field(default=None, description="declared type of a document")
    caption: str | None = None


class PartAdded(str, Enum):
    """Outcome of adding a part to the buffer."""

    ADDED = "added"
    LATE = "late"
    DUPLICATE = "duplicate"


class CloseStatus(str, Enum):
    """Result of one attempt to close an album."""

    CLOSED = "closed"
    OPEN = "open"
    TAKEN = "taken"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AlbumClose:
    """One close attempt: the parts in message order when this call closed the album.

    OPEN means a part arrived less than the quiet time ago and `wait_seconds`
    remain. TAKEN means another call closed it already, and EXPIRED means its
    parts were dropped after the buffer's retention time.
    """

    status: CloseStatus
    parts: list[AlbumPart] = field(default_factory=list)
    wait_seconds: float = 0.0


class AlbumRole(str, Enum):
    """Next step for the caller that added a part."""

    SUBMIT = "submit"
    NOTHING = "nothing"
    LATE = "late"


@dataclass(frozen=True)
class AlbumCollection:
    """The caller's role for its part, and the whole album when the role is SUBMIT."""

    role: AlbumRole
    parts: list[AlbumPart] = field(default_factory=list)


async def collect_album(
    buffer: AlbumBuffer,
    part: AlbumPart,
    *,
    quiet_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AlbumCollection:
    """Add `part` to its album, wait until the album is quiet, and try to close it.

    Returns SUBMIT with every part for the one caller that closed the album,
    NOTHING for the others, and LATE when the album was closed before `part`
    arrived. A caller keeps trying while parts keep arriving, so the album
    closes even when the process that received its last part has stopped.
    """
    added = await buffer.add(part)
    if added is PartAdded.LATE:
        logger.info("album part arrived after the album closed chat=%s album=%s message=%s",
                    part.chat_id, part.media_group_id, part.message_id)
        return AlbumCollection(AlbumRole.LATE)
    if added is PartAdded.DUPLICATE:
        logger.info("album part delivered again chat=%s album=%s message=%s",
                    part.chat_id, part.media_group_id, part.message_id)
        return AlbumCollection(AlbumRole.NOTHING)

    wait = quiet_seconds
    while True:
        await sleep(wait)
        attempt = await buffer.close(part.chat_id, part.media_group_id, quiet_seconds=quiet_seconds)
        if attempt.status is CloseStatus.CLOSED:
            logger.info("album closed chat=%s album=%s parts=%d by_message=%s", part.chat_id,
                        part.media_group_id, len(attempt.parts), part.message_id)
            return AlbumCollection(AlbumRole.SUBMIT, attempt.parts)
        if attempt.status is CloseStatus.TAKEN:
            return AlbumCollection(AlbumRole.NOTHING)
        if attempt.status is CloseStatus.EXPIRED:
            logger.warning("album expired before it was closed chat=%s album=%s message=%s",
                           part.chat_id, part.media_group_id, part.message_id)
            return AlbumCollection(AlbumRole.NOTHING)
        wait = attempt.wait_seconds
