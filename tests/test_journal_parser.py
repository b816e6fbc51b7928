"""The /journal command forms: the one-line add, list filters, close, edit, ids and stats periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.journal.errors import JournalParseError
from core.journal.models import EntryQuery, EntryStatus, Side
from core.journal.parser import (
    CloseRequest,
    EditRequest,
    parse_add,
    parse_close,
    parse_edit,
    parse_entry_id,
    parse_list_query,
    parse_period,
)
from core.journal.stats import StatsPeriod

BASE = {"symbol": "BTCUSDT", "side": Side.LONG, "entry_price": 42000.0, "size": 0.5}

# (the text after "/journal add", the fields that differ from BASE)
VALID_ADDS = [
    ("BTCUSDT long 42000 size 0.5", {}),
    ("btcusdt LONG 42000 size 0.5", {}),
    ("BTCUSDT buy 42000 size 0.5", {}),
    ("BTCUSDT long 42,000 size 0.5", {}),
    ("BTCUSDT long 42k size 0.5", {}),
    ("BTCUSDT long 42.5k size 0.5", {"entry_price": 42500.0}),
    ("BTCUSDT long 42,000.25 size 0.5", {"entry_price": 42000.25}),
    ("BTCUSDT long 42000 size .5", {}),
    ("BTCUSDT long 42000 qty 0.5", {}),
    ("BTCUSDT long 42000 size 1.5K", {"size": 1500.0}),
    ("BTCUSDT long 42000 sl 41000 tp 45000 size 0.5", {"stop_loss": 41000.0, "take_profit": 45000.0}),
    ("BTCUSDT long 42000 size 0.5 tp 45k sl 41k", {"stop_loss": 41000.0, "take_profit": 45000.0}),
    ("BTCUSDT long 42000 SIZE 0.5 SL 41000", {"stop_loss": 41000.0}),
    ("BTCUSDT long 42000 stop 41000 target 45000 size 0.5", {"stop_loss": 41000.0, "take_profit": 45000.0}),
    ("ETHUSDT short 3,000 sl 3,100 tp 2,800 size 2",
     {"symbol": "ETHUSDT", "side": Side.SHORT, "entry_price": 3000.0, "size": 2.0, "stop_loss": 3100.0,
      "take_profit": 2800.0}),
    ("ethusdt sell 3000 size 2", {"symbol": "ETHUSDT", "side": Side.SHORT, "entry_price": 3000.0, "size": 2.0}),
    ("BTCUSDT long 42000 size 0.5 exit 45000", {"exit_price": 45000.0}),
    ("BTCUSDT long 42000 size 0.5 fees 2.5", {"fees": 2.5}),
    ("BTCUSDT long 42000 size 0.5 fee 0", {"fees": 0.0}),
    ("BTCUSDT long 42000 size 0.5 #breakout", {"tags": ("breakout",)}),
    ("BTCUSDT long 42000 #Breakout size 0.5 #retest #breakout", {"tags": ("breakout", "retest")}),
    ("BTCUSDT long 42000 size 0.5 note retest of the range high",
     {"note": "retest of the range high"}),
    ("BTCUSDT long 42000 size 0.5 #breakout note sl 41000 is only an idea",
     {"tags": ("breakout",), "note": "sl 41000 is only an idea"}),
    ("BTCUSDT long 42000 size 0.5 note <b>bold</b> & more", {"note": "<b>bold</b> & more"}),
    ("BTCUSDT long 42000 size 0.5 opened 2026-05-01", {"opened_at": datetime(2026, 5, 1, tzinfo=UTC)}),
    ("BTCUSDT long 42000 size 0.5 opened 2026-05-01T09:30",
     {"opened_at": datetime(2026, 5, 1, 9, 30, tzinfo=UTC)}),
    ("eth/usd long 42000 size 0.5", {"symbol": "ETH/USD"}),
    ("BTC-PERP long 42000 size 0.5", {"symbol": "BTC-PERP"}),
    ("BTCUSDT long 0.00001234 size 1,000,000", {"entry_price": 0.00001234, "size": 1_000_000.0}),
]

# (the text after "/journal add", the token the error names, the reason)
INVALID_ADDS = [
    ("", None, "the symbol is missing"),
    ("BTCUSDT", None, "the side (long or short) is missing"),
    ("BTCUSDT long", None, "the entry price is missing"),
    ("BTCUSDT long 42000", None, "the size is missing: add size and the quantity, for example size 0.5"),
    ("BTCUSDT up 42000 size 1", "up", "the side must be long or short"),
    ("BTC$ long 42000 size 1", "BTC$", "a symbol may contain only letters, digits and . / _ -"),
    ("ABCDEFGHIJKLMNOPQ long 42000 size 1", "ABCDEFGHIJKLMNOPQ", "a symbol has at most 16 characters"),
    ("BTCUSDT long abc size 1", "abc", "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long 4,20 size 1", "4,20", "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long 42000,0 size 1", "42000,0",
     "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long nan size 1", "nan", "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long inf size 1", "inf", "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long 1e5 size 1", "1e5", "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long 42kk size 1", "42kk", "the entry price must be a number such as 42000, 42,000.50 or 42.5k"),
    ("BTCUSDT long -42000 size 1", "-42000", "the entry price must be positive"),
    ("BTCUSDT long 0 size 1", "0", "the entry price must be greater than zero"),
    ("BTCUSDT long " + "9" * 400 + " size 1", "9" * 400, "the entry price is too large"),
    ("BTCUSDT long 42000 size 0", "0", "the size must be greater than zero"),
    ("BTCUSDT long 42000 size -1", "-1", "the size must be positive"),
    ("BTCUSDT long 42000 size", "size", "'size' needs a value after it"),
    ("BTCUSDT long 42000 size 1 sl", "sl", "'sl' needs a value after it"),
    ("BTCUSDT long 42000 size 1 size 2", "size", "the size is given twice"),
    ("BTCUSDT long 42000 size 1 sl 41000 stop 40000", "stop", "the stop loss is given twice"),
    ("BTCUSDT long 42000 size 1 leverage 10", "leverage", "this is not a field of /journal add"),
    ("BTCUSDT long 42000 size 1 great setup", "great", "this is not a field of /journal add"),
    ("BTCUSDT long 42000 size 1 sl 43000", "43000", "the stop loss must be below the entry price for a long"),
    ("BTCUSDT long 42000 size 1 sl 42000", "42000", "the stop loss must be below the entry price for a long"),
    ("ETHUSDT short 3000 size 1 sl 2900", "2900", "the stop loss must be above the entry price for a short"),
    ("BTCUSDT long 42000 size 1 tp 41000", "41000", "the take profit must be above the entry price for a long"),
    ("ETHUSDT short 3000 size 1 tp 3100", "3100", "the take profit must be below the entry price for a short"),
    ("BTCUSDT long 42000 size 1 fees -2", "-2", "the fees must be positive"),
    ("BTCUSDT long 42000 size 1 exit 0", "0", "the exit price must be greater than zero"),
    ("BTCUSDT long 42000 size 1 #", "#", "a tag needs a name after the #"),
    ("BTCUSDT long 42000 size 1 #3", "#3", "a tag starts with a letter and contains only letters, digits, _ and -"),
    ("BTCUSDT long 42000 size 1 #bad!tag", "#bad!tag",
     "a tag starts with a letter and contains only letters, digits, _ and -"),
    ("BTCUSDT long 42000 size 1 #" + "a" * 21, "#" + "a" * 21, "a tag has at most 20 characters"),
    ("BTCUSDT long 42000 size 1 " + " ".join(f"#t{i}" for i in range(11)), "#t10",
     "an entry has at most 10 tags"),
    ("BTCUSDT long 42000 size 1 note", "note", "the note is empty"),
    ("BTCUSDT long 42000 size 1 note " + "x" * 501, "note", "the note has 501 characters and the limit is 500"),
    ("BTCUSDT long 42000 size 1 opened 2026-13-01", "2026-13-01",
     "the opening time must be a UTC date such as 2026-05-01 or 2026-05-01T09:30"),
    ("BTCUSDT long 42000 size 1 opened yesterday", "yesterday",
     "the opening time must be a UTC date such as 2026-05-01 or 2026-05-01T09:30"),
]


@pytest.mark.parametrize(("text", "changes"), VALID_ADDS, ids=[row[0][:60] for row in VALID_ADDS])
def test_add_form_valid(text, changes):
    fields = parse_add(text)
    expected = {"stop_loss": None, "take_profit": None, "exit_price": None, "fees": 0.0, "tags": (), "note": None,
                "opened_at": None, **BASE, **changes}
    for name, value in expected.items():
        assert getattr(fields, name) == value, name


@pytest.mark.parametrize(("text", "token", "reason"), INVALID_ADDS, ids=[row[0][:60] for row in INVALID_ADDS])
def test_add_form_error_names_token(text, token, reason):
    with pytest.raises(JournalParseError) as caught:
        parse_add(text)
    assert caught.value.token == token
    assert caught.value.reason == reason
    assert caught.value.command == "add"


def test_add_table_has_forty_lines():
    assert len(VALID_ADDS) + len(INVALID_ADDS) >= 40


@pytest.mark.parametrize(("tokens", "query"), [
    ([], EntryQuery()),
    (["open"], EntryQuery(status=EntryStatus.OPEN)),
    (["CLOSED"], EntryQuery(status=EntryStatus.CLOSED)),
    (["btcusdt"], EntryQuery(symbol="BTCUSDT")),
    (["#Breakout"], EntryQuery(tag="breakout")),
    (["closed", "ethusdt", "#news"], EntryQuery(status=EntryStatus.CLOSED, symbol="ETHUSDT", tag="news")),
])
def test_list_filters(tokens, query):
    assert parse_list_query(tokens) == query


@pytest.mark.parametrize(("tokens", "token", "reason"), [
    (["open", "closed"], "closed", "choose open or closed once"),
    (["BTCUSDT", "ETHUSDT"], "ETHUSDT", "filter by one symbol at a time"),
    (["#a", "#b"], "#b", "filter by one tag at a time"),
    (["BTC$"], "BTC$", "a symbol may contain only letters, digits and . / _ -"),
])
def test_list_filter_errors(tokens, token, reason):
    with pytest.raises(JournalParseError) as caught:
        parse_list_query(tokens)
    assert (caught.value.token, caught.value.reason, caught.value.command) == (token, reason, "list")


@pytest.mark.parametrize(("tokens", "request_"), [
    (["3", "45000"], CloseRequest(short_id=3, exit_price=45000.0)),
    (["#3", "45k", "fees", "2.5"], CloseRequest(short_id=3, exit_price=45000.0, fees=2.5)),
    (["12", "1,234.5", "FEE", "0"], CloseRequest(short_id=12, exit_price=1234.5, fees=0.0)),
])
def test_close_form(tokens, request_):
    assert parse_close(tokens) == request_


@pytest.mark.parametrize(("tokens", "token", "reason"), [
    ([], None, "the entry number is missing"),
    (["x"], "x", "an entry number is a whole number from the journal list, such as 3"),
    (["0", "100"], "0", "an entry number is a whole number from the journal list, such as 3"),
    (["3"], None, "the exit price is missing"),
    (["3", "-5"], "-5", "the exit price must be positive"),
    (["3", "45000", "tip", "2"], "tip", "only fees can follow the exit price"),
    (["3", "45000", "fees"], "fees", "'fees' needs a value after it"),
    (["3", "45000", "fees", "1", "2"], "2", "nothing can follow the fees"),
])
def test_close_form_errors(tokens, token, reason):
    with pytest.raises(JournalParseError) as caught:
        parse_close(tokens)
    assert (caught.value.token, caught.value.reason, caught.value.command) == (token, reason, "close")


@pytest.mark.parametrize(("text", "request_"), [
    ("3 sl 41000", EditRequest(short_id=3, field="stop_loss", value=41000.0)),
    ("3 tp none", EditRequest(short_id=3, field="take_profit", value=None)),
    ("3 exit -", EditRequest(short_id=3, field="exit_price", value=None)),
    ("3 side SHORT", EditRequest(short_id=3, field="side", value=Side.SHORT)),
    ("3 symbol ethusdt", EditRequest(short_id=3, field="symbol", value="ETHUSDT")),
    ("3 note  moved the stop  to breakeven ", EditRequest(short_id=3, field="note", value="moved the stop  to breakeven")),
    ("3 tags #a #B", EditRequest(short_id=3, field="tags", value=("a", "b"))),
    ("3 opened 2026-04-30T08:00", EditRequest(short_id=3, field="opened_at",
                                              value=datetime(2026, 4, 30, 8, 0, tzinfo=UTC))),
    ("#3 fees 0", EditRequest(short_id=3, field="fees", value=0.0)),
])
def test_edit_form(text, request_):
    assert parse_edit(text) == request_


@pytest.mark.parametrize(("text", "token", "reason"), [
    ("3", None, "the field to change is missing"),
    ("3 colour red", "colour", "this is not a field that /journal edit can change"),
    ("3 sl", None, "the new stop loss is missing"),
    ("3 size none", "none", "the size cannot be cleared"),
    ("3 sl 1 2", "2", "the stop loss takes one value"),
    ("3 tags breakout", "breakout", "tags start with #, for example #breakout"),
])
def test_edit_form_errors(text, token, reason):
    with pytest.raises(JournalParseError) as caught:
        parse_edit(text)
    assert (caught.value.token, caught.value.reason, caught.value.command) == (token, reason, "edit")


def test_entry_id_takes_one_number():
    assert parse_entry_id(["7"], command="show") == 7
    with pytest.raises(JournalParseError) as caught:
        parse_entry_id(["7", "8"], command="delete")
    assert (caught.value.token, caught.value.reason) == ("8", "/journal delete takes one entry number")


@pytest.mark.parametrize(("tokens", "period"), [
    ([], StatsPeriod("all time")),
    (["ALL"], StatsPeriod("all time")),
    (["week"], StatsPeriod("the last 7 days", 7)),
    (["month"], StatsPeriod("the last 30 days", 30)),
    (["90d"], StatsPeriod("the last 90 days", 90)),
    (["1d"], StatsPeriod("the last 1 day", 1)),
])
def test_stats_period(tokens, period):
    assert parse_period(tokens) == period


@pytest.mark.parametrize("token", ["0d", "3661d", "fortnight", "-7d"])
def test_stats_period_errors(token):
    with pytest.raises(JournalParseError) as caught:
        parse_period([token])
    assert caught.value.token == token
    assert caught.value.reason == "the period is all, week, month, year or 1d to 3660d"
