"""Guided journal drafts in Redis, so any bot process can take the next answer."""

from __future__ import annotations

from redis.asyncio import Redis

from core.journal.guided import GuidedDraft
from core.journal.models import Owner

KEY_PREFIX = "chartbot:journal:draft"
# An unfinished guided entry is dropped after an hour without an answer.
DRAFT_TTL_SECONDS = 3600


class RedisGuidedDraftStore:
    """GuidedDraftStore on Redis: one JSON value per user, expiring DRAFT_TTL_SECONDS after the last answer."""

    def __init__(self, redis: Redis, *, ttl_seconds: int = DRAFT_TTL_SECONDS) -> None:
        self._redis = redis
        self._ttl_seconds = ttl_seconds

    @staticmethod
    def _key(owner: Owner) -> str:
        return f"{KEY_PREFIX}:{owner.key}"

    async def get(self, owner: Owner) -> GuidedDraft | None:
        value = await self._redis.get(self._key(owner))
        return None if value is None else GuidedDraft.model_validate_json(value)

    async def put(self, owner: Owner, draft: GuidedDraft) -> None:
        await self._redis.set(self._key(owner), draft.model_dump_json(), ex=self._ttl_seconds)

    async def delete(self, owner: Owner) -> bool:
        return bool(await self._redis.delete(self._key(owner)))
