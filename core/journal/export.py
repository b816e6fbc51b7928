"""The journal as CSV: one row per entry, derived values included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from core.journal.models import JournalEntry

CSV_COLUMNS = (
    "id", "symbol", "side", "status", "entry_price", "exit_price", "size", "stop_loss", "take_profit", "fees",
    "pnl", "pnl_percent", "r_multiple", "opened_at", "closed_at", "tags", "note", "analysis_id",
)

# Spreadsheets run a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _number(value: float | None, digits: int = 10) -> str:
    if value is None:
        return ""
    # Rounding hides binary noise such as 0.30000000000000004; :g drops trailing zeros.
    rounded = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:.{digits}f}".rstrip("0").rstrip(".")


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def entries_to_csv(entries: Iterable[JournalEntry]) -> str:
    """Render entries as CSV with a header row; times are UTC ISO 8601, tags are space-separated.

    A note that starts like a spreadsheet formula gets a leading apostrophe.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([
            entry.short_id,
            entry.symbol,
            entry.side.value,
            entry.status.value,
            _number(entry.entry_price),
            _number(entry.exit_price),
            _number(entry.size),
            _number(entry.stop_loss),
            _number(entry.take_profit),
            _number(entry.fees),
            _number(entry.pnl, 8),
            _number(entry.pnl_percent, 4),
            _number(entry.r_multiple, 4),
            _time(entry.opened_at),
            _time(entry.closed_at),
            " ".join(entry.tags),
            _text(entry.note),
            entry.analysis_id or "",
        ])
    return buffer.getvalue()
