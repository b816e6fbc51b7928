"""The job registry and the scheduler on the test Redis, with injected times: find, cancel, retention, schedules."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from adapters.redis_jobs import RedisJobControl, RedisJobRegistry, Retention
from core.jobs import JobKind, JobState
from workers.jobs.names import MAINTENANCE_TASK_NAME
from workers.jobs.retention import remove_expired
from workers.jobs.scheduling import InvalidCron, RecurringSchedules, Schedule, Scheduler


@pytest_asyncio.fixture
async def control(redis_client):
    from taskiq import InMemoryBroker

    broker = InMemoryBroker()
    sent: list[tuple[str, list]] = []

    async def kick(message) -> None:
        sent.append((message.task_name, json.loads(message.message)["args"]))

    broker.kick = kick
    control = RedisJobControl(RedisJobRegistry(redis_client, retention=Retention(completed_seconds=60,
                                                                                 failed_seconds=3600)), broker)
    control.sent = sent
    return control


async def test_find_by_name_state_and_owner(control):
    registry = control.registry
    first = await control.enqueue("chartbot.analyze_chart", ["a1"], owner="telegram:1", job_id="a1")
    await control.enqueue("chartbot.analyze_chart", ["a2"], owner="telegram:2", job_id="a2")
    await control.enqueue(MAINTENANCE_TASK_NAME, ["m1"], job_id="m1")
    assert await registry.start(first) is True

    by_name = await registry.find(name="chartbot.analyze_chart")
    assert sorted(r.id for r in by_name) == ["a1", "a2"]
    assert [r.id for r in await registry.find(state=JobState.RUNNING)] == ["a1"]
    assert [r.id for r in await registry.find(owner="telegram:2")] == ["a2"]
    assert [r.id for r in await registry.find(name="chartbot.analyze_chart", state=JobState.QUEUED)] == ["a2"]
    assert sorted(r.id for r in await registry.find()) == ["a1", "a2", "m1"]
    record = await registry.get("a1")
    assert record.state is JobState.RUNNING
    assert record.kind is JobKind.IMMEDIATE
    assert record.owner == "telegram:1"
    assert record.started_at is not None
    assert control.sent == [("chartbot.analyze_chart", ["a1"]), ("chartbot.analyze_chart", ["a2"]),
                            (MAINTENANCE_TASK_NAME, ["m1"])]


async def test_queue_positions_follow_creation_order(control):
    for job_id in ("q1", "q2", "q3"):
        await control.enqueue("chartbot.analyze_chart", [job_id], owner="telegram:7", job_id=job_id)
    await control.registry.start("q1")
    jobs = await control.in_flight("telegram:7")
    assert [(j.record.id, j.record.state, j.position) for j in jobs] == [
        ("q1", JobState.RUNNING, None), ("q2", JobState.QUEUED, 1), ("q3", JobState.QUEUED, 2),
    ]


async def test_cancel_queued_job_never_starts(control):
    await control.enqueue("chartbot.analyze_chart", ["c1"], job_id="c1")
    assert await control.cancel("c1") is JobState.QUEUED
    assert await control.registry.start("c1") is False
    assert (await control.registry.get("c1")).state is JobState.CANCELLED
    assert await control.cancel("c1") is JobState.CANCELLED


async def test_cancel_scheduled_job_never_queued(control, redis_client):
    now = datetime.now(UTC)
    await control.enqueue_at(MAINTENANCE_TASK_NAME, ["s1"], now + timedelta(seconds=5), job_id="s1")
    assert await control.cancel("s1") is JobState.SCHEDULED
    scheduler = Scheduler(control, RecurringSchedules(redis_client))
    assert await scheduler.tick(now + timedelta(seconds=10)) == []
    assert control.sent == []


async def test_cancel_running_job_sets_flag(control):
    await control.enqueue("chartbot.analyze_chart", ["r1"], job_id="r1")
    await control.registry.start("r1")
    assert await control.registry.cancelled("r1") is False
    assert await control.cancel("r1") is JobState.RUNNING
    assert await control.registry.cancelled("r1") is True
    assert (await control.registry.get("r1")).cancel_requested is True


async def test_delayed_job_fires_at_its_time_once(control, redis_client):
    now = datetime.now(UTC)
    await control.enqueue_at(MAINTENANCE_TASK_NAME, ["d1"], now + timedelta(seconds=30), job_id="d1")
    schedulers = [Scheduler(control, RecurringSchedules(redis_client)) for _ in range(2)]
    assert await schedulers[0].tick(now + timedelta(seconds=29)) == []
    fired = await asyncio.gather(*(s.tick(now + timedelta(seconds=31)) for s in schedulers))
    assert sorted(fired) == [[], ["d1"]]
    assert control.sent == [(MAINTENANCE_TASK_NAME, ["d1"])]
    assert (await control.registry.get("d1")).state is JobState.QUEUED


async def test_recurring_schedule_added_twice_is_one(control, redis_client):
    schedules = RecurringSchedules(redis_client)
    assert await schedules.add(Schedule(key="cleanup", cron="*/5 * * * *", task=MAINTENANCE_TASK_NAME)) is True
    assert await schedules.add(Schedule(key="cleanup", cron="*/5 * * * *", task=MAINTENANCE_TASK_NAME)) is False
    assert await schedules.add(Schedule(key="cleanup", cron="*/2 * * * *", task=MAINTENANCE_TASK_NAME)) is False
    assert [(s.key, s.cron) for s in await schedules.all()] == [("cleanup", "*/2 * * * *")]
    with pytest.raises(InvalidCron):
        await schedules.add(Schedule(key="bad", cron="every minute", task=MAINTENANCE_TASK_NAME))
    assert await schedules.remove("cleanup") is True
    assert await schedules.all() == []


async def test_two_schedulers_fire_cron_run_once(control, redis_client):
    schedules = RecurringSchedules(redis_client)
    await schedules.add(Schedule(key="cleanup", cron="*/2 * * * *", task=MAINTENANCE_TASK_NAME))
    schedulers = [Scheduler(control, RecurringSchedules(redis_client)) for _ in range(2)]
    even_minute = datetime(2026, 12, 4, 21, 10, 3, tzinfo=UTC)
    results = await asyncio.gather(*(s.tick(even_minute) for s in schedulers))
    results += await asyncio.gather(*(s.tick(even_minute + timedelta(seconds=40)) for s in schedulers))
    fired = [job for result in results for job in result]
    assert len(fired) == 1
    assert await schedulers[0].tick(even_minute + timedelta(minutes=1)) == []
    assert len(await schedulers[1].tick(even_minute + timedelta(minutes=2))) == 1
    assert [name for name, _ in control.sent] == [MAINTENANCE_TASK_NAME, MAINTENANCE_TASK_NAME]
    record = await control.registry.get(fired[0])
    assert record.kind is JobKind.RECURRING
    assert control.sent[0][1] == [fired[0]]


async def test_retention_removes_completed_keeps_failed(control, redis_client):
    registry = control.registry
    for job_id in ("ok", "bad", "live"):
        await control.enqueue(MAINTENANCE_TASK_NAME, [job_id], owner="telegram:9", job_id=job_id)
    for job_id in ("ok", "bad"):
        await registry.start(job_id)
    await registry.finish("ok", result="done")
    await registry.finish("bad", failed=True, error="boom")
    schedules = RecurringSchedules(redis_client)
    await schedules.add(Schedule(key="orphan", cron="* * * * *", task=MAINTENANCE_TASK_NAME, owner="gone-job"))
    await schedules.add(Schedule(key="kept", cron="* * * * *", task=MAINTENANCE_TASK_NAME))

    report = await remove_expired(registry, schedules, datetime.now(UTC) + timedelta(seconds=61))

    assert report.job_records == 1
    assert report.schedules == 1
    assert await registry.get("ok") is None
    assert (await registry.get("bad")).error == "boom"
    assert (await registry.get("live")).state is JobState.QUEUED
    assert sorted(r.id for r in await registry.find(owner="telegram:9")) == ["bad", "live"]
    assert [s.key for s in await schedules.all()] == ["kept"]
    later = await remove_expired(registry, schedules, datetime.now(UTC) + timedelta(seconds=3601))
    assert later.job_records == 1
    assert await registry.get("bad") is None


async def test_main_job_end_cancels_pending_children(control):
    from workers.jobs.children import AnalysisChildren, end_main_job, schedule_analysis_children

    await control.enqueue("chartbot.analyze_chart", ["main"], job_id="main")
    await control.registry.start("main")
    await schedule_analysis_children(control, "main", AnalysisChildren(notice_delay_seconds=45, timeout_seconds=600))
    children = await control.registry.find(state=JobState.SCHEDULED)
    assert sorted(c.parent for c in children) == ["main", "main"]
    await end_main_job(control, "main", failed=False, result="done")
    assert await control.registry.find(state=JobState.SCHEDULED) == []
    assert sorted(c.state for c in await control.registry.find(name="chartbot.jobs.analysis_watchdog")) == [
        JobState.CANCELLED]
    assert (await control.registry.get("main")).state is JobState.COMPLETED
