"""Signed callback data of the journal buttons, and the number formats and limits of the journal messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.telegram import journal_callbacks
from bot.telegram.journal_callbacks import DeleteButton, PageButton
from bot.telegram.journal_messages import (
    MAX_TAG_ROWS,
    format_amount,
    format_number,
    format_percent,
    format_r,
    stats_text,
)
from core.journal.models import EntryQuery, EntryStatus, JournalEntry, Side
from core.journal.stats import compute_stats
from core.models import Platform

KEY = journal_callbacks.callback_key("123456:TEST-TOKEN")


def test_page_button_round_trip_at_max_length():
    query = EntryQuery(status=EntryStatus.CLOSED, symbol="A" * 16, tag="b" * 20)
    data = journal_callbacks.page_data(KEY, "7", 9999, query)
    assert len(data.encode()) <= 64
    assert journal_callbacks.read(KEY, "7", data) == PageButton(page=9999, query=query)


def test_delete_buttons_round_trip():
    confirm = journal_callbacks.delete_data(KEY, "7", 12, confirm=True)
    keep = journal_callbacks.delete_data(KEY, "7", 12, confirm=False)
    assert journal_callbacks.read(KEY, "7", confirm) == DeleteButton(short_id=12, confirm=True)
    assert journal_callbacks.read(KEY, "7", keep) == DeleteButton(short_id=12, confirm=False)


def test_button_of_other_user_rejected():
    data = journal_callbacks.delete_data(KEY, "7", 12, confirm=True)
    assert journal_callbacks.read(KEY, "8", data) is None


def test_button_signed_with_other_token_rejected():
    data = journal_callbacks.delete_data(journal_callbacks.callback_key("other:TOKEN"), "7", 12, confirm=True)
    assert journal_callbacks.read(KEY, "7", data) is None


@pytest.mark.parametrize("data", [None, "", "upgrade", "j|", "j|d|12", "j|d|13|AAAAAAAAAAAA", "j|p|1|z|||x"])
def test_malformed_button_rejected(data):
    assert journal_callbacks.read(KEY, "7", data) is None


def test_edited_payload_rejected():
    data = journal_callbacks.delete_data(KEY, "7", 12, confirm=True)
    assert journal_callbacks.read(KEY, "7", data.replace("|12|", "|13|")) is None
    assert journal_callbacks.read(KEY, "7", data.replace("j|d|", "j|k|")) is None


@pytest.mark.parametrize(("value", "text"), [
    (42000, "42,000"), (0.5, "0.5"), (0.00001234, "0.00001234"), (1234567.891, "1,234,567.891"), (0.1 + 0.2, "0.3"),
])
def test_number_format(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (1498, "+1,498"), (-304, "-304"), (98.5, "+98.5"), (180.666666, "+180.67"), (0, "0"), (-0.0004, "-0.0004"),
    (1e-12, "0"),
])
def test_amount_format(value, text):
    assert format_amount(value) == text


def test_percent_and_r_format():
    assert format_percent(7.1333) == "+7.13%"
    assert format_percent(-5.0667) == "-5.07%"
    assert format_r(2.996) == "+3.00R"
    assert format_r(-1.52) == "-1.52R"



def test_stats_text_caps_tag_rows():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    entries = [
        JournalEntry(id=f"e{i}", short_id=i, platform=Platform.TELEGRAM, user_id="7", symbol="BTCUSDT",
                     side=Side.LONG, entry_price=100, size=1, exit_price=101,
                     tags=tuple(f"tag{i}-{n}" for n in range(10)),
                     opened_at=now, closed_at=now, created_at=now, updated_at=now)
        for i in range(1, 31)
    ]
    text = stats_text(compute_stats(entries, now=now))
    assert text.count("\n#tag") == MAX_TAG_ROWS
    assert text.endswith("\n…and 285 more tags with fewer trades")
    assert len(text) < 4096
