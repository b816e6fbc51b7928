"""ReplyLocks in Redis: SET NX with a lease, released only by the token that took it."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

PREFIX = "chartbot:reply-lock:"

# KEYS: lock. ARGV: token. Deletes the lock only when the token still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisReplyLocks:
    """One lease per analysis id, shared by every worker process."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, analysis_id: str, *, lease_seconds: float) -> str | None:
        token = uuid.uuid4().hex
        taken = await self.redis.set(PREFIX + analysis_id, token, nx=True, px=max(1, int(lease_seconds * 1000)))
        return token if taken else None

    async def release(self, analysis_id: str, token: str) -> None:
        await self._release(keys=[PREFIX + analysis_id], args=[token])
