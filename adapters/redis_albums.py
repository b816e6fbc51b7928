"""AlbumBuffer in Redis: the parts of each album, their last arrival time, and a marker once it is closed.

Arrival and close times come from Redis's clock (TIME inside the scripts), so
the bot processes' own clocks never decide when an album is quiet. Each album
has three keys under chartbot:album:{chat}:{media group}: `parts` (a hash of
part JSON by message id), `last` (the latest arrival in microseconds) and
`closed` (a set of the message ids the closed album took).
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.albums import AlbumClose, AlbumPart, CloseStatus, PartAdded

PREFIX = "chartbot:album:"
# Parts wait this long after the latest arrival before they are dropped unclosed.
OPEN_TTL_SECONDS = 600
# A closed album's message ids are kept this long, so that the bot can reply to a late part that it was left out.
CLOSED_TTL_SECONDS = 3600

# KEYS: parts, last, closed. ARGV: message id, part JSON, open TTL in ms.
_ADD = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 'duplicate'
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 'late'
end
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], string.format('%d', now_us), 'PX', ARGV[3])
return 'added'
"""

# KEYS: parts, last, closed. ARGV: quiet time in microseconds, closed TTL in ms.
# The EXISTS check and the SADD run in one script, so only one caller ever sees 'closed'.
_CLOSE = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {'taken'}
end
local last = redis.call('GET', KEYS[2])
local ids = redis.call('HKEYS', KEYS[1])
if not last or #ids == 0 then
  return {'expired'}
end
local now = redis.call('TIME')
local quiet_for = tonumber(now[1]) * 1000000 + tonumber(now[2]) - tonumber(last)
if quiet_for < tonumber(ARGV[1]) then
  return {'open', string.format('%d', tonumber(ARGV[1]) - quiet_for)}
end
local parts = redis.call('HVALS', KEYS[1])
redis.call('SADD', KEYS[3], unpack(ids))
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[1], KEYS[2])
return {'closed', parts}
"""


def _keys(chat_id: str, media_group_id: str) -> list[str]:
    base = f"{PREFIX}{chat_id}:{media_group_id}"
    return [f"{base}:parts", f"{base}:last", f"{base}:closed"]


class RedisAlbumBuffer:
    """Album parts shared by every bot process; nothing is kept in the process."""

    def __init__(self, redis: Redis, *, open_ttl_seconds: float = OPEN_TTL_SECONDS,
                 closed_ttl_seconds: float = CLOSED_TTL_SECONDS) -> None:
        self.redis = redis
        self._open_ttl_ms = max(1, int(open_ttl_seconds * 1000))
        self._closed_ttl_ms = max(1, int(closed_ttl_seconds * 1000))
        self._add = redis.register_script(_ADD)
        self._close = redis.register_script(_CLOSE)

    async def add(self, part: AlbumPart) -> PartAdded:
        result = await self._add(keys=_keys(part.chat_id, part.media_group_id),
                                 args=[part.message_id, part.model_dump_json(), self._open_ttl_ms])
        return PartAdded(result.decode() if isinstance(result, bytes) else result)

    async def close(self, chat_id: str, media_group_id: str, *, quiet_seconds: float) -> AlbumClose:
        quiet_us = max(1, int(quiet_seconds * 1_000_000))
        result = await self._close(keys=_keys(chat_id, media_group_id), args=[quiet_us, self._closed_ttl_ms])
        status = CloseStatus(result[0].decode() if isinstance(result[0], bytes) else result[0])
        if status is CloseStatus.OPEN:
            return AlbumClose(status, wait_seconds=int(result[1]) / 1_000_000)
        if status is not CloseStatus.CLOSED:
            return AlbumClose(status)
        parts = [AlbumPart.model_validate_json(value) for value in result[1]]
        return AlbumClose(status, parts=sorted(parts, key=lambda part: part.message_id))
