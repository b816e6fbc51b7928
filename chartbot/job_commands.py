"""The operator's `chartbot jobs` commands and the `chartbot scheduler` process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import asynccontextmanager

from adapters.backends import Backends, open_backends
from adapters.taskiq_queue import build_redis_broker
from core.jobs import JobRecord, JobState
from core.settings import Settings
from workers.jobs.names import MAINTENANCE_SCHEDULE_KEY, MAINTENANCE_TASK_NAME, RECURRING_TASKS
from workers.jobs.scheduling import InvalidCron, RecurringSchedules, Schedule, Scheduler

logger = logging.getLogger(__name__)


@asynccontextmanager
async def _backends(settings: Settings):
    broker = build_redis_broker(settings)
    await broker.startup()
    backends: Backends = await open_backends(settings, broker)
    try:
        yield backends
    finally:
        await backends.close()
        await broker.shutdown()


def _when(record: JobRecord) -> str:
    return record.created_at.strftime("%Y-%m-%d %H:%M:%S")


def _line(record: JobRecord) -> str:
    return (f"{record.id}  {record.name}  {record.kind.value}  {record.state.value}  "
            f"owner={record.owner or '-'}  parent={record.parent or '-'}  created={_when(record)}")


async def list_jobs(settings: Settings, *, name: str | None, state: str | None, owner: str | None) -> int:
    """Print the jobs that match every given filter, newest first."""
    try:
        state_filter = JobState(state) if state else None
    except ValueError:
        choices = ", ".join(s.value for s in JobState)
        print(f"chartbot: invalid state {state!r}: use one of {choices}", file=sys.stderr)
        return 2
    async with _backends(settings) as backends:
        records = await backends.jobs.registry.find(name=name, state=state_filter, owner=owner, limit=1000)
    for record in records:
        print(_line(record))
    if not records:
        print("no jobs match")
    return 0


async def show_job(settings: Settings, job_id: str) -> int:
    """Print one job's whole record."""
    async with _backends(settings) as backends:
        record = await backends.jobs.registry.get(job_id)
    if record is None:
        print(f"chartbot: job {job_id} not found", file=sys.stderr)
        return 1
    for field, value in vars(record).items():
        text = value.value if hasattr(value, "value") else value
        print(f"{field}: {'-' if text is None else text}")
    return 0


async def cancel_job(settings: Settings, job_id: str) -> int:
    """Cancel a scheduled or queued job, or ask a running one to stop; an analysis is refunded."""
    from core.jobs import cancel_analysis_record
    from workers.runtime import build_bot_notifier

    async with _backends(settings) as backends:
        previous = await backends.jobs.cancel(job_id)
        if previous is None:
            print(f"chartbot: job {job_id} not found", file=sys.stderr)
            return 1
        if previous not in (JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING):
            print(f"job {job_id} was already {previous.value}; nothing changed")
            return 0
        analysis = await backends.services.analyses.get(job_id)
        if analysis is not None:
            async with build_bot_notifier(settings, backends) as notifier:
                await cancel_analysis_record(analysis, backends.services, notifier)
    verb = "asked to stop" if previous is JobState.RUNNING else "cancelled"
    print(f"job {job_id} {verb} (was {previous.value})")
    return 0


async def list_schedules(settings: Settings) -> int:
    """Print every recurring schedule."""
    async with _backends(settings) as backends:
        schedules = await RecurringSchedules(backends.redis).all()
    for schedule in schedules:
        print(f"{schedule.key}  {schedule.cron}  {schedule.task}  owner={schedule.owner or '-'}")
    if not schedules:
        print("no schedules")
    return 0


async def add_recurring(settings: Settings, key: str, cron: str, task: str) -> int:
    """Add or replace the recurring schedule `key`."""
    if task not in RECURRING_TASKS:
        print(f"chartbot: task {task!r} cannot be scheduled: use one of {', '.join(RECURRING_TASKS)}",
              file=sys.stderr)
        return 2
    async with _backends(settings) as backends:
        try:
            new = await RecurringSchedules(backends.redis).add(Schedule(key=key, cron=cron, task=task))
        except InvalidCron as error:
            print(f"chartbot: {error}", file=sys.stderr)
            return 2
    print(f"schedule {key} {'added' if new else 'replaced'}: {cron} {task}")
    return 0


async def run_scheduler(settings: Settings) -> int:
    """Run the scheduler until SIGINT or SIGTERM, with the maintenance schedule in place."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with _backends(settings) as backends:
        schedules = RecurringSchedules(backends.redis)
        await schedules.add(Schedule(key=MAINTENANCE_SCHEDULE_KEY, cron=settings.maintenance_cron,
                                     task=MAINTENANCE_TASK_NAME))
        await Scheduler(backends.jobs, schedules).run(interval_seconds=settings.scheduler_interval_seconds,
                                                      stop=stop)
    return 0
