"""The job registry in Redis: one hash per job, index sets, and Lua scripts for every state change.

Keys, all under `chartbot:jobs:`:
  job:ID            hash with the record's fields
  name:N, state:S, owner:U, children:P   sets of job ids (the indexes)
  queued:N          sorted set of queued job ids by creation time, for queue positions
  due               sorted set of scheduled job ids by run time (epoch seconds)
  expires           sorted set of finished job ids by the time their record is removed
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from core.jobs import ANALYZE_TASK_NAME, IN_FLIGHT, JobKind, JobRecord, JobState, QueuedJob

logger = logging.getLogger(__name__)

PREFIX = "chartbot:jobs:"

# move(id, to_state, now, expires_at, allowed) changes one job's state and its indexes when its
# current state is one of `allowed`. It returns the previous state, or false when nothing changed.
_MOVE = """
local prefix = 'chartbot:jobs:'
local function move(id, to_state, now, expires_at, allowed)
  local key = prefix .. 'job:' .. id
  local fields = redis.call('HMGET', key, 'state', 'name', 'created_at')
  local state, name, created = fields[1], fields[2], fields[3]
  if not state then return false end
  local ok = false
  for _, candidate in ipairs(allowed) do
    if candidate == state then ok = true end
  end
  if not ok then return false end
  redis.call('HSET', key, 'state', to_state)
  redis.call('SREM', prefix .. 'state:' .. state, id)
  redis.call('SADD', prefix .. 'state:' .. to_state, id)
  if state == 'queued' then redis.call('ZREM', prefix .. 'queued:' .. name, id) end
  if state == 'scheduled' then redis.call('ZREM', prefix .. 'due', id) end
  if to_state == 'queued' then redis.call('ZADD', prefix .. 'queued:' .. name, created, id) end
  if to_state == 'running' then redis.call('HSET', key, 'started_at', now) end
  if to_state == 'completed' or to_state == 'failed' or to_state == 'cancelled' then
    redis.call('HSET', key, 'finished_at', now)
    redis.call('ZADD', prefix .. 'expires', expires_at, id)
  end
  return state
end
"""

# ARGV: id, to_state, now, expires_at, allowed states...
_TRANSITION = _MOVE + """
local allowed = {}
for i = 5, #ARGV do allowed[#allowed + 1] = ARGV[i] end
return move(ARGV[1], ARGV[2], ARGV[3], ARGV[4], allowed)
"""

# ARGV: id, now, expires_at. Cancels a scheduled or queued job, or flags a running one; returns its state.
_CANCEL = _MOVE + """
local key = prefix .. 'job:' .. ARGV[1]
local state = redis.call('HGET', key, 'state')
if not state then return false end
if state == 'running' then
  redis.call('HSET', key, 'cancel_requested', '1')
  return state
end
local previous = move(ARGV[1], 'cancelled', ARGV[2], ARGV[3], {'scheduled', 'queued'})
return previous or state
"""

# ARGV: id. Moves a due job from scheduled to queued unless another scheduler already took it.
_CLAIM_DUE = _MOVE + """
if redis.call('ZREM', prefix .. 'due', ARGV[1]) == 0 then return false end
return move(ARGV[1], 'queued', '', '', {'scheduled'})
"""

# ARGV: now, batch size. Deletes records whose retention ended; returns how many.
_REMOVE_EXPIRED = """
local prefix = 'chartbot:jobs:'
local ids = redis.call('ZRANGEBYSCORE', prefix .. 'expires', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  local key = prefix .. 'job:' .. id
  local f = redis.call('HMGET', key, 'name', 'state', 'owner', 'parent')
  if f[1] then redis.call('SREM', prefix .. 'name:' .. f[1], id) end
  if f[2] then redis.call('SREM', prefix .. 'state:' .. f[2], id) end
  if f[3] then redis.call('SREM', prefix .. 'owner:' .. f[3], id) end
  if f[4] then redis.call('SREM', prefix .. 'children:' .. f[4], id) end
  redis.call('DEL', key, prefix .. 'children:' .. id)
  redis.call('ZREM', prefix .. 'expires', id)
end
return #ids
"""


def _epoch(moment: datetime | None) -> str:
    return "" if moment is None else repr(moment.timestamp())


def _moment(value: bytes | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(float(value), UTC)


def _text(value: bytes | None) -> str | None:
    return None if not value else value.decode()


@dataclass(frozen=True)
class Retention:
    """Seconds a finished record is kept: completed and cancelled ones, and failed ones."""

    completed_seconds: float = 3600
    failed_seconds: float = 7 * 24 * 3600


class RedisJobRegistry:
    """The job records, their indexes and their state changes, shared by every process."""

    def __init__(self, redis: Redis, *, retention: Retention = Retention()) -> None:
        self.redis = redis
        self.retention = retention
        self._transition = redis.register_script(_TRANSITION)
        self._cancel = redis.register_script(_CANCEL)
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._remove_expired = redis.register_script(_REMOVE_EXPIRED)

    async def create(self, *, name: str, kind: JobKind, args: list[Any], job_id: str | None = None,
                     owner: str | None = None, parent: str | None = None, run_at: datetime | None = None) -> str:
        """Insert a record: scheduled when `run_at` is given, else queued. Returns the job id."""
        job_id = job_id or uuid.uuid4().hex
        now = time.time()
        state = JobState.SCHEDULED if run_at is not None else JobState.QUEUED
        fields = {"id": job_id, "name": name, "kind": kind.value, "state": state.value,
                  "created_at": repr(now), "args": json.dumps(args)}
        if owner:
            fields["owner"] = owner
        if parent:
            fields["parent"] = parent
        if run_at is not None:
            fields["run_at"] = _epoch(run_at)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(PREFIX + f"job:{job_id}", mapping=fields)
            pipe.sadd(PREFIX + f"name:{name}", job_id)
            pipe.sadd(PREFIX + f"state:{state.value}", job_id)
            if owner:
                pipe.sadd(PREFIX + f"owner:{owner}", job_id)
            if parent:
                pipe.sadd(PREFIX + f"children:{parent}", job_id)
            if run_at is None:
                pipe.zadd(PREFIX + f"queued:{name}", {job_id: now})
            else:
                pipe.zadd(PREFIX + "due", {job_id: run_at.timestamp()})
            await pipe.execute()
        return job_id

    def _expires_at(self, state: JobState) -> str:
        seconds = self.retention.failed_seconds if state is JobState.FAILED else self.retention.completed_seconds
        return repr(time.time() + seconds)

    async def transition(self, job_id: str, to_state: JobState, *allowed: JobState) -> JobState | None:
        """Move a job to `to_state` when it is in one of `allowed`; returns the previous state or None."""
        previous = await self._transition(
            args=[job_id, to_state.value, repr(time.time()), self._expires_at(to_state), *(s.value for s in allowed)]
        )
        return None if previous is None else JobState(previous.decode())

    async def start(self, job_id: str) -> bool:
        """Mark a queued job running; False when it was cancelled or has finished, so it must not run.

        A job already running is started again, because taskiq redelivers the job of a worker that died.
        """
        return await self.transition(job_id, JobState.RUNNING, JobState.QUEUED, JobState.RUNNING) is not None

    async def finish(self, job_id: str, *, failed: bool = False, result: str | None = None,
                     error: str | None = None) -> None:
        """Mark a running job completed or failed, with a short result or error."""
        details = {key: value[:500] for key, value in (("result", result), ("error", error)) if value}
        if details:
            await self.redis.hset(PREFIX + f"job:{job_id}", mapping=details)
        to_state = JobState.FAILED if failed else JobState.COMPLETED
        await self.transition(job_id, to_state, JobState.RUNNING)

    async def set_progress(self, job_id: str, progress: str) -> None:
        """Store a short progress note on a job."""
        await self.redis.hset(PREFIX + f"job:{job_id}", "progress", progress[:200])

    async def cancel(self, job_id: str) -> JobState | None:
        """Cancel a scheduled or queued job, or flag a running one to stop; returns the state it was in."""
        previous = await self._cancel(args=[job_id, repr(time.time()), self._expires_at(JobState.CANCELLED)])
        return None if previous is None else JobState(previous.decode())

    async def cancelled(self, job_id: str) -> bool:
        """Return True when the job was cancelled or a running job was asked to stop."""
        state, flag = await self.redis.hmget(PREFIX + f"job:{job_id}", "state", "cancel_requested")
        return flag == b"1" or state == JobState.CANCELLED.value.encode()

    async def cancel_children(self, parent: str) -> int:
        """Cancel every scheduled or queued child of `parent`; returns how many were cancelled."""
        cancelled = 0
        for child in await self.redis.smembers(PREFIX + f"children:{parent}"):
            previous = await self.transition(child.decode(), JobState.CANCELLED, JobState.SCHEDULED, JobState.QUEUED)
            cancelled += previous is not None
        return cancelled

    async def claim_due(self, job_id: str) -> bool:
        """Move a due scheduled job to queued; only one caller among many gets True."""
        return await self._claim_due(args=[job_id]) is not None

    async def due_ids(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Return ids of scheduled jobs whose run time has come."""
        ids = await self.redis.zrangebyscore(PREFIX + "due", "-inf", now.timestamp(), start=0, num=limit)
        return [i.decode() for i in ids]

    async def remove_expired(self, now: datetime, *, batch: int = 500) -> int:
        """Delete finished records whose retention has ended; returns how many were removed."""
        removed = 0
        while True:
            count = await self._remove_expired(args=[repr(now.timestamp()), batch])
            removed += count
            if count < batch:
                return removed

    async def get(self, job_id: str) -> JobRecord | None:
        """Return one job's record, or None."""
        raw = await self.redis.hgetall(PREFIX + f"job:{job_id}")
        return self._record(raw) if raw else None

    async def args(self, job_id: str) -> list[Any]:
        """Return the task arguments stored with the job."""
        raw = await self.redis.hget(PREFIX + f"job:{job_id}", "args")
        return json.loads(raw) if raw else []

    async def find(self, *, name: str | None = None, state: JobState | None = None, owner: str | None = None,
                   limit: int = 100) -> list[JobRecord]:
        """Return jobs matching every given filter, newest first, read through the index sets."""
        keys = []
        if name:
            keys.append(PREFIX + f"name:{name}")
        if state:
            keys.append(PREFIX + f"state:{state.value}")
        if owner:
            keys.append(PREFIX + f"owner:{owner}")
        if keys:
            ids = await self.redis.sinter(keys)
        else:
            ids = await self.redis.sunion([PREFIX + f"state:{s.value}" for s in JobState])
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(PREFIX + f"job:{job_id.decode()}")
            rows = await pipe.execute()
        records = [self._record(row) for row in rows if row]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[:limit]

    async def queue_position(self, job: JobRecord) -> int | None:
        """Return a queued job's place among queued jobs of its task (1 is next), or None."""
        rank = await self.redis.zrank(PREFIX + f"queued:{job.name}", job.id)
        return None if rank is None else rank + 1

    @staticmethod
    def _record(raw: dict[bytes, bytes]) -> JobRecord:
        return JobRecord(
            id=raw[b"id"].decode(),
            name=raw[b"name"].decode(),
            kind=JobKind(raw[b"kind"].decode()),
            state=JobState(raw[b"state"].decode()),
            created_at=_moment(raw[b"created_at"]),
            owner=_text(raw.get(b"owner")),
            parent=_text(raw.get(b"parent")),
            run_at=_moment(raw.get(b"run_at")),
            started_at=_moment(raw.get(b"started_at")),
            finished_at=_moment(raw.get(b"finished_at")),
            progress=_text(raw.get(b"progress")),
            result=_text(raw.get(b"result")),
            error=_text(raw.get(b"error")),
            cancel_requested=raw.get(b"cancel_requested") == b"1",
        )


class RedisJobControl:
    """JobControl on the Redis registry: records a job, then kicks its taskiq task by name."""

    def __init__(self, registry: RedisJobRegistry, broker: AsyncBroker) -> None:
        self.registry = registry
        self._broker = broker

    async def kick(self, job_id: str, name: str, args: list[Any]) -> None:
        """Send a queued job's task to the workers; a failed send marks the job failed and re-raises."""
        try:
            await AsyncKicker(task_name=name, broker=self._broker, labels={"job_id": job_id}).kiq(*args)
        except Exception as error:
            await self.registry.transition(job_id, JobState.FAILED, JobState.QUEUED)
            logger.error("job not sent to the queue job=%s task=%s error=%r", job_id, name, error)
            raise

    async def enqueue(self, name: str, args: list[Any], *, owner: str | None = None, parent: str | None = None,
                      job_id: str | None = None) -> str:
        """Record and queue a job now; returns its id."""
        job_id = await self.registry.create(name=name, kind=JobKind.IMMEDIATE, args=args, job_id=job_id,
                                            owner=owner, parent=parent)
        await self.kick(job_id, name, args)
        return job_id

    async def enqueue_at(self, name: str, args: list[Any], run_at: datetime, *, owner: str | None = None,
                         parent: str | None = None, job_id: str | None = None) -> str:
        """Record a job that the scheduler queues at `run_at` (UTC); returns its id."""
        return await self.registry.create(name=name, kind=JobKind.DELAYED, args=args, owner=owner,
                                          parent=parent, run_at=run_at, job_id=job_id)

    async def enqueue_analysis(self, analysis_id: str, *, owner: str) -> None:
        await self.enqueue(ANALYZE_TASK_NAME, [analysis_id], owner=owner, job_id=analysis_id)

    async def cancel(self, job_id: str) -> JobState | None:
        return await self.registry.cancel(job_id)

    async def queued_analyses(self) -> int:
        return await self.registry.redis.zcard(PREFIX + f"queued:{ANALYZE_TASK_NAME}")

    async def front_of_queue(self, limit: int) -> list[str]:
        """Return the ids of the first `limit` queued analysis jobs, first in line first."""
        ids = await self.registry.redis.zrange(PREFIX + f"queued:{ANALYZE_TASK_NAME}", 0, limit - 1)
        return [job_id.decode() for job_id in ids]

    async def in_flight(self, owner: str) -> list[QueuedJob]:
        records = [r for r in await self.registry.find(owner=owner) if r.state in IN_FLIGHT]
        records.sort(key=lambda r: r.created_at)
        return [QueuedJob(record=r, position=await self.registry.queue_position(r)) for r in records]
