"""/journal on Telegram, end to end: the real bot as a child process, the fake Bot API server, and
MongoDB (FerretDB) and Redis from `make services`."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.conftest import CHARTS
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage
from tests.processes import ChartBotProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADD_FORM = (
    "<code>/journal add SYMBOL long|short ENTRY size SIZE [sl PRICE] [tp PRICE] [exit PRICE] "
    "[fees AMOUNT] [opened YYYY-MM-DD] [#tag ...] [note TEXT]</code>\n"
    "For example: <code>/journal add BTCUSDT long 42000 sl 41000 tp 45000 size 0.5 #breakout note retest</code>\n"
    "Prices may be written 42,000 or 42k. Send <code>/journal add</code> alone to be asked field by field."
)
FOREIGN_BUTTON = "This button is invalid or belongs to another user's journal."
REDIS_DATABASE = 7


@dataclass
class Stack:
    telegram: FakeTelegramServer
    mongo: AsyncMongoClient
    database: str
    env: dict[str, str]
    logs: object
    bot: ChartBotProcess

    @property
    def db(self):
        return self.mongo[self.database]

    async def entry(self, user: int, short_id: int) -> dict | None:
        return await self.db.trade_journal.find_one({"user_id": str(user), "short_id": short_id})

    async def restart_bot(self) -> None:
        """Stop the bot process and start a new one, as a deploy or a second replica would."""
        assert await self.bot.stop() == 0, self.bot.log()[-3000:]
        polls = len(self.telegram.calls_to("getUpdates"))
        self.bot = ChartBotProcess("telegram", self.env, self.logs / f"bot-{uuid.uuid4().hex[:6]}.log")
        await self.bot.start()
        await self.telegram.wait_for(lambda: len(self.telegram.calls_to("getUpdates")) > polls + 1, timeout=60)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(services_env, tmp_path_factory):
    """The fake Bot API server, then `chartbot telegram` as a child process on a fresh database.

    No worker runs: the journal never needs one, and an analysis stays queued.
    """
    telegram = FakeTelegramServer()
    await telegram.start()
    mongo = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    database = f"journal_{uuid.uuid4().hex[:10]}"
    # A Redis database of its own: other test modules flush database 0, which would drop a guided draft mid-test.
    # It is emptied first, so usage counted in an earlier run does not reach today's limit.
    redis_url = services_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DATABASE}"
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    env = {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_URL": telegram.url,
        "MONGODB_URL": services_env["MONGODB_URL"],
        "MONGODB_DATABASE": database,
        "REDIS_URL": redis_url,
        "QUEUE_NAME": f"chartbot:test:{database}",
        "FREE_DAILY_LIMIT": "3",
        "DO_NOT_TRACK": "1",
    }
    logs = tmp_path_factory.mktemp("journal-logs")
    bot = ChartBotProcess("telegram", env, logs / "bot.log")
    await bot.start()
    stack = Stack(telegram, mongo, database, env, logs, bot)
    try:
        await telegram.wait_for(lambda: telegram.calls_to("getUpdates"), timeout=60)
    except AssertionError:
        await bot.stop()
        raise AssertionError(f"the bot did not start polling; its log:\n{bot.log()}")
    yield stack
    bot_status = await stack.bot.stop()
    await mongo.drop_database(database)
    await mongo.close()
    redis = Redis.from_url(redis_url)
    await redis.delete(env["QUEUE_NAME"])
    await redis.aclose()
    await telegram.stop()
    assert bot_status == 0, stack.bot.log()[-3000:]


async def say(stack: Stack, user: int, text: str, *, chat_id: int | None = None,
              reply_to: int | None = None) -> SentMessage:
    """Send a message as the user and return the bot's one new message in that chat."""
    chat = user if chat_id is None else chat_id
    before = {m.message_id for m in stack.telegram.chat(chat)}
    stack.telegram.send_text(user, text, chat_id=chat_id, reply_to_message_id=reply_to)

    def new() -> list[SentMessage]:
        return [m for m in stack.telegram.chat(chat) if m.message_id not in before]

    try:
        await stack.telegram.wait_for(lambda: new(), timeout=20)
    except AssertionError:
        raise AssertionError(f"no reply to {text!r}; bot log:\n{stack.bot.log()[-3000:]}") from None
    replies = new()
    assert len(replies) == 1, [m.text for m in replies]
    return replies[0]


async def press(stack: Stack, user: int, message_id: int, data: str) -> dict:
    """Press an inline button as the user and return the bot's answerCallbackQuery parameters."""
    query_id = stack.telegram.press_button(user, message_id, data)
    await stack.telegram.wait_for(lambda: query_id in stack.telegram.callback_answers, timeout=20)
    return stack.telegram.callback_answers[query_id]


def utc(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


async def test_journal_command_registered_with_help(stack: Stack):
    user = 2001
    assert "journal" in [c["command"] for c in stack.telegram.commands]
    reply = await say(stack, user, "/journal help")
    assert reply.text.startswith("📒 <b>Trade journal</b>\n\n" + ADD_FORM)
    unknown = await say(stack, user, "/journal frobnicate <x>")
    assert unknown.text.startswith("❌ <code>frobnicate</code> is not a journal command.\n\n📒 <b>Trade journal</b>")


async def test_add_one_line_form_and_escaping(stack: Stack):
    user = 2002
    reply = await say(stack, user, "/journal add btcusdt long 42,000 sl 41k tp 45000 size 0.5 #Breakout "
                                   "note retest <of> the range & high")
    record = await stack.entry(user, 1)
    assert reply.text == (
        "✅ Added entry #1.\n\n"
        "<b>#1 BTCUSDT long</b> · open\n"
        "Entry: 42,000 · size 0.5\n"
        "Stop loss: 41,000 (risk 500)\n"
        "Take profit: 45,000\n"
        f"Opened: {utc(record['opened_at'])}\n"
        "Tags: #breakout\n"
        "Note: retest &lt;of&gt; the range &amp; high"
    )
    assert reply.parse_mode == "HTML"
    assert record["symbol"] == "BTCUSDT"
    assert record["note"] == "retest <of> the range & high"
    assert record["tags"] == ["breakout"]


async def test_parse_errors_name_token_and_show_form(stack: Stack):
    user = 2003
    wrong_stop = await say(stack, user, "/journal add BTCUSDT long 42000 sl 43000 size 1")
    assert wrong_stop.text == (
        "❌ <code>43000</code>: the stop loss must be below the entry price for a long.\n\nUse: " + ADD_FORM
    )
    bad_number = await say(stack, user, "/journal add BTCUSDT long 42000 size <b>1</b>")
    assert bad_number.text == (
        "❌ <code>&lt;b&gt;1&lt;/b&gt;</code>: the size must be a number such as 42000, 42,000.50 or 42.5k."
        "\n\nUse: " + ADD_FORM
    )
    missing = await say(stack, user, "/journal close 1")
    assert missing.text == (
        "❌ The exit price is missing.\n\nUse: <code>/journal close ID PRICE [fees AMOUNT]</code> "
        "(fees are added to those already recorded)"
    )
    assert await stack.db.trade_journal.count_documents({"user_id": str(user)}) == 0


def _list_line(i: int) -> str:
    """The listing line of entry i of the 23-entry journal built below."""
    symbol = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
    line = f"<b>#{i}</b> {symbol} long 1 @ {100 + i}"
    if i % 4 == 0:
        line += f" → {110 + i} · +10 (+{10 / (100 + i) * 100:.2f}%) · +1.00R"
    else:
        line += " · open"
    return line + f" #t{i % 2}"


async def test_pagination_across_23_entries_with_filters(stack: Stack):
    user = 2004
    for i in range(1, 24):
        symbol = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
        exit_part = f" exit {110 + i}" if i % 4 == 0 else ""
        reply = await say(stack, user, f"/journal add {symbol} long {100 + i} sl {90 + i} size 1{exit_part} #t{i % 2}")
        assert reply.text.startswith(f"✅ Added entry #{i}.")

    listing = await say(stack, user, "/journal")
    assert listing.text == (
        "📒 <b>Your journal</b>: 23 entries, page 1 of 5\n\n"
        "<b>#23</b> SOLUSDT long 1 @ 123 · open #t1\n"
        "<b>#22</b> ETHUSDT long 1 @ 122 · open #t0\n"
        "<b>#21</b> BTCUSDT long 1 @ 121 · open #t1\n"
        "<b>#20</b> SOLUSDT long 1 @ 120 → 130 · +10 (+8.33%) · +1.00R #t0\n"
        "<b>#19</b> ETHUSDT long 1 @ 119 · open #t1"
    )
    assert [text for text, _ in stack.telegram.buttons(listing.message_id)] == ["Next ▶"]

    expected_pages = [list(range(23, 18, -1)), list(range(18, 13, -1)), list(range(13, 8, -1)),
                      list(range(8, 3, -1)), [3, 2, 1]]
    for number in range(2, 6):
        next_data = dict(stack.telegram.buttons(listing.message_id))["Next ▶"]
        answer = await press(stack, user, listing.message_id, next_data)
        assert "text" not in answer
        page = stack.telegram.messages[listing.message_id]
        assert page.edits == number - 1
        assert page.text == (
            f"📒 <b>Your journal</b>: 23 entries, page {number} of 5\n\n"
            + "\n".join(_list_line(i) for i in expected_pages[number - 1])
        )
    assert [text for text, _ in stack.telegram.buttons(listing.message_id)] == ["◀ Prev"]
    await press(stack, user, listing.message_id, dict(stack.telegram.buttons(listing.message_id))["◀ Prev"])
    assert stack.telegram.messages[listing.message_id].text.startswith(
        "📒 <b>Your journal</b>: 23 entries, page 4 of 5\n\n<b>#8</b>"
    )
    assert [text for text, _ in stack.telegram.buttons(listing.message_id)] == ["◀ Prev", "Next ▶"]

    closed = await say(stack, user, "/journal list closed")
    assert closed.text == (
        "📒 <b>Your journal</b>: 5 entries (closed), page 1 of 1\n\n"
        + "\n".join(_list_line(i) for i in (20, 16, 12, 8, 4))
    )
    assert stack.telegram.buttons(closed.message_id) == []

    odd = await say(stack, user, "/journal list #T1")
    assert odd.text.startswith("📒 <b>Your journal</b>: 12 entries (#t1), page 1 of 3\n\n")
    for _ in range(2):
        await press(stack, user, odd.message_id, dict(stack.telegram.buttons(odd.message_id))["Next ▶"])
    assert stack.telegram.messages[odd.message_id].text == (
        "📒 <b>Your journal</b>: 12 entries (#t1), page 3 of 3\n\n" + "\n".join(_list_line(i) for i in (3, 1))
    )

    open_sol = await say(stack, user, "/journal list open solusdt")
    assert open_sol.text == (
        "📒 <b>Your journal</b>: 6 entries (open, SOLUSDT), page 1 of 2\n\n"
        + "\n".join(_list_line(i) for i in (23, 17, 14, 11, 5))
    )
    await press(stack, user, open_sol.message_id, dict(stack.telegram.buttons(open_sol.message_id))["Next ▶"])
    assert stack.telegram.messages[open_sol.message_id].text == (
        "📒 <b>Your journal</b>: 6 entries (open, SOLUSDT), page 2 of 2\n\n" + _list_line(2)
    )

    nothing = await say(stack, user, "/journal list closed #nothing")
    assert nothing.text == "📒 No journal entries match closed, #nothing."


async def test_close_edit_and_delete_with_confirmation(stack: Stack):
    user = 2005
    await say(stack, user, "/journal add BTCUSDT long 42000 sl 41000 tp 45000 size 0.5 #breakout")
    await say(stack, user, "/journal add ETHUSDT short 3000 size 1")

    closed = await say(stack, user, "/journal close 1 45000 fees 2")
    record = await stack.entry(user, 1)
    card = (
        "<b>#1 BTCUSDT long</b> · closed\n"
        "Entry: 42,000 · size 0.5\n"
        "Stop loss: {stop} (risk {risk})\n"
        "Take profit: 45,000\n"
        "Exit: 45,000\n"
        "Fees: 2\n"
        "P&amp;L: +1,498 (+7.13%) · {r}\n"
        f"Opened: {utc(record['opened_at'])}\n"
        f"Closed: {utc(record['closed_at'])}\n"
        "Tags: #breakout"
    )
    assert closed.text == "✅ Closed entry #1.\n\n" + card.format(stop="41,000", risk="500", r="+3.00R")
    assert record["exit_price"] == 45000
    assert record["fees"] == 2

    again = await say(stack, user, "/journal close 1 46000")
    assert again.text == (
        "❌ Entry #1 is already closed at 45,000. To change the exit price, send "
        "<code>/journal edit 1 exit PRICE</code>."
    )

    edited = await say(stack, user, "/journal edit 1 sl 41500")
    assert edited.text == "✅ Changed the stop loss of entry #1.\n\n" + card.format(stop="41,500", risk="250",
                                                                                   r="+5.99R")
    refused = await say(stack, user, "/journal edit 1 sl 43000")
    assert refused.text == "❌ The stop loss must be below the entry price for a long. Entry #1 was not changed."
    assert (await stack.entry(user, 1))["stop_loss"] == 41500

    shown = await say(stack, user, "/journal show 2")
    assert shown.text.startswith("<b>#2 ETHUSDT short</b> · open\nEntry: 3,000 · size 1\nOpened: ")
    missing = await say(stack, user, "/journal show 9")
    assert missing.text == "❌ You have no journal entry #9. /journal list shows your entries."

    confirm = await say(stack, user, "/journal delete 1")
    assert confirm.text == "🗑 Delete this entry? This cannot be undone.\n\n" + card.format(
        stop="41,500", risk="250", r="+5.99R")
    buttons = dict(stack.telegram.buttons(confirm.message_id))
    assert list(buttons) == ["🗑 Delete", "Keep"]
    await press(stack, user, confirm.message_id, buttons["Keep"])
    assert stack.telegram.messages[confirm.message_id].text == "Entry #1 kept."
    assert stack.telegram.buttons(confirm.message_id) == []
    assert await stack.entry(user, 1) is not None

    confirm = await say(stack, user, "/journal delete #1")
    buttons = dict(stack.telegram.buttons(confirm.message_id))
    await press(stack, user, confirm.message_id, buttons["🗑 Delete"])
    assert stack.telegram.messages[confirm.message_id].text == "🗑 Entry #1 deleted."
    assert await stack.entry(user, 1) is None
    assert await stack.entry(user, 2) is not None

    await press(stack, user, confirm.message_id, buttons["🗑 Delete"])
    assert stack.telegram.messages[confirm.message_id].text == "Entry #1 was already deleted."
    assert await stack.db.trade_journal.count_documents({"user_id": str(user)}) == 1


async def test_forged_and_foreign_buttons_refused(stack: Stack):
    owner, intruder, group = 2006, 2007, -1002006
    for i in range(6):
        await say(stack, owner, f"/journal add BTCUSDT long {100 + i} size 1", chat_id=group)
    await say(stack, intruder, "/journal add ETHUSDT long 10 size 1")

    listing = await say(stack, owner, "/journal list", chat_id=group)
    next_data = dict(stack.telegram.buttons(listing.message_id))["Next ▶"]
    answer = await press(stack, intruder, listing.message_id, next_data)
    assert answer["text"] == FOREIGN_BUTTON
    assert answer["show_alert"] is True
    assert stack.telegram.messages[listing.message_id].edits == 0

    confirm = await say(stack, owner, "/journal delete 1", chat_id=group)
    delete_data = dict(stack.telegram.buttons(confirm.message_id))["🗑 Delete"]
    answer = await press(stack, intruder, confirm.message_id, delete_data)
    assert answer["text"] == FOREIGN_BUTTON
    # A payload rewritten to another entry or with a made-up tag fails the signature check.
    for forged in (delete_data.replace("|d|1|", "|d|2|"), "j|d|1|AAAAAAAAAAAA", "j|p|2|a||"):
        answer = await press(stack, owner, confirm.message_id, forged)
        assert answer["text"] == FOREIGN_BUTTON, forged
    assert stack.telegram.messages[confirm.message_id].edits == 0
    assert await stack.entry(owner, 1) is not None
    assert await stack.entry(owner, 2) is not None
    assert await stack.entry(intruder, 1) is not None

    answer = await press(stack, owner, listing.message_id, next_data)
    assert "text" not in answer
    assert stack.telegram.messages[listing.message_id].text == (
        "📒 <b>Your journal</b>: 6 entries, page 2 of 2\n\n<b>#1</b> BTCUSDT long 1 @ 100 · open"
    )


async def test_stats_with_equity_curve(stack: Stack):
    user = 2008
    empty = await say(stack, user, "/journal stats")
    assert empty.text == (
        "📊 No closed trades (all time); 0 still open. "
        "Close a trade with <code>/journal close ID PRICE</code> to see statistics."
    )
    trades = [
        "BTCUSDT long 40000 sl 39000 size 0.5 exit 42000 fees 10 #breakout",
        "ETHUSDT short 3000 sl 3100 size 2 exit 3150 fees 4 #breakout #news",
        "SOLUSDT long 100 size 10 exit 130 #news",
        "BTCUSDT short 45000 sl 46000 size 0.2 exit 44000 fees 2",
        "ETHUSDT long 3000 sl 2950 size 1 exit 2900 #news",
        "XRPUSDT long 0.5 sl 0.45 size 1000 exit 0.5",
        "BTCUSDT long 50000 sl 49000 size 0.1",
    ]
    for trade in trades:
        await say(stack, user, f"/journal add {trade}")
    uploads_before = len(stack.telegram.uploads)

    stats = await say(stack, user, "/journal stats")
    # Hand-computed in tests/test_journal_stats.py: P&L 990, -304, 300, 198, -100, 0.
    assert stats.text == (
        "📊 <b>Journal stats</b>, all time\n"
        "Closed trades: 6 (1 open)\n"
        "Win rate: 50.0% (3 won, 2 lost, 1 breakeven)\n"
        "Total P&amp;L: +1,084\n"
        "Average P&amp;L: +180.67\n"
        "Profit factor: 3.68\n"
        "Expectancy: +180.67 per trade\n"
        "Average R: -0.11R over 5 trades\n"
        "Best trade: #1 BTCUSDT +990\n"
        "Worst trade: #2 ETHUSDT -304\n"
        "\n<b>By tag</b>\n"
        "#news: 3 trades, 33.3% won, -104\n"
        "#breakout: 2 trades, 50.0% won, +686"
    )
    await stack.telegram.wait_for(lambda: len(stack.telegram.uploads) > uploads_before, timeout=20)
    photo = stack.telegram.uploads[-1]
    assert photo.method == "sendPhoto"
    assert photo.chat_id == user
    assert photo.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(photo.data) > 10_000
    assert photo.caption == "Equity curve: cumulative P&amp;L of 6 closed trades, all time"

    week = await say(stack, user, "/journal stats week")
    assert week.text.startswith("📊 <b>Journal stats</b>, the last 7 days\nClosed trades: 6 (1 open)\n")
    bad = await say(stack, user, "/journal stats fortnight")
    assert bad.text == (
        "❌ <code>fortnight</code>: the period is all, week, month, year or 1d to 3660d.\n\n"
        "Use: <code>/journal stats [all|week|month|year|90d]</code>"
    )


async def test_export_csv_document(stack: Stack):
    user = 2009
    nothing = await say(stack, user, "/journal export")
    assert nothing.text == "📒 Your journal has no entries yet, so there is nothing to export."
    await say(stack, user, '/journal add BTCUSDT long 42000 sl 41000 size 0.5 #breakout note "quoted", =SUM(A1)')
    await say(stack, user, "/journal add ETHUSDT short 3000 size 2 fees 1.5")
    await say(stack, user, "/journal close 2 2900 fees 1.5")
    uploads_before = len(stack.telegram.uploads)

    stack.telegram.send_text(user, "/journal export")
    await stack.telegram.wait_for(lambda: len(stack.telegram.uploads) > uploads_before, timeout=20)
    document = stack.telegram.uploads[-1]
    first, second = await stack.entry(user, 1), await stack.entry(user, 2)
    assert document.method == "sendDocument"
    assert document.filename == f"journal-{second['updated_at']:%Y-%m-%d}.csv"
    assert document.caption == "📒 Your journal: 2 entries."

    def iso(value: datetime) -> str:
        return f"{value:%Y-%m-%dT%H:%M:%SZ}"

    rows = list(csv.reader(io.StringIO(document.data.decode("utf-8"))))
    assert rows == [
        ["id", "symbol", "side", "status", "entry_price", "exit_price", "size", "stop_loss", "take_profit", "fees",
         "pnl", "pnl_percent", "r_multiple", "opened_at", "closed_at", "tags", "note", "analysis_id"],
        ["2", "ETHUSDT", "short", "closed", "3000", "2900", "2", "", "", "3", "197", "3.2833", "",
         iso(second["opened_at"]), iso(second["closed_at"]), "", "", ""],
        ["1", "BTCUSDT", "long", "open", "42000", "", "0.5", "41000", "", "0", "", "", "",
         iso(first["opened_at"]), "", "breakout", '"quoted", =SUM(A1)', ""],
    ]


async def test_guided_entry_end_to_end(stack: Stack):
    user = 2010
    first = await say(stack, user, "/journal add")
    assert first.text == (
        "📝 New journal entry (1/10)\nWhich symbol did you trade? For example BTCUSDT.\n\nSend /cancel to stop."
    )
    markup = stack.telegram.calls_to("sendMessage")[-1]["reply_markup"]
    assert markup == {"force_reply": True, "selective": True, "input_field_placeholder": "BTCUSDT"}

    side = await say(stack, user, "solusdt")
    assert side.text == "📝 New journal entry (2/10)\nLong or short?\n\nSend /cancel to stop."
    entry_question = await say(stack, user, "short")
    assert entry_question.text.startswith("📝 New journal entry (3/10)\nAt what price did you enter?")
    retry = await say(stack, user, "zero")
    assert retry.text == (
        "❌ <code>zero</code>: the entry price must be a number such as 42000, 42,000.50 or 42.5k.\n\n"
        "📝 New journal entry (3/10)\nAt what price did you enter? For example 42000, 42,000.50 or 42.5k.\n\n"
        "Send /cancel to stop."
    )
    await say(stack, user, "150")
    stop_question = await say(stack, user, "10")
    assert stop_question.text == (
        "📝 New journal entry (5/10)\nWhere is your stop loss? Send skip if you had none.\n\nSend /cancel to stop."
    )
    wrong_side = await say(stack, user, "140")
    assert wrong_side.text.startswith(
        "❌ <code>140</code>: the stop loss must be above the entry price for a short.\n\n📝 New journal entry (5/10)"
    )
    for answer in ("160", "skip", "140", "1.5", "#Range news"):
        await say(stack, user, answer)
    done = await say(stack, user, "faded the <pump> & dump")
    record = await stack.entry(user, 1)
    assert done.text == (
        "✅ Added entry #1.\n\n"
        "<b>#1 SOLUSDT short</b> · closed\n"
        "Entry: 150 · size 10\n"
        "Stop loss: 160 (risk 100)\n"
        "Exit: 140\n"
        "Fees: 1.5\n"
        "P&amp;L: +98.5 (+6.57%) · +0.98R\n"
        f"Opened: {utc(record['opened_at'])}\n"
        f"Closed: {utc(record['closed_at'])}\n"
        "Tags: #range #news\n"
        "Note: faded the &lt;pump&gt; &amp; dump"
    )
    after = await say(stack, user, "hello")
    assert not after.text.startswith(("📝", "❌", "✅"))
    assert await stack.db.trade_journal.count_documents({"user_id": str(user)}) == 1


async def test_guided_entry_cancel(stack: Stack):
    user = 2011
    await say(stack, user, "/journal add")
    await say(stack, user, "BTCUSDT")
    cancelled = await say(stack, user, "/cancel")
    assert cancelled.text == "Cancelled. The journal entry was not saved."
    again = await say(stack, user, "/cancel")
    assert again.text == "There is nothing to cancel."
    assert await stack.db.trade_journal.count_documents({"user_id": str(user)}) == 0


async def test_guided_entry_continues_after_bot_restart(stack: Stack):
    user = 2012
    await say(stack, user, "/journal add")
    await say(stack, user, "ETHUSDT")
    entry_question = await say(stack, user, "long")

    await stack.restart_bot()

    size_question = await say(stack, user, "3000", reply_to=entry_question.message_id)
    assert size_question.text.startswith("📝 New journal entry (4/10)\nWhat size")
    for answer in ("2", "2900", "3300", "skip", "skip", "skip"):
        await say(stack, user, answer)
    done = await say(stack, user, "skip")
    assert done.text.startswith("✅ Added entry #1.\n\n<b>#1 ETHUSDT long</b> · open\nEntry: 3,000 · size 2\n")
    record = await stack.entry(user, 1)
    assert (record["stop_loss"], record["take_profit"], record["exit_price"]) == (2900, 3300, None)


async def test_entry_linked_to_analysis_by_reply(stack: Stack):
    """The worker edits the analysis into the acknowledgement, so replying to that message links the entry."""
    user = 2013
    stack.telegram.send_photo(user, (CHARTS / "rendered" / "rendered-01.png").read_bytes())
    await stack.telegram.wait_for(lambda: stack.telegram.chat(user), timeout=30)
    analysis_message = stack.telegram.chat(user)[0]

    async def acknowledged() -> dict | None:
        return await stack.db.analyses.find_one({"user_id": str(user), "ack_message_id": {"$ne": None}})

    for _ in range(100):
        if (analysis := await acknowledged()) is not None:
            break
        await asyncio.sleep(0.05)
    assert analysis is not None, stack.bot.log()[-3000:]
    assert analysis["ack_message_id"] == str(analysis_message.message_id)

    linked = await say(stack, user, "/journal add BTCUSDT long 42000 size 1 #from-analysis",
                       reply_to=analysis_message.message_id)
    assert linked.text.endswith("Tags: #from-analysis\n📎 Linked to your chart analysis")
    assert (await stack.entry(user, 1))["analysis_id"] == analysis["_id"]

    shown = await say(stack, user, "/journal show 1")
    assert shown.text.endswith("📎 Linked to your chart analysis")

    unlinked = await say(stack, user, "/journal add BTCUSDT long 42000 size 1", reply_to=shown.message_id)
    assert "📎" not in unlinked.text
    assert (await stack.entry(user, 2))["analysis_id"] is None

    await say(stack, user, "/journal add", reply_to=analysis_message.message_id)
    for answer in ("BTCUSDT", "long", "42000", "1", "skip", "skip", "skip", "skip", "skip"):
        await say(stack, user, answer)
    guided = await say(stack, user, "skip")
    assert guided.text.endswith("📎 Linked to your chart analysis")
    assert (await stack.entry(user, 3))["analysis_id"] == analysis["_id"]
