"""Benchmark the analysis pipeline: the bot and workers as processes, the fake Bot API and OpenAI servers.

Measures, on the Redis and MongoDB of `make services`:
- time from a Telegram update reaching the bot (served by getUpdates) to its job starting on a worker,
  at 50 updates per second, beside a raw taskiq no-op task's time from send to start on the same Redis;
- overhead per analysis outside the model call (job start to job end, less the time in the model);
- analyses per second per worker process with the fake model replying at once and after 2 s;
- the share of the model's rate limit used under a backlog, and the 429s met.

Writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from adapters.redis_jobs import RedisJobRegistry
from bench.common import ROOT, median, percentile, services_env, verdict, write_results
from tests.worker_stack import WorkerStack, with_database

CHART = Path(__file__).resolve().parent.parent / "chartbot" / "samples"


def _chart() -> bytes:
    """Return a 640-pixel chart screenshot, a common size for phone screenshots."""
    shared = ROOT.parent / "shared" / "charts" / "real" / "tradingview-01.jpg"
    if shared.exists():
        return shared.read_bytes()
    return sorted(CHART.glob("*.png"))[0].read_bytes()


def _ms(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(median(seconds) * 1000, 2), "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
            "max_ms": round(max(seconds) * 1000, 2), "count": len(seconds)}


async def update_to_start(env: dict[str, str], logs: Path, *, rate: float, seconds: float) -> dict:
    """Send photo updates at `rate` per second to the real bot; time each from getUpdates to job start."""
    stack = await WorkerStack.open(env, logs / "latency", WORKER_CONCURRENCY="16")
    try:
        await stack.start_bot()
        for _ in range(2):
            await stack.start_worker()
        chart = _chart()
        count = int(rate * seconds)
        started = time.monotonic()
        message_ids = []
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            message_ids.append((9000 + n % 50, stack.telegram.send_photo(9000 + n % 50, chart, width=640, height=356)))
        await stack.telegram.wait_for(lambda: _replied(stack, len(message_ids)), timeout=300, interval=0.2)

        registry = RedisJobRegistry(stack.redis)
        analyses = stack.mongo[stack.settings.mongodb_database]["analyses"]
        latencies, overheads = [], []
        async for record in analyses.find({}, {"_id": 1, "message_id": 1, "model_seconds": 1}):
            job = await registry.get(record["_id"])
            served = stack.telegram.served_at[int(record["message_id"])]
            latencies.append(job.started_at.timestamp() - served)
            overheads.append((job.finished_at - job.started_at).total_seconds() - record["model_seconds"])
        return {"updates": count, "rate_per_second": rate, "update_to_job_start": _ms(latencies),
                "overhead_outside_model": _ms(overheads)}
    finally:
        await stack.close()


def _replied(stack: WorkerStack, expected: int) -> bool:
    final = [m for m in stack.telegram.messages.values() if m.text.startswith("📊")]
    return len(final) >= expected


async def raw_taskiq(env: dict[str, str], logs: Path, *, rate: float, seconds: float) -> dict:
    """Send the same rate of no-op tasks through taskiq-redis's RedisStreamBroker and time their start."""
    redis_url = with_database(env["REDIS_URL"], 6)
    queue = f"bench:raw-taskiq:{int(time.time())}"
    os.environ.update({"RAW_TASKIQ_REDIS_URL": redis_url, "RAW_TASKIQ_QUEUE": queue})
    from bench import raw_taskiq as raw

    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    with (logs / "raw-taskiq.log").open("ab") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskiq", "worker", "bench.raw_taskiq:broker", "--workers", "1",
            "--max-async-tasks", "16", cwd=ROOT, env={**os.environ, "DO_NOT_TRACK": "1"},
            stdout=log, stderr=asyncio.subprocess.STDOUT)
    await raw.broker.startup()
    try:
        await asyncio.sleep(5)  # the worker's start-up
        count = int(rate * seconds)
        begun = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, begun + n / rate - time.monotonic()))
            await raw.noop.kiq(time.time())
        deadline = time.monotonic() + 60
        while await redis.llen(raw.STARTS) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        pairs = [tuple(map(float, item.split())) for item in await redis.lrange(raw.STARTS, 0, -1)]
        return {"tasks": count, "started": len(pairs), "send_to_start": _ms([start - sent for sent, start in pairs])}
    finally:
        await raw.broker.shutdown()
        worker.terminate()
        try:
            await asyncio.wait_for(worker.wait(), 15)
        except TimeoutError:
            # A plain taskiq worker can stay blocked after SIGTERM (see workers/stopping.py).
            worker.kill()
            await worker.wait()
        await redis.flushdb()
        await redis.aclose()


async def throughput(env: dict[str, str], logs: Path, *, latency: float, backlog: int, concurrency: int) -> dict:
    """Queue `backlog` analyses, start one worker process, and time it draining them."""
    stack = await WorkerStack.open(env, logs / f"throughput-{latency}", WORKER_CONCURRENCY=str(concurrency),
                                   CHAT_EDIT_INTERVAL_SECONDS="0", JOB_COMPLETED_RETENTION_SECONDS="0")
    stack.openai.latency_seconds = latency
    try:
        chart = _chart()
        memory = {"start": (await stack.redis.info("memory"))["used_memory"]}
        ids = [(await stack.submit(9100 + n % 50, chart)).id for n in range(backlog)]
        memory["queued"] = (await stack.redis.info("memory"))["used_memory"]
        await stack.start_worker()
        began = time.monotonic()
        await stack.wait_finished(ids, timeout=900)
        elapsed = time.monotonic() - began
        await RedisJobRegistry(stack.redis).remove_expired(datetime.now(UTC), batch=10_000)
        memory["drained"] = (await stack.redis.info("memory"))["used_memory"]
        return {"model_latency_seconds": latency, "analyses": backlog, "concurrency": concurrency,
                "seconds": round(elapsed, 2), "analyses_per_second_per_process": round(backlog / elapsed, 2),
                "stream_length_after": await stack.stream_length(), "redis_used_memory_bytes": memory}
    finally:
        await stack.close()


async def rate_limit_share(env: dict[str, str], logs: Path, *, limit: int, window: float, windows: int) -> dict:
    """Queue a backlog against a fake model that enforces `limit` calls per `window`; measure the rate used."""
    backlog = limit * windows
    stack = await WorkerStack.open(env, logs / "rate", WORKER_CONCURRENCY="16", CHAT_EDIT_INTERVAL_SECONDS="0",
                                   MODEL_REQUESTS_PER_MINUTE=str(limit), MODEL_RATE_WINDOW_SECONDS=str(window))
    stack.openai.requests_per_window = limit
    stack.openai.window_seconds = window
    try:
        chart = _chart()
        ids = [(await stack.submit(9200 + n % 50, chart)).id for n in range(backlog)]
        for _ in range(2):
            await stack.start_worker()
        await stack.wait_finished(ids, timeout=windows * window * 3 + 60)
        arrivals = stack.openai.answered_at
        # After the first window's burst, calls run at the limiter's pace; compare that pace to the limit.
        sustained = (len(arrivals) - limit) / (arrivals[-1] - arrivals[0])
        return {"limit": limit, "window_seconds": window, "calls": len(arrivals),
                "calls_per_second": round(sustained, 4), "limit_per_second": round(limit / window, 4),
                "share_used": round(sustained / (limit / window), 4),
                "rate_limited_429": len(stack.openai.rate_limited_at)}
    finally:
        await stack.close()


async def main(arguments: argparse.Namespace) -> int:
    env = services_env()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as directory:
        logs = Path(directory)
        for name in ("latency", "throughput-0.0", "throughput-2.0", "rate"):
            (logs / name).mkdir()
        latency = await update_to_start(env, logs, rate=arguments.rate, seconds=arguments.seconds)
        raw = await raw_taskiq(env, logs, rate=arguments.rate, seconds=arguments.seconds)
        fast = await throughput(env, logs, latency=0.0, backlog=300, concurrency=8)
        slow = await throughput(env, logs, latency=2.0, backlog=200, concurrency=32)
        share = await rate_limit_share(env, logs, limit=30, window=15.0, windows=3)

    ours, baseline = latency["update_to_job_start"], raw["send_to_start"]
    ratio = ours["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else math.inf
    overhead = latency["overhead_outside_model"]
    lines = [
        f"update to job start at {arguments.rate:g}/s: p50 {ours['p50_ms']} ms, p99 {ours['p99_ms']} ms "
        f"({ours['count']} updates)",
        f"raw taskiq no-op send to start at {arguments.rate:g}/s: p50 {baseline['p50_ms']} ms, "
        f"p99 {baseline['p99_ms']} ms",
        verdict("update to job start p99", ours["p99_ms"], "<= 20 ms", ours["p99_ms"] <= 20, " ms"),
        verdict("p99 against raw taskiq", ratio, "<= 1.5x", ratio <= 1.5, "x"),
        verdict("overhead outside the model p99", overhead["p99_ms"], "<= 50 ms", overhead["p99_ms"] <= 50, " ms"),
        f"analyses/s per worker process, model at 0 ms: {fast['analyses_per_second_per_process']} "
        f"(concurrency {fast['concurrency']}); Redis used_memory start/queued/drained: "
        + "/".join(str(v) for v in fast["redis_used_memory_bytes"].values())
        + f", stream length after: {fast['stream_length_after']}",
        f"analyses/s per worker process, model at 2 s: {slow['analyses_per_second_per_process']} "
        f"(concurrency {slow['concurrency']})",
        verdict("share of the model rate limit used", share["share_used"] * 100, ">= 95%",
                share["share_used"] >= 0.95 and share["rate_limited_429"] == 0, "%")
        + f", 429s: {share['rate_limited_429']}",
    ]
    for line in lines:
        print(line)
    path = write_results("pipeline", {"update_to_start": latency, "raw_taskiq": raw, "throughput_model_0ms": fast,
                                      "throughput_model_2s": slow, "rate_limit": share, "summary": lines})
    print(f"results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="updates per second (default 50)")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long to send them (default 6)")
    sys.exit(asyncio.run(main(parser.parse_args())))
