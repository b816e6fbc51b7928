"""Versioned prompt files shipped in workers/prompts/, and the reader's measured facts written for a prompt."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from core.models import ChartFindings
from workers.offline_analyzer import format_price

SINGLE_CHART_PROMPT = "chart_analysis.v2.toml"
MULTI_CHART_PROMPT = "multi_chart_analysis.v1.toml"

_KINDS = {"candle": "candlestick chart", "ohlc": "OHLC bar chart", "line": "line chart"}
_UNITS = {"candle": "candles", "ohlc": "bars", "line": "points"}


@dataclass(frozen=True)
class ChartPrompt:
    """The texts sent to the model for a chart analysis."""

    version: str
    system: str
    user_with_question: str
    user_without_question: str
    facts: str = ""

    def user_text(self, caption: str | None, *, count: int = 1, facts: str | None = None) -> str:
        """Return the user message text: the request for `count` charts, the trader's caption when there is one,
        and the reader's measured facts when there are some."""
        if caption and caption.strip():
            text = self.user_with_question.format(caption=caption.strip(), count=count)
        else:
            text = self.user_without_question.format(count=count)
        if facts and self.facts:
            text += "\n\n" + self.facts.format(facts=facts)
        return text


def load_prompt(name: str = SINGLE_CHART_PROMPT) -> ChartPrompt:
    """Load a prompt file from workers/prompts/."""
    text = resources.files("workers.prompts").joinpath(name).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return ChartPrompt(
        version=data["version"],
        system=data["system"].strip(),
        user_with_question=data["user_with_question"].strip(),
        user_without_question=data["user_without_question"].strip(),
        facts=data.get("facts", "").strip(),
    )


def _position(fraction: float, price: float | None) -> str:
    return format_price(price) if price is not None else f"{fraction:.0%} of the price range"


def chart_facts(findings: ChartFindings) -> str:
    """Write one chart's measurements as one line of facts: type and bar count, trend, swings, levels, last bar."""
    unit = _UNITS.get(findings.chart_type or "", "bars")
    parts = [f"{_KINDS.get(findings.chart_type or '', 'chart')}, {findings.bar_count} {unit}"]
    if findings.trend is not None:
        trend = f"trend {findings.trend}"
        if findings.change_fraction is not None:
            side = "above" if findings.change_fraction >= 0 else "below"
            trend += f" (last close {abs(findings.change_fraction):.0%} of the plot height {side} the first)"
        parts.append(trend)
    if findings.swing_highs:
        parts.append("swing highs " + ", ".join(_position(p.fraction, p.price) for p in findings.swing_highs[-3:]))
    if findings.swing_lows:
        parts.append("swing lows " + ", ".join(_position(p.fraction, p.price) for p in findings.swing_lows[-3:]))
    for level in findings.levels[:4]:
        parts.append(f"{level.kind} near {_position(level.fraction, level.price)} ({level.touches} touches)")
    if findings.last_price is not None:
        parts.append(f"last price near {format_price(findings.last_price)}")
    if not findings.price_axis_read:
        parts.append("price labels not read, so positions are shares of the visible price range")
    return "; ".join(parts) + "."


def reader_facts(findings: Sequence[ChartFindings]) -> str | None:
    """Write the reader's measurements of every chart for the prompt, or None when there are none."""
    if not findings:
        return None
    return "\n".join(f"Chart {index}: {chart_facts(finding)}" for index, finding in enumerate(findings, start=1))
