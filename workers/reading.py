"""The ChartReader port on the offline chart reader, run in a thread because it is CPU-bound."""

from __future__ import annotations

import asyncio

from core.errors import ChartUnreadableError
from core.models import ChartFindings, ChartImage, PriceLevel, SwingPoint
from workers.chart_reader import ChartReading, ChartUnreadable, read_chart


def findings_from_reading(reading: ChartReading) -> ChartFindings:
    """Convert the reader's result into the core's findings record."""
    return ChartFindings(
        is_chart=reading.is_chart,
        confidence=round(min(1.0, max(0.0, reading.confidence)), 3),
        chart_type=reading.chart_type,
        bar_count=reading.bar_count,
        trend=reading.trend,
        change_fraction=reading.change_fraction,
        swing_highs=[SwingPoint(index=p.index, fraction=p.fraction, price=p.price) for p in reading.swing_highs],
        swing_lows=[SwingPoint(index=p.index, fraction=p.fraction, price=p.price) for p in reading.swing_lows],
        levels=[
            PriceLevel(fraction=level.fraction, price=level.price, touches=level.touches, kind=level.kind)
            for level in reading.levels
        ],
        last_bar_direction=reading.last_bar_direction,
        last_bar_patterns=list(reading.last_bar_patterns),
        last_price=reading.last_price,
        price_axis_read=reading.price_axis_read,
        ocr_available=reading.ocr_available,
        notes=list(reading.notes),
        chart_area=reading.chart_area,
    )


class OfflineChartReader:
    """ChartReader that measures the image with workers.chart_reader."""

    def __init__(self, *, max_pixels: int, use_ocr: bool = True) -> None:
        self._max_pixels = max_pixels
        self._use_ocr = use_ocr

    async def read(self, image: ChartImage) -> ChartFindings:
        try:
            reading = await asyncio.to_thread(
                read_chart, image.data, max_pixels=self._max_pixels, use_ocr=self._use_ocr
            )
        except ChartUnreadable as error:
            raise ChartUnreadableError(error.reason) from error
        return findings_from_reading(reading)
