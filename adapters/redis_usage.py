"""Usage counters in Redis: Lua scripts check both limits and count in one step,
so concurrent requests from any number of processes never pass a limit."""

from __future__ import annotations

from redis.asyncio import Redis

from core.usage_records import CounterState, CounterWindow, ReserveOutcome

KEY_PREFIX = "chartbot:usage"
REFUND_MARKER_TTL_SECONDS = 40 * 24 * 3600

# KEYS: loaded marker, day, period, total, bonus.
# ARGV: units, daily limit (-1 for none), period limit, day TTL, period TTL.
# Returns {-1} when the period's counters are not loaded, else
# {admitted, day, period, total, bonus, refused_by (0 none, 1 daily, 2 period)}.
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {-1}
end
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
local period = tonumber(redis.call('GET', KEYS[3]) or '0')
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
local bonus = tonumber(redis.call('GET', KEYS[5]) or '0')
local units = tonumber(ARGV[1])
local daily_limit = tonumber(ARGV[2])
if daily_limit >= 0 and day + units > daily_limit then
    return {0, day, period, total, bonus, 1}
end
if period + units > tonumber(ARGV[3]) + bonus then
    return {0, day, period, total, bonus, 2}
end
day = redis.call('INCRBY', KEYS[2], units)
redis.call('EXPIRE', KEYS[2], ARGV[4])
period = redis.call('INCRBY', KEYS[3], units)
redis.call('EXPIRE', KEYS[3], ARGV[5])
total = redis.call('INCRBY', KEYS[4], units)
return {1, day, period, total, bonus, 0}
"""

# KEYS: refund marker, day, period, total. ARGV: units, marker TTL.
# A counter whose key is gone (its day or period ended) is left alone.
_REFUND = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
    return 0
end
for i = 2, 4 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        if redis.call('DECRBY', KEYS[i], ARGV[1]) < 0 then
            redis.call('SET', KEYS[i], 0, 'KEEPTTL')
        end
    end
end
return 1
"""

# KEYS: loaded marker, day, period, total, bonus. ARGV: day, period, total, bonus, day TTL, period TTL.
_LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[5])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[6])
redis.call('SET', KEYS[4], ARGV[3])
redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[6])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[6])
return 1
"""

# KEYS: loaded marker, bonus. ARGV: units, period TTL.
_ADD_BONUS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('INCRBY', KEYS[2], ARGV[1])
    redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


def _keys(window: CounterWindow) -> list[str]:
    base = f"{KEY_PREFIX}:{window.user_key}"
    return [
        f"{base}:loaded:{window.period}",
        f"{base}:day:{window.day}",
        f"{base}:period:{window.period}",
        f"{base}:total",
        f"{base}:bonus:{window.period}",
    ]


class RedisUsageCounters:
    """UsageCounters on Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._refund = redis.register_script(_REFUND)
        self._load = redis.register_script(_LOAD)
        self._add_bonus = redis.register_script(_ADD_BONUS)

    async def reserve(self, window: CounterWindow, *, units: int, daily_limit: int | None,
                      period_limit: int) -> ReserveOutcome:
        result = await self._reserve(
            keys=_keys(window),
            args=[units, -1 if daily_limit is None else daily_limit, period_limit,
                  window.day_ttl_seconds, window.period_ttl_seconds],
        )
        if int(result[0]) == -1:
            return ReserveOutcome(loaded=False)
        state = CounterState(day=int(result[1]), period=int(result[2]), total=int(result[3]), bonus=int(result[4]))
        refused_by = {0: None, 1: "daily", 2: "period"}[int(result[5])]
        return ReserveOutcome(loaded=True, admitted=bool(int(result[0])), refused_by=refused_by, state=state)

    async def refund(self, window: CounterWindow, *, units: int, refund_key: str) -> bool:
        marker = f"{KEY_PREFIX}:refunded:{refund_key}"
        keys = _keys(window)
        done = await self._refund(keys=[marker, keys[1], keys[2], keys[3]], args=[units, REFUND_MARKER_TTL_SECONDS])
        return bool(done)

    async def read(self, window: CounterWindow) -> CounterState | None:
        marker, day, period, total, bonus = await self._redis.mget(_keys(window))
        if marker is None:
            return None
        return CounterState(day=int(day or 0), period=int(period or 0), total=int(total or 0), bonus=int(bonus or 0))

    async def load(self, window: CounterWindow, state: CounterState) -> bool:
        done = await self._load(
            keys=_keys(window),
            args=[state.day, state.period, state.total, state.bonus, window.day_ttl_seconds,
                  window.period_ttl_seconds],
        )
        return bool(done)

    async def add_bonus(self, window: CounterWindow, *, units: int) -> None:
        keys = _keys(window)
        await self._add_bonus(keys=[keys[0], keys[4]], args=[units, window.period_ttl_seconds])
