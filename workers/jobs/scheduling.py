"""Delayed and recurring jobs: the schedules in Redis and the scheduler loop that fires them.

Any number of schedulers may run. A delayed job is claimed by one of them through the registry's
atomic scheduled-to-queued move, and a cron run through a Redis SET NX on (schedule key, minute).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pycron
from redis.asyncio import Redis

from adapters.redis_jobs import PREFIX, RedisJobControl
from core.jobs import JobKind

logger = logging.getLogger(__name__)

SCHEDULES_KEY = PREFIX + "schedules"
# A fired-run marker outlives the minute it marks, so a scheduler with a lagging clock cannot fire it again.
FIRED_MARKER_SECONDS = 3600


class InvalidCron(ValueError):
    """A cron expression pycron cannot parse."""

    def __init__(self, cron: str) -> None:
        super().__init__(f"invalid cron expression {cron!r}: expected five fields, e.g. '*/10 * * * *'")
        self.cron = cron


@dataclass(frozen=True)
class Schedule:
    """A recurring job: its stable key, cron expression (UTC, minute resolution), task and arguments."""

    key: str
    cron: str
    task: str
    args: tuple = ()
    owner: str | None = None


def check_cron(cron: str) -> None:
    """Raise InvalidCron unless `cron` has five fields that pycron accepts."""
    if len(cron.split()) != 5:
        raise InvalidCron(cron)
    try:
        pycron.is_now(cron, datetime(2026, 1, 1, tzinfo=UTC))
    except Exception as error:
        raise InvalidCron(cron) from error


class RecurringSchedules:
    """Recurring schedules stored in one Redis hash by key, so adding a key twice leaves one schedule."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, schedule: Schedule) -> bool:
        """Insert or replace the schedule under its key; True when the key was new."""
        check_cron(schedule.cron)
        value = json.dumps({"cron": schedule.cron, "task": schedule.task, "args": list(schedule.args),
                            "owner": schedule.owner})
        return bool(await self._redis.hset(SCHEDULES_KEY, schedule.key, value))

    async def remove(self, key: str) -> bool:
        """Delete the schedule; False when there was none."""
        return bool(await self._redis.hdel(SCHEDULES_KEY, key))

    async def all(self) -> list[Schedule]:
        """Return every schedule, sorted by key."""
        raw = await self._redis.hgetall(SCHEDULES_KEY)
        schedules = []
        for key, value in raw.items():
            fields = json.loads(value)
            schedules.append(Schedule(key=key.decode(), cron=fields["cron"], task=fields["task"],
                                      args=tuple(fields.get("args", ())), owner=fields.get("owner")))
        return sorted(schedules, key=lambda s: s.key)


class Scheduler:
    """Queues due delayed jobs and fires cron schedules; safe to run in several processes at once."""

    def __init__(self, control: RedisJobControl, schedules: RecurringSchedules) -> None:
        self._control = control
        self._registry = control.registry
        self._schedules = schedules

    async def tick(self, now: datetime) -> list[str]:
        """Fire what is due at `now` (UTC); returns the ids of the jobs this call queued."""
        fired = await self._fire_delayed(now)
        fired += await self._fire_recurring(now)
        return fired

    async def _fire_delayed(self, now: datetime) -> list[str]:
        fired = []
        for job_id in await self._registry.due_ids(now):
            if not await self._registry.claim_due(job_id):
                continue
            record = await self._registry.get(job_id)
            if record is None:
                continue
            await self._control.kick(job_id, record.name, await self._registry.args(job_id))
            logger.info("delayed job queued job=%s task=%s", job_id, record.name)
            fired.append(job_id)
        return fired

    async def _fire_recurring(self, now: datetime) -> list[str]:
        # NOTE: only the current minute is checked, so a minute during which no scheduler ticks is not fired later.
        fired = []
        minute = now.astimezone(UTC).replace(second=0, microsecond=0)
        for schedule in await self._schedules.all():
            if not pycron.is_now(schedule.cron, minute):
                continue
            marker = PREFIX + f"fired:{schedule.key}:{minute:%Y%m%dT%H%M}"
            if not await self._registry.redis.set(marker, "1", nx=True, ex=FIRED_MARKER_SECONDS):
                continue
            job_id = uuid.uuid4().hex
            args = [job_id, *schedule.args]
            await self._registry.create(name=schedule.task, kind=JobKind.RECURRING, args=args, job_id=job_id,
                                        owner=schedule.owner)
            await self._control.kick(job_id, schedule.task, args)
            logger.info("recurring job fired schedule=%s job=%s task=%s minute=%s",
                        schedule.key, job_id, schedule.task, minute.isoformat())
            fired.append(job_id)
        return fired

    async def run(self, *, interval_seconds: float, stop: asyncio.Event) -> None:
        """Tick every `interval_seconds` until `stop` is set; a failed tick is logged and the loop goes on."""
        logger.info("scheduler started interval=%.2fs", interval_seconds)
        while not stop.is_set():
            try:
                await self.tick(datetime.now(UTC))
            except Exception:
                logger.exception("scheduler tick failed")
            try:
                await asyncio.wait_for(stop.wait(), interval_seconds)
            except TimeoutError:
                pass
        logger.info("scheduler stopped")
