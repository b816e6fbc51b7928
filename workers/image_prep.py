"""Prepare a chart image for the vision model: upright, cropped to the chart, scaled to few tiles, no metadata.

The cost of an image follows OpenAI's published rule for GPT-4o vision
input. At detail "low" an image costs 85 tokens. At detail "high" it is
scaled to fit 2048 x 2048, then its shorter side to 768, and costs 85
tokens plus 170 per 512-pixel tile. Preparation picks the scale with the fewest tiles at which
the chart's text stays legible (see `choose_scale`). It is CPU-bound and
synchronous, so async callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.models import ChartFindings, ChartImage, ImageInfo, PreparedImage
from workers.chart_reader.axis_labels import find_price_labels, find_text_boxes
from workers.chart_reader.decode import decode_image
from workers.chart_reader.errors import ChartUnreadable
from workers.chart_reader.marks import mark_mask, remove_straight_lines, strip_background

logger = logging.getLogger(__name__)

BASE_TOKENS = 85
TILE_TOKENS = 170
TILE_SIDE = 512
HIGH_DETAIL_MAX_SIDE = 2048
HIGH_DETAIL_SHORT_SIDE = 768

# Text lines whose boxes (as find_text_boxes measures them, about the height
# of a digit) are at least this many pixels tall stay legible. Seven rows is
# the height of the 5 x 7 character cell, the smallest in which all digits
# and capitals keep distinct shapes. One row more leaves a margin for the
# blur of scaling.
# NOTE: a design floor, not a measured limit of GPT-4o. Tesseract, a weaker
# reader, still read the price axis of 12 of the 16 rendered charts with
# their labels scaled to 7 pixels, and of 13 at 8 pixels. At 7 pixels it
# misread rendered-12's last price by 5% once the title band was kept.
MIN_TEXT_HEIGHT = 8.0

# The crop keeps this share of the image's longer side around the chart area.
CROP_PADDING_SHARE = 0.01

# A chart area smaller than this share of the image, on either side, is taken
# for a misreading and not cropped to.
MIN_CROP_SHARE = 0.25

PNG_MIME_TYPE = "image/png"


@dataclass(frozen=True)
class PreparedChart:
    """The image bytes to send, their MIME type and the record of how they were made."""

    data: bytes
    mime_type: str
    record: PreparedImage


def _high_detail_size(width: float, height: float) -> tuple[float, float]:
    """Return the size OpenAI scales an image to at detail "high": fit 2048 x 2048, then the shorter side 768.

    Neither step enlarges the image.
    """
    scale = min(1.0, HIGH_DETAIL_MAX_SIDE / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, HIGH_DETAIL_SHORT_SIDE / min(width, height))
    return width * scale, height * scale


def image_tokens(width: int, height: int, detail: str) -> int:
    """Return the input tokens of a width x height image at `detail` ("low" or "high") for GPT-4o."""
    if detail == "low":
        return BASE_TOKENS
    if detail != "high":
        raise ValueError(f"detail must be 'low' or 'high', not {detail!r}")
    scaled_width, scaled_height = _high_detail_size(width, height)
    tiles = math.ceil(scaled_width / TILE_SIDE) * math.ceil(scaled_height / TILE_SIDE)
    return BASE_TOKENS + TILE_TOKENS * tiles


def _model_scale(width: int, height: int, detail: str) -> float:
    """Return the factor by which OpenAI scales a width x height image before the model reads it."""
    if detail == "low":
        return min(1.0, TILE_SIDE / max(width, height))
    scaled_width, _ = _high_detail_size(width, height)
    return scaled_width / width


def _scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Return the size after scaling, rounded down so that a size on a tile boundary stays on it."""
    return max(1, math.floor(width * scale + 1e-9)), max(1, math.floor(height * scale + 1e-9))


def choose_scale(width: int, height: int, *, min_scale: float, detail: str) -> float:
    """Return the scale for a width x height crop with the fewest tiles at no less than `min_scale`.

    Among scales with equally few tiles the largest wins, but never one above
    what OpenAI would scale the crop to anyway, nor above 1. The candidates
    are the scales that put a side exactly on a tile boundary, because the
    token count only changes there.
    """
    ceiling = _model_scale(width, height, detail)
    if detail == "low" or min_scale >= ceiling:
        return ceiling
    candidates = {ceiling, min_scale}
    for side in (width, height):
        for tiles in range(1, math.ceil(side * ceiling / TILE_SIDE) + 1):
            scale = tiles * TILE_SIDE / side
            if min_scale <= scale <= ceiling:
                candidates.add(scale)

    def cost(scale: float) -> tuple[int, float]:
        scaled_width, scaled_height = _scaled_size(width, height, scale)
        return image_tokens(scaled_width, scaled_height, detail), -scale

    return min(candidates, key=cost)


def measure_text_height(rgb: np.ndarray) -> float | None:
    """Return the height in pixels of the chart's smallest relevant text, or None when none is found.

    That is the median height of the price-axis labels, else the lower
    quartile of the heights of every line of text found on the image, because
    a chart's axis labels are usually its smallest text.
    """
    labels = find_price_labels(rgb)
    if labels is not None:
        return float(np.median([box.height for box in labels.boxes]))
    marks = remove_straight_lines(mark_mask(rgb, [strip_background(rgb)]))
    boxes = find_text_boxes(marks)
    if not boxes:
        return None
    return float(np.percentile([box.height for box in boxes], 25))


def _crop_box(
    chart_area: tuple[int, int, int, int] | None, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """Return the padded chart area, with the band above it, clipped to the image; None when the area is
    missing or implausible.

    The band above the chart area is kept because charting apps print the
    symbol and timeframe there (a title, or TradingView's legend), and the
    model needs them to tell a multi-timeframe album's charts apart.
    """
    if chart_area is None:
        return None
    padding = max(4, round(CROP_PADDING_SHARE * max(width, height)))
    x0, _, x1, y1 = chart_area
    x0, y0 = max(0, x0 - padding), 0
    x1, y1 = min(width, x1 + padding), min(height, y1 + padding)
    if x1 - x0 < MIN_CROP_SHARE * width or y1 - y0 < MIN_CROP_SHARE * height:
        logger.warning("chart area %s of a %dx%d image is implausible; not cropping", chart_area, width, height)
        return None
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return None
    return x0, y0, x1, y1


def _encode_png(rgb: np.ndarray) -> bytes:
    """Encode RGB pixels as a PNG with no metadata chunks."""
    encoded, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise ValueError(f"a {rgb.shape[1]}x{rgb.shape[0]} image could not be encoded as PNG")
    return png.tobytes()


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = _scaled_size(width, height, scale)
    if size == (width, height):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def prepare_chart(
    data: bytes, *, chart_area: tuple[int, int, int, int] | None, detail: str, max_pixels: int
) -> PreparedChart:
    """Decode, crop and scale a chart image so that it costs the model as few tokens as legibility allows.

    Parameters: `data` is the file's bytes. `chart_area` is the (x0, y0, x1,
    y1) pixels of the upright image to keep, as the chart reader found them,
    or None. `detail` is the OpenAI image detail, "low" or "high".
    `max_pixels` is the largest width x height decoded, checked on the header
    first. The text must stay at MIN_TEXT_HEIGHT pixels or more as the model
    receives it, or as large as in the original when that is smaller.
    When that cuts no tokens, the whole image is sent, scaled only to the
    size OpenAI would scale it to anyway. The result is a PNG without
    metadata. Raises ChartUnreadable for bytes that are not a still image
    decodable within the limits.
    """
    if detail not in ("low", "high"):
        raise ValueError(f"detail must be 'low' or 'high', not {detail!r}")
    rgb = decode_image(data, max_pixels=max_pixels)
    height, width = rgb.shape[:2]
    tokens_original = image_tokens(width, height, detail)
    original_scale = _model_scale(width, height, detail)

    box = _crop_box(chart_area, width, height)
    crop = rgb if box is None else rgb[box[1] : box[3], box[0] : box[2]]
    crop_height, crop_width = crop.shape[:2]
    text_height = measure_text_height(crop)
    # The text may shrink to the legible floor, or to its size in the original as the model receives it.
    min_scale = original_scale
    if text_height is not None:
        min_scale = min(MIN_TEXT_HEIGHT / text_height, original_scale)
    scale = choose_scale(crop_width, crop_height, min_scale=min_scale, detail=detail)
    sent = _resized(crop, scale)
    tokens_sent = image_tokens(sent.shape[1], sent.shape[0], detail)

    # At detail "low" every image costs the same, and a crop gives the chart more of the 512 pixels.
    worth_it = tokens_sent < tokens_original or (detail == "low" and box is not None)
    if not worth_it:
        box = None
        sent = _resized(rgb, original_scale)
        tokens_sent = tokens_original
    record = PreparedImage(
        original_width=width,
        original_height=height,
        width=sent.shape[1],
        height=sent.shape[0],
        cropped=box is not None,
        detail=detail,
        tokens_original=tokens_original,
        tokens_sent=tokens_sent,
    )
    logger.debug(
        "prepared a %dx%d chart as %dx%d: text %s px, %d tokens instead of %d",
        width, height, record.width, record.height, text_height, tokens_sent, tokens_original,
    )
    return PreparedChart(data=_encode_png(sent), mime_type=PNG_MIME_TYPE, record=record)


def model_image_preparer(*, detail: str, max_pixels: int):
    """Return the function the model client prepares each chart with: (chart, findings) -> (image to send,
    record).

    An image that cannot be prepared (the reader's decoder rejected it) is
    sent as the user sent it, with a record of its original token cost.
    """

    def prepare(image: ChartImage, findings: ChartFindings | None) -> tuple[ChartImage, PreparedImage]:
        try:
            prepared = prepare_chart(image.data, chart_area=findings.chart_area if findings else None,
                                     detail=detail, max_pixels=max_pixels)
        except (ChartUnreadable, ValueError) as error:
            logger.warning("chart sent unprepared sha256=%s error=%s", image.info.sha256[:12], error)
            tokens = image_tokens(image.info.width, image.info.height, detail)
            return image, PreparedImage(original_width=image.info.width, original_height=image.info.height,
                                        width=image.info.width, height=image.info.height, detail=detail,
                                        tokens_original=tokens, tokens_sent=tokens)
        record = prepared.record
        info = ImageInfo(mime_type=prepared.mime_type, width=record.width, height=record.height,
                         size_bytes=len(prepared.data), sha256=hashlib.sha256(prepared.data).hexdigest())
        return ChartImage(info=info, data=prepared.data), record

    return prepare
