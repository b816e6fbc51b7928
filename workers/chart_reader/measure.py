"""Turn the bars or line found on a chart into the reading: trend, swings, levels, patterns, prices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader import analysis
from workers.chart_reader.axis_ocr import PriceScale
from workers.chart_reader.gate import bar_score, line_score
from workers.chart_reader.line import sample_points
from workers.chart_reader.models import Bar, ChartReading, Level, SwingPoint
from workers.chart_reader.structure import Structure

# Swing points reported on each side, newest last.
RECENT_SWINGS = 5


@dataclass(frozen=True)
class _Series:
    """A price series in pixel rows of the working image."""

    chart_type: str
    bars: list[Bar]  # a line chart's points are bars with all four values equal
    directions: list[str]
    left: float  # first and last column of the plotted series
    right: float

    @property
    def highs(self) -> np.ndarray:
        return np.array([bar.high for bar in self.bars])

    @property
    def lows(self) -> np.ndarray:
        return np.array([bar.low for bar in self.bars])

    @property
    def closes(self) -> np.ndarray:
        return np.array([bar.close for bar in self.bars])


@dataclass(frozen=True)
class _Axis:
    """The price axis of the plot area: rows from the highest high (top) to the lowest low (bottom)."""

    top: float
    bottom: float
    scale: PriceScale | None

    @property
    def height(self) -> float:
        return max(1.0, self.bottom - self.top)

    def fraction(self, row: float) -> float:
        """Position of a row on the axis: 0.0 at the lowest low, 1.0 at the highest high."""
        return float(np.clip((self.bottom - row) / self.height, 0.0, 1.0))

    def price(self, row: float) -> float | None:
        return None if self.scale is None else round(self.scale.price_at(row), 6)


def _bar_series(structure: Structure) -> _Series:
    reading = structure.bars
    half = reading.spacing / 2
    bars = list(reading.bars)
    return _Series(reading.chart_type, bars, list(reading.directions), bars[0].x - half, bars[-1].x + half)


def _line_series(structure: Structure) -> _Series:
    points = sample_points(structure.line)
    rows = [y for _, y in points]
    directions = ["flat"]
    for previous, current in zip(rows, rows[1:]):
        if current < previous:
            directions.append("up")
        elif current > previous:
            directions.append("down")
        else:
            directions.append("flat")
    bars = [Bar(x=x, open=y, high=y, low=y, close=y) for x, y in points]
    return _Series("line", bars, directions, points[0][0], points[-1][0] + 1)


def _choose_series(structure: Structure) -> _Series | None:
    """Take the bars unless the traced line scores higher."""
    bars = structure.bars
    if bars is not None and bar_score(bars.evidence) >= line_score(structure.line_evidence):
        return _bar_series(structure)
    if structure.line is not None:
        return _line_series(structure)
    return _bar_series(structure) if bars is not None else None


def _swing_point(swing: analysis.Swing, axis: _Axis) -> SwingPoint:
    """Convert a swing found on negated rows (larger is higher) back to the axis."""
    row = -swing.value
    return SwingPoint(index=swing.index, fraction=round(axis.fraction(row), 4), price=axis.price(row))


def _swings_and_levels(series: _Series, axis: _Axis) -> tuple[list[SwingPoint], list[SwingPoint], list[Level]]:
    """Find the recent swing highs and lows and the levels where price turned more than once."""
    order = max(2, len(series.bars) // 25)
    highs, lows = analysis.find_swings(-series.highs, -series.lows, order=order)
    found = analysis.find_levels(
        highs, lows, tolerance=analysis.LEVEL_TOLERANCE * axis.height, last_close=-float(series.closes[-1])
    )
    levels = [
        Level(fraction=round(axis.fraction(-value), 4), touches=touches, kind=kind, price=axis.price(-value))
        for value, touches, kind in found
    ]
    recent_highs = [_swing_point(swing, axis) for swing in highs[-RECENT_SWINGS:]]
    recent_lows = [_swing_point(swing, axis) for swing in lows[-RECENT_SWINGS:]]
    return recent_highs, recent_lows, levels


def _trend(series: _Series, axis: _Axis, notes: list[str]) -> str:
    if axis.scale is not None:
        return analysis.trend_from_prices(np.array([axis.scale.price_at(row) for row in series.closes]))
    notes.append("trend estimated from pixel heights because the price axis was not read")
    return analysis.trend_from_heights(axis.bottom - series.closes, axis.height)


def _not_a_chart(confidence: float, ocr_available: bool, notes: list[str]) -> ChartReading:
    return ChartReading(
        is_chart=False,
        confidence=round(confidence, 3),
        chart_type=None,
        plot_area=None,
        bars=(),
        line_points=(),
        trend=None,
        change_fraction=None,
        swing_highs=(),
        swing_lows=(),
        levels=(),
        last_bar_direction=None,
        last_bar_patterns=(),
        ocr_available=ocr_available,
        price_axis_read=False,
        last_price=None,
        notes=tuple(notes + ["not recognised as a price chart"]),
    )


def _scaled(bar: Bar, factor: float) -> Bar:
    return Bar(
        x=bar.x * factor,
        open=bar.open * factor,
        high=bar.high * factor,
        low=bar.low * factor,
        close=bar.close * factor,
    )


def measure_reading(
    structure: Structure,
    *,
    is_chart: bool,
    confidence: float,
    scale: PriceScale | None,
    factor: float,
    ocr_available: bool,
    notes: list[str],
) -> ChartReading:
    """Build the reading; pixel positions are multiplied by `factor` to refer to the original image."""
    series = _choose_series(structure) if is_chart else None
    if series is None:
        return _not_a_chart(confidence, ocr_available, notes)

    axis = _Axis(top=float(series.highs.min()), bottom=float(series.lows.max()), scale=scale)
    notes = list(notes)
    trend = _trend(series, axis, notes)
    swing_highs, swing_lows, levels = _swings_and_levels(series, axis)
    is_line = series.chart_type == "line"
    heights = analysis.bars_to_heights(series.bars, axis.bottom)
    patterns = [] if is_line else analysis.last_bar_patterns(heights, series.directions)
    plot_area = (series.left, axis.top, series.right, axis.bottom + 1)
    return ChartReading(
        is_chart=True,
        confidence=round(confidence, 3),
        chart_type=series.chart_type,
        plot_area=tuple(int(round(value * factor)) for value in plot_area),
        bars=() if is_line else tuple(_scaled(bar, factor) for bar in series.bars),
        line_points=tuple((bar.x * factor, bar.close * factor) for bar in series.bars) if is_line else (),
        trend=trend,
        change_fraction=round(float(series.closes[0] - series.closes[-1]) / axis.height, 4),
        swing_highs=tuple(swing_highs),
        swing_lows=tuple(swing_lows),
        levels=tuple(levels),
        last_bar_direction=series.directions[-1],
        last_bar_patterns=tuple(patterns),
        ocr_available=ocr_available,
        price_axis_read=scale is not None,
        last_price=axis.price(float(series.closes[-1])),
        notes=tuple(notes),
    )
