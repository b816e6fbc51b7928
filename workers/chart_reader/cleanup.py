"""Clean the marks before bars are searched: free-standing text and thin curves go."""

from __future__ import annotations

import cv2
import numpy as np

from workers.chart_reader.axis_labels import TextBox


def remove_thin_lines(marks: np.ndarray, *, max_thickness: int = 4) -> np.ndarray:
    """Remove pixels of thin curves that run on to the left and to the right.

    A pixel goes when its vertical run is at most `max_thickness` tall and
    both neighbouring columns contain such a thin pixel one row up, level or
    one row down, as in a moving-average line or a horizontal drawing.
    Candle bodies and wicks are taller than that, so they stay; a flat doji
    keeps only its two end columns.
    """
    tall = cv2.morphologyEx(marks, cv2.MORPH_OPEN, np.ones((max_thickness + 1, 1), np.uint8))
    thin = marks & (1 - tall)
    reach = cv2.dilate(thin, np.ones((3, 1), np.uint8))
    line = thin.copy()
    line[:, 1:] &= reach[:, :-1]
    line[:, :-1] &= reach[:, 1:]
    line[:, 0] = 0
    line[:, -1] = 0
    return marks & (1 - line)


def _looks_like_words(patch: np.ndarray) -> bool:
    """Tell text from a flat candle body: text is several separate glyphs and leaves gaps inside its box."""
    columns = patch.any(axis=0).astype(np.int8)
    glyphs = int(np.count_nonzero(np.diff(np.concatenate(([0], columns))) == 1))
    return glyphs >= 2 and patch.mean() < 0.75


def erase_isolated_text(marks: np.ndarray, boxes: list[TextBox]) -> np.ndarray:
    """Blank text boxes that nothing touches from above or below.

    Titles, legends and annotations stand alone. A cluster of small candles
    that happens to look like a word has wicks reaching out of its box.
    """
    height = marks.shape[0]
    cleaned = marks.copy()
    for box in boxes:
        above = marks[max(0, box.y0 - 3) : box.y0, box.x0 : box.x1]
        below = marks[box.y1 : min(height, box.y1 + 3), box.x0 : box.x1]
        if above.any() or below.any():
            continue
        if _looks_like_words(marks[box.y0 : box.y1, box.x0 : box.x1]):
            cleaned[box.y0 : box.y1, box.x0 : box.x1] = 0
    return cleaned
