"""The structured analysis (core/analysis_result.py) rendered as compact Telegram HTML.

Headline bias first, then the levels, the trade plan and the summary, so a
trader finds what to act on without reading prose. Every string the model
wrote is escaped, and free text is cut to a length that keeps the reply
short.
"""

from __future__ import annotations

from bot.telegram.formatting import escape
from core.analysis_result import AnalysisResult, ChartReport, TradeIdea

# Longest model-written text shown per field. The prompt requests a few sentences at most.
SUMMARY_MAX_CHARS = 1200
NOTE_MAX_CHARS = 300

_BIAS = {"bullish": "🟢 <b>Bullish</b>", "bearish": "🔴 <b>Bearish</b>", "neutral": "⚪ <b>Neutral</b>"}
_TREND = {"up": "Uptrend", "down": "Downtrend", "sideways": "Sideways"}


def format_price(price: float) -> str:
    """Write a price as the chart shows it: thousands separators and its own decimals (at most 8)."""
    rounded = float(f"{price:.10g}")
    decimals = 0
    while decimals < 8 and round(rounded, decimals) != rounded:
        decimals += 1
    return f"{rounded:,.{decimals}f}"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _prices(prices: list[float]) -> str:
    return " · ".join(format_price(price) for price in prices)


def _trend(chart: ChartReport) -> str:
    return f"{_TREND[chart.trend]} ({chart.trend_strength})"


def _names(chart: ChartReport) -> str:
    return " · ".join(escape(_cut(part, 40)) for part in (chart.symbol, chart.timeframe) if part)


def _levels(chart: ChartReport) -> list[str]:
    lines = []
    if chart.resistance:
        lines.append(f"Resistance: {_prices(chart.resistance)}")
    if chart.support:
        lines.append(f"Support: {_prices(chart.support)}")
    return lines


def _seen(chart: ChartReport) -> list[str]:
    lines = []
    if chart.patterns:
        lines.append("Patterns: " + escape(_cut(", ".join(chart.patterns), NOTE_MAX_CHARS)))
    if chart.indicators:
        lines.append("Indicators: " + escape(_cut(", ".join(chart.indicators), NOTE_MAX_CHARS)))
    return lines


def _single_chart_blocks(chart: ChartReport) -> list[str]:
    blocks = []
    levels = _levels(chart)
    if levels:
        blocks.append("<b>Levels</b>\n" + "\n".join(levels))
    seen = _seen(chart)
    if seen:
        blocks.append("\n".join(seen))
    return blocks


def _chart_block(chart: ChartReport) -> str:
    names = _names(chart)
    title = f"<b>Chart {chart.chart}</b>" + (f" · {names}" if names else "")
    if not chart.readable:
        return f"{title}\nNot readable as a price chart."
    return "\n".join([title, _trend(chart), *_levels(chart), *_seen(chart)])


def _plan_block(idea: TradeIdea, ratios: list[float]) -> str:
    entry = format_price(idea.entry_low)
    if idea.entry_high != idea.entry_low:
        entry += f" – {format_price(idea.entry_high)}"
    targets = " · ".join(
        format_price(target) + (f" (R:R {ratios[index]:.1f})" if index < len(ratios) else "")
        for index, target in enumerate(idea.targets)
    )
    return "\n".join([
        f"<b>Trade idea: {idea.direction}</b>",
        f"Entry: {entry}",
        f"Stop: {format_price(idea.stop)}",
        f"Targets: {targets}",
        f"Invalidation: {escape(_cut(idea.invalidation, NOTE_MAX_CHARS))}",
    ])


def analysis_blocks(result: AnalysisResult) -> list[str]:
    """Render a structured analysis as HTML blocks: headline, levels or charts, confluence, plan, summary."""
    report = result.report
    headline = f"{_BIAS[report.bias]} · {report.confidence} confidence"
    blocks = []
    if len(report.charts) == 1:
        chart = report.charts[0]
        names = _names(chart)
        blocks.append(f"{headline}\n" + (f"{names} · " if names else "") + _trend(chart))
        blocks.extend(_single_chart_blocks(chart))
    else:
        blocks.append(headline)
        blocks.extend(_chart_block(chart) for chart in report.charts)
        if report.confluence:
            blocks.append("<b>Confluence</b>\n" + escape(_cut(report.confluence, SUMMARY_MAX_CHARS)))
    if report.trade_idea is not None:
        blocks.append(_plan_block(report.trade_idea, result.risk_reward))
    blocks.append("<b>Summary</b>\n" + escape(_cut(report.summary, SUMMARY_MAX_CHARS)))
    return blocks
