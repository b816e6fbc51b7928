"""Telegram albums: the album buffer on real Redis, and albums posted to two `chartbot web` processes in
webhook mode, with a `chartbot worker`, the fake Bot API and OpenAI servers, MongoDB and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from adapters.mongo import MongoAnalysisRepository
from adapters.redis_albums import RedisAlbumBuffer
from core.albums import AlbumPart, AlbumRole, CloseStatus, PartAdded, collect_album
from core.analysis import AnalysisServices, Upload, submit_uploads
from core.errors import CaptionTooLong, ImageProblem, InvalidChartInRequest, TooManyCharts, UsageLimitExceeded
from core.memory import (
    InMemoryAnalysisRepository,
    InMemoryImageStore,
    InMemorySubscriptionRepository,
    InMemoryUsageCounters,
    InMemoryUsageLedger,
)
from core.models import Analysis, Platform
from core.plans import load_plans
from core.usage import UsageService
from bot.telegram.messages import analysis_messages
from tests.conftest import BAD_INPUTS, CHARTS
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.processes import ChartBotProcess, free_port, stack_env, wait_until_serving
from tests.worker_stack import with_database
from workers.prompt import MULTI_CHART_PROMPT, load_prompt

WEBHOOK_SECRET = "albums-webhook-secret"
SECRET_HEADER = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
REDIS_DB = 6
DAILY_LIMIT = 5
NOW = datetime(2026, 3, 14, 21, 30, tzinfo=UTC)
QUEUED = "⏳ 3 charts received. You are next in the queue; the analysis will appear in this message."
LATE = (
    "This chart arrived after the rest of its album had been sent for analysis, so it is not part of that "
    "analysis. Send it again on its own or in a new album. Nothing was counted against your limit."
)


def _chart(number: int) -> bytes:
    return (CHARTS / "rendered" / f"rendered-{number:02d}.png").read_bytes()


def _part(message_id: int, *, media_group_id: str = "album-1", caption: str | None = None) -> AlbumPart:
    return AlbumPart(chat_id="42", media_group_id=media_group_id, message_id=message_id, user_id="42",
                     kind="photo", file_id=f"file-{message_id}", file_size=1000, caption=caption)


# The album buffer on its own.

@pytest_asyncio.fixture
async def two_buffers(services_env):
    """Two buffers on separate connections to one Redis database, as two bot processes have."""
    url = with_database(services_env["REDIS_URL"], REDIS_DB + 1)
    first, second = Redis.from_url(url), Redis.from_url(url)
    await first.flushdb()
    yield RedisAlbumBuffer(first), RedisAlbumBuffer(second), first
    await first.flushdb()
    await first.aclose()
    await second.aclose()


async def test_buffer_stays_open_until_quiet(two_buffers):
    buffer, _, _ = two_buffers
    assert await buffer.add(_part(1)) is PartAdded.ADDED

    attempt = await buffer.close("42", "album-1", quiet_seconds=30)

    assert attempt.status is CloseStatus.OPEN
    assert attempt.parts == []
    assert 0 < attempt.wait_seconds <= 30


async def test_buffer_racing_closers_one_wins(two_buffers):
    first, second, redis = two_buffers
    for message_id, buffer in ((3, first), (1, second), (2, first)):
        assert await buffer.add(_part(message_id, caption="4h?" if message_id == 2 else None)) is PartAdded.ADDED
    assert await redis.ttl("chartbot:album:42:album-1:parts") > 0
    assert await redis.ttl("chartbot:album:42:album-1:last") > 0
    await asyncio.sleep(0.3)

    attempts = await asyncio.gather(*(buffer.close("42", "album-1", quiet_seconds=0.2)
                                      for buffer in (first, second) * 5))

    closed = [attempt for attempt in attempts if attempt.status is CloseStatus.CLOSED]
    assert len(closed) == 1
    assert [attempt.status for attempt in attempts].count(CloseStatus.TAKEN) == 9
    assert [part.message_id for part in closed[0].parts] == [1, 2, 3]
    assert [part.caption for part in closed[0].parts] == [None, "4h?", None]
    assert await redis.exists("chartbot:album:42:album-1:parts", "chartbot:album:42:album-1:last") == 0
    assert await redis.ttl("chartbot:album:42:album-1:closed") > 0


async def test_buffer_reports_late_part(two_buffers):
    first, second, _ = two_buffers
    await first.add(_part(1))
    await asyncio.sleep(0.3)
    assert (await first.close("42", "album-1", quiet_seconds=0.2)).status is CloseStatus.CLOSED

    assert await second.add(_part(2)) is PartAdded.LATE
    assert await second.add(_part(1)) is PartAdded.DUPLICATE
    assert (await second.close("42", "album-1", quiet_seconds=0.2)).status is CloseStatus.TAKEN


async def test_collect_album_one_submitter(two_buffers):
    first, second, _ = two_buffers

    collections = await asyncio.gather(
        collect_album(first, _part(2), quiet_seconds=0.3),
        collect_album(second, _part(1), quiet_seconds=0.3),
    )

    roles = sorted(collection.role.value for collection in collections)
    assert roles == [AlbumRole.NOTHING.value, AlbumRole.SUBMIT.value]
    submitted = next(c for c in collections if c.role is AlbumRole.SUBMIT)
    assert [part.message_id for part in submitted.parts] == [1, 2]
    late = await collect_album(first, _part(3), quiet_seconds=0.3)
    assert late.role is AlbumRole.LATE


# The multi-chart use case on the in-memory ports.

class QueuedIds:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def enqueue(self, analysis_id: str) -> None:
        self.ids.append(analysis_id)


class AcknowledgingNotifier:
    def __init__(self) -> None:
        self.acknowledged: list[str] = []

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        self.acknowledged.append(analysis.id)
        return "77"


def _memory_services() -> AnalysisServices:
    plans = load_plans()
    plans = plans.model_copy(update={"free": plans.free.model_copy(update={"daily_limit": DAILY_LIMIT})})
    usage = UsageService(counters=InMemoryUsageCounters(), ledger=InMemoryUsageLedger(),
                         subscriptions=InMemorySubscriptionRepository(), plans=plans,
                         past_due_grace=timedelta(days=3), clock=lambda: NOW)
    return AnalysisServices(analyses=InMemoryAnalysisRepository(), images=InMemoryImageStore(), usage=usage,
                            queue=QueuedIds(), clock=lambda: NOW)


def _uploads(files: list[bytes], captions: dict[int, str] | None = None) -> list[Upload]:
    captions = captions or {}
    return [Upload(platform=Platform.TELEGRAM, user_id="42", chat_id="42", data=data, message_id=str(10 + index),
                   caption=captions.get(index)) for index, data in enumerate(files)]


async def _used(services: AnalysisServices) -> int:
    return (await services.usage.summary("telegram", "42")).counts.day


async def test_submit_uploads_one_analysis_per_album():
    services, notifier = _memory_services(), AcknowledgingNotifier()
    uploads = _uploads([_chart(1), _chart(2), _chart(3)], {1: "weekly?", 2: "ignored"})

    analysis = await submit_uploads(uploads, services, notifier, max_charts=4, media_group_id="album-9")

    assert analysis.units == 3
    assert analysis.caption == "weekly?"
    assert analysis.message_id == "10"
    assert analysis.media_group_id == "album-9"
    assert [image.info.sha256 for image in analysis.images] == [
        hashlib.sha256(_chart(n)).hexdigest() for n in (1, 2, 3)]
    assert services.queue.ids == [analysis.id]
    assert notifier.acknowledged == [analysis.id]
    assert await _used(services) == 3


async def test_submit_uploads_too_many_charts():
    services, notifier = _memory_services(), AcknowledgingNotifier()

    with pytest.raises(TooManyCharts) as caught:
        await submit_uploads(_uploads([_chart(n) for n in range(5)]), services, notifier, max_charts=4)

    assert (caught.value.count, caught.value.limit) == (5, 4)
    assert services.queue.ids == []
    assert await _used(services) == 0


async def test_submit_uploads_bad_chart_named():
    services, notifier = _memory_services(), AcknowledgingNotifier()
    files = [_chart(1), _chart(2), (BAD_INPUTS / "tiny.png").read_bytes()]

    with pytest.raises(InvalidChartInRequest) as caught:
        await submit_uploads(_uploads(files), services, notifier, max_charts=4)

    assert (caught.value.position, caught.value.count) == (3, 3)
    assert caught.value.error.problem is ImageProblem.TOO_SMALL
    assert await _used(services) == 0


async def test_submit_uploads_caption_too_long():
    services, notifier = _memory_services(), AcknowledgingNotifier()

    with pytest.raises(CaptionTooLong):
        await submit_uploads(_uploads([_chart(1), _chart(2)], {1: "x" * 1001}), services, notifier, max_charts=4)

    assert await _used(services) == 0


async def test_submit_uploads_one_use_per_chart():
    services, notifier = _memory_services(), AcknowledgingNotifier()
    await submit_uploads(_uploads([_chart(1), _chart(2), _chart(3)]), services, notifier, max_charts=4)

    with pytest.raises(UsageLimitExceeded) as caught:
        await submit_uploads(_uploads([_chart(4), _chart(5), _chart(6)]), services, notifier, max_charts=4)

    assert (caught.value.used, caught.value.limit, caught.value.requested) == (3, DAILY_LIMIT, 3)
    assert len(services.queue.ids) == 1
    assert await _used(services) == 3


# Two web processes in webhook mode, a worker, and the fake servers.


@dataclass
class AlbumStack:
    telegram: FakeTelegramServer
    openai: FakeOpenAIServer
    mongo: AsyncMongoClient
    database: str
    redis: Redis
    web: list[ChartBotProcess]
    clients: list[httpx.AsyncClient]
    worker: ChartBotProcess

    @property
    def db(self):
        return self.mongo[self.database]

    async def post(self, process: int, update: dict) -> None:
        """Deliver one update to web process 0 or 1, as Telegram's webhook call does."""
        response = await self.clients[process].post("/telegram/webhook", json=update, headers=SECRET_HEADER)
        assert response.status_code == 200, response.text

    async def used_today(self, user_id: int) -> int:
        day = datetime.now(UTC).date().isoformat()
        return int(await self.redis.get(f"chartbot:usage:telegram:{user_id}:day:{day}") or 0)

    async def ledger(self, user_id: int) -> list[dict]:
        return await self.db.usage_ledger.find({"user_id": str(user_id)}).to_list()

    async def wait_for_analysis(self, user_id: int, *, timeout: float = 90) -> dict:
        """Wait until the user's only analysis record is done or failed, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            records = await self.db.analyses.find({"user_id": str(user_id)}).to_list()
            if records and all(record["status"] in ("done", "failed") for record in records):
                assert len(records) == 1, records
                return records[0]
            if time.monotonic() > deadline:
                logs = "\n".join(process.log()[-2000:] for process in [*self.web, self.worker])
                raise AssertionError(f"no finished analysis for user {user_id}: {records}\n{logs}")
            await asyncio.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(process.log() for process in self.web)




@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """The fake servers, then two `chartbot web` processes in webhook mode and one `chartbot worker`."""
    telegram, openai = FakeTelegramServer(), FakeOpenAIServer()
    await telegram.start()
    await openai.start()
    database = f"albums_{uuid.uuid4().hex[:10]}"
    redis_url = with_database(services_env["REDIS_URL"], REDIS_DB)
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)

    env = stack_env(services_env, telegram_url=telegram.url, telegram_token=telegram.token, openai_url=openai.url,
                    database=database, REDIS_URL=redis_url, FREE_DAILY_LIMIT=str(DAILY_LIMIT),
                    TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET, WEB_HOST="127.0.0.1")
    logs = tmp_path_factory.mktemp("album-logs")
    web, clients = [], []
    for name in ("a", "b"):
        port = free_port()
        process_env = {**env, "WEB_PORT": str(port),
                       "TELEGRAM_WEBHOOK_URL": f"https://127.0.0.1:{port}/telegram/webhook"}
        web.append(ChartBotProcess("web", process_env, logs / f"web-{name}.log"))
        clients.append(httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10))
    worker = ChartBotProcess("worker", env, logs / "worker.log")

    stack = AlbumStack(telegram, openai, mongo, database, redis, web, clients, worker)
    try:
        for process in [*web, worker]:
            await process.start()
        for client, process in zip(clients, web, strict=True):
            await wait_until_serving(client, process)
        yield stack
    finally:
        for client in clients:
            await client.aclose()
        statuses = [await process.stop() for process in [*web, worker]]
        await mongo.drop_database(database)
        await mongo.close()
        await redis.flushdb()
        await redis.aclose()
        await telegram.stop()
        await openai.stop()
    assert statuses == [0, 0, 0], stack.logs()[-3000:] + worker.log()[-3000:]


def _album_id() -> str:
    return str(uuid.uuid4().int % 10**18)


def _image_parts(request: dict) -> list[dict]:
    return [part for message in request["messages"] if isinstance(message["content"], list)
            for part in message["content"] if part.get("type") == "image_url"]


def _acknowledgements(telegram: FakeTelegramServer, user_id: int) -> list[dict]:
    return [params for params in telegram.calls_to("sendMessage")
            if int(params["chat_id"]) == user_id and str(params["text"]).startswith("⏳")]


def _replies(telegram: FakeTelegramServer, user_id: int) -> list[dict]:
    return [params for params in telegram.calls_to("sendMessage") if int(params["chat_id"]) == user_id]


def _reply_to(params: dict) -> int:
    return int(params["reply_parameters"]["message_id"])


def _file_ids(updates: list[dict]) -> set[str]:
    ids = set()
    for update in updates:
        message = update["message"]
        ids.update(size["file_id"] for size in message.get("photo", []))
        if "document" in message:
            ids.add(message["document"]["file_id"])
    return ids


async def _usage_text(stack: AlbumStack, user_id: int) -> str:
    """Send /usage as the user and return the bot's reply."""
    before = len(_replies(stack.telegram, user_id))
    update = {"update_id": 10**6 + user_id, "message": {
        "message_id": 9000, "date": int(time.time()), "text": "/usage",
        "chat": {"id": user_id, "type": "private", "first_name": "Trader"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Trader"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
    await stack.post(0, update)
    await stack.telegram.wait_for(lambda: len(_replies(stack.telegram, user_id)) > before, timeout=30)
    return str(_replies(stack.telegram, user_id)[before]["text"])


async def _post_mixed(stack: AlbumStack, updates: list[dict]) -> None:
    """Post an album's parts out of order across both processes, with gaps well below the quiet time.

    The second part goes to process 0, then the third and the first (and any further parts) to process 1.
    """
    order = [1, 2, 0, *range(3, len(updates))] if len(updates) >= 3 else list(range(len(updates)))[::-1]
    for step, index in enumerate(order):
        await stack.post(0 if step == 0 else 1, updates[index])
        await asyncio.sleep(0.3)


@pytest.mark.asyncio(loop_scope="module")
async def test_album_one_analysis_across_processes(stack: AlbumStack):
    user = 5101
    charts = [_chart(1), _chart(2), _chart(3)]
    caption = "Do the daily and 4h agree with the 1h breakout?"
    album = _album_id()
    updates = stack.telegram.album_updates(user, charts, media_group_id=album, caption=caption, caption_index=1)
    message_ids = [update["message"]["message_id"] for update in updates]
    requests_before = len(stack.openai.requests)

    await _post_mixed(stack, updates)
    record = await stack.wait_for_analysis(user)

    assert record["status"] == "done", record
    assert [image["info"]["sha256"] for image in record["images"]] == [
        hashlib.sha256(chart).hexdigest() for chart in charts]
    assert record["caption"] == caption
    assert record["media_group_id"] == album
    assert record["message_id"] == str(message_ids[0])
    assert record["units"] == 3
    assert record["refunded"] is False

    ledger = await stack.ledger(user)
    assert [(entry["kind"], entry["units"], entry["analysis_id"]) for entry in ledger] == [
        ("use", 3, record["_id"])]
    assert await stack.used_today(user) == 3
    assert f"<b>Today:</b> 3 of {DAILY_LIMIT} (resets at 00:00 UTC)" in await _usage_text(stack, user)

    acknowledgements = _acknowledgements(stack.telegram, user)
    assert [(params["text"], _reply_to(params)) for params in acknowledgements] == [(QUEUED, message_ids[0])]

    requests = stack.openai.requests[requests_before:]
    assert len(requests) == 1
    assert len(_image_parts(requests[0])) == 3
    multi = load_prompt(MULTI_CHART_PROMPT)
    assert requests[0]["messages"][0]["content"] == multi.system
    [text] = [part["text"] for part in requests[0]["messages"][1]["content"] if part["type"] == "text"]
    assert text.startswith(f"Analyse these 3 charts together. The trader's question or context: {caption}\n\n")
    assert record["prompt_version"] == "multi-chart-analysis-v1"
    stored = await MongoAnalysisRepository(stack.db).get(record["_id"])
    assert len(stored.result.report.charts) == 3
    assert stack.logs().count(f"album closed chat={user} album={album}") == 1

    # The acknowledgement is edited into the analysis of the three charts.
    await stack.telegram.wait_for(
        lambda: any(m.text.startswith("📊") for m in stack.telegram.chat(user)), timeout=30)
    [final] = [m for m in stack.telegram.chat(user) if m.text.startswith("📊")]
    assert [final.text] == analysis_messages(stored)
    assert final.text.startswith(f"📊 <b>Analysis of 3 charts</b>\n<i>Your question: {caption}</i>\n\n"
                                 "🟢 <b>Bullish</b> · medium confidence\n\n<b>Chart 1</b> · BTCUSDT · 1D\n")


@pytest.mark.asyncio(loop_scope="module")
async def test_album_late_part_costs_nothing(stack: AlbumStack):
    user = 5102
    album = _album_id()
    updates = stack.telegram.album_updates(user, [_chart(4), _chart(5), _chart(6)], media_group_id=album)
    await _post_mixed(stack, updates[:2])
    record = await stack.wait_for_analysis(user)
    assert len(record["images"]) == 2
    replies_before = len(_replies(stack.telegram, user))

    await stack.post(0, updates[2])
    await stack.telegram.wait_for(lambda: any(p["text"] == LATE for p in _replies(stack.telegram, user)),
                                  timeout=30)

    late = [params for params in _replies(stack.telegram, user)[replies_before:] if params["text"] == LATE]
    assert [_reply_to(params) for params in late] == [updates[2]["message"]["message_id"]]
    assert await stack.db.analyses.count_documents({"user_id": str(user)}) == 1
    assert await stack.used_today(user) == 2


@pytest.mark.asyncio(loop_scope="module")
async def test_album_over_chart_limit_rejected(stack: AlbumStack):
    user = 5103
    updates = stack.telegram.album_updates(user, [_chart(n) for n in range(7, 12)], media_group_id=_album_id(),
                                           caption="All five timeframes?", caption_index=4)

    await _post_mixed(stack, updates)
    await stack.telegram.wait_for(lambda: _replies(stack.telegram, user), timeout=30)
    usage = await _usage_text(stack, user)

    replies = _replies(stack.telegram, user)
    assert [(params["text"], _reply_to(params)) for params in replies[:1]] == [(
        "You sent 5 charts in one album, and one analysis takes at most 4. "
        "Send the album again with 4 charts or fewer. Nothing was counted against your limit.",
        updates[0]["message"]["message_id"])]
    assert len(replies) == 2
    assert f"<b>Today:</b> 0 of {DAILY_LIMIT} (resets at 00:00 UTC)" in usage
    assert await stack.db.analyses.count_documents({"user_id": str(user)}) == 0
    assert await stack.ledger(user) == []
    downloaded = {params["file_id"] for params in stack.telegram.calls_to("getFile")}
    assert downloaded & _file_ids(updates) == set()


@pytest.mark.asyncio(loop_scope="module")
async def test_album_over_daily_limit_rejected(stack: AlbumStack):
    user = 5104
    first = stack.telegram.album_updates(user, [_chart(12), _chart(13), _chart(14)], media_group_id=_album_id())
    await _post_mixed(stack, first)
    admitted = await stack.wait_for_analysis(user)
    second = stack.telegram.album_updates(user, [_chart(15), _chart(0), _chart(1)], media_group_id=_album_id())
    replies_before = len(_replies(stack.telegram, user))

    await _post_mixed(stack, second)
    await stack.telegram.wait_for(
        lambda: any(str(p["text"]).startswith("🚫") for p in _replies(stack.telegram, user)), timeout=30)

    refusals = [params for params in _replies(stack.telegram, user)[replies_before:]
                if str(params["text"]).startswith("🚫")]
    assert len(refusals) == 1
    assert _reply_to(refusals[0]) == second[0]["message"]["message_id"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert re.fullmatch(
        rf"🚫 You have used 3 of your {DAILY_LIMIT} chart analyses for today on the Free plan\. "
        r"This request needs 3 and 2 are left: send at most 2 charts now\. "
        rf"The limit resets at 00:00 UTC on {tomorrow} \(in (\d+ h )?\d+ min\)\. This request was not counted\.",
        refusals[0]["text"],
    ), refusals[0]["text"]
    assert refusals[0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "⭐ Upgrade"
    assert await stack.db.analyses.count_documents({"user_id": str(user)}) == 1
    assert [entry["analysis_id"] for entry in await stack.ledger(user)] == [admitted["_id"]]
    assert await stack.used_today(user) == 3


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("bad_file", "mime_type", "reason", "downloads"), [
    ("truncated.png", "image/png",
     "That image could not be read: the file is damaged or incomplete. Take the screenshot again and resend it.",
     3),
    ("document.pdf", "application/pdf",
     "That file is not an image. Send a chart screenshot as a photo, or as a PNG, JPEG or WebP file.",
     0),
])
async def test_album_bad_file_rejects_album(stack: AlbumStack, bad_file, mime_type, reason, downloads):
    user = 5105 if bad_file == "truncated.png" else 5106
    files = [_chart(2), (BAD_INPUTS / bad_file).read_bytes(), _chart(3)]
    updates = stack.telegram.album_updates(user, files, media_group_id=_album_id(), kind="document")
    updates[1]["message"]["document"].update(file_name=bad_file, mime_type=mime_type)

    await _post_mixed(stack, updates)
    await stack.telegram.wait_for(lambda: _replies(stack.telegram, user), timeout=30)
    usage = await _usage_text(stack, user)

    replies = _replies(stack.telegram, user)
    assert [(params["text"], _reply_to(params)) for params in replies[:1]] == [(
        f"The album was not analysed because of chart 2 of 3. {reason} Nothing was counted against your limit.",
        updates[0]["message"]["message_id"])]
    assert len(replies) == 2
    assert f"<b>Today:</b> 0 of {DAILY_LIMIT} (resets at 00:00 UTC)" in usage
    assert await stack.db.analyses.count_documents({"user_id": str(user)}) == 0
    assert await stack.ledger(user) == []
    downloaded = [params["file_id"] for params in stack.telegram.calls_to("getFile")
                  if params["file_id"] in _file_ids(updates)]
    assert len(downloaded) == downloads


@pytest.mark.asyncio(loop_scope="module")
async def test_help_mentions_albums(stack: AlbumStack):
    user = 5107
    update = {"update_id": 2 * 10**6, "message": {
        "message_id": 1, "date": int(time.time()), "text": "/help",
        "chat": {"id": user, "type": "private", "first_name": "Trader"},
        "from": {"id": user, "is_bot": False, "first_name": "Trader"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}

    await stack.post(1, update)
    await stack.telegram.wait_for(lambda: _replies(stack.telegram, user), timeout=30)

    assert ("Send up to 4 charts as one album for a multi-timeframe analysis, for example the daily, 4-hour and "
            "1-hour chart of one market. The album gets one analysis, the caption on any of its photos is the "
            "question, and each chart is one use.") in _replies(stack.telegram, user)[0]["text"]

