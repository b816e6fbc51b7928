"""The job layer end to end: the real bot, one worker running two jobs at a time, two scheduler
processes, the fake Bot API and OpenAI servers, and Redis and MongoDB from `make services`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from adapters.redis_jobs import RedisJobControl, RedisJobRegistry
from adapters.taskiq_queue import build_redis_broker
from core.jobs import ANALYZE_TASK_NAME, JobState
from core.settings import Settings
from tests.conftest import CHARTS
from tests.fakes.openai_server import Failure, FakeOpenAIServer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.processes import ChartBotProcess, stack_env
from workers.jobs.names import MAINTENANCE_TASK_NAME

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUEUED = "⏳ Chart received. Your analysis is queued and will appear in this message shortly."
CANCELLED = "🚫 The analysis was cancelled. Your use was refunded."
TIMED_OUT = "❌ The analysis took too long and was stopped. Your use was refunded, so you can send the chart again."
STILL_WORKING = "⏳ Still working on your chart. The analysis is taking longer than usual."


@dataclass
class Stack:
    telegram: FakeTelegramServer
    openai: FakeOpenAIServer
    mongo: AsyncMongoClient
    database: str
    redis: Redis
    control: RedisJobControl
    schedulers: list[ChartBotProcess]
    worker: ChartBotProcess

    @property
    def registry(self) -> RedisJobRegistry:
        return self.control.registry

    async def used_today(self, user_id: int) -> int:
        day = datetime.now(UTC).date().isoformat()
        return int(await self.redis.get(f"chartbot:usage:telegram:{user_id}:day:{day}") or 0)

    async def analyses_of(self, user_id: int):
        return await self.registry.find(name=ANALYZE_TASK_NAME, owner=f"telegram:{user_id}")

    async def wait_for_jobs(self, user_id: int, states: list[JobState], timeout: float = 30) -> list:
        async def matches() -> bool:
            records = sorted(await self.analyses_of(user_id), key=lambda r: r.created_at)
            return [r.state for r in records] == states
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while not await matches():
            if datetime.now(UTC) > deadline:
                raise AssertionError(f"jobs of {user_id} never reached {states}: {await self.analyses_of(user_id)}")
            await _sleep(0.05)
        return sorted(await self.analyses_of(user_id), key=lambda r: r.created_at)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """Fake servers, then `chartbot telegram`, `chartbot worker` and two `chartbot scheduler` processes."""
    telegram = FakeTelegramServer()
    openai = FakeOpenAIServer()
    await telegram.start()
    await openai.start()
    redis = Redis.from_url(services_env["REDIS_URL"])
    await redis.flushdb()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    database = f"jobs_{uuid.uuid4().hex[:10]}"
    env = stack_env(
        services_env, telegram_url=telegram.url, telegram_token=telegram.token, openai_url=openai.url,
        database=database,
        FREE_DAILY_LIMIT="10",
        WORKER_CONCURRENCY="2",
        ANALYSIS_NOTICE_DELAY_SECONDS="1",
        ANALYSIS_TIMEOUT_SECONDS="6",
        SCHEDULER_INTERVAL_SECONDS="0.2",
    )

    logs = tmp_path_factory.mktemp("jobs-logs")
    bot = ChartBotProcess("telegram", env, logs / "bot.log")
    worker = ChartBotProcess("worker", env, logs / "worker.log")
    schedulers = [ChartBotProcess("scheduler", env, logs / f"scheduler-{n}.log") for n in (1, 2)]
    processes = [bot, worker, *schedulers]
    for process in processes:
        await process.start()
    broker = build_redis_broker(Settings(redis_url=services_env["REDIS_URL"], queue_name=env["QUEUE_NAME"]))
    await broker.startup()
    control = RedisJobControl(RedisJobRegistry(redis), broker)
    try:
        await telegram.wait_for(lambda: telegram.calls_to("getUpdates"), timeout=60)
    except AssertionError:
        for process in processes:
            await process.stop()
        raise AssertionError(f"the bot did not start polling; its log:\n{bot.log()}")
    yield Stack(telegram, openai, mongo, database, redis, control, schedulers, worker)
    statuses = [await process.stop() for process in processes]
    await broker.shutdown()
    await mongo.drop_database(database)
    await mongo.close()
    await redis.aclose()
    await telegram.stop()
    await openai.stop()
    for process, status in zip(processes, statuses):
        assert status == 0, process.log()[-3000:]


async def _say(stack: Stack, user: int, text: str) -> str:
    before = len(stack.telegram.chat(user))
    stack.telegram.send_text(user, text)
    await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) > before)
    return stack.telegram.chat(user)[before].text


async def test_status_and_cancel_of_queued_and_running(stack: Stack):
    user = 3001
    stack.openai.failures = [Failure(stall_seconds=4), Failure(stall_seconds=4)]
    requests_before = len(stack.openai.requests)
    chart = (CHARTS / "rendered" / "rendered-00.png").read_bytes()

    stack.telegram.send_photo(user, chart)
    stack.telegram.send_photo(user, chart)
    await stack.wait_for_jobs(user, [JobState.RUNNING, JobState.RUNNING])
    stack.telegram.send_photo(user, chart)
    first, second, queued = await stack.wait_for_jobs(user, [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED])
    # Both running analyses are inside their stalled model calls, so their cancel takes effect before the reply.
    await stack.telegram.wait_for(lambda: len(stack.openai.requests) == requests_before + 2)

    status = await _say(stack, user, "/status")
    assert status == (
        "<b>Your analyses in progress</b>\n\n"
        "• Analysis: running now\n"
        "• Analysis: running now\n"
        "• Analysis: queued, number 1 in the queue"
    )

    assert await _say(stack, user, "/cancel") == "Your queued analysis was cancelled and 1 use refunded."
    assert await _say(stack, user, "/cancel") == "Your running analysis was cancelled and 1 use refunded."
    status = await _say(stack, user, "/status")
    assert status == "<b>Your analyses in progress</b>\n\n• Analysis: running now\n• Analysis: stopping after a cancel"
    assert await _say(stack, user, "/cancel") == "Your running analysis was cancelled and 1 use refunded."
    assert await stack.used_today(user) == 0

    await stack.wait_for_jobs(user, [JobState.CANCELLED] * 3, timeout=30)
    acknowledgements = [m for m in stack.telegram.chat(user) if m.text in (QUEUED, CANCELLED)]
    assert [m.text for m in acknowledgements] == [CANCELLED, CANCELLED, CANCELLED]
    assert not [m for m in stack.telegram.chat(user) if m.text.startswith("📊")]
    # Only the two running analyses reached the model; the queued one never ran.
    assert len(stack.openai.requests) - requests_before == 2
    assert await _say(stack, user, "/cancel") == "There is nothing to cancel."
    assert await _say(stack, user, "/status") == "You have no analyses in progress. Send a chart to start one."

    for record in await stack.mongo[stack.database].analyses.find({"user_id": str(user)}).to_list():
        assert record["status"] == "failed"
        assert record["failure"] == "cancelled"
        assert record["refunded"] is True
    refunds = await stack.mongo[stack.database].usage_ledger.count_documents(
        {"user_key": f"telegram:{user}", "kind": "refund"})
    assert refunds == 3
    pending = await stack.registry.find(state=JobState.SCHEDULED) + await stack.registry.find(state=JobState.QUEUED)
    assert [job for job in pending if job.parent in (first.id, second.id, queued.id)] == []


async def test_watchdog_fails_stuck_analysis(stack: Stack):
    user = 3003
    stack.openai.failures = [Failure(stall_seconds=10)]
    stack.telegram.send_photo(user, (CHARTS / "rendered" / "rendered-02.png").read_bytes())

    await stack.telegram.wait_for(lambda: [m for m in stack.telegram.chat(user) if m.text == STILL_WORKING],
                                  timeout=20)
    await stack.telegram.wait_for(lambda: [m for m in stack.telegram.chat(user) if m.text == TIMED_OUT],
                                  timeout=20)
    assert await stack.used_today(user) == 0
    (job,) = await stack.wait_for_jobs(user, [JobState.FAILED], timeout=30)
    assert job.error == "timed_out"
    assert not [m for m in stack.telegram.chat(user) if m.text.startswith("📊")]
    record = await stack.mongo[stack.database].analyses.find_one({"user_id": str(user)})
    assert record["failure"] == "timed_out"
    assert record["refunded"] is True


async def test_completed_analysis_leaves_no_pending_child(stack: Stack):
    user = 3002
    stack.telegram.send_photo(user, (CHARTS / "rendered" / "rendered-01.png").read_bytes())
    (done,) = await stack.wait_for_jobs(user, [JobState.COMPLETED])
    assert done.result == "done"
    children = await stack.registry.find(name="chartbot.jobs.analysis_watchdog")
    assert [c.state for c in children if c.parent == done.id] == [JobState.CANCELLED]
    notices = await stack.registry.find(name="chartbot.jobs.analysis_still_working")
    assert [c.state for c in notices if c.parent == done.id] in ([JobState.CANCELLED], [JobState.COMPLETED])


async def test_delayed_job_runs_no_earlier_than_asked_once(stack: Stack):
    run_at = datetime.now(UTC) + timedelta(seconds=1.5)
    job_id = uuid.uuid4().hex
    await stack.control.enqueue_at(MAINTENANCE_TASK_NAME, [job_id], run_at, job_id=job_id)
    assert (await stack.registry.get(job_id)).state is JobState.SCHEDULED

    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while (await stack.registry.get(job_id)).state is not JobState.COMPLETED:
        assert datetime.now(UTC) < deadline, stack.worker.log()[-3000:]
        await _sleep(0.1)
    record = await stack.registry.get(job_id)
    assert record.started_at >= run_at
    assert record.result.startswith("removed ")
    fired = sum(s.log().count(f"delayed job queued job={job_id}") for s in stack.schedulers)
    assert fired == 1
