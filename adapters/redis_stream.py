"""A taskiq broker on one Redis stream that removes what it processed and reclaims what a dead worker left.

It replaces the RedisStreamBroker of taskiq-redis 1.2.4. That broker
acknowledges with XACK only, so the stream grows forever, and its MAXLEN
trims entries whether or not they were processed. Its XAUTOCLAIM lock has no
timeout by default, so a killed worker can keep it, and it hands a live
worker's long job to a second worker once the job passes the idle timeout.
Here:

- acknowledging is XACK and XDEL in one script, and nothing trims the stream,
  so processed entries go away and the backlog is never cut;
- each worker process reads under its own consumer name, one entry per free
  slot (taskiq's receiver requests the next entry only when it can start it);
- a heartbeat re-claims this worker's own entries every few seconds, so an
  entry's idle time grows only when its worker is dead or frozen;
- any worker takes over entries idle for longer than the reclaim time with
  XAUTOCLAIM, which is atomic, so no lock is needed;
- on stop, entries this worker received but did not finish are put back at
  the end of the stream at once instead of waiting for the reclaim time;
- a task that raised (its work lost to a database or network error) is not
  acknowledged: its entry is taken again after the reclaim time, and after
  MAX_DELIVERIES deliveries it moves to the dead-letter stream STREAM:dead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

logger = logging.getLogger(__name__)

# KEYS: stream. ARGV: group, id. Acknowledges an entry and deletes it from the stream.
_ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""

# KEYS: stream. ARGV: group, consumer, ids... Resets the idle time of the ids this consumer still owns.
# Returns the ids it no longer owns.
_HEARTBEAT = """
local lost = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""

# KEYS: stream. ARGV: group, consumer, ids... Puts the consumer's unfinished entries back at the
# end of the stream as new entries, so another worker takes them now. Returns how many it put back.
_HAND_BACK = """
local count = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    if entry[1] then
      redis.call('XADD', KEYS[1], '*', unpack(entry[1][2]))
      count = count + 1
    end
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return count
"""

DATA_FIELD = b"data"
MAX_DELIVERIES = 5
GONE_CONSUMER_MS = 3600 * 1000


@dataclass(frozen=True)
class StreamTimings:
    """Seconds that set how fast a dead worker's job moves on, and how often Redis is asked."""

    reclaim_seconds: float = 60.0
    block_seconds: float = 1.0

    @property
    def idle_limit_ms(self) -> int:
        """Idle time after which any worker takes an entry over: the reclaim time less one check interval."""
        return max(1, int((self.reclaim_seconds - self.check_seconds) * 1000))

    @property
    def check_seconds(self) -> float:
        """How often a worker looks for entries to take over."""
        return self.reclaim_seconds / 5

    @property
    def heartbeat_seconds(self) -> float:
        """How often a worker resets the idle time of the entries it is running."""
        return self.reclaim_seconds / 8


def consumer_name() -> str:
    """Return a consumer name unique to this process (host, pid, random suffix), readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ReliableStreamBroker(AsyncBroker):
    """taskiq broker over a Redis stream and consumer group; see the module docstring for its guarantees."""

    def __init__(self, url: str, *, stream: str, group: str, timings: StreamTimings = StreamTimings(),
                 max_connections: int = 50) -> None:
        super().__init__()
        self.stream = stream
        self.group = group
        self.timings = timings
        self.consumer = consumer_name()
        self._pool = ConnectionPool.from_url(url, max_connections=max_connections)
        self.redis = Redis(connection_pool=self._pool)
        self._ack_script = self.redis.register_script(_ACK)
        self._heartbeat_script = self.redis.register_script(_HEARTBEAT)
        self._hand_back_script = self.redis.register_script(_HAND_BACK)
        self._in_flight: set[str] = set()
        self._entry_of_task: dict[str, str] = {}
        self._retry_later: set[str] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.acknowledged = 0
        self.handed_back = 0
        self.reclaimed = 0
        self.dead_lettered = 0

    async def startup(self) -> None:
        """Create the consumer group (from the stream's start, so jobs queued before it are delivered)."""
        await super().startup()
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def shutdown(self) -> None:
        """Hand back unfinished entries, leave the group and close the connections."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        if self.is_worker_process:
            await self._hand_back()
            await self._leave_group()
        await super().shutdown()
        await self.redis.aclose()
        await self._pool.disconnect()

    async def kick(self, message: BrokerMessage) -> None:
        """Append one task message to the stream; nothing trims it."""
        await self.redis.xadd(self.stream, {DATA_FIELD: message.message})

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield one entry at a time: first entries a dead worker left, then new ones."""
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        next_check = 0.0
        cursor = "0-0"
        while True:
            entry = None
            if time.monotonic() >= next_check:
                entry, cursor = await self._claim_idle(cursor)
                if cursor == "0-0" and entry is None:
                    next_check = time.monotonic() + self.timings.check_seconds
                    await self._prune_consumers()
            if entry is None:
                entry = await self._read_new()
            if entry is not None:
                yield self._deliver(*entry)

    def _deliver(self, entry_id: str, data: bytes) -> AckableMessage:
        self._in_flight.add(entry_id)
        task_id = _task_id(data)
        if task_id is not None:
            self._entry_of_task[task_id] = entry_id

        async def ack() -> None:
            if task_id is not None:
                self._entry_of_task.pop(task_id, None)
            if entry_id in self._retry_later:
                # Left pending without heartbeats: any worker takes it again after the reclaim time.
                self._retry_later.discard(entry_id)
                self._in_flight.discard(entry_id)
                return
            await self._ack_script(keys=[self.stream], args=[self.group, entry_id])
            self._in_flight.discard(entry_id)
            self.acknowledged += 1

        return AckableMessage(data=data, ack=ack)

    def retry_later(self, task_id: str) -> None:
        """Leave the entry of a task that raised unacknowledged, so it runs again after the reclaim time."""
        entry_id = self._entry_of_task.get(task_id)
        if entry_id is not None:
            self._retry_later.add(entry_id)
            logger.warning("task failed; it runs again after %gs entry=%s task=%s",
                           self.timings.reclaim_seconds, entry_id, task_id)

    async def _read_new(self) -> tuple[str, bytes] | None:
        block_ms = int(self.timings.block_seconds * 1000)
        answer = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=1, block=block_ms)
        for _, entries in answer or []:
            for entry_id, fields in entries:
                return _entry(entry_id, fields)
        return None

    async def _claim_idle(self, cursor: str) -> tuple[tuple[str, bytes] | None, str]:
        """Take over one entry idle past the limit; returns it (or None) and the next cursor."""
        answer = await self.redis.xautoclaim(self.stream, self.group, self.consumer,
                                             min_idle_time=self.timings.idle_limit_ms, start_id=cursor, count=1)
        next_cursor, claimed = _text(answer[0]), answer[1]
        deleted = answer[2] if len(answer) > 2 else []
        if deleted:
            # Entries deleted from the stream while still pending: nothing to run, only the pending record.
            await self.redis.xack(self.stream, self.group, *deleted)
        for entry_id, fields in claimed:
            if fields is None:
                continue
            entry = _entry(entry_id, fields)
            if await self._dead_letter_if_spent(entry):
                continue
            self.reclaimed += 1
            logger.warning("took over a job another worker left unfinished entry=%s consumer=%s",
                           entry[0], self.consumer)
            return entry, next_cursor
        return None, next_cursor

    async def _dead_letter_if_spent(self, entry: tuple[str, bytes]) -> bool:
        """Move an entry delivered MAX_DELIVERIES times to STREAM:dead; True when it moved."""
        entry_id, data = entry
        pending = await self.redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        if not pending or pending[0]["times_delivered"] <= MAX_DELIVERIES:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(f"{self.stream}:dead", {DATA_FIELD: data, b"entry": entry_id,
                                              b"deliveries": pending[0]["times_delivered"]})
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()
        self.dead_lettered += 1
        logger.error("job moved to the dead-letter stream after %d deliveries entry=%s task=%s stream=%s:dead",
                     pending[0]["times_delivered"], entry_id, _task_id(data), self.stream)
        return True

    async def _prune_consumers(self) -> None:
        """Remove consumers of workers gone for an hour that hold no entries, so the group's list stays short."""
        try:
            consumers = await self.redis.xinfo_consumers(self.stream, self.group)
            for consumer in consumers:
                name = _text(consumer["name"])
                if name != self.consumer and consumer["pending"] == 0 and consumer["idle"] > GONE_CONSUMER_MS:
                    await self.redis.xgroup_delconsumer(self.stream, self.group, name)
        except Exception:
            logger.exception("could not prune the consumer group consumer=%s", self.consumer)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.timings.heartbeat_seconds)
            ids = sorted(self._in_flight)
            if not ids:
                continue
            try:
                lost = await self._heartbeat_script(keys=[self.stream], args=[self.group, self.consumer, *ids])
            except Exception:
                logger.exception("heartbeat failed consumer=%s jobs=%d", self.consumer, len(ids))
                continue
            for entry_id in lost:
                logger.warning("a job this worker is running was taken over by another worker entry=%s", _text(entry_id))

    async def _hand_back(self) -> None:
        ids = sorted(self._in_flight)
        if not ids:
            logger.info("stream consumer stopping consumer=%s acknowledged=%d handed_back=0",
                        self.consumer, self.acknowledged)
            return
        try:
            count = await self._hand_back_script(keys=[self.stream], args=[self.group, self.consumer, *ids])
        except Exception:
            logger.exception("could not hand back unfinished jobs; another worker takes them after %gs "
                             "consumer=%s jobs=%d", self.timings.reclaim_seconds, self.consumer, len(ids))
            return
        self.handed_back += int(count)
        self._in_flight.clear()
        logger.info("stream consumer stopping consumer=%s acknowledged=%d handed_back=%d",
                    self.consumer, self.acknowledged, self.handed_back)

    async def _leave_group(self) -> None:
        try:
            pending = await self.redis.xpending_range(self.stream, self.group, min="-", max="+", count=1,
                                                      consumername=self.consumer)
            if not pending:
                await self.redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
        except Exception:
            logger.exception("could not leave the consumer group consumer=%s", self.consumer)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _task_id(data: bytes) -> str | None:
    try:
        return json.loads(data).get("task_id")
    except (ValueError, AttributeError):
        return None


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> tuple[str, bytes]:
    return _text(entry_id), fields[DATA_FIELD]
