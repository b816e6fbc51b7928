"""A trader on Telegram, end to end: the real bot and a real worker as separate processes,
the fake Bot API and OpenAI servers, and MongoDB and Redis from `make services`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from core.analysis_result import ModelReport
from core.models import ChartFindings
from tests import billing_support
from workers.image_prep import image_tokens
from workers.prompt import load_prompt, reader_facts
from tests.conftest import BAD_INPUTS, CHARTS
from tests.fakes.cloudinary_server import FakeCloudinaryServer
from tests.fakes.openai_server import DEFAULT_REPORT_HTML, Failure, FakeOpenAIServer, default_report
from tests.fakes.telegram_server import FakeTelegramServer
from tests.processes import ChartBotProcess, stack_env

pytestmark = pytest.mark.asyncio(loop_scope="module")

NEXT_IN_QUEUE = "⏳ Chart received. You are next in the queue; the analysis will appear in this message."
SECOND_IN_QUEUE = "⏳ Chart received. You are number 2 in the queue; the analysis will appear in this message."
ANALYSING = "🔎 Analysing your chart. The analysis will appear in this message."
FAILED = (
    "❌ The analysis failed because the chart model did not answer. "
    "Your use was refunded, so you can send the chart again in a few minutes."
)
ANSWER_HTML = DEFAULT_REPORT_HTML
NOTHING_COUNTED = " Nothing was counted against your limit."


@dataclass
class Stack:
    telegram: FakeTelegramServer
    openai: FakeOpenAIServer
    cloudinary: FakeCloudinaryServer
    mongo: AsyncMongoClient
    database: str
    redis: Redis
    bot: ChartBotProcess
    worker: ChartBotProcess

    @property
    def db(self):
        return self.mongo[self.database]

    async def used_today(self, user_id: int) -> int:
        day = datetime.now(UTC).date().isoformat()
        return int(await self.redis.get(f"chartbot:usage:telegram:{user_id}:day:{day}") or 0)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """Fake servers, then `chartbot telegram` and `chartbot worker` as child processes."""
    telegram = FakeTelegramServer()
    openai = FakeOpenAIServer()
    cloudinary = FakeCloudinaryServer()
    await telegram.start()
    await openai.start()
    await cloudinary.start()
    redis = Redis.from_url(services_env["REDIS_URL"])
    await redis.flushdb()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    database = f"e2e_{uuid.uuid4().hex[:10]}"
    env = stack_env(
        services_env, telegram_url=telegram.url, telegram_token=telegram.token, openai_url=openai.url,
        database=database,
        FREE_DAILY_LIMIT="3",
        STRIPE_SECRET_KEY=billing_support.SECRET_KEY,
        STRIPE_API_BASE=services_env["STRIPE_API_BASE"],
        PLANS_FILE=str(billing_support.write_plans_file(tmp_path_factory.mktemp("plans"))),
        MODEL_MAX_ATTEMPTS="3",
        MODEL_RETRY_BASE_SECONDS="0.05",
        CLOUDINARY_URL=cloudinary.cloudinary_url,
        CLOUDINARY_UPLOAD_PREFIX=cloudinary.url,
    )

    logs = tmp_path_factory.mktemp("e2e-logs")
    bot = ChartBotProcess("telegram", env, logs / "bot.log")
    worker = ChartBotProcess("worker", env, logs / "worker.log")
    await bot.start()
    await worker.start()
    stack = Stack(telegram, openai, cloudinary, mongo, database, redis, bot, worker)
    try:
        await telegram.wait_for(lambda: telegram.calls_to("getUpdates"), timeout=60)
    except AssertionError:
        await bot.stop()
        await worker.stop()
        raise AssertionError(f"the bot did not start polling; its log:\n{bot.log()}")
    yield stack
    bot_status = await bot.stop()
    worker_status = await worker.stop()
    await mongo.drop_database(database)
    await mongo.close()
    await redis.aclose()
    await telegram.stop()
    await openai.stop()
    await cloudinary.stop()
    assert bot_status == 0, bot.log()[-3000:]
    assert worker_status == 0, worker.log()[-3000:]


def _finals(telegram: FakeTelegramServer, chat_id: int) -> list[str]:
    return [m.text for m in telegram.chat(chat_id) if m.text.startswith("📊")]


def _images_sent(request: dict) -> list[bytes]:
    return [base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
            for part in request["messages"][1]["content"] if part["type"] == "image_url"]


def _user_text(request: dict) -> str:
    return next(p["text"] for p in request["messages"][1]["content"] if p["type"] == "text")


async def test_commands_registered_and_help(stack: Stack):
    user = 1001
    commands = [c["command"] for c in stack.telegram.commands]
    assert commands == ["start", "help", "usage", "subscribe", "billing", "journal", "status", "cancel", "history"]

    stack.telegram.send_text(user, "/help")
    await stack.telegram.wait_for(lambda: stack.telegram.chat(user))
    text = stack.telegram.chat(user)[0].text
    assert text.startswith("<b>How to use ChartBot</b>")
    assert "The free plan gives 3 a day (reset at 00:00 UTC) and 15 a month" in text


async def test_unknown_command_answered(stack: Stack):
    user = 1010
    stack.telegram.send_text(user, "/foo<b>")
    await stack.telegram.wait_for(lambda: stack.telegram.chat(user))
    assert stack.telegram.chat(user)[0].text == (
        "There is no /foo&lt;b&gt; command. Send /help for the list of commands.")


async def test_photo_and_document_each_get_one_analysis(stack: Stack):
    user = 1002
    photo = (CHARTS / "real" / "tradingview-01.jpg").read_bytes()
    document = (CHARTS / "rendered" / "rendered-00.png").read_bytes()
    requests_before = len(stack.openai.requests)

    photo_message = stack.telegram.send_photo(user, photo, caption="Is the uptrend intact? <yes> & no")
    document_message = stack.telegram.send_document(
        user, document, file_name="rendered-00.png", mime_type="image/png"
    )
    await stack.telegram.wait_for(lambda: len(_finals(stack.telegram, user)) == 2, timeout=60)

    chat = stack.telegram.chat(user)
    assert len(chat) == 2
    by_reply = {m.reply_to: m for m in chat}
    assert by_reply[photo_message].text == (
        "📊 <b>Chart analysis</b>\n<i>Your question: Is the uptrend intact? &lt;yes&gt; &amp; no</i>\n\n"
        + ANSWER_HTML + "\n\n<i>Not financial advice.</i>"
    )
    assert by_reply[document_message].text == (
        "📊 <b>Chart analysis</b>\n\n" + ANSWER_HTML + "\n\n<i>Not financial advice.</i>"
    )
    for message in chat:
        # The acknowledgement, edited as the worker starts and then with the analysis. Both are in one
        # chat, paced a second apart, so a progress edit whose turn comes after the analysis is dropped.
        # The second may first move up to "next" when the first one starts.
        shown = [text for _, text in message.history]
        assert shown[1:-1] in ([], [ANALYSING], [NEXT_IN_QUEUE], [NEXT_IN_QUEUE, ANALYSING])
        assert shown[-1] == message.text
        assert message.parse_mode == "HTML"
    acknowledgements = [p["text"] for p in stack.telegram.calls_to("sendMessage") if int(p["chat_id"]) == user]
    assert acknowledgements[0] == NEXT_IN_QUEUE
    assert acknowledgements[1] in (NEXT_IN_QUEUE, SECOND_IN_QUEUE)

    requests = stack.openai.requests[requests_before:]
    assert len(requests) == 2
    [photo_request] = [r for r in requests if "Is the uptrend intact?" in _user_text(r)]
    [document_request] = [r for r in requests if r is not photo_request]
    records = await stack.db.analyses.find({"user_id": str(user)}).to_list()
    assert len(records) == 2
    facts = {}
    for record in records:
        stored = await stack.db.analysis_findings.find_one({"_id": record["_id"]})
        findings = [ChartFindings.model_validate(f) for f in stored["findings"]]
        facts[record["images"][0]["info"]["sha256"]] = load_prompt().facts.format(facts=reader_facts(findings))
    photo_hash, document_hash = hashlib.sha256(photo).hexdigest(), hashlib.sha256(document).hexdigest()
    assert _user_text(photo_request) == (
        "Analyse this chart. The trader's question or context: Is the uptrend intact? <yes> & no\n\n"
        + facts[photo_hash]
    )
    assert _user_text(document_request) == "Analyse this chart.\n\n" + facts[document_hash]
    assert "Chart 1: candlestick chart" in facts[document_hash]
    assert photo_request["model"] == "gpt-4o"
    assert photo_request["messages"][0]["role"] == "system"
    response_format = photo_request["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "ModelReport"
    assert response_format["json_schema"]["strict"] is True
    assert "trade_idea" in response_format["json_schema"]["schema"]["required"]

    # Each chart went to the model as prepared: a PNG, at the size and token cost its record gives.
    by_hash = {record["images"][0]["info"]["sha256"]: record for record in records}
    for request, original in ((photo_request, photo), (document_request, document)):
        [sent] = _images_sent(request)
        record = by_hash[hashlib.sha256(original).hexdigest()]
        [prepared] = record["prepared"]
        with Image.open(io.BytesIO(sent)) as image:
            assert image.format == "PNG"
            assert image.size == (prepared["width"], prepared["height"])
        assert prepared["tokens_sent"] == image_tokens(prepared["width"], prepared["height"], "high")
        assert prepared["detail"] == "high"
    # The 640-pixel screenshot has labels too small to shrink; the 1600x900 chart is cropped to fewer tiles.
    assert by_hash[photo_hash]["prepared"][0] == {
        "original_width": 640, "original_height": 356, "width": 640, "height": 356, "cropped": False,
        "detail": "high", "tokens_original": 425, "tokens_sent": 425}
    document_prepared = by_hash[document_hash]["prepared"][0]
    assert (document_prepared["original_width"], document_prepared["original_height"]) == (1600, 900)
    assert document_prepared["cropped"] is True
    assert document_prepared["tokens_original"] == 1105
    assert document_prepared["tokens_sent"] < 1105

    for record in records:
        assert record["status"] == "done"
        assert record["usage"] == {"input_tokens": 1234, "output_tokens": 321}
        assert record["model"] == "gpt-4o"
        assert record["prompt_version"] == "chart-analysis-v2"
        assert record["attempts"] == 1
        assert record["refunded"] is False
        # 1,234 input tokens at $2.50 and 321 output tokens at $10.00 per million.
        assert record["cost_usd"] == 0.006295
        assert record["result_text"] is None
        # The structured result is kept apart from the record, which only carries a flag for it.
        assert record["result_stored"] is True
        stored = await stack.db.analysis_results.find_one({"_id": record["_id"]})
        assert stored["result"]["report"] == ModelReport.model_validate(default_report(1)).model_dump()
        assert stored["result"]["risk_reward"] == [3.18, 4.27]
    # The worker uploaded each chart to the archive (the fake Cloudinary) after replying.
    for _ in range(100):
        records = await stack.db.analyses.find({"user_id": str(user)}).to_list()
        if all(record["archived"] for record in records):
            break
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient() as client:
        for record in records:
            image_id = record["images"][0]["image_id"]
            [archived] = record["archived"]
            assert archived["image_id"] == image_id
            assert archived["public_id"] == f"chartbot/telegram-{user}/{image_id}"
            assert record["archive_pending"] is False
            fetched = await client.get(archived["secure_url"])
            assert hashlib.sha256(fetched.content).hexdigest() == record["images"][0]["info"]["sha256"]
    assert sorted(r["images"][0]["info"]["mime_type"] for r in records) == ["image/jpeg", "image/png"]
    assert await stack.used_today(user) == 2


async def test_fourth_chart_of_the_day_refused(stack: Stack):
    user = 1003
    for index in (1, 2, 3):
        chart = (CHARTS / "rendered" / f"rendered-0{index}.png").read_bytes()
        stack.telegram.send_photo(user, chart)
    await stack.telegram.wait_for(lambda: len(_finals(stack.telegram, user)) == 3, timeout=60)
    requests_before = len(stack.openai.requests)

    stack.telegram.send_photo(user, (CHARTS / "rendered" / "rendered-04.png").read_bytes())
    await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) == 4)

    refusal = stack.telegram.chat(user)[-1]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    match = re.fullmatch(
        r"🚫 You have used 3 of your 3 chart analyses for today on the Free plan\. "
        rf"The limit resets at 00:00 UTC on {tomorrow} \(in (\d+ h )?\d+ min\)\. This request was not counted\.",
        refusal.text,
    )
    assert match, refusal.text
    assert stack.telegram.buttons(refusal.message_id) == [("⭐ Upgrade", "upgrade")]

    stack.telegram.press_button(user, refusal.message_id, "upgrade")
    await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) == 5)
    assert stack.telegram.chat(user)[-1].text == (
        "<b>⭐ ChartBot plans</b>\n\n"
        "• Basic: $9 a month, 100 charts a month, up to 25 a day\n"
        "• Pro: $29 a month, 500 charts a month, up to 100 a day\n"
        "• Elite: $99 a month, 3,000 charts a month, no daily cap\n\n"
        "Choose a plan to pay on Stripe's secure checkout page. It starts as soon as the payment goes through."
    )
    assert stack.telegram.buttons(stack.telegram.chat(user)[-1].message_id) == [
        ("Basic: $9 a month", "subscribe:basic"), ("Pro: $29 a month", "subscribe:pro"),
        ("Elite: $99 a month", "subscribe:elite"),
    ]
    assert len(stack.openai.requests) == requests_before
    assert await stack.used_today(user) == 3
    assert await stack.db.analyses.count_documents({"user_id": str(user)}) == 3


async def test_usage_command_shows_plan_and_counts(stack: Stack):
    user = 1008
    stack.telegram.send_photo(user, (CHARTS / "rendered" / "rendered-05.png").read_bytes())
    await stack.telegram.wait_for(lambda: _finals(stack.telegram, user), timeout=60)

    stack.telegram.send_text(user, "/usage")
    await stack.telegram.wait_for(lambda: len(stack.telegram.chat(user)) == 2)
    reply = stack.telegram.chat(user)[-1]
    now = datetime.now(UTC)
    next_month = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1).date().isoformat()
    assert reply.text == (
        "<b>📈 Your ChartBot usage</b>\n\n"
        "<b>Plan:</b> Free\n"
        "<b>Today:</b> 1 of 3 (resets at 00:00 UTC)\n"
        f"<b>This month:</b> 1 of 15 (resets on {next_month})\n"
        "<b>All time:</b> 1 chart analysed"
    )
    assert stack.telegram.buttons(reply.message_id) == [("⭐ Upgrade", "upgrade")]


NOT_A_CHART = (
    "🤔 This does not look like a price chart; send a screenshot of a candlestick, bar or line chart. "
    "Your use was refunded."
)


async def test_non_chart_refused_before_the_model(stack: Stack):
    user = 1009
    requests_before = len(stack.openai.requests)
    stack.telegram.send_photo(user, (CHARTS / "not-charts" / "chat-screenshot.png").read_bytes())
    await stack.telegram.wait_for(lambda: [m for m in stack.telegram.chat(user) if m.text == NOT_A_CHART],
                                  timeout=60)

    [message] = stack.telegram.chat(user)
    shown = [text for _, text in message.history]
    assert shown[0] == NEXT_IN_QUEUE
    assert shown[-1] == NOT_A_CHART
    assert shown[1:-1] in ([], [ANALYSING])
    assert len(stack.openai.requests) == requests_before
    record = await stack.db.analyses.find_one({"user_id": str(user)})
    assert record["status"] == "failed"
    assert record["failure"] == "not_a_chart"
    assert record["refunded"] is True
    stored = await stack.db.analysis_findings.find_one({"_id": record["_id"]})
    assert stored["findings"][0]["is_chart"] is False
    assert await stack.used_today(user) == 0
    refunds = await stack.db.usage_ledger.count_documents({"user_key": f"telegram:{user}", "kind": "refund"})
    assert refunds == 1


async def test_failing_model_refunds_the_use(stack: Stack):
    user = 1004
    requests_before = len(stack.openai.requests)
    stack.openai.fail_always = Failure(status=500)
    try:
        stack.telegram.send_photo(user, (CHARTS / "real" / "tradingview-02.jpg").read_bytes())
        await stack.telegram.wait_for(
            lambda: [m for m in stack.telegram.chat(user) if m.text == FAILED], timeout=60
        )
    finally:
        stack.openai.fail_always = None

    assert [m.text for m in stack.telegram.chat(user)] == [FAILED]
    assert len(stack.openai.requests) - requests_before == 3
    record = await stack.db.analyses.find_one({"user_id": str(user)})
    assert record["status"] == "failed"
    assert record["refunded"] is True
    assert record["attempts"] == 3
    assert record["error"].startswith("model unavailable after 3 attempts")
    assert await stack.used_today(user) == 0


async def test_rate_limited_model_is_retried(stack: Stack):
    user = 1005
    requests_before = len(stack.openai.requests)
    stack.openai.failures = [Failure(status=429, retry_after=0.2)]
    stack.telegram.send_photo(user, (CHARTS / "real" / "tradingview-03.jpg").read_bytes())
    await stack.telegram.wait_for(lambda: _finals(stack.telegram, user), timeout=60)

    assert len(stack.openai.requests) - requests_before == 2
    record = await stack.db.analyses.find_one({"user_id": str(user)})
    assert record["status"] == "done"
    # The 429 waited and was asked again without using up one of the analysis's attempts.
    assert record["attempts"] == 1
    assert await stack.used_today(user) == 1


BAD_INPUT_REPLIES = {
    "animated.gif": (
        "image/gif",
        "That image format is not supported (image/gif). "
        "Send the chart as a photo, or as a PNG, JPEG or WebP file.",
    ),
    "document.pdf": (
        "application/pdf",
        "That file is not an image. Send a chart screenshot as a photo, or as a PNG, JPEG or WebP file.",
    ),
    "empty.png": ("image/png", "That file is empty. Send the chart screenshot again."),
    "pixel-flood.png": (
        "image/png",
        "That image is too large to read (60000x60000 pixels). The limit is 40 megapixels: "
        "send an ordinary screenshot.",
    ),
    "script.svg": (
        "image/svg+xml",
        "That image format is not supported (image/svg+xml). "
        "Send the chart as a photo, or as a PNG, JPEG or WebP file.",
    ),
    "text-named-png.png": (
        "image/png",
        "That file is not an image. Send a chart screenshot as a photo, or as a PNG, JPEG or WebP file.",
    ),
    "tiny.png": (
        "image/png",
        "That image is too small to read a chart (6x4 pixels). Send a screenshot at least 64 pixels on each side.",
    ),
    "truncated.png": (
        "image/png",
        "That image could not be read: the file is damaged or incomplete. Take the screenshot again and resend it.",
    ),
}


async def test_bad_inputs_refused_at_no_cost(stack: Stack):
    user = 1006
    assert sorted(p.name for p in BAD_INPUTS.iterdir()) == sorted(BAD_INPUT_REPLIES)
    requests_before = len(stack.openai.requests)
    analyses_before = await stack.db.analyses.count_documents({})
    images_before = await stack.db.chart_images.count_documents({})

    for name, (mime_type, reply) in BAD_INPUT_REPLIES.items():
        sent = stack.telegram.send_document(user, (BAD_INPUTS / name).read_bytes(), file_name=name,
                                            mime_type=mime_type)
        await stack.telegram.wait_for(lambda: any(m.reply_to == sent for m in stack.telegram.chat(user)))
        answer = next(m for m in stack.telegram.chat(user) if m.reply_to == sent)
        assert answer.text == reply + NOTHING_COUNTED, name

    assert len(stack.openai.requests) == requests_before
    assert await stack.db.analyses.count_documents({}) == analyses_before
    assert await stack.db.chart_images.count_documents({}) == images_before
    assert await stack.used_today(user) == 0


async def test_file_over_download_limit_refused_without_download(stack: Stack):
    user = 1007
    sent = stack.telegram.send_document(user, b"\x89PNG", file_name="huge.png", mime_type="image/png",
                                        file_size=25_000_000)
    await stack.telegram.wait_for(lambda: stack.telegram.chat(user))
    answer = stack.telegram.chat(user)[0]
    assert answer.reply_to == sent
    assert answer.text == (
        "That file is too large (25.0 MB). Telegram lets bots download files up to 20 MB: "
        "send a smaller screenshot, or send it as a photo."
    )
    file_id = f"file-{len(stack.telegram.files)}"
    assert file_id not in [p["file_id"] for p in stack.telegram.calls_to("getFile")]
    assert await stack.used_today(user) == 0
