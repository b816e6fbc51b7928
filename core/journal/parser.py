"""Read the arguments of the /journal commands.

Every error is a JournalParseError that carries the token that failed and
the command whose form the reply should show.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.journal.errors import InvalidJournalEntry, JournalParseError
from core.journal.models import (
    MAX_TAGS,
    NOTE_MAX_CHARS,
    SYMBOL_MAX_CHARS,
    SYMBOL_PATTERN,
    TAG_MAX_CHARS,
    TAG_PATTERN,
    EntryFields,
    EntryQuery,
    EntryStatus,
    Side,
    check_levels,
)
from core.journal.stats import ALL_TIME, StatsPeriod

# 42000, 42,000, 42,000.5, .5, 42.5k: thousands separators must group exactly three digits.
_NUMBER = re.compile(r"(?P<digits>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?P<thousands>[kK])?")
_TOKEN = re.compile(r"\S+")
_PERIOD_DAYS = re.compile(r"(\d{1,4})d")
_TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M")
MAX_PERIOD_DAYS = 3660

SIDES = {"long": Side.LONG, "buy": Side.LONG, "short": Side.SHORT, "sell": Side.SHORT}
NAMED_PERIODS = {"all": ALL_TIME, "week": StatsPeriod("the last 7 days", 7),
                 "month": StatsPeriod("the last 30 days", 30), "year": StatsPeriod("the last 365 days", 365)}
NONE_WORDS = {"none", "-"}

# The one-line form's keywords, with the entry field each one sets.
ADD_KEYWORDS = {
    "sl": "stop_loss", "stop": "stop_loss",
    "tp": "take_profit", "target": "take_profit",
    "size": "size", "qty": "size",
    "exit": "exit_price",
    "fees": "fees", "fee": "fees",
    "opened": "opened_at",
}
EDIT_KEYWORDS = {
    **ADD_KEYWORDS,
    "symbol": "symbol", "side": "side", "entry": "entry_price", "closed": "closed_at",
    "tags": "tags", "note": "note",
}
# Fields an edit can clear with "none"; clearing the exit price reopens the trade.
CLEARABLE_FIELDS = {"stop_loss", "take_profit", "exit_price", "tags", "note"}
# Names of the fields in error messages, as a trader reads them.
FIELD_NAMES = {
    "symbol": "symbol", "side": "side", "entry_price": "entry price", "exit_price": "exit price", "size": "size",
    "stop_loss": "stop loss", "take_profit": "take profit", "fees": "fees", "opened_at": "opening time",
    "closed_at": "closing time", "tags": "tags", "note": "note",
}


@dataclass(frozen=True)
class CloseRequest:
    """Arguments of /journal close: the exit price and the fees paid to close, if any."""

    short_id: int
    exit_price: float
    fees: float | None = None


@dataclass(frozen=True)
class EditRequest:
    """Arguments of /journal edit: one field and its new value (None clears it)."""

    short_id: int
    field: str
    value: Any


def parse_number(token: str, *, field: str, command: str, allow_zero: bool = False) -> float:
    """Read a positive finite number such as 42000, 42,000.50 or 42.5k; `field` names it in errors."""
    name = FIELD_NAMES.get(field, field)
    text = token[1:] if token.startswith("-") else token
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise JournalParseError(f"the {name} must be a number such as 42000, 42,000.50 or 42.5k",
                                token=token, command=command)
    value = float(match.group("digits").replace(",", ""))
    if match.group("thousands"):
        value *= 1000
    if not math.isfinite(value):
        raise JournalParseError(f"the {name} is too large", token=token, command=command)
    if token.startswith("-") and value != 0:
        raise JournalParseError(f"the {name} must be positive", token=token, command=command)
    if value == 0 and not allow_zero:
        raise JournalParseError(f"the {name} must be greater than zero", token=token, command=command)
    return value


def parse_symbol(token: str, *, command: str) -> str:
    """Read a symbol such as BTCUSDT or eth/usd; returns it upper-case."""
    symbol = token.upper()
    if len(symbol) > SYMBOL_MAX_CHARS:
        raise JournalParseError(f"a symbol has at most {SYMBOL_MAX_CHARS} characters", token=token, command=command)
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise JournalParseError("a symbol may contain only letters, digits and . / _ -", token=token,
                                command=command)
    return symbol


def parse_side(token: str, *, command: str) -> Side:
    """Read long or short (buy and sell are accepted too)."""
    side = SIDES.get(token.lower())
    if side is None:
        raise JournalParseError("the side must be long or short", token=token, command=command)
    return side


def parse_tag(token: str, *, command: str) -> str:
    """Read one #tag; returns it lower-case without the #."""
    tag = token[1:].lower()
    if not tag:
        raise JournalParseError("a tag needs a name after the #", token=token, command=command)
    if len(tag) > TAG_MAX_CHARS:
        raise JournalParseError(f"a tag has at most {TAG_MAX_CHARS} characters", token=token, command=command)
    if not TAG_PATTERN.fullmatch(tag):
        raise JournalParseError("a tag starts with a letter and contains only letters, digits, _ and -",
                                token=token, command=command)
    return tag


def parse_tags(tokens: list[str], *, command: str) -> tuple[str, ...]:
    """Read a list of #tags, dropping repeats; at most MAX_TAGS."""
    tags: list[str] = []
    for token in tokens:
        if not token.startswith("#"):
            raise JournalParseError("tags start with #, for example #breakout", token=token, command=command)
        tag = parse_tag(token, command=command)
        if tag in tags:
            continue
        if len(tags) == MAX_TAGS:
            raise JournalParseError(f"an entry has at most {MAX_TAGS} tags", token=token, command=command)
        tags.append(tag)
    return tuple(tags)


def parse_note(text: str, *, command: str) -> str:
    """Check a note's length; returns it stripped."""
    note = text.strip()
    if not note:
        raise JournalParseError("the note is empty", token="note", command=command)
    if len(note) > NOTE_MAX_CHARS:
        raise JournalParseError(f"the note has {len(note)} characters and the limit is {NOTE_MAX_CHARS}",
                                token="note", command=command)
    return note


def parse_time(token: str, *, field: str, command: str) -> datetime:
    """Read a UTC date (2026-05-01) or date and time (2026-05-01T09:30)."""
    for time_format in _TIME_FORMATS:
        try:
            return datetime.strptime(token, time_format).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise JournalParseError(f"the {FIELD_NAMES[field]} must be a UTC date such as 2026-05-01 or 2026-05-01T09:30",
                            token=token, command=command)


def parse_short_id(token: str | None, *, command: str) -> int:
    """Read an entry number as shown in the journal: 3 or #3."""
    if token is None:
        raise JournalParseError("the entry number is missing", token=None, command=command)
    digits = token[1:] if token.startswith("#") else token
    if not digits.isascii() or not digits.isdigit() or int(digits) == 0 or len(digits) > 9:
        raise JournalParseError("an entry number is a whole number from the journal list, such as 3",
                                token=token, command=command)
    return int(digits)


def parse_entry_id(tokens: list[str], *, command: str) -> int:
    """Read the one argument of show and delete: an entry number."""
    if len(tokens) > 1:
        raise JournalParseError(f"/journal {command} takes one entry number", token=tokens[1], command=command)
    return parse_short_id(tokens[0] if tokens else None, command=command)


def parse_no_arguments(tokens: list[str], *, command: str) -> None:
    """Reject arguments after a command that takes none."""
    if tokens:
        raise JournalParseError(f"/journal {command} takes no arguments", token=tokens[0], command=command)


def parse_field_value(field: str, token: str, *, command: str) -> Any:
    """Read one field's value from its token."""
    if field == "symbol":
        return parse_symbol(token, command=command)
    if field == "side":
        return parse_side(token, command=command)
    if field in ("opened_at", "closed_at"):
        return parse_time(token, field=field, command=command)
    return parse_number(token, field=field, command=command, allow_zero=field == "fees")


def _levels_error(error: InvalidJournalEntry, token: str, command: str) -> JournalParseError:
    return JournalParseError(f"the {FIELD_NAMES[error.field]} {error.reason}", token=token, command=command)


def parse_add(text: str) -> EntryFields:
    """Read the one-line form: SYMBOL SIDE ENTRY then size, sl, tp, exit, fees, opened, #tags and note in any order."""
    command = "add"
    matches = list(_TOKEN.finditer(text))
    tokens = [m.group() for m in matches]
    if not tokens:
        raise JournalParseError("the symbol is missing", token=None, command=command)
    if len(tokens) < 2:
        raise JournalParseError("the side (long or short) is missing", token=None, command=command)
    if len(tokens) < 3:
        raise JournalParseError("the entry price is missing", token=None, command=command)
    values: dict[str, Any] = {
        "symbol": parse_symbol(tokens[0], command=command),
        "side": parse_side(tokens[1], command=command),
        "entry_price": parse_number(tokens[2], field="entry_price", command=command),
    }
    sources: dict[str, str] = {}
    tags: list[str] = []
    index = 3
    while index < len(tokens):
        token = tokens[index]
        keyword = token.lower()
        if keyword == "note":
            values["note"] = parse_note(text[matches[index].end():], command=command)
            break
        if token.startswith("#"):
            tags.append(token)
            index += 1
            continue
        field = ADD_KEYWORDS.get(keyword)
        if field is None:
            raise JournalParseError("this is not a field of /journal add", token=token, command=command)
        if field in values:
            raise JournalParseError(f"the {FIELD_NAMES[field]} is given twice", token=token, command=command)
        if index + 1 == len(tokens):
            raise JournalParseError(f"'{keyword}' needs a value after it", token=token, command=command)
        values[field] = parse_field_value(field, tokens[index + 1], command=command)
        sources[field] = tokens[index + 1]
        index += 2

    if "size" not in values:
        raise JournalParseError("the size is missing: add size and the quantity, for example size 0.5",
                                token=None, command=command)
    try:
        check_levels(values["side"], values["entry_price"], values.get("stop_loss"), values.get("take_profit"))
    except InvalidJournalEntry as error:
        raise _levels_error(error, sources[error.field], command) from None
    values["tags"] = parse_tags(tags, command=command)
    return EntryFields(**values)


def parse_list_query(tokens: list[str]) -> EntryQuery:
    """Read the filters of /journal list: open or closed, a symbol, a #tag, each at most once."""
    command = "list"
    status: EntryStatus | None = None
    symbol: str | None = None
    tag: str | None = None
    for token in tokens:
        word = token.lower()
        if word in ("open", "closed"):
            if status is not None:
                raise JournalParseError("choose open or closed once", token=token, command=command)
            status = EntryStatus(word)
        elif token.startswith("#"):
            if tag is not None:
                raise JournalParseError("filter by one tag at a time", token=token, command=command)
            tag = parse_tag(token, command=command)
        else:
            if symbol is not None:
                raise JournalParseError("filter by one symbol at a time", token=token, command=command)
            symbol = parse_symbol(token, command=command)
    return EntryQuery(status=status, symbol=symbol, tag=tag)


def parse_close(tokens: list[str]) -> CloseRequest:
    """Read /journal close ID PRICE [fees X]."""
    command = "close"
    short_id = parse_short_id(tokens[0] if tokens else None, command=command)
    if len(tokens) < 2:
        raise JournalParseError("the exit price is missing", token=None, command=command)
    exit_price = parse_number(tokens[1], field="exit_price", command=command)
    fees: float | None = None
    rest = tokens[2:]
    if rest:
        if rest[0].lower() not in ("fees", "fee"):
            raise JournalParseError("only fees can follow the exit price", token=rest[0], command=command)
        if len(rest) < 2:
            raise JournalParseError("'fees' needs a value after it", token=rest[0], command=command)
        fees = parse_number(rest[1], field="fees", command=command, allow_zero=True)
        if len(rest) > 2:
            raise JournalParseError("nothing can follow the fees", token=rest[2], command=command)
    return CloseRequest(short_id=short_id, exit_price=exit_price, fees=fees)


def parse_edit(text: str) -> EditRequest:
    """Read /journal edit ID FIELD VALUE; the note takes the rest of the line, tags a list of #tags."""
    command = "edit"
    matches = list(_TOKEN.finditer(text))
    tokens = [m.group() for m in matches]
    short_id = parse_short_id(tokens[0] if tokens else None, command=command)
    if len(tokens) < 2:
        raise JournalParseError("the field to change is missing", token=None, command=command)
    field = EDIT_KEYWORDS.get(tokens[1].lower())
    if field is None:
        raise JournalParseError("this is not a field that /journal edit can change", token=tokens[1],
                                command=command)
    if len(tokens) < 3:
        raise JournalParseError(f"the new {FIELD_NAMES[field]} is missing", token=None, command=command)
    values = tokens[2:]
    if values[0].lower() in NONE_WORDS and len(values) == 1:
        if field not in CLEARABLE_FIELDS:
            raise JournalParseError(f"the {FIELD_NAMES[field]} cannot be cleared", token=values[0],
                                    command=command)
        return EditRequest(short_id=short_id, field=field, value=None)
    if field == "note":
        return EditRequest(short_id=short_id, field=field, value=parse_note(text[matches[1].end():], command=command))
    if field == "tags":
        return EditRequest(short_id=short_id, field=field, value=parse_tags(values, command=command))
    if len(values) > 1:
        raise JournalParseError(f"the {FIELD_NAMES[field]} takes one value", token=values[1], command=command)
    return EditRequest(short_id=short_id, field=field, value=parse_field_value(field, values[0], command=command))


def parse_period(tokens: list[str]) -> StatsPeriod:
    """Read the period of /journal stats: all (the default), week, month, year or a number of days such as 90d."""
    command = "stats"
    if not tokens:
        return ALL_TIME
    if len(tokens) > 1:
        raise JournalParseError("/journal stats takes one period", token=tokens[1], command=command)
    word = tokens[0].lower()
    if word in NAMED_PERIODS:
        return NAMED_PERIODS[word]
    match = _PERIOD_DAYS.fullmatch(word)
    if match is None or not 1 <= int(match.group(1)) <= MAX_PERIOD_DAYS:
        raise JournalParseError(f"the period is all, week, month, year or 1d to {MAX_PERIOD_DAYS}d",
                                token=tokens[0], command=command)
    days = int(match.group(1))
    return StatsPeriod(f"the last {days} day" + ("s" if days > 1 else ""), days)
