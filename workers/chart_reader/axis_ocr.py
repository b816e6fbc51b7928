"""Read the price-axis labels with Tesseract and fit the map from pixel row to price.

Only the label boxes are sent to Tesseract, stacked into one small image, so
one call reads the whole axis. The map is a straight line because these
charts use a linear price scale. It is fitted on the pair of labels that most
other labels agree with, and rejected when too few labels agree.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
from dataclasses import dataclass

import cv2
import numpy as np

from workers.chart_reader.axis_labels import LabelColumn

logger = logging.getLogger(__name__)

# Label crops are scaled so that their glyphs are about this many pixels tall.
TARGET_TEXT_HEIGHT = 24

# At most this many labels, spread evenly from the top label to the bottom one,
# are sent to Tesseract: each costs a few milliseconds, and six agreeing labels
# fix the price scale as well as ten.
MAX_LABELS = 7

# A Tesseract call that runs longer than this is stopped and the axis reported as not read.
OCR_TIMEOUT_SECONDS = 10
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# One block of text lines; only the characters of a price.
_CONFIG = "--psm 6 -c tessedit_char_whitelist=0123456789.,-"

try:
    import pytesseract
except ImportError:  # the reader still works without the Python package
    pytesseract = None

# Debian's Tesseract 5.3 is built with OpenMP and starts a thread per core on
# every call. On a stacked label image that costs more than it saves: one
# call took about 230 ms with the threads against 110 ms without, measured
# with the `tesseract` command on the 2-core machine this reader was written
# on. pytesseract passes os.environ to the process, so the limit is set here,
# unless the process has set it already.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class OcrUnavailable(Exception):
    """Tesseract or pytesseract is not installed."""


@dataclass(frozen=True)
class PriceScale:
    """price = intercept + slope * row, fitted on `labels` axis labels."""

    intercept: float
    slope: float
    labels: int

    def price_at(self, row: float) -> float:
        return self.intercept + self.slope * row


@functools.lru_cache(maxsize=1)
def tesseract_version() -> str | None:
    """Return the installed Tesseract version, or None when it cannot be run."""
    if pytesseract is None:
        return None
    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError) as error:
        logger.info("Tesseract is not available: %s", error)
        return None


def _ink(rgb: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Return a grey image with dark text on white: darker the further a pixel is from the background."""
    diff = cv2.absdiff(rgb, (float(background[0]), float(background[1]), float(background[2]), 0.0))
    distance = cv2.max(cv2.max(diff[..., 0], diff[..., 1]), diff[..., 2])
    return 255 - cv2.convertScaleAbs(distance, alpha=2.0)


def _stack_labels(
    rgb: np.ndarray, column: LabelColumn, background: tuple[int, int, int]
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Stack the label boxes, as dark text on white, into one image; returns it and each label's row span in it."""
    heights = [box.height for box in column.boxes]
    scale = float(np.clip(TARGET_TEXT_HEIGHT / max(1, np.median(heights)), 1.0, 4.0))
    pieces, spans = [], []
    gap = int(TARGET_TEXT_HEIGHT * 0.8)
    width = 0
    top = gap
    for box in column.boxes:
        crop = _ink(rgb[max(0, box.y0 - 2) : box.y1 + 2, max(0, box.x0 - 2) : box.x1 + 2], background)
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        pieces.append((top, crop))
        spans.append((top, top + crop.shape[0]))
        width = max(width, crop.shape[1])
        top += crop.shape[0] + gap
    canvas = np.full((top, width + 2 * gap), 255, dtype=np.uint8)
    for row, crop in pieces:
        canvas[row : row + crop.shape[0], gap : gap + crop.shape[1]] = crop
    return canvas, spans


def _parse_number(text: str) -> float | None:
    """Read a price from OCR text; thousands separators go, a leading minus (often a tick mark) is ignored."""
    cleaned = text.replace(",", "").replace(" ", "")
    match = _NUMBER.search(cleaned)
    return float(match.group()) if match else None


def _run_tesseract(canvas: np.ndarray) -> dict[str, list]:
    """Run one Tesseract call on a grey image; returns pytesseract's word table.

    The image goes to Tesseract as a PNG file written here with OpenCV,
    which is quicker than pytesseract's own conversion through Pillow.
    """
    encoded, png = cv2.imencode(".png", canvas)
    if not encoded:
        raise OSError("the label image could not be encoded as PNG")
    with tempfile.NamedTemporaryFile(prefix="chart-axis-", suffix=".png", delete=False) as file:
        file.write(png.tobytes())
    try:
        return pytesseract.image_to_data(
            file.name, config=_CONFIG, output_type=pytesseract.Output.DICT, timeout=OCR_TIMEOUT_SECONDS
        )
    except pytesseract.TesseractNotFoundError as error:
        raise OcrUnavailable(str(error)) from error
    finally:
        os.unlink(file.name)


def _values_by_label(
    data: dict[str, list], spans: list[tuple[int, int]], column: LabelColumn
) -> list[tuple[float, float]]:
    """Join the words Tesseract found on each label's rows of the stacked image and parse them."""
    texts: dict[int, list[str]] = {}
    for text, top, height in zip(data["text"], data["top"], data["height"]):
        if not text.strip():
            continue
        middle = top + height / 2
        for position, (start, end) in enumerate(spans):
            if start - 4 <= middle <= end + 4:
                texts.setdefault(position, []).append(text)
                break
    pairs = []
    for position, words in texts.items():
        value = _parse_number("".join(words))
        if value is not None:
            pairs.append((column.boxes[position].centre_y, value))
    return pairs


def read_label_values(
    rgb: np.ndarray, column: LabelColumn, background: tuple[int, int, int]
) -> list[tuple[float, float]]:
    """OCR the labels of `column` in one Tesseract call; returns (row centre, value) pairs.

    Raises OcrUnavailable when Tesseract cannot be run.
    """
    if tesseract_version() is None:
        raise OcrUnavailable("Tesseract is not installed")
    if len(column.boxes) > MAX_LABELS:
        chosen = np.linspace(0, len(column.boxes) - 1, MAX_LABELS).round().astype(int)
        column = LabelColumn(boxes=tuple(column.boxes[i] for i in chosen), side=column.side, step=column.step)
    canvas, spans = _stack_labels(rgb, column, background)
    return _values_by_label(_run_tesseract(canvas), spans, column)


def fit_price_scale(pairs: list[tuple[float, float]]) -> PriceScale | None:
    """Fit price = a + b * row on the labels, ignoring misread ones.

    Every pair of labels proposes a line. The line that most labels agree
    with (within a quarter of a label step) wins and is refitted on them.
    Returns None unless at least three labels and two thirds of them agree
    and price rises up the image.

    NOTE: a logarithmic price axis does not fit a line and is reported as
    not read. So are labels under about 8 pixels tall (small JPEG
    screenshots), because Tesseract misreads them.
    """
    if len(pairs) < 3:
        return None
    rows = np.array([row for row, _ in pairs])
    values = np.array([value for _, value in pairs])
    best: np.ndarray | None = None
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            if abs(rows[j] - rows[i]) < 1:
                continue
            slope = (values[j] - values[i]) / (rows[j] - rows[i])
            if slope >= 0:
                continue
            predicted = values[i] + slope * (rows - rows[i])
            step = abs(slope) * np.median(np.diff(np.sort(rows))) if len(rows) > 1 else 1.0
            inliers = np.abs(predicted - values) <= 0.25 * step + 1e-9
            if best is None or inliers.sum() > best.sum():
                best = inliers
    if best is None or best.sum() < 3 or best.sum() < 2 * len(pairs) / 3:
        return None
    slope, intercept = np.polyfit(rows[best], values[best], 1)
    if slope >= 0:
        return None
    return PriceScale(intercept=float(intercept), slope=float(slope), labels=int(best.sum()))
