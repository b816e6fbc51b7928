"""Daily usage counters in Redis, checked and incremented by one Lua script so that
concurrent requests from any number of processes never pass the limit."""

from __future__ import annotations

from redis.asyncio import Redis

KEY_PREFIX = "chartbot:usage"
# A day's counter outlives the day, so a refund that arrives after midnight still finds it.
COUNTER_TTL_SECONDS = 2 * 24 * 3600
REFUND_MARKER_TTL_SECONDS = 8 * 24 * 3600

_RESERVE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = tonumber(ARGV[1])
if current + units > tonumber(ARGV[2]) then
    return {0, current}
end
local after = redis.call('INCRBY', KEYS[1], units)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, after}
"""

_REFUND = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
    return 0
end
local after = redis.call('DECRBY', KEYS[1], ARGV[1])
if after <= 0 then
    redis.call('DEL', KEYS[1])
end
return 1
"""


class RedisUsageCounter:
    """UsageCounter on Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._refund = redis.register_script(_REFUND)

    @staticmethod
    def _count_key(user_key: str, day: str) -> str:
        return f"{KEY_PREFIX}:day:{user_key}:{day}"

    async def reserve(self, user_key: str, day: str, *, units: int, limit: int) -> tuple[bool, int]:
        admitted, count = await self._reserve(
            keys=[self._count_key(user_key, day)], args=[units, limit, COUNTER_TTL_SECONDS]
        )
        return bool(admitted), int(count)

    async def refund(self, user_key: str, day: str, *, units: int, refund_key: str) -> bool:
        done = await self._refund(
            keys=[self._count_key(user_key, day), f"{KEY_PREFIX}:refunded:{refund_key}"],
            args=[units, REFUND_MARKER_TTL_SECONDS],
        )
        return bool(done)

    async def used(self, user_key: str, day: str) -> int:
        value = await self._redis.get(self._count_key(user_key, day))
        return int(value or 0)
