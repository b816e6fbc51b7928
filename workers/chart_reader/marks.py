"""Separate the marks of a chart (candles, lines, text) from its background.

A mark is a pixel whose colour differs from every background colour by more
than a threshold on some channel. Long thin straight lines (frames, grid
lines, traders' horizontal lines) are removed from the marks afterwards
because they cross the bars and would join them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A mark differs from the background by more than this on some 0..255 channel.
# Light grid lines (about 20-40 away from white) and JPEG ringing stay below it.
MARK_THRESHOLD = 48

# Two colours closer than this on every channel count as the same background.
SAME_COLOUR = 14


@dataclass(frozen=True)
class Segment:
    """A straight line: `position` is its row (horizontal) or column (vertical), it covers start..end-1."""

    position: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class MarkMap:
    """The marks of an image, the straight lines taken out of them, and the backgrounds."""

    marks: np.ndarray  # uint8 0/1, straight lines removed
    horizontal_lines: tuple[Segment, ...]
    vertical_lines: tuple[Segment, ...]
    backgrounds: tuple[tuple[int, int, int], ...]  # the figure's, then the plot's when it differs
    background_share: float  # share of the image within SAME_COLOUR of the main background


def _mode_colour(rgb: np.ndarray) -> tuple[tuple[int, int, int], float]:
    """Return the most common colour (16 levels a channel) and the share of pixels in its bin."""
    quantized = (rgb >> 4).astype(np.int32)
    index = (quantized[..., 0] << 8) | (quantized[..., 1] << 4) | quantized[..., 2]
    counts = np.bincount(index.ravel(), minlength=4096)
    top = int(counts.argmax())
    members = rgb[index == top][:5000]
    colour = tuple(int(v) for v in np.median(members, axis=0))
    return colour, float(counts[top]) / index.size


def _distance(rgb: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Return the largest per-channel absolute difference from `colour`, as uint8."""
    diff = cv2.absdiff(rgb, (float(colour[0]), float(colour[1]), float(colour[2]), 0.0))
    return cv2.max(cv2.max(diff[..., 0], diff[..., 1]), diff[..., 2])


def strip_background(rgb: np.ndarray) -> tuple[int, int, int]:
    """Return the most common colour of a part of the image, from a sample of about 20,000 pixels."""
    height, width = rgb.shape[:2]
    step = max(1, int(np.sqrt(height * width / 20_000)))
    colour, _ = _mode_colour(rgb[::step, ::step])
    return colour


def estimate_backgrounds(rgb: np.ndarray) -> tuple[list[tuple[int, int, int]], float]:
    """Find the figure background and, when it differs, the background of the image's centre.

    Charting tools often paint the plot panel in another shade than the
    figure around it. Returns the colours and the share of the image within
    SAME_COLOUR of the first one (a photo or noise has no dominant colour).
    """
    height, width = rgb.shape[:2]
    step = max(1, int(np.sqrt(height * width / 60_000)))
    sample = rgb[::step, ::step]
    main, _ = _mode_colour(sample)
    share = float(np.mean(_distance(sample, main) <= SAME_COLOUR))

    centre = sample[sample.shape[0] // 5 : sample.shape[0] * 4 // 5, sample.shape[1] // 5 : sample.shape[1] * 4 // 5]
    colours = [main]
    if centre.size:
        inner, _ = _mode_colour(centre)
        inner_share = float(np.mean(_distance(centre, inner) <= SAME_COLOUR))
        if max(abs(a - b) for a, b in zip(inner, main)) > SAME_COLOUR and inner_share > 0.3:
            colours.append(inner)
    return colours, share


def _open(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keep the pixels of `mask` inside a width x height block of marks (morphological opening)."""
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (width, height)))


def _close(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fill gaps in `mask` narrower than a width x height block (morphological closing)."""
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (width, height)))


def _long_runs(mask: np.ndarray, length: int, *, horizontal: bool) -> np.ndarray:
    """Keep the runs of at least `length` pixels along rows (or columns).

    Only a row (column) with that many marks can contain such a run, so the
    opening runs on those alone.
    """
    totals = cv2.reduce(mask, 1 if horizontal else 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    candidates = np.nonzero(totals >= length)[0]
    result = np.zeros_like(mask)
    if candidates.size == 0:
        return result
    if horizontal:
        result[candidates] = _open(np.ascontiguousarray(mask[candidates]), length, 1)
    else:
        result[:, candidates] = _open(np.ascontiguousarray(mask[:, candidates]), 1, length)
    return result


def _segments(joined: np.ndarray, thick: np.ndarray, *, horizontal: bool) -> tuple[Segment, ...]:
    """List the runs of a mask of straight lines, one per row (horizontal) or column (vertical).

    A run lying mostly on thick marks is the edge of a filled area (a row
    of touching volume bars), not a line, and is left out.
    """
    lines, across = (joined, thick) if horizontal else (joined.T, thick.T)
    found = []
    for position in np.nonzero(lines.any(axis=1))[0]:
        steps = np.diff(np.concatenate(([0], lines[position].astype(np.int8), [0])))
        starts = np.nonzero(steps == 1)[0]
        ends = np.nonzero(steps == -1)[0]
        for start, end in zip(starts, ends):
            if across[position, start:end].mean() <= 0.5:
                found.append(Segment(int(position), int(start), int(end)))
    return tuple(found)


@dataclass(frozen=True)
class _Lines:
    """Straight lines found in a mark mask."""

    pixels: np.ndarray  # the lines' own pixels, to remove from the marks
    horizontal: tuple[Segment, ...]
    vertical: tuple[Segment, ...]


def _find_straight_lines(raw: np.ndarray, *, with_segments: bool = True) -> _Lines:
    """Find thin straight lines, dashed or solid: frames, grid lines, drawn levels.

    `with_segments` False skips listing the lines, for callers that only
    remove them. Dashes are joined across gaps of up to 6 pixels. A horizontal line is at
    least a fifth of the image wide, a vertical one three tenths of its
    height. Shorter vertical pieces in the columns of long ones also count,
    because a grid line broken by the gap between panels is still a grid
    line. A pixel that is also part of something thick across the line (a
    candle body crossed by a grid line) stays a mark.
    """
    height, width = raw.shape
    horizontal = _long_runs(_close(raw, 7, 1), max(24, width // 5), horizontal=True)
    tall = _open(raw, 1, 5)
    closed = _close(raw, 1, 7)
    vertical = _long_runs(closed, max(24, height * 3 // 10), horizontal=False)
    pieces = _long_runs(closed, max(12, height // 20), horizontal=False)
    wide = _open(raw, 5, 1)
    grid_columns = cv2.dilate(vertical.max(axis=0, keepdims=True), np.ones((1, 3), np.uint8))
    vertical = vertical | (pieces & grid_columns)
    pixels = (horizontal & (1 - tall)) | (vertical & (1 - wide))
    if not with_segments:
        return _Lines(pixels=pixels & raw, horizontal=(), vertical=())
    return _Lines(
        pixels=pixels & raw,
        horizontal=_segments(horizontal, tall, horizontal=True),
        vertical=_segments(vertical, wide, horizontal=False),
    )


def mark_mask(rgb: np.ndarray, backgrounds: list[tuple[int, int, int]]) -> np.ndarray:
    """Return 1 where a pixel differs from every background colour by more than MARK_THRESHOLD."""
    distance = _distance(rgb, backgrounds[0])
    for colour in backgrounds[1:]:
        distance = np.minimum(distance, _distance(rgb, colour))
    return (distance > MARK_THRESHOLD).astype(np.uint8)


def remove_straight_lines(raw: np.ndarray) -> np.ndarray:
    """Return the marks without thin straight lines (see _find_straight_lines)."""
    return raw & (1 - _find_straight_lines(raw, with_segments=False).pixels)


def find_marks(rgb: np.ndarray, backgrounds: tuple[list[tuple[int, int, int]], float] | None = None) -> MarkMap:
    """Compute the mark mask of an RGB image, with long straight lines removed.

    `backgrounds` is the result of estimate_backgrounds when already known.
    """
    colours, share = backgrounds if backgrounds is not None else estimate_backgrounds(rgb)
    raw = mark_mask(rgb, colours)
    lines = _find_straight_lines(raw)
    return MarkMap(
        marks=raw & (1 - lines.pixels),
        horizontal_lines=lines.horizontal,
        vertical_lines=lines.vertical,
        backgrounds=tuple(colours),
        background_share=share,
    )
