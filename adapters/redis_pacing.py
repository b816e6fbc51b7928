"""Message pacing per chat and for the whole bot, shared by every process through Redis.

Telegram accepts about one message per second in a private chat and twenty
per minute in a group, and about thirty per second for the whole bot. Final
replies wait for their chat's turn; progress edits also need a place in a
bot-wide budget per second and are skipped without one.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

PREFIX = "chartbot:pace:"


class ChatPacer:
    """Spaces the messages sent to one chat, and caps progress edits across all chats."""

    def __init__(self, redis: Redis, *, private_seconds: float = 1.0, group_seconds: float = 3.0,
                 progress_per_second: int = 20) -> None:
        self.redis = redis
        self.private_seconds = private_seconds
        self.group_seconds = group_seconds
        self.progress_per_second = progress_per_second

    def interval(self, chat_id: str) -> float:
        """Seconds between two messages in the chat; Telegram's group and channel ids are negative."""
        return self.group_seconds if chat_id.startswith("-") else self.private_seconds

    async def try_take(self, chat_id: str) -> float:
        """Take the chat's turn now and return 0, or return the seconds until it is free."""
        milliseconds = int(self.interval(chat_id) * 1000)
        if milliseconds <= 0:
            return 0.0
        key = PREFIX + f"chat:{chat_id}"
        if await self.redis.set(key, b"1", nx=True, px=milliseconds):
            return 0.0
        remaining = await self.redis.pttl(key)
        return max(remaining, 1) / 1000

    async def take(self, chat_id: str) -> None:
        """Wait for the chat's turn and take it."""
        while (wait := await self.try_take(chat_id)) > 0:
            await asyncio.sleep(wait)

    async def progress_allowed(self) -> bool:
        """Count one progress edit against this second's bot-wide budget; False when it is spent."""
        key = PREFIX + f"progress:{int(time.time())}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2)
            count, _ = await pipe.execute()
        return count <= self.progress_per_second
