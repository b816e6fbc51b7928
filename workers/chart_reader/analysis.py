"""Trend, swing points, turning levels and last-bar patterns, computed on a price series.

The functions take values that grow upward: real prices when the axis
labels were read, otherwise pixel heights above the bottom of the plot area
(or negated pixel rows). Pixel rows are linear in price on these charts, so
all of them give the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.models import Bar

# The trend rule: a relative change of the close above this, with a
# regression slope of the same sign, is a trend. Anything else is sideways.
TREND_MIN_CHANGE = 0.05

# NOTE: without the price axis the relative change is unknown. The reader then
# calls a trend when the last close is this share of the plot height away from
# the first. That guess fits charts whose visible range is a few tens of
# percent of the price, and it reads small moves on a zoomed-in chart as trends.
TREND_MIN_HEIGHT_SHARE = 0.15

# Swing points closer than this share of the plot height count as one level.
LEVEL_TOLERANCE = 0.02


@dataclass(frozen=True)
class Ohlc:
    """A bar in price units (larger is higher)."""

    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class Swing:
    """A pivot: the bar's index and its high (or low) value."""

    index: int
    value: float


def trend_from_prices(closes: np.ndarray) -> str:
    """Apply the trend rule to closes in real prices."""
    if closes.size < 2 or closes[0] <= 0:
        return "sideways"
    change = (closes[-1] - closes[0]) / closes[0]
    slope = np.polyfit(np.arange(closes.size), closes, 1)[0]
    if change > TREND_MIN_CHANGE and slope > 0:
        return "up"
    if change < -TREND_MIN_CHANGE and slope < 0:
        return "down"
    return "sideways"


def trend_from_heights(closes: np.ndarray, plot_height: float) -> str:
    """Estimate the trend from closes in pixel heights when no price is known."""
    if closes.size < 2 or plot_height <= 0:
        return "sideways"
    change = (closes[-1] - closes[0]) / plot_height
    slope = np.polyfit(np.arange(closes.size), closes, 1)[0]
    if change > TREND_MIN_HEIGHT_SHARE and slope > 0:
        return "up"
    if change < -TREND_MIN_HEIGHT_SHARE and slope < 0:
        return "down"
    return "sideways"


def find_swings(highs: np.ndarray, lows: np.ndarray, *, order: int) -> tuple[list[Swing], list[Swing]]:
    """Return pivot highs and lows: a bar whose high (low) is the extreme of `order` bars on each side."""
    swing_highs: list[Swing] = []
    swing_lows: list[Swing] = []
    size = highs.size
    for i in range(order, size - order):
        window = slice(i - order, i + order + 1)
        if highs[i] == highs[window].max() and (not swing_highs or swing_highs[-1].index < i - order):
            swing_highs.append(Swing(i, float(highs[i])))
        if lows[i] == lows[window].min() and (not swing_lows or swing_lows[-1].index < i - order):
            swing_lows.append(Swing(i, float(lows[i])))
    return swing_highs, swing_lows


def find_levels(
    swing_highs: list[Swing], swing_lows: list[Swing], *, tolerance: float, last_close: float
) -> list[tuple[float, int, str]]:
    """Group swing points that lie within `tolerance` of each other into levels.

    Returns (level, touches, kind) for levels touched at least twice; a level
    above the last close is resistance, below it support.
    """
    values = sorted(s.value for s in swing_highs + swing_lows)
    groups: list[list[float]] = []
    for value in values:
        if groups and value - groups[-1][0] <= tolerance:
            groups[-1].append(value)
        else:
            groups.append([value])
    levels = []
    for group in groups:
        if len(group) < 2:
            continue
        level = float(np.mean(group))
        levels.append((level, len(group), "resistance" if level > last_close else "support"))
    return levels


def last_bar_patterns(bars: list[Ohlc], directions: list[str]) -> list[str]:
    """Name the simple patterns of the last bar.

    doji: body at most 10% of the bar's range. hammer (shooting_star): lower
    (upper) shadow at least twice the body and the other shadow no longer
    than the body. bullish (bearish) engulfing: an up (down) bar after a down
    (up) bar whose body covers the previous body and is larger.
    """
    if not bars:
        return []
    last = bars[-1]
    span = last.high - last.low
    if span <= 0:
        return []
    body = abs(last.close - last.open)
    upper = last.high - max(last.open, last.close)
    lower = min(last.open, last.close) - last.low
    patterns = []
    if body <= 0.1 * span:
        patterns.append("doji")
    else:
        if lower >= 2 * body and upper <= body:
            patterns.append("hammer")
        if upper >= 2 * body and lower <= body:
            patterns.append("shooting_star")
    if len(bars) >= 2:
        previous = bars[-2]
        previous_body = abs(previous.close - previous.open)
        low_body, high_body = min(last.open, last.close), max(last.open, last.close)
        covers = low_body <= min(previous.open, previous.close) and high_body >= max(previous.open, previous.close)
        if covers and body > previous_body:
            if directions[-1] == "up" and directions[-2] == "down":
                patterns.append("bullish_engulfing")
            if directions[-1] == "down" and directions[-2] == "up":
                patterns.append("bearish_engulfing")
    return patterns


def bars_to_heights(bars: list[Bar], bottom_row: float) -> list[Ohlc]:
    """Convert bars in pixel rows into heights above `bottom_row`, in pixels."""
    return [
        Ohlc(
            open=bottom_row - bar.open,
            high=bottom_row - bar.high,
            low=bottom_row - bar.low,
            close=bottom_row - bar.close,
        )
        for bar in bars
    ]
