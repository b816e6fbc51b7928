"""Worker processes under test: `chartbot worker` processes the test starts, kills and stops, fed
through the real analysis use case, with the fake Bot API and OpenAI servers.

Each stack has its own Redis database (not 0), MongoDB database and queue, so
flushing it touches no other test's data. The benchmarks use it too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from telegram import Bot

from adapters.backends import Backends, open_backends
from adapters.taskiq_queue import CONSUMER_GROUP, build_redis_broker
from bot.telegram.client import build_bot
from bot.telegram.notifier import once_telegram_notifier
from core.analysis import Upload, submit_upload
from core.models import Analysis, Platform
from core.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.processes import ChartBotProcess, stack_env

# An acknowledgement still showing one of these has no final reply yet: queued, analysing, retrying.
PROGRESS_MARKS = ("⏳", "🔎", "🔁")

# Generous plan limits, so a load of analyses from a few users is never refused.
PLANS_TOML = """
[free]
name = "Free"
daily_limit = 1000000
period_limit = 1000000
"""


def with_database(redis_url: str, number: int) -> str:
    """Return `redis_url` pointing at database `number`."""
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    return f"{base}/{number}"


@dataclass
class WorkerStack:
    """Fake servers, the submitting side in this process, and the worker processes."""

    telegram: FakeTelegramServer
    openai: FakeOpenAIServer
    env: dict[str, str]
    settings: Settings
    logs: Path
    redis: Redis
    mongo: AsyncMongoClient
    backends: Backends
    bot: Bot
    # Every process started, the bot included, stopped in order by `close`.
    workers: list[ChartBotProcess] = field(default_factory=list)
    # The acknowledgement's message id of each analysis submitted, by analysis id.
    acknowledgements: dict[str, int] = field(default_factory=dict)

    @classmethod
    async def open(cls, services_env: dict[str, str], logs: Path, *, redis_db: int = 5,
                   redis_url: str | None = None, **overrides: str) -> WorkerStack:
        """Start the fake servers and connect; no worker runs until `start_worker`."""
        telegram, openai = FakeTelegramServer(), FakeOpenAIServer()
        await telegram.start()
        await openai.start()
        plans = logs / "plans.toml"
        plans.write_text(PLANS_TOML)
        database = f"workers_{uuid.uuid4().hex[:10]}"
        # The model limit is far above what a test sends unless the test sets it.
        limits = {"MODEL_REQUESTS_PER_MINUTE": "1000000", "MODEL_TOKENS_PER_MINUTE": "1000000000"}
        env = stack_env(services_env, telegram_url=telegram.url, telegram_token=telegram.token,
                        openai_url=openai.url, database=database,
                        REDIS_URL=redis_url or with_database(services_env["REDIS_URL"], redis_db),
                        PLANS_FILE=str(plans), **{**limits, **overrides})
        redis = Redis.from_url(env["REDIS_URL"])
        await redis.flushdb()
        settings = Settings(**{key.lower(): value for key, value in env.items() if key != "DO_NOT_TRACK"})
        broker = build_redis_broker(settings)
        await broker.startup()
        backends = await open_backends(settings, broker)
        bot = build_bot(settings)
        await bot.initialize()
        mongo = AsyncMongoClient(env["MONGODB_URL"], tz_aware=True)
        stack = cls(telegram, openai, env, settings, logs, redis, mongo, backends, bot)
        stack._broker = broker
        stack._notifier = once_telegram_notifier(bot, backends, settings)
        return stack

    async def close(self) -> list[int | None]:
        """Stop every worker (SIGTERM) and return their exit statuses; then drop the data and servers."""
        statuses = [await worker.stop() for worker in self.workers]
        await self.bot.shutdown()
        await self.backends.close()
        await self._broker.shutdown()
        await self.mongo.drop_database(self.settings.mongodb_database)
        await self.mongo.close()
        await self.redis.flushdb()
        await self.redis.aclose()
        await self.telegram.stop()
        await self.openai.stop()
        return statuses

    async def start_worker(self, **overrides: str) -> ChartBotProcess:
        """Start one `chartbot worker` (one taskiq child process) and wait until it reads the queue."""
        number = len(self.workers) + 1
        worker = ChartBotProcess("worker", {**self.env, **overrides}, self.logs / f"worker-{number}.log")
        await worker.start()
        self.workers.append(worker)
        deadline = time.monotonic() + 60
        while "worker ready" not in worker.log():
            if time.monotonic() > deadline or worker.process.returncode is not None:
                raise AssertionError(f"worker {number} did not start; its log:\n{worker.log()[-3000:]}")
            await asyncio.sleep(0.1)
        return worker

    async def start_bot(self) -> ChartBotProcess:
        """Start `chartbot telegram` (long polling) and wait for its first getUpdates."""
        bot = ChartBotProcess("telegram", self.env, self.logs / "bot.log")
        await bot.start()
        self.workers.append(bot)
        try:
            await self.telegram.wait_for(lambda: self.telegram.calls_to("getUpdates"), timeout=60)
        except AssertionError:
            raise AssertionError(f"the bot did not start polling; its log:\n{bot.log()[-3000:]}") from None
        return bot

    async def submit(self, user_id: int, image: bytes, caption: str | None = None) -> Analysis:
        """Request one analysis as the bot does after a photo arrives: reserve, store, acknowledge, queue."""
        upload = Upload(platform=Platform.TELEGRAM, user_id=str(user_id), chat_id=str(user_id), data=image,
                        caption=caption)
        analysis = await submit_upload(upload, self.backends.services, self._notifier)
        self.acknowledgements[analysis.id] = int(analysis.ack_message_id)
        return analysis

    async def analysis(self, analysis_id: str) -> Analysis:
        found = await self.backends.services.analyses.get(analysis_id)
        assert found is not None
        return found

    def _final_shown(self, analysis_id: str) -> bool:
        message = self.telegram.messages.get(self.acknowledgements[analysis_id])
        return message is not None and not message.text.startswith(PROGRESS_MARKS)

    async def wait_finished(self, ids: list[str], timeout: float) -> None:
        """Wait until every analysis's acknowledgement shows its final reply and its outcome is stored.

        The chat is watched first because it costs nothing; a query per poll on
        thousands of records would slow FerretDB down for the workers.
        """
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending:
            pending = {analysis_id for analysis_id in pending if not self._final_shown(analysis_id)}
            if not pending:
                # One query for the lot: the outcome is stored before the reply reaches the chat.
                records = self.mongo[self.settings.mongodb_database]["analyses"].find(
                    {"status": {"$nin": ["done", "failed"]}}, {"_id": 1})
                pending = {record["_id"] async for record in records} & set(ids)
                if not pending:
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(w.log()[-2000:] for w in self.workers)
                raise AssertionError(f"{len(pending)} of {len(ids)} analyses unfinished, e.g. "
                                     f"{sorted(pending)[:3]}; worker logs:\n{logs}")
            await asyncio.sleep(0.2)

    async def holder_pid(self, analysis_id: str) -> int | None:
        """Return the pid of the worker process whose stream consumer owns the analysis's job."""
        stream = self.settings.queue_name
        for entry in await self.redis.xpending_range(stream, CONSUMER_GROUP, min="-", max="+", count=1000):
            [(_, fields)] = await self.redis.xrange(stream, entry["message_id"], entry["message_id"])
            message = json.loads(fields[b"data"])
            if message["labels"].get("job_id") == analysis_id:
                return int(entry["consumer"].decode().rsplit("-", 2)[1])
        return None

    async def stream_length(self) -> int:
        return await self.redis.xlen(self.settings.queue_name)

    async def pending_count(self) -> int:
        summary = await self.redis.xpending(self.settings.queue_name, CONSUMER_GROUP)
        return int(summary["pending"])

    async def uses_and_refunds(self, analysis_id: str) -> tuple[int, int]:
        """Return how many use and refund lines the usage ledger holds for one analysis."""
        ledger = self.mongo[self.settings.mongodb_database]["usage_ledger"]
        uses = await ledger.count_documents({"analysis_id": analysis_id, "kind": "use"})
        refunds = await ledger.count_documents({"analysis_id": analysis_id, "kind": "refund"})
        return uses, refunds


def kill(pid: int) -> None:
    """SIGKILL one process; it gets no chance to clean up."""
    os.kill(pid, signal.SIGKILL)
