"""Removal of expired state: finished job records past their retention, and orphaned schedules."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from adapters.redis_jobs import PREFIX, RedisJobRegistry
from workers.jobs.scheduling import RecurringSchedules

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceReport:
    """Counts of what one maintenance run removed."""

    job_records: int
    schedules: int


async def remove_expired(registry: RedisJobRegistry, schedules: RecurringSchedules, now: datetime) -> MaintenanceReport:
    """Delete job records past retention and schedules whose owner job no longer exists.

    A schedule's owner is the job id that created it (none of the operator's schedules has one).
    """
    records = await registry.remove_expired(now)
    orphaned = 0
    for schedule in await schedules.all():
        if schedule.owner and not await registry.redis.exists(PREFIX + f"job:{schedule.owner}"):
            orphaned += await schedules.remove(schedule.key)
    # NOTE: no MongoDB collection has expiring records yet, because analyses, images and the usage ledger
    # are kept. FerretDB has no TTL indexes, so a collection that expires records later needs its delete here.
    logger.info("maintenance removed job_records=%d schedules=%d", records, orphaned)
    return MaintenanceReport(job_records=records, schedules=orphaned)
