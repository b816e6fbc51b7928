"""Workers under faults and load: `chartbot worker` processes the test starts, SIGKILLs and SIGTERMs,
on real Redis and MongoDB, with the fake Bot API and OpenAI servers."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from adapters.redis_jobs import RedisJobRegistry
from core.models import AnalysisStatus
from tests.conftest import CHARTS
from tests.fakes.openai_server import DEFAULT_REPORT_HTML, Failure
from tests.processes import free_port
from tests.worker_stack import WorkerStack, kill

pytestmark = pytest.mark.asyncio

CHART = (CHARTS / "real" / "tradingview-01.jpg").read_bytes()
ANALYSING = "🔎 Analysing your chart. The analysis will appear in this message."
NEXT = "⏳ Chart received. You are next in the queue; the analysis will appear in this message."


def number_in_queue(position: int) -> str:
    return f"⏳ Chart received. You are number {position} in the queue; the analysis will appear in this message."


def final_text() -> str:
    """The analysis the fake model writes, as the chat shows it."""
    return "📊 <b>Chart analysis</b>\n\n" + DEFAULT_REPORT_HTML + "\n\n<i>Not financial advice.</i>"


async def _used_today(stack: WorkerStack, user_id: int) -> int:
    day = datetime.now(UTC).date().isoformat()
    return int(await stack.redis.get(f"chartbot:usage:telegram:{user_id}:day:{day}") or 0)


async def _assert_one_reply_one_charge(stack: WorkerStack, user_id: int, analysis_id: str) -> None:
    """Check that the chat contains one message (the acknowledgement, edited into the analysis) and one charge."""
    record = await stack.analysis(analysis_id)
    assert record.status is AnalysisStatus.DONE
    [message] = stack.telegram.chat(user_id)
    assert message.text == final_text()
    assert [text for _, text in message.history].count(final_text()) == 1
    assert len([p for p in stack.telegram.calls_to("sendMessage") if int(p["chat_id"]) == user_id]) == 1
    assert await _used_today(stack, user_id) == 1
    assert await stack.uses_and_refunds(analysis_id) == (1, 0)


async def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _running(stack: WorkerStack, analysis_id: str) -> bool:
    record = await stack.analysis(analysis_id)
    return record.status is AnalysisStatus.RUNNING and record.attempts >= 1


async def test_twenty_kills_lose_nothing(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_RECLAIM_SECONDS="3", WORKER_CONCURRENCY="2",
                                   ANALYSIS_TIMEOUT_SECONDS="120")
    stack.openai.latency_seconds = 1.0
    try:
        for _ in range(3):
            await stack.start_worker()
        analyses: list[tuple[int, str]] = []
        for round_number in range(20):
            user = 7000 + round_number
            analysis = await stack.submit(user, CHART)
            analyses.append((user, analysis.id))
            await _wait(lambda: _running(stack, analysis.id), 60, f"analysis {round_number} to reach the model")
            pid = await stack.holder_pid(analysis.id)
            assert pid is not None
            kill(pid)

        await stack.wait_finished([analysis_id for _, analysis_id in analyses], timeout=120)
        for user, analysis_id in analyses:
            await _assert_one_reply_one_charge(stack, user, analysis_id)
        took_over = sum(worker.log().count("took over a job another worker left unfinished") for worker in stack.workers)
        assert took_over >= 20
        assert await stack.stream_length() == 0
        assert await stack.pending_count() == 0
    finally:
        statuses = await stack.close()
    assert statuses == [0, 0, 0]


async def test_sigterm_finishes_running_jobs(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_CONCURRENCY="4", WORKER_STOP_GRACE_SECONDS="10")
    stack.openai.latency_seconds = 2.0
    try:
        worker = await stack.start_worker()
        analyses = [(8000 + n, (await stack.submit(8000 + n, CHART)).id) for n in range(4)]

        async def all_running() -> bool:
            return all([await _running(stack, analysis_id) for _, analysis_id in analyses])

        await _wait(all_running, 30, "four analyses running")
        stopped_at = time.monotonic()
        assert await worker.stop(timeout=30) == 0
        assert time.monotonic() - stopped_at < 10

        for user, analysis_id in analyses:
            await _assert_one_reply_one_charge(stack, user, analysis_id)
        log = worker.log()
        assert "stop signal received; finishing 4 running task(s) within 10s" in log
        assert "finished=4 handed_back=0" in log
        assert await stack.stream_length() == 0
    finally:
        await stack.close()


async def test_jobs_past_grace_handed_back(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_CONCURRENCY="2", WORKER_STOP_GRACE_SECONDS="1")
    stack.openai.latency_seconds = 3.0
    try:
        first = await stack.start_worker()
        analyses = [(8100 + n, (await stack.submit(8100 + n, CHART)).id) for n in range(2)]

        async def both_running() -> bool:
            return all([await _running(stack, analysis_id) for _, analysis_id in analyses])

        await _wait(both_running, 30, "two analyses running")
        assert await first.stop(timeout=30) == 0
        assert "finished=0 handed_back=2" in first.log()
        # Handed back at once: the entries wait at the end of the stream, not in a dead consumer.
        assert await stack.stream_length() == 2
        assert await stack.pending_count() == 0

        await stack.start_worker()
        await stack.wait_finished([analysis_id for _, analysis_id in analyses], timeout=60)
        for user, analysis_id in analyses:
            await _assert_one_reply_one_charge(stack, user, analysis_id)
    finally:
        await stack.close()


async def test_raising_job_retried_then_dead_lettered(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_RECLAIM_SECONDS="1")
    try:
        worker = await stack.start_worker()
        # No analysis record exists for this job, so every run raises AnalysisNotFound.
        await stack.backends.jobs.enqueue_analysis("no-such-analysis", owner="telegram:8300")
        dead = f"{stack.settings.queue_name}:dead"

        async def dead_lettered() -> bool:
            return await stack.redis.xlen(dead) == 1

        await _wait(dead_lettered, 60, "the job to reach the dead-letter stream")
        [(_, fields)] = await stack.redis.xrange(dead)
        assert int(fields[b"deliveries"]) == 6
        assert await stack.stream_length() == 0
        assert await stack.pending_count() == 0
        assert worker.log().count("analysis interrupted; it runs again analysis=no-such-analysis") == 5
    finally:
        await stack.close()


async def test_long_job_runs_once(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_RECLAIM_SECONDS="2")
    stack.openai.latency_seconds = 7.0
    try:
        for _ in range(2):
            await stack.start_worker()
        analysis = await stack.submit(8200, CHART)
        await stack.wait_finished([analysis.id], timeout=60)

        assert len(stack.openai.requests) == 1
        assert (await stack.analysis(analysis.id)).attempts == 1
        assert all("took over" not in worker.log() for worker in stack.workers)
        await _assert_one_reply_one_charge(stack, 8200, analysis.id)
    finally:
        await stack.close()


async def test_backlog_drains_and_memory_returns(services_env, tmp_path):
    # A job interrupted by a database error runs again after the reclaim time, here 10 s.
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_CONCURRENCY="8", CHAT_EDIT_INTERVAL_SECONDS="0",
                                   JOB_COMPLETED_RETENTION_SECONDS="0", WORKER_RECLAIM_SECONDS="10")
    try:
        start = await stack.redis.info("memory")
        start_memory = start["used_memory"]
        start_length = await stack.stream_length()
        gate = asyncio.Semaphore(8)

        async def submit(n: int) -> str:
            async with gate:
                return (await stack.submit(9000 + n % 50, CHART)).id

        ids = await asyncio.gather(*(submit(n) for n in range(2000)))
        assert await stack.stream_length() == start_length + 2000
        queued_memory = (await stack.redis.info("memory"))["used_memory"]

        for _ in range(2):
            await stack.start_worker()
        # FerretDB v1 finds even an _id by reading documents in turn, so 2,000 analyses take minutes here.
        await stack.wait_finished(ids, timeout=1200)

        assert await stack.stream_length() == start_length
        assert await stack.pending_count() == 0
        statuses = await stack.mongo[stack.settings.mongodb_database]["analyses"].distinct("status")
        assert statuses == ["done"]
        # Job records outlive their jobs by the retention (0 s here); the maintenance job removes them.
        removed = await RedisJobRegistry(stack.redis).remove_expired(datetime.now(UTC), batch=10_000)
        assert removed >= 2000
        # The start was measured with no worker connected, and Redis counts each connection's buffers
        # in used_memory (about 160 KB for two workers' pools). So the end is measured after the
        # workers exit, and it counts only what the jobs left behind.
        assert [await worker.stop() for worker in stack.workers] == [0, 0]
        end = await stack.redis.info("memory")
        end_memory = end["used_memory"]
        print(f"Redis used_memory: start {start_memory} (dataset {start['used_memory_dataset']}, clients "
              f"{start['mem_clients_normal']}), queued {queued_memory}, end {end_memory} (dataset "
              f"{end['used_memory_dataset']}, clients {end['mem_clients_normal']})")
        assert end_memory - start_memory < 256 * 1024
        assert queued_memory - start_memory > 1024 * 1024
    finally:
        await stack.close()


async def test_rate_limit_used_without_429(services_env, tmp_path):
    window, limit = 4.0, 10
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_CONCURRENCY="6", CHAT_EDIT_INTERVAL_SECONDS="0",
                                   MODEL_REQUESTS_PER_MINUTE=str(limit), MODEL_TOKENS_PER_MINUTE="10000000",
                                   MODEL_RATE_WINDOW_SECONDS=str(window))
    stack.openai.requests_per_window = limit
    stack.openai.window_seconds = window
    try:
        ids = [(await stack.submit(9500 + n % 6, CHART)).id for n in range(36)]
        for _ in range(2):
            await stack.start_worker()
        await stack.wait_finished(ids, timeout=120)

        assert stack.openai.rate_limited_at == []
        arrivals = stack.openai.answered_at
        assert len(arrivals) == 36
        first = arrivals[0]
        in_three_windows = [at for at in arrivals if at < first + 3 * window]
        # The limit allows 30 calls in three windows; within 10% of it means 27 to 30.
        assert 27 <= len(in_three_windows) <= 30
    finally:
        await stack.close()


async def test_429_pauses_every_worker(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_CONCURRENCY="4", CHAT_EDIT_INTERVAL_SECONDS="0")
    stack.openai.failures = [Failure(status=429, retry_after=1.5)]
    try:
        ids = [(await stack.submit(9600 + n, CHART)).id for n in range(4)]
        await stack.start_worker()
        await stack.wait_finished(ids, timeout=60)

        for n, analysis_id in enumerate(ids):
            await _assert_one_reply_one_charge(stack, 9600 + n, analysis_id)
        # One refusal, then every call waited out the Retry-After instead of meeting the same wall.
        assert len(stack.openai.requests) == 5
        # In the format of every chartbot process, with the name of the worker's process.
        assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING adapters\.redis_rate_limit \[worker-0\]: "
                         r"model rate limited; every worker waits 1\.5s before its next call$",
                         stack.workers[0].log(), re.MULTILINE)
    finally:
        await stack.close()


async def test_progress_edits_in_order_and_paced(services_env, tmp_path):
    stack = await WorkerStack.open(services_env, tmp_path, WORKER_CONCURRENCY="1", MODEL_RETRY_BASE_SECONDS="0.1")
    stack.openai.latency_seconds = 1.2
    stack.openai.failures = [Failure(status=500)]
    try:
        users = [9700, 9701, 9702]
        ids = [(await stack.submit(user, CHART)).id for user in users]
        await stack.start_worker()
        await stack.wait_finished(ids, timeout=60)

        shown = {user: [text for _, text in stack.telegram.chat(user)[0].history] for user in users}
        retrying = ("🔁 The chart model did not answer; trying again (attempt 2 of 4). "
                    "The analysis will appear in this message.")
        assert shown[9700] == [NEXT, ANALYSING, retrying, final_text()]
        assert shown[9701] == [number_in_queue(2), NEXT, ANALYSING, final_text()]
        assert shown[9702] == [number_in_queue(3), number_in_queue(2), NEXT, ANALYSING, final_text()]
        for user in users:
            edited_at = [at for at, _ in stack.telegram.chat(user)[0].history[1:]]
            gaps = [later - earlier for earlier, later in zip(edited_at, edited_at[1:])]
            assert min(gaps) >= 0.95, (user, gaps)
    finally:
        await stack.close()


async def _start_redis(port: int, directory) -> subprocess.Popen:
    process = subprocess.Popen(
        [shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    await client.aclose()
    return process


async def test_queued_jobs_survive_redis_crash(services_env, tmp_path):
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    redis_server = await _start_redis(port, data)
    stack = await WorkerStack.open(services_env, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0",
                                   CHAT_EDIT_INTERVAL_SECONDS="0")
    try:
        ids = [(await stack.submit(9800 + n % 5, CHART)).id for n in range(30)]
        assert await stack.stream_length() == 30
        # appendfsync everysec writes the log to disk within a second; then the server dies without saving.
        await asyncio.sleep(1.5)
        os.kill(redis_server.pid, signal.SIGKILL)
        redis_server.wait()
        redis_server = await _start_redis(port, data)

        assert await stack.stream_length() == 30
        await stack.start_worker()
        await stack.wait_finished(ids, timeout=120)
        assert await stack.stream_length() == 0
        assert [(await stack.analysis(i)).status for i in ids] == [AnalysisStatus.DONE] * 30
    finally:
        await stack.close()
        redis_server.terminate()
        redis_server.wait()
