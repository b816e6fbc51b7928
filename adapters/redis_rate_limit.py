"""The model's rate limit shared by every worker process: requests and tokens per window, in Redis.

A sliding-window log: each admitted call is a member of a sorted set scored
by its admission time (Redis's own clock, so every process agrees), with its
token count in a hash. A call is admitted when the calls and tokens of the
last window leave room for it. Otherwise the script returns how long until
the oldest calls leave the window, and the caller sleeps that long. A 429
from the model pauses every worker until its Retry-After has passed.

Tokens are counted the way OpenAI counts them for its limit: the estimated
input plus the whole `max_completion_tokens`, kept even when the completion is
shorter. A call whose real input came out above the estimate is raised to it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from redis.asyncio import Redis

logger = logging.getLogger(__name__)

PREFIX = "chartbot:model-rate:"
# Added to the window so a call admitted at the window's edge cannot reach the model
# before the call it replaces has left the model's own window.
# NOTE: 250 ms is a guess at how late a call reaches the model after admission; 100 ms met a 429
# against the fake model under load, and 250 ms leaves 94% of a 15 s window's allowance used.
EDGE_MARGIN_MS = 250
MAX_SLEEP_SECONDS = 1.0

# KEYS: calls (zset), tokens (hash), pause (string). ARGV: ticket, tokens, requests limit, tokens limit, window ms.
# Returns 0 when admitted, else milliseconds to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[5])
local pause = tonumber(redis.call('GET', KEYS[3]) or '0')
if pause > now then return pause - now end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local wanted = tonumber(ARGV[2])
if count >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now + 1)
end
local used = 0
for _, value in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(value) end
local limit = tonumber(ARGV[4])
if count > 0 and used + wanted > limit then
  local calls = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #calls, 2 do
    used = used - tonumber(redis.call('HGET', KEYS[2], calls[i]) or '0')
    if used + wanted <= limit then return math.max(1, tonumber(calls[i + 1]) + window - now + 1) end
  end
  return window
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], wanted)
redis.call('PEXPIRE', KEYS[1], window * 2)
redis.call('PEXPIRE', KEYS[2], window * 2)
return 0
"""

# KEYS: tokens (hash). ARGV: ticket, tokens. Raises a call's tokens when it is still in the window.
_SETTLE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(ARGV[2]) > tonumber(current) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

# KEYS: pause. ARGV: milliseconds. Moves the pause's end later, never earlier.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return 1
"""


class RedisModelRateLimit:
    """ModelRateLimit over Redis; one instance per process, every process on the same keys."""

    def __init__(self, redis: Redis, *, requests_per_window: int, tokens_per_window: int,
                 window_seconds: float = 60.0, name: str = "openai") -> None:
        self.redis = redis
        self.requests_per_window = requests_per_window
        self.tokens_per_window = tokens_per_window
        self.window_ms = int(window_seconds * 1000) + EDGE_MARGIN_MS
        self._keys = [PREFIX + f"{name}:calls", PREFIX + f"{name}:tokens", PREFIX + f"{name}:pause"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)
        self._pause = redis.register_script(_PAUSE)
        self.waited_seconds = 0.0

    async def acquire(self, tokens: int) -> str:
        """Wait until a call of `tokens` fits in the window; returns its ticket."""
        ticket = uuid.uuid4().hex
        # A call bigger than the whole allowance still runs, alone in its window.
        tokens = min(tokens, self.tokens_per_window)
        while True:
            wait_ms = int(await self._acquire(
                keys=self._keys,
                args=[ticket, tokens, self.requests_per_window, self.tokens_per_window, self.window_ms],
            ))
            if wait_ms == 0:
                return ticket
            # Sleep in short steps so calls admitted in between are seen and no caller oversleeps.
            seconds = min(wait_ms / 1000, MAX_SLEEP_SECONDS)
            self.waited_seconds += seconds
            await asyncio.sleep(seconds)

    async def settle(self, ticket: str, tokens: int) -> None:
        """Raise the call's counted tokens to `tokens` when its real size came out larger."""
        await self._settle(keys=[self._keys[1]], args=[ticket, tokens])

    async def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (the model's Retry-After)."""
        await self._pause(keys=[self._keys[2]], args=[max(1, int(seconds * 1000))])
        logger.warning("model rate limited; every worker waits %.1fs before its next call", seconds)
