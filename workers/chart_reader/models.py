"""Result types of the chart reader.

Pixel rows grow downward and refer to the image as decoded. A fraction is a
position on the price axis of the plot area: 0.0 is its bottom edge and 1.0
its top edge. The reader draws the plot area around the price marks, so 0.0
is the lowest low shown and 1.0 the highest high.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    """One candle or OHLC bar: its x centre and its four prices as pixel rows."""

    x: float
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class Level:
    """A price level where price turned more than once."""

    fraction: float
    touches: int
    kind: str
    price: float | None


@dataclass(frozen=True)
class SwingPoint:
    """A swing high or low: the bar (or line point) index and where it sits on the price axis."""

    index: int
    fraction: float
    price: float | None


@dataclass(frozen=True)
class ChartReading:
    """The reader's measurements of one image.

    `plot_area` is (x0, y0, x1, y1) in pixels: from half a bar before the
    first bar to half a bar after the last, and from the highest high to the
    lowest low, without a volume panel. `chart_area` is the plot area widened
    to its price-axis and time-axis labels (and a volume panel below it), in
    the same pixels. `change_fraction` is the last close minus the first
    close in fractions of the plot height. Prices are filled
    in only when the price-axis labels were read (`price_axis_read`).
    `ocr_available` is whether Tesseract can run in this process, even when
    the call turned OCR off.
    """

    is_chart: bool
    confidence: float
    chart_type: str | None
    plot_area: tuple[int, int, int, int] | None
    bars: tuple[Bar, ...]
    line_points: tuple[tuple[float, float], ...]
    trend: str | None
    change_fraction: float | None
    swing_highs: tuple[SwingPoint, ...]
    swing_lows: tuple[SwingPoint, ...]
    levels: tuple[Level, ...]
    last_bar_direction: str | None
    last_bar_patterns: tuple[str, ...]
    ocr_available: bool
    price_axis_read: bool
    last_price: float | None
    notes: tuple[str, ...]
    chart_area: tuple[int, int, int, int] | None = None

    @property
    def bar_count(self) -> int:
        """Number of bars, or of points for a line chart.

        A line chart's points are its data points when their x step was
        found, else up to 240 evenly spaced samples of the line.
        """
        if self.bars:
            return len(self.bars)
        return len(self.line_points)
