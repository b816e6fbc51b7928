"""read_chart: decode an image, decide whether it is a price chart, and measure it.

Tesseract runs in a worker thread while the bars are measured, so the axis
labels cost little extra time. The thread waits on a subprocess, which
releases the GIL.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np

from workers.chart_reader.axis_labels import (
    LabelColumn,
    TextBox,
    edge_label_columns,
    find_label_columns,
    find_price_labels,
    find_text_boxes,
)
from workers.chart_reader.axis_ocr import (
    OcrUnavailable,
    PriceScale,
    fit_price_scale,
    read_label_values,
    tesseract_version,
)
from workers.chart_reader.chart_area import find_chart_area
from workers.chart_reader.decode import decode_image
from workers.chart_reader.gate import CHART_THRESHOLD, chart_confidence
from workers.chart_reader.marks import MarkMap, find_marks, strip_background
from workers.chart_reader.measure import measure_reading
from workers.chart_reader.models import ChartReading
from workers.chart_reader.structure import read_structure

logger = logging.getLogger(__name__)

# Larger images are scaled down to about this many pixels before measuring.
# Coordinates in the result are scaled back to the original image.
WORKING_PIXELS = 3_200_000

# OpenCV's own thread pool splits each call over every core, and then competes
# with the Tesseract process that reads the axis at the same time. The reader's
# calls are small, so one thread loses little. On the 2-core machine this was
# written on, with other work running, reads of 1920x1080 charts with OCR took
# about 170 ms instead of 250 ms (median). Reads without OCR took about 100 ms
# either way. This is a process-wide OpenCV setting, and the reader is the
# project's only OpenCV user.
cv2.setNumThreads(1)


@dataclass
class _OcrOutcome:
    scale: PriceScale | None = None
    note: str | None = None


class _AxisReader(threading.Thread):
    """Reads the price labels in the background and fits the price scale."""

    def __init__(self, rgb: np.ndarray, column: LabelColumn, background: tuple[int, int, int]) -> None:
        super().__init__(name="chart-axis-ocr", daemon=True)
        self._rgb = rgb
        self._column = column
        self._background = background
        self.outcome = _OcrOutcome()

    def run(self) -> None:
        try:
            pairs = read_label_values(self._rgb, self._column, self._background)
        except OcrUnavailable:
            self.outcome.note = "price axis labels not read: Tesseract is not installed"
            return
        except (RuntimeError, OSError) as error:
            logger.warning("Tesseract failed on the price axis: %s", error)
            self.outcome.note = "price axis labels not read: Tesseract failed"
            return
        self.outcome.scale = fit_price_scale(pairs)
        if self.outcome.scale is None:
            self.outcome.note = f"price axis labels not read reliably ({len(pairs)} numbers found)"


def _working_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the image to measure and the factor from its pixels to the original's."""
    height, width = rgb.shape[:2]
    if height * width <= WORKING_PIXELS:
        return rgb, 1.0
    factor = float(np.sqrt(height * width / WORKING_PIXELS))
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), factor


def _start_axis_reader(
    rgb: np.ndarray, labels: LabelColumn | None, use_ocr: bool, installed: bool
) -> tuple[_AxisReader | None, str | None]:
    """Start reading the price labels in a thread; returns the thread, or the note on why OCR was skipped."""
    if not use_ocr:
        return None, "price axis labels not read: OCR was turned off"
    if not installed:
        return None, "price axis labels not read: Tesseract is not installed"
    if labels is None:
        return None, "price axis labels not found"
    background = strip_background(rgb[:, max(0, labels.x0 - 4) : labels.x1 + 4])
    reader = _AxisReader(rgb, labels, background)
    reader.start()
    return reader, None


def _with_chart_area(
    reading: ChartReading,
    mark_map: MarkMap,
    columns: list[LabelColumn],
    boxes: list[TextBox],
    factor: float,
    original_size: tuple[int, int],
) -> ChartReading:
    """Add the chart area, measured on the working image and scaled to the original."""
    if reading.plot_area is None:
        return reading
    plot_area = tuple(int(round(value / factor)) for value in reading.plot_area)
    label_boxes = [box for column in columns for box in column.boxes] or boxes
    text_height = float(np.median([box.height for box in label_boxes])) if label_boxes else None
    area = find_chart_area(mark_map, plot_area, columns, text_height)
    height, width = original_size
    x0, y0, x1, y1 = (int(round(value * factor)) for value in area)
    return replace(reading, chart_area=(x0, y0, min(width, x1), min(height, y1)))


def read_chart(data: bytes, *, max_pixels: int = 40_000_000, use_ocr: bool = True) -> ChartReading:
    """Decode an image and read it as a price chart.

    Parameters: `data` is the file's bytes; `max_pixels` the largest width x
    height decoded; `use_ocr` whether Tesseract may read the price axis.
    Raises ChartUnreadable when the bytes are not a still image that can be
    decoded within the limits. A decodable image that is not a chart returns
    a reading with is_chart False.
    """
    original = decode_image(data, max_pixels=max_pixels)
    rgb, factor = _working_copy(original)
    height, width = rgb.shape[:2]
    installed = tesseract_version() is not None
    price_labels = find_price_labels(rgb) if use_ocr and installed else None
    axis_reader, ocr_note = _start_axis_reader(rgb, price_labels, use_ocr, installed)

    mark_map = find_marks(rgb)
    boxes = find_text_boxes(mark_map.marks)
    columns = edge_label_columns(find_label_columns(boxes, width), width)
    structure = read_structure(rgb, mark_map, columns, boxes)
    confidence = chart_confidence(
        structure.bars.evidence if structure.bars else None,
        structure.line_evidence,
        background_share=mark_map.background_share,
        text_share=structure.layout.text_share if structure.layout is not None else 0.0,
        has_price_labels=bool(columns),
    )

    scale = None
    if axis_reader is not None:
        axis_reader.join()
        scale, ocr_note = axis_reader.outcome.scale, axis_reader.outcome.note
    notes = [ocr_note] if ocr_note else []
    logger.debug("chart reading: %dx%d px, confidence %.2f", width, height, confidence)
    reading = measure_reading(
        structure,
        is_chart=confidence >= CHART_THRESHOLD,
        confidence=confidence,
        scale=scale,
        factor=factor,
        ocr_available=installed,
        notes=notes,
    )
    if price_labels is not None and not any(set(price_labels.boxes) & set(c.boxes) for c in columns):
        columns = [*columns, price_labels]
    return _with_chart_area(reading, mark_map, columns, boxes, factor, original.shape[:2])
