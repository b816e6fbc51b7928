"""The Telegram notifier through the real python-telegram-bot Bot and the fake Bot API server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest_asyncio

from bot.telegram.client import build_bot
from bot.telegram.notifier import TelegramNotifier
from core.models import Analysis, AnalysisStatus, ImageInfo, Platform, StoredImage
from core.settings import Settings
from core.usage_records import Reservation
from tests.fakes.telegram_server import html_parse_error


@pytest_asyncio.fixture
async def notifier(telegram_server):
    settings = Settings(telegram_bot_token=telegram_server.token, telegram_api_url=telegram_server.url)
    bot = build_bot(settings)
    await bot.initialize()
    yield TelegramNotifier(bot)
    await bot.shutdown()


def _analysis(**changes) -> Analysis:
    info = ImageInfo(mime_type="image/png", width=800, height=600, size_bytes=10, sha256="0" * 64)
    base = Analysis(id="an1", platform=Platform.TELEGRAM, user_id="55", chat_id="55", message_id="4",
                    images=[StoredImage(image_id="an1-0", info=info)], units=1,
                    reservation=Reservation(analysis_id="an1", platform="telegram", user_id="55", units=1,
                                            day="2026-05-01", period="2026-05-01T00:00:00+00:00"),
                    created_at=datetime(2026, 5, 1, tzinfo=UTC), status=AnalysisStatus.DONE)
    return base.model_copy(update=changes)


async def test_queued_then_done_edits_the_acknowledgement(notifier, telegram_server):
    ack = await notifier.analysis_queued(_analysis())
    await notifier.analysis_done(_analysis(ack_message_id=ack, result_text="Uptrend & strong"))
    [message] = telegram_server.chat(55)
    assert message.text == "📊 <b>Chart analysis</b>\n\nUptrend &amp; strong\n\n<i>Not financial advice.</i>"
    assert message.edits == 1
    assert message.reply_to == 4


async def test_missing_acknowledgement_falls_back_to_new_message(notifier, telegram_server):
    await notifier.analysis_done(_analysis(ack_message_id="424242", result_text="Sideways"))
    [message] = telegram_server.chat(55)
    assert message.text == "📊 <b>Chart analysis</b>\n\nSideways\n\n<i>Not financial advice.</i>"
    assert message.edits == 0
    assert len(telegram_server.calls_to("editMessageText")) == 1


async def test_long_analysis_split_into_several_messages(notifier, telegram_server):
    text = "\n\n".join(f"**Section {n}**\n" + "Support & resistance <levels> " * 40 for n in range(10))
    ack = await notifier.analysis_queued(_analysis())
    await notifier.analysis_done(_analysis(ack_message_id=ack, result_text=text, caption="<b>why?</b>"))
    chat = telegram_server.chat(55)
    # Each section renders to about 1,600 characters, so two fit in one message.
    assert len(chat) == 5
    assert chat[0].edits == 1
    assert chat[0].text.startswith("📊 <b>Chart analysis</b>\n<i>Your question: &lt;b&gt;why?&lt;/b&gt;</i>")
    assert chat[-1].text.endswith("<i>Not financial advice.</i>")
    assert sum(m.text.count("<b>Section ") for m in chat) == 10
    for message in chat:
        assert html_parse_error(message.text) is None
        assert len(message.text) <= 4096
