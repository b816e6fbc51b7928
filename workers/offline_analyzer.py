"""An analysis written from the offline reader's measurements, used when no model key is set.

The text is labelled as the offline reading so that no reader takes it for model output.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import PermanentModelError
from core.models import ChartFindings, ChartImage, ModelAnswer, PriceLevel, SwingPoint, TokenUsage

OFFLINE_MODEL_NAME = "offline-chart-reader"
OFFLINE_PROMPT_VERSION = "offline-reading-v1"

_BAR_WORDS = {"candle": "candles", "ohlc": "bars", "line": "points"}
_PATTERN_NAMES = {
    "doji": "doji",
    "hammer": "hammer",
    "shooting_star": "shooting star",
    "bullish_engulfing": "bullish engulfing",
    "bearish_engulfing": "bearish engulfing",
}


def format_price(price: float) -> str:
    """Format a price for reading: thousands separators, and more decimals for small prices."""
    if abs(price) >= 1000:
        return f"{price:,.0f}"
    if abs(price) >= 1:
        return f"{price:,.2f}"
    return f"{price:.4g}"


def _where(fraction: float, price: float | None) -> str:
    if price is not None:
        return format_price(price)
    return f"{fraction:.0%} of the visible price range"


def _trend_paragraph(findings: ChartFindings) -> str:
    bars = f"{findings.bar_count} {_BAR_WORDS.get(findings.chart_type or '', 'bars')}"
    if findings.trend is None:
        return f"**Trend**\nNot measured: the reader found {bars}, too few to judge."
    text = {"up": "Up", "down": "Down", "sideways": "Sideways"}[findings.trend] + f" over the {bars} visible"
    if findings.change_fraction is not None:
        direction = "above" if findings.change_fraction >= 0 else "below"
        text += f": the last close is {abs(findings.change_fraction):.0%} of the chart's height {direction} the first"
    return f"**Trend**\n{text}."


def _swings_paragraph(highs: Sequence[SwingPoint], lows: Sequence[SwingPoint]) -> str | None:
    parts = []
    if highs:
        parts.append("Recent swing highs: " + ", ".join(_where(p.fraction, p.price) for p in highs[-3:]) + ".")
    if lows:
        parts.append("Recent swing lows: " + ", ".join(_where(p.fraction, p.price) for p in lows[-3:]) + ".")
    return "**Swing points**\n" + " ".join(parts) if parts else None


def _levels_paragraph(levels: Sequence[PriceLevel]) -> str | None:
    if not levels:
        return None
    lines = [
        f"- {level.kind.capitalize()} near {_where(level.fraction, level.price)}: price turned there {level.touches} times"
        for level in sorted(levels, key=lambda level: -level.fraction)
    ]
    return "**Levels**\n" + "\n".join(lines)


def _last_bar_paragraph(findings: ChartFindings) -> str | None:
    if findings.last_bar_direction is None:
        return None
    units = {"line": "point", "candle": "candle"}
    unit = units.get(findings.chart_type or "", "bar")
    moved = {"up": "closed up", "down": "closed down", "flat": "closed where it opened"}[findings.last_bar_direction]
    if findings.chart_type == "line":
        moved = {"up": "moved up", "down": "moved down", "flat": "did not move"}[findings.last_bar_direction]
    text = f"The last {unit} {moved}"
    if findings.last_price is not None:
        text += f", near {format_price(findings.last_price)}"
    patterns = [_PATTERN_NAMES.get(name, name) for name in findings.last_bar_patterns]
    if patterns:
        text += f". Pattern: {', '.join(patterns)}"
    return f"**Last {unit}**\n{text}."


def describe_findings(findings: ChartFindings) -> str:
    """Write one chart's findings as the reply's light Markdown."""
    paragraphs = [
        _trend_paragraph(findings),
        _swings_paragraph(findings.swing_highs, findings.swing_lows),
        _levels_paragraph(findings.levels),
        _last_bar_paragraph(findings),
    ]
    if not findings.price_axis_read:
        reason = "" if findings.ocr_available else " (Tesseract OCR is not installed)"
        paragraphs.append(
            f"Price labels were not read{reason}, so positions are given as a share of the visible price range."
        )
    return "\n\n".join(p for p in paragraphs if p)


class OfflineAnalyzer:
    """ChartAnalyzer that describes the reader's findings instead of calling a model."""

    prompt_version = OFFLINE_PROMPT_VERSION

    async def analyze(
        self, images: Sequence[ChartImage], caption: str | None, findings: Sequence[ChartFindings]
    ) -> ModelAnswer:
        if len(findings) != len(images):
            raise PermanentModelError("the chart reader could not read this image and no model is configured")
        sections = ["**Offline reading**\nMeasured from the image by ChartBot's chart reader, not written by an AI model."]
        for index, finding in enumerate(findings):
            if len(findings) > 1:
                sections.append(f"**Chart {index + 1}**")
            sections.append(describe_findings(finding))
        if caption:
            sections.append("The offline reading describes the chart only and does not answer questions.")
        return ModelAnswer(text="\n\n".join(sections), model=OFFLINE_MODEL_NAME, usage=TokenUsage())
