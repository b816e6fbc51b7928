"""The structured analysis (core/analysis_result.py) rendered as compact Telegram HTML.

Headline bias first, then the levels, the trade plan and the summary, so a
trader finds what to act on without reading prose. Every string the model
wrote is escaped, and free text is cut to a length that keeps the reply
short.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.telegram.formatting import escape
from core.analysis_result import AnalysisResult, ChartReport, TradeIdea

# Maximum length of model-written text shown per field. The prompt requests a few sentences at most.
SUMMARY_MAX_CHARS = 1200
NOTE_MAX_CHARS = 300

_BIAS = {"bullish": "🟢 <b>Bullish</b>", "bearish": "🔴 <b>Bearish</b>", "neutral": "⚪ <b>Neutral</b>"}
_TREND = {"up": "Uptrend", "down": "Downtrend", "sideways": "Sideways"}


MAX_DECIMALS = 8


def price_decimals(price: float) -> int:
    """Return the decimals a price needs (at most 8), after rounding away float noise at 10 significant digits."""
    rounded = float(f"{price:.10g}")
    decimals = 0
    while decimals < MAX_DECIMALS and round(rounded, decimals) != rounded:
        decimals += 1
    return decimals


def format_price(price: float, decimals: int | None = None) -> str:
    """Write a price with thousands separators and `decimals` decimals, or the decimals it needs when None."""
    places = price_decimals(price) if decimals is None else decimals
    return f"{price:,.{places}f}"


def report_decimals(result: AnalysisResult) -> int:
    """Return the decimals of the most precise price in a report, so that every price in the reply shows as many.

    A float has lost the trailing zeros the chart showed (1.0920 arrives as
    1.092), and a price axis prints every label with the same decimals.
    """
    report = result.report
    prices = [price for chart in report.charts for price in (*chart.support, *chart.resistance)]
    if report.trade_idea is not None:
        idea = report.trade_idea
        prices += [idea.entry_low, idea.entry_high, idea.stop, *idea.targets]
    return max((price_decimals(price) for price in prices), default=0)


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _prices(prices: list[float], decimals: int) -> str:
    return " · ".join(format_price(price, decimals) for price in prices)


def _trend(chart: ChartReport) -> str:
    return f"{_TREND[chart.trend]} ({chart.trend_strength})"


def _names(chart: ChartReport) -> str:
    return " · ".join(escape(_cut(part, 40)) for part in (chart.symbol, chart.timeframe) if part)


def _levels(chart: ChartReport, decimals: int) -> list[str]:
    lines = []
    if chart.resistance:
        lines.append(f"Resistance: {_prices(chart.resistance, decimals)}")
    if chart.support:
        lines.append(f"Support: {_prices(chart.support, decimals)}")
    return lines


def _seen(chart: ChartReport) -> list[str]:
    lines = []
    if chart.patterns:
        lines.append("Patterns: " + escape(_cut(", ".join(chart.patterns), NOTE_MAX_CHARS)))
    if chart.indicators:
        lines.append("Indicators: " + escape(_cut(", ".join(chart.indicators), NOTE_MAX_CHARS)))
    return lines


def _single_chart_blocks(chart: ChartReport, decimals: int) -> list[str]:
    blocks = []
    levels = _levels(chart, decimals)
    if levels:
        blocks.append("<b>Levels</b>\n" + "\n".join(levels))
    seen = _seen(chart)
    if seen:
        blocks.append("\n".join(seen))
    return blocks


def _chart_block(chart: ChartReport, decimals: int) -> str:
    names = _names(chart)
    title = f"<b>Chart {chart.chart}</b>" + (f" · {names}" if names else "")
    if not chart.readable:
        return f"{title}\nNot readable as a price chart."
    return "\n".join([title, _trend(chart), *_levels(chart, decimals), *_seen(chart)])


def _plan_block(idea: TradeIdea, ratios: list[float], decimals: int) -> str:
    entry = format_price(idea.entry_low, decimals)
    if idea.entry_high != idea.entry_low:
        entry += f" – {format_price(idea.entry_high, decimals)}"
    # Two decimals, so that a ratio below 1 never reads as 1.0.
    targets = " · ".join(
        format_price(target, decimals) + (f" (R:R {ratios[index]:.2f})" if index < len(ratios) else "")
        for index, target in enumerate(idea.targets)
    )
    return "\n".join([
        f"<b>Trade idea: {idea.direction}</b>",
        f"Entry: {entry}",
        f"Stop: {format_price(idea.stop, decimals)}",
        f"Targets: {targets}",
        f"Invalidation: {escape(_cut(idea.invalidation, NOTE_MAX_CHARS))}",
    ])


def analysis_blocks(result: AnalysisResult, *, charts_sent: int = 1, left_out: Sequence[int] = ()) -> list[str]:
    """Render a structured analysis as HTML blocks: headline, levels or charts, confluence, plan, summary.

    `charts_sent` is the number of charts the trader sent, and `left_out` the
    numbers of those the reader found not to be charts, which the model never saw.
    An album keeps a block per chart sent, in the trader's order.
    """
    report = result.report
    decimals = report_decimals(result)
    headline = f"{_BIAS[report.bias]} · {report.confidence} confidence"
    blocks = []
    if charts_sent == 1 and len(report.charts) == 1:
        chart = report.charts[0]
        names = _names(chart)
        blocks.append(f"{headline}\n" + (f"{names} · " if names else "") + _trend(chart))
        blocks.extend(_single_chart_blocks(chart, decimals))
    else:
        blocks.append(headline)
        by_number = {chart.chart: chart for chart in report.charts}
        numbers = sorted({*range(1, charts_sent + 1), *by_number})
        for number in numbers:
            if number in by_number:
                blocks.append(_chart_block(by_number[number], decimals))
            elif number in left_out:
                blocks.append(f"<b>Chart {number}</b>\nNot a price chart, so it was left out of the analysis.")
        # Confluence needs two charts read.
        if report.confluence and sum(chart.readable for chart in report.charts) > 1:
            blocks.append("<b>Confluence</b>\n" + escape(_cut(report.confluence, SUMMARY_MAX_CHARS)))
    if report.trade_idea is not None:
        blocks.append(_plan_block(report.trade_idea, result.risk_reward, decimals))
    blocks.append("<b>Summary</b>\n" + escape(_cut(report.summary, SUMMARY_MAX_CHARS)))
    return blocks
