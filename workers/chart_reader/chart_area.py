"""Find the chart area: the plot with its price-axis labels, time-axis labels and any panel below it."""

from __future__ import annotations

import numpy as np

from workers.chart_reader.axis_labels import LabelColumn
from workers.chart_reader.marks import MarkMap

# Marks closer than this many text heights to the area join it. Tick labels
# stand about one to two text heights off the plot frame, and a volume panel
# about as far below the plot, while a title or a page margin is further away.
JOIN_GAP_TEXT_HEIGHTS = 2.5

# With no text found, the gap is this share of the image's height.
JOIN_GAP_SHARE = 0.02


def _extend(profile: np.ndarray, start: int, end: int, gap: int) -> tuple[int, int]:
    """Widen start..end-1 over the marked entries of `profile` that lie within `gap` of it, repeatedly."""
    marked = np.flatnonzero(profile)
    before = marked[marked < start][::-1]
    for index in before:
        if start - index > gap:
            break
        start = int(index)
    after = marked[marked >= end]
    for index in after:
        if index - (end - 1) > gap:
            break
        end = int(index) + 1
    return start, end


def _row_profile(mark_map: MarkMap, x0: int, x1: int) -> np.ndarray:
    """Count the marks on each row between columns x0 and x1, with the straight lines put back.

    The frame and the grid lines were taken out of the marks, but they link
    the plot to the tick labels below it, so their rows count as marked.
    """
    profile = mark_map.marks[:, x0:x1].sum(axis=1)
    for line in mark_map.vertical_lines:
        if x0 <= line.position < x1:
            profile[line.start : line.end] += 1
    for line in mark_map.horizontal_lines:
        if line.start < x1 and line.end > x0:
            profile[line.position] += 1
    return profile


def find_chart_area(
    mark_map: MarkMap,
    plot_area: tuple[int, int, int, int],
    label_columns: list[LabelColumn],
    text_height: float | None,
) -> tuple[int, int, int, int]:
    """Return (x0, y0, x1, y1): the plot area widened to the axis labels around it.

    The plot area covers the bars only. The price-axis label columns are
    added first. Then rows of marks and grid lines below and above are
    joined while no gap between them is wider than JOIN_GAP_TEXT_HEIGHTS text
    heights. This takes in the time-axis labels and a volume panel. Columns
    of marks are joined the same way after that. Without a price-axis label column the
    area is the whole image, because the labels, and a trader's notes, may
    stand further from the bars than any gap rule allows. `mark_map` holds
    the marks the plot area was measured on.
    """
    marks = mark_map.marks
    height, width = marks.shape
    x0, y0, x1, y1 = plot_area
    for column in label_columns:
        x0, x1 = min(x0, column.x0), max(x1, column.x1)
        y0, y1 = min(y0, column.y0), max(y1, column.y1)
    if text_height:
        gap = max(2, round(JOIN_GAP_TEXT_HEIGHTS * text_height))
    else:
        gap = max(2, round(JOIN_GAP_SHARE * height))

    if not label_columns:
        return 0, 0, width, height
    # A title far above the plot stays outside the area; workers/image_prep.py keeps the band above it.
    x0, x1 = max(0, x0), min(width, x1)
    y0, y1 = _extend(_row_profile(mark_map, x0, x1), max(0, y0), min(height, y1), gap)
    x0, x1 = _extend(marks[y0:y1].sum(axis=0), x0, x1, gap)
    return x0, y0, x1, y1
