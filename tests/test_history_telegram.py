"""/history on Telegram, end to end: the real bot as a child process, the fake Bot API server, and
MongoDB (FerretDB) and Redis from `make services`. The analyses are stored through the repositories."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from adapters.mongo import MongoAnalysisRepository, MongoImageStore
from bot.telegram import history
from bot.telegram.messages import analysis_messages, failure_message
from core.analysis_result import AnalysisResult, ChartReport, ModelReport
from core.images import ImageLimits, inspect_image
from core.models import (
    Analysis,
    AnalysisStatus,
    ArchivedChart,
    FailureKind,
    Platform,
    StoredImage,
)
from core.usage_records import Reservation
from tests.conftest import CHARTS
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage, Upload
from tests.processes import ChartBotProcess, stack_env, start_polling_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")

OWNER = 3001
OTHER = 3002
NEWCOMER = 3003
REDIS_DATABASE = 10
FIRST_AT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
# stack_env sets an OpenAI URL, but the bot never calls the model here, so nothing listens on this port.
UNUSED_OPENAI_URL = "http://127.0.0.1:9/v1"

FOREIGN_BUTTON = "This button is invalid or belongs to another user's history."
ANALYSIS_GONE = "This analysis is no longer available. Send /history for your current list."
STILL_QUEUED = "⏳ This analysis is still queued. Its result will appear in the chat where you sent the chart."
CHART_LOST = "🖼 The chart of this analysis is no longer stored, so only its analysis is shown."
EMPTY = (
    "<b>🗂 Your analyses</b>\n\n"
    "You have no analyses yet. Send a chart screenshot as a photo or as an image file, "
    "and its analysis will be listed here."
)
CHOOSE = "Choose one to see its chart and analysis again. Times are in UTC."

# The owner's twelve analyses, oldest first; analysis i was requested i hours after FIRST_AT.
ROWS = [
    "2025-03-14 09:30 · failed: refunded",
    "2025-03-14 10:30 · XAUUSD 1h · 2 charts · bearish",
    "2025-03-14 11:30 · “<b>levels</b> & stops”",
    "2025-03-14 12:30 · SOLUSDT · bullish",
    "2025-03-14 13:30",
    "2025-03-14 14:30 · running",
    "2025-03-14 15:30 · neutral",
    "2025-03-14 16:30 · “Is this breakout…”",
    "2025-03-14 17:30 · ETHUSDT 1D/4h/1h · 3 charts · bearish",
    "2025-03-14 18:30 · failed: refunded",
    "2025-03-14 19:30 · queued",
    "2025-03-14 20:30 · BTCUSDT 4h · bullish",
]


def _chart_report(number: int, symbol: str | None, timeframe: str | None) -> ChartReport:
    return ChartReport(chart=number, readable=True, symbol=symbol, timeframe=timeframe, trend="up",
                       trend_strength="moderate", support=[41000.0], resistance=[45000.0],
                       patterns=["ascending triangle"], indicators=[])


def _result(bias: str, charts: list[tuple[str | None, str | None]]) -> AnalysisResult:
    report = ModelReport(
        readable_chart=True, bias=bias, confidence="medium",
        charts=[_chart_report(n, symbol, timeframe) for n, (symbol, timeframe) in enumerate(charts, start=1)],
        confluence=None, trade_idea=None,
        summary="Price holds above support <41,000> & keeps making higher lows.",
        reader_measurements="not_given",
    )
    return AnalysisResult.from_report(report)


# What differs between the owner's analyses, by index (oldest first); every one not listed is done.
SPECS: dict[int, dict] = {
    0: {"status": AnalysisStatus.FAILED, "failure": FailureKind.NOT_A_CHART, "refunded": True},
    # Gold and silver on one timeframe: the timeframe is named once.
    1: {"charts": 2, "result": _result("bearish", [("XAUUSD", "1h"), ("XAGUSD", "1h")])},
    2: {"caption": "<b>levels</b> & stops", "result_text": "Levels at **41,000** & 45,000."},
    3: {"result": _result("bullish", [("SOLUSDT", None)])},
    4: {"result_text": "The chart's image was lost; this text stays.", "lose_chart": True},
    5: {"status": AnalysisStatus.RUNNING},
    6: {"result": _result("neutral", [(None, None)])},
    7: {"caption": "Is this breakout holding above 42k?",
        "result_text": "## Trend\nUp, with higher highs.\n\n## Levels\nSupport 41,000 & resistance 45,000."},
    8: {"charts": 3, "result": _result("bearish", [("ETHUSDT", "1D"), ("ETHUSDT", "4h"), ("ETHUSDT", "1h")])},
    9: {"status": AnalysisStatus.FAILED, "failure": FailureKind.MODEL, "refunded": True},
    10: {"status": AnalysisStatus.QUEUED},
    11: {"result": _result("bullish", [("BTCUSDT", "4h")]), "archived": True},
}


@dataclass
class Stack:
    telegram: FakeTelegramServer
    mongo: AsyncMongoClient
    database: str
    bot: ChartBotProcess
    analyses: dict[int, Analysis]
    charts: dict[str, bytes]

    @property
    def repository(self) -> MongoAnalysisRepository:
        return MongoAnalysisRepository(self.mongo[self.database])


def _chart_files() -> list[bytes]:
    paths = sorted((CHARTS / "real").glob("*.jpg"))
    assert len(paths) >= 4, f"expected sample charts in {CHARTS / 'real'}"
    return [path.read_bytes() for path in paths[:4]]


async def _store_analyses(db, files: list[bytes]) -> tuple[dict[int, Analysis], dict[str, bytes]]:
    """Store the owner's twelve analyses and their charts as the bot and worker would have."""
    repository = MongoAnalysisRepository(db)
    images = MongoImageStore(db)
    limits = ImageLimits()
    analyses: dict[int, Analysis] = {}
    charts: dict[str, bytes] = {}
    for index in range(12):
        spec = SPECS[index]
        analysis_id = uuid.uuid4().hex
        stored = []
        for number in range(spec.get("charts", 1)):
            data = files[(index + number) % len(files)]
            info = inspect_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels,
                                 min_side=limits.min_side)
            image_id = f"{analysis_id}-{number}"
            await images.put(image_id, info, data)
            stored.append(StoredImage(image_id=image_id, info=info))
            charts[image_id] = data
        units = len(stored)
        archived = []
        if spec.get("archived"):
            archived = [ArchivedChart(image_id=image.image_id, public_id=f"chartbot/{image.image_id}",
                                      secure_url=f"https://127.0.0.1:9/chartbot/{image.image_id}.jpg")
                        for image in stored]
        analysis = Analysis(
            id=analysis_id, platform=Platform.TELEGRAM, user_id=str(OWNER), chat_id=str(OWNER),
            caption=spec.get("caption"), images=stored,
            status=spec.get("status", AnalysisStatus.DONE), units=units,
            reservation=Reservation(analysis_id=analysis_id, platform="telegram", user_id=str(OWNER), units=units,
                                    day="2025-03-14", period="2025-03"),
            refunded=spec.get("refunded", False), failure=spec.get("failure"),
            result_text=spec.get("result_text"), result=spec.get("result"), archived=archived,
            created_at=FIRST_AT + timedelta(hours=index),
        )
        await repository.add(analysis)
        if spec.get("lose_chart"):
            await images.delete(stored[0].image_id)
        analyses[index] = await repository.get(analysis_id)
    return analyses, charts


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """The owner's analyses in a fresh database, the fake Bot API server, then `chartbot telegram`.

    No worker runs and no model is called: /history only reads what is stored.
    """
    telegram = FakeTelegramServer()
    await telegram.start()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    database = f"history_{uuid.uuid4().hex[:10]}"
    analyses, charts = await _store_analyses(mongo[database], _chart_files())
    # A Redis database of its own, because other test modules flush database 0.
    redis_url = services_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DATABASE}"
    env = stack_env(services_env, telegram_url=telegram.url, telegram_token=telegram.token,
                    openai_url=UNUSED_OPENAI_URL, database=database, REDIS_URL=redis_url)
    bot = await start_polling_bot(telegram, env, tmp_path_factory.mktemp("history-logs") / "bot.log")
    yield Stack(telegram, mongo, database, bot, analyses, charts)
    bot_status = await bot.stop()
    await mongo.drop_database(database)
    await mongo.close()
    redis = Redis.from_url(redis_url)
    await redis.delete(env["QUEUE_NAME"])
    await redis.aclose()
    await telegram.stop()
    assert bot_status == 0, bot.log()[-3000:]


async def say(stack: Stack, user: int, text: str) -> SentMessage:
    """Send a message as the user and return the bot's one new message in their chat."""
    try:
        replies = await stack.telegram.say(user, text)
    except AssertionError:
        raise AssertionError(f"no reply to {text!r}; bot log:\n{stack.bot.log()[-3000:]}") from None
    assert len(replies) == 1, [m.text for m in replies]
    return replies[0]


async def press(stack: Stack, user: int, message_id: int, data: str) -> dict:
    """Press an inline button as the user and return the bot's answerCallbackQuery parameters."""
    try:
        return await stack.telegram.press(user, message_id, data)
    except AssertionError:
        raise AssertionError(f"no answer to {data!r}; bot log:\n{stack.bot.log()[-3000:]}") from None


async def show(stack: Stack, index: int, message_id: int, *, texts: int) -> tuple[list[Upload], list[str]]:
    """Press the owner's button of analysis `index`; return the uploads and the `texts` messages it sent."""
    uploads_before = len(stack.telegram.uploads)
    before = {m.message_id for m in stack.telegram.chat(OWNER)}

    def new() -> list[str]:
        return [m.text for m in stack.telegram.chat(OWNER) if m.message_id not in before]

    answer = await press(stack, OWNER, message_id, signed(OWNER, stack.analyses[index].id))
    assert answer.get("text") is None, answer
    try:
        await stack.telegram.wait_for(lambda: len(new()) >= texts, timeout=20)
    except AssertionError:
        raise AssertionError(f"analysis {index} not shown; bot log:\n{stack.bot.log()[-3000:]}") from None
    return stack.telegram.uploads[uploads_before:], new()


def signed(user: int, analysis_id: str) -> str:
    return history.analysis_data(history.callback_key(FakeTelegramServer.token), str(user), analysis_id)


def page_text(page: int) -> str:
    return f"<b>🗂 Your analyses</b>\n\nPage {page} of 3 · 12 analyses, newest first\n{CHOOSE}"


def labels(stack: Stack, message_id: int) -> list[str]:
    return [label for label, _ in stack.telegram.buttons(message_id)]


def data_of(stack: Stack, message_id: int, label: str) -> str:
    return dict(stack.telegram.buttons(message_id))[label]


async def history_message(stack: Stack) -> SentMessage:
    return await say(stack, OWNER, "/history")


async def test_history_registered_with_help(stack: Stack):
    assert ("history", "Your past analyses, with their charts") in [
        (c["command"], c["description"]) for c in stack.telegram.commands]
    reply = await say(stack, OWNER, "/help")
    assert reply.text.endswith(
        "/history: your past analyses, newest first; choose one to see its chart and analysis again")


async def test_first_page_rows_and_buttons(stack: Stack):
    reply = await history_message(stack)
    assert reply.text == page_text(1)
    assert reply.parse_mode == "HTML"
    assert labels(stack, reply.message_id) == [ROWS[11], ROWS[10], ROWS[9], ROWS[8], ROWS[7], "Next ▶"]
    buttons = stack.telegram.buttons(reply.message_id)
    assert buttons[0][1] == signed(OWNER, stack.analyses[11].id)
    assert all(len(data.encode()) <= 64 for _, data in buttons)


async def test_next_and_prev_edit_pages(stack: Stack):
    reply = await history_message(stack)
    answer = await press(stack, OWNER, reply.message_id, data_of(stack, reply.message_id, "Next ▶"))
    assert answer.get("text") is None
    page_two = stack.telegram.messages[reply.message_id]
    assert page_two.edits == 1
    assert page_two.text == page_text(2)
    assert labels(stack, reply.message_id) == [ROWS[6], ROWS[5], ROWS[4], ROWS[3], ROWS[2], "◀ Prev", "Next ▶"]

    await press(stack, OWNER, reply.message_id, data_of(stack, reply.message_id, "Next ▶"))
    assert stack.telegram.messages[reply.message_id].text == page_text(3)
    assert labels(stack, reply.message_id) == [ROWS[1], ROWS[0], "◀ Prev"]

    await press(stack, OWNER, reply.message_id, data_of(stack, reply.message_id, "◀ Prev"))
    await press(stack, OWNER, reply.message_id, data_of(stack, reply.message_id, "◀ Prev"))
    assert stack.telegram.messages[reply.message_id].edits == 4
    assert stack.telegram.messages[reply.message_id].text == page_text(1)
    assert labels(stack, reply.message_id) == [ROWS[11], ROWS[10], ROWS[9], ROWS[8], ROWS[7], "Next ▶"]


async def test_page_argument_and_bad_argument(stack: Stack):
    last = await say(stack, OWNER, "/history 3")
    assert last.text == page_text(3)
    assert labels(stack, last.message_id) == [ROWS[1], ROWS[0], "◀ Prev"]
    beyond = await say(stack, OWNER, "/history 99")
    assert beyond.text == page_text(3)
    wrong = await say(stack, OWNER, "/history btc")
    assert wrong.text == ("Send /history for your newest analyses, or /history PAGE for another page, "
                          "for example /history 2.")
    assert wrong.reply_markup is None


async def test_chosen_analysis_sends_stored_chart_and_text(stack: Stack):
    reply = await history_message(stack)
    analysis = stack.analyses[7]
    expected = analysis_messages(analysis)
    uploads, texts = await show(stack, 7, reply.message_id, texts=len(expected))
    assert len(uploads) == 1
    assert uploads[0].method == "sendPhoto"
    assert uploads[0].url is None
    assert uploads[0].data == stack.charts[analysis.images[0].image_id]
    assert uploads[0].caption == "🗂 Chart of your analysis of 2025-03-14 16:30 UTC"
    assert texts == expected


async def test_structured_result_rendered_again(stack: Stack):
    reply = await say(stack, OWNER, "/history 2")
    analysis = stack.analyses[3]
    assert analysis.result is not None
    expected = analysis_messages(analysis)
    uploads, texts = await show(stack, 3, reply.message_id, texts=len(expected))
    assert [upload.data for upload in uploads] == [stack.charts[analysis.images[0].image_id]]
    assert texts == expected


async def test_archived_chart_sent_by_url(stack: Stack):
    reply = await history_message(stack)
    analysis = stack.analyses[11]
    expected = analysis_messages(analysis)
    uploads, texts = await show(stack, 11, reply.message_id, texts=len(expected))
    assert len(uploads) == 1
    assert uploads[0].method == "sendPhoto"
    assert uploads[0].url == analysis.archived[0].secure_url
    assert uploads[0].data == b""
    assert texts == expected


async def test_unreachable_archive_sends_stored_chart(stack: Stack):
    reply = await history_message(stack)
    analysis = stack.analyses[11]
    stack.telegram.unreachable_urls.add(analysis.archived[0].secure_url)
    try:
        expected = analysis_messages(analysis)
        uploads, texts = await show(stack, 11, reply.message_id, texts=len(expected))
    finally:
        stack.telegram.unreachable_urls.clear()
    assert len(uploads) == 1
    assert uploads[0].url is None
    assert uploads[0].data == stack.charts[analysis.images[0].image_id]
    assert texts == expected


async def test_several_charts_sent_as_album(stack: Stack):
    reply = await history_message(stack)
    analysis = stack.analyses[8]
    expected = analysis_messages(analysis)
    uploads, texts = await show(stack, 8, reply.message_id, texts=len(expected))
    assert [upload.method for upload in uploads] == ["sendMediaGroup"] * 3
    assert len({upload.media_group_id for upload in uploads}) == 1
    assert [upload.data for upload in uploads] == [stack.charts[image.image_id] for image in analysis.images]
    assert [upload.caption for upload in uploads] == ["🗂 Charts of your analysis of 2025-03-14 17:30 UTC",
                                                     None, None]
    assert texts == expected


async def test_failed_and_queued_shown_with_status(stack: Stack):
    reply = await history_message(stack)
    failed = stack.analyses[9]
    uploads, texts = await show(stack, 9, reply.message_id, texts=1)
    assert [upload.data for upload in uploads] == [stack.charts[failed.images[0].image_id]]
    assert texts == [failure_message(failed)]
    assert texts == ["❌ The analysis failed because the chart model did not answer. "
                     "Your use was refunded, so you can send the chart again in a few minutes."]
    queued = stack.analyses[10]
    uploads, texts = await show(stack, 10, reply.message_id, texts=1)
    assert [upload.data for upload in uploads] == [stack.charts[queued.images[0].image_id]]
    assert texts == [STILL_QUEUED]


async def test_lost_chart_said_and_text_shown(stack: Stack):
    reply = await say(stack, OWNER, "/history 2")
    analysis = stack.analyses[4]
    expected = analysis_messages(analysis)
    uploads, texts = await show(stack, 4, reply.message_id, texts=1 + len(expected))
    assert uploads == []
    assert texts == [CHART_LOST, *expected]


async def test_other_user_pressing_owner_button_rejected(stack: Stack):
    reply = await history_message(stack)
    data = data_of(stack, reply.message_id, ROWS[11])
    uploads_before = len(stack.telegram.uploads)
    messages_before = len(stack.telegram.messages)
    answer = await press(stack, OTHER, reply.message_id, data)
    assert answer["text"] == FOREIGN_BUTTON
    assert answer["show_alert"] is True
    # The alert is the handler's last call, so by now anything it sent would be recorded.
    assert len(stack.telegram.uploads) == uploads_before
    assert len(stack.telegram.messages) == messages_before
    assert stack.telegram.messages[reply.message_id].edits == 0


async def test_forged_or_stale_buttons_rejected(stack: Stack):
    reply = await history_message(stack)
    owner_id = stack.analyses[11].id
    uploads_before = len(stack.telegram.uploads)
    messages_before = len(stack.telegram.messages)
    cases = {
        f"h|a|{owner_id}|AAAAAAAAAAAA": FOREIGN_BUTTON,
        signed(OWNER, owner_id).replace("|a|", "|p|"): FOREIGN_BUTTON,
        f"h|a|{owner_id}": FOREIGN_BUTTON,
        # Signed correctly for the presser, but the analysis is the owner's.
        signed(OTHER, owner_id): ANALYSIS_GONE,
        # Signed correctly for the owner, but no such analysis is stored.
        signed(OWNER, uuid.uuid4().hex): ANALYSIS_GONE,
    }
    for data, text in cases.items():
        presser = OTHER if data == signed(OTHER, owner_id) else OWNER
        answer = await press(stack, presser, reply.message_id, data)
        assert answer["text"] == text, data
        assert answer["show_alert"] is True, data
    assert len(stack.telegram.uploads) == uploads_before
    assert len(stack.telegram.messages) == messages_before


async def test_empty_history_says_how_to_start(stack: Stack):
    reply = await say(stack, NEWCOMER, "/history")
    assert reply.text == EMPTY
    assert reply.reply_markup is None
