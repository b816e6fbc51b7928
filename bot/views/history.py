"""/history as a platform-neutral view: a page of a trader's analyses, one short label each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.history import AnalysisPage
from core.models import Analysis, AnalysisStatus

TITLE = "🗂 Your analyses"
CHOOSE = "Choose one to see its chart and analysis again. Times are in UTC."
EMPTY = (
    "You have no analyses yet. Send a chart screenshot as a photo or as an image file, "
    "and its analysis will be listed here."
)
# Labels are cut to fit a button on a phone screen; a longer symbol or caption ends in "…".
MAX_SYMBOL_CHARS = 16
MAX_TIMEFRAME_CHARS = 8
MAX_CAPTION_CHARS = 24

_STATUS_LABELS = {AnalysisStatus.QUEUED: "queued", AnalysisStatus.RUNNING: "running"}


@dataclass(frozen=True)
class HistoryRow:
    """One analysis in the listing: its id, for the button, and the label shown to the trader."""

    analysis_id: str
    label: str


@dataclass(frozen=True)
class HistoryView:
    """A page of /history; `rows` is empty when the user has no analyses, and `text` then explains how to start."""

    title: str
    text: str
    rows: list[HistoryRow]
    page: int
    pages: int


def _shorten(text: str, limit: int) -> str:
    """Return `text` on one line, cut at a word boundary where it has one to stay within `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"


def _subject(analysis: Analysis) -> list[str]:
    """Return the first chart's symbol with every chart's timeframe (1D/4h/1h), and the number of charts when
    there are several."""
    parts = []
    report = analysis.result.report if analysis.result is not None else None
    if report is not None and report.charts:
        charts = sorted(report.charts, key=lambda chart: chart.chart)
        symbol = _shorten(charts[0].symbol, MAX_SYMBOL_CHARS) if charts[0].symbol else None
        # A timeframe that several charts share is named once.
        timeframes = list(dict.fromkeys(
            _shorten(chart.timeframe, MAX_TIMEFRAME_CHARS) for chart in charts if chart.timeframe))
        named = " ".join(name for name in (symbol, "/".join(timeframes)) if name)
        if named:
            parts.append(named)
    if len(analysis.images) > 1:
        parts.append(f"{len(analysis.images)} charts")
    return parts


def _outcome(analysis: Analysis) -> list[str]:
    """Return the bias of a finished analysis, or the status of an unfinished one."""
    if analysis.status in _STATUS_LABELS:
        return [_STATUS_LABELS[analysis.status]]
    if analysis.status is AnalysisStatus.FAILED:
        return ["failed: refunded" if analysis.refunded else "failed"]
    if analysis.result is not None:
        return [analysis.result.report.bias]
    if analysis.caption:
        return [f"“{_shorten(analysis.caption, MAX_CAPTION_CHARS)}”"]
    return []


def utc_minute(moment: datetime) -> str:
    """Return a time as "2025-03-14 09:30" in UTC; a naive time is taken to be UTC already."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M}"


def row_label(analysis: Analysis) -> str:
    """Return an analysis's label, e.g. "2025-03-14 09:30 · BTCUSDT 1D/4h/1h · 3 charts · bullish"."""
    return " · ".join([utc_minute(analysis.created_at), *_subject(analysis), *_outcome(analysis)])


def history_view(page: AnalysisPage) -> HistoryView:
    """Render a page of analyses: its rows newest first, the page number and the total."""
    if page.total == 0:
        return HistoryView(title=TITLE, text=EMPTY, rows=[], page=1, pages=1)
    noun = "analysis" if page.total == 1 else "analyses"
    text = f"Page {page.page} of {page.pages} · {page.total} {noun}, newest first\n{CHOOSE}"
    rows = [HistoryRow(analysis_id=analysis.id, label=row_label(analysis)) for analysis in page.analyses]
    return HistoryView(title=TITLE, text=text, rows=rows, page=page.page, pages=page.pages)
