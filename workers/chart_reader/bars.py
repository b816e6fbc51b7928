"""Measure each bar in its grid slot: high and low, the body of a candle or the ticks of an OHLC bar.

Rows are classified across the bar's stem (the wick or vertical line). A
row that reaches past the stem on both sides belongs to a candle body,
filled or hollow, because both edges count. A row that reaches out on the
left only is an OHLC open tick, on the right only a close tick. Rows where a
line crosses the whole slot into the gaps beside it are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.slots import Slot


@dataclass(frozen=True)
class BarShape:
    """One bar as measured in pixels (rows grow downward); body rows are first and last+1."""

    index: int
    x: int
    high: int
    low: int
    body_top: int | None
    body_bottom: int | None
    open_tick: float | None
    close_tick: float | None
    fill: tuple[float, float, float] | None  # median colour inside the body, else of the bar's marks

    @property
    def body_height(self) -> int:
        """Rows of the body, 0 when none was found."""
        if self.body_top is None or self.body_bottom is None:
            return 0
        return self.body_bottom - self.body_top


@dataclass(frozen=True)
class _RowClasses:
    """Per row of a bar window: body row, left-only row, right-only row, and how far the marks reach."""

    body: np.ndarray
    left: np.ndarray
    right: np.ndarray
    crossing: np.ndarray  # a line crosses the whole slot here
    left_reach: np.ndarray  # columns from the stem's left edge to the leftmost mark, per row
    right_reach: np.ndarray


def _extend(column: np.ndarray, top: int, bottom: int, limit: int) -> tuple[int, int]:
    """Grow [top, bottom) along a column of marks while they continue, by at most `limit` rows."""
    height = column.size
    steps = 0
    while top > 0 and column[top - 1] and steps < limit:
        top -= 1
        steps += 1
    steps = 0
    while bottom < height and column[bottom] and steps < limit:
        bottom += 1
        steps += 1
    return top, bottom


def _classify_rows(window: np.ndarray, stem: tuple[int, int], check_gaps: bool) -> _RowClasses:
    """Classify the rows of a bar's window, given the stem's first and last column in the window's core.

    The window's outermost column on each side is the gap to the next bar,
    and its core is the rest. A row marked in both gaps is a line crossing,
    not part of this bar.
    """
    core = window[:, 1:-1]
    marked = core.any(axis=1)
    leftmost = np.where(marked, core.argmax(axis=1), stem[0])
    rightmost = np.where(marked, core.shape[1] - 1 - core[:, ::-1].argmax(axis=1), stem[1])
    left_reach = np.maximum(0, stem[0] - leftmost)
    right_reach = np.maximum(0, rightmost - stem[1])
    if check_gaps:
        crossing = window[:, 0].astype(bool) & window[:, -1].astype(bool)
    else:
        crossing = np.zeros(len(core), dtype=bool)
    left = (left_reach > 0) & ~crossing
    right = (right_reach > 0) & ~crossing
    return _RowClasses(
        body=left & right,
        left=left & ~right,
        right=right & ~left,
        crossing=crossing,
        left_reach=left_reach,
        right_reach=right_reach,
    )


def _longest_block(flags: np.ndarray, bridge: np.ndarray) -> tuple[int, int] | None:
    """Return the longest run of flagged rows, where `bridge` rows may sit inside a run."""
    best: tuple[int, int] | None = None
    start = None
    last_flag = None
    for row in range(flags.size + 1):
        flagged = row < flags.size and flags[row]
        bridged = row < flags.size and bridge[row]
        if flagged:
            if start is None:
                start = row
            last_flag = row
        elif not bridged and start is not None:
            if best is None or last_flag + 1 - start > best[1] - best[0]:
                best = (start, last_flag + 1)
            start = None
    return best


def _tick_row(flags: np.ndarray) -> float | None:
    """Return the middle of the flagged rows (an OHLC tick), or None when there are none."""
    rows = np.nonzero(flags)[0]
    return float(np.median(rows)) if rows.size else None


def _median_colour(
    rgb: np.ndarray, rows: slice, columns: slice, mask: np.ndarray | None = None
) -> tuple[float, float, float] | None:
    """Return the median colour of a patch (of its marked pixels when `mask` is given)."""
    patch = rgb[rows, columns].reshape(-1, 3)
    if mask is not None:
        patch = patch[mask[rows, columns].reshape(-1) > 0]
    if patch.size == 0:
        return None
    # The median ignores grid dashes and line pixels inside a hollow body.
    middle = np.median(patch, axis=0)
    return float(middle[0]), float(middle[1]), float(middle[2])


def _body_fill(
    rgb: np.ndarray, classes: _RowClasses, body: tuple[int, int], top: int, stem: tuple[int, int]
) -> tuple[float, float, float] | None:
    """Return the colour inside a body's outline: its rows and columns less one pixel on each side when big enough."""
    rows = slice(body[0], body[1])
    left = int(np.median(classes.left_reach[rows]))
    right = int(np.median(classes.right_reach[rows]))
    first_row, last_row = top + body[0], top + body[1]
    if last_row - first_row > 2:
        first_row, last_row = first_row + 1, last_row - 1
    first_column, last_column = stem[0] - left, stem[1] + right + 1
    if last_column - first_column > 2:
        first_column, last_column = first_column + 1, last_column - 1
    return _median_colour(rgb, slice(first_row, last_row), slice(first_column, last_column))


def _stem_span(marks: np.ndarray, slot: Slot, half: int) -> tuple[int, int]:
    """Return the first and last column of the bar's stem: the narrower of its top and bottom rows.

    The end rows of a bar are wick tips or stem ends, or the edge of a body
    with no wick there, and both are centred on the bar. The stem is measured
    on each bar because anti-aliasing widens a one-pixel wick to two or three.
    The busiest column would not do, because a hollow candle's outline is
    busier than its wick.
    """
    width = marks.shape[1]
    first = max(0, int(round(slot.centre)) - half)
    last = min(width, int(round(slot.centre)) + half + 1)
    narrowest = None
    for row in (slot.top, slot.bottom - 1):
        columns = np.nonzero(marks[row, first:last])[0]
        if columns.size and (narrowest is None or columns[-1] - columns[0] < narrowest[-1] - narrowest[0]):
            narrowest = columns
    if narrowest is None:
        return slot.x, slot.x
    return first + int(narrowest[0]), first + int(narrowest[-1])


def measure_bar(marks: np.ndarray, rgb: np.ndarray, slot: Slot, spacing: float) -> BarShape:
    """Measure one bar in its slot.

    `marks` are the marks with straight lines removed but moving averages
    kept, and `spacing` is the grid's bar spacing in pixels. The bar's run is
    extended along its stem by up to 5% of the image height where the slot's
    run stopped short (a thin doji tick, an end pixel).
    """
    height, width = marks.shape
    half = max(1, int((spacing - 1) // 2))
    stem_first, stem_last = _stem_span(marks, slot, half)
    x = (stem_first + stem_last) // 2
    top, bottom = _extend(marks[:, x], slot.top, slot.bottom, limit=max(3, int(0.05 * height)))
    left_edge, right_edge = x - half - 1, x + half + 2
    if left_edge < 0 or right_edge > width:
        return BarShape(slot.index, x, top, bottom - 1, None, None, None, None, None)

    window = marks[top:bottom, left_edge:right_edge]
    stem = (stem_first - left_edge - 1, stem_last - left_edge - 1)
    # Below 5 pixels of spacing the gap columns may belong to the next bar.
    classes = _classify_rows(window, stem, check_gaps=spacing >= 5)
    body = _longest_block(classes.body, classes.crossing)

    body_top = body_bottom = None
    fill = None
    if body is not None:
        body_top, body_bottom = top + body[0], top + body[1]
        fill = _body_fill(rgb, classes, body, top, (stem_first, stem_last))
    if fill is None:
        fill = _median_colour(rgb, slice(top, bottom), slice(x - half, x + half + 1), marks)
    return BarShape(
        index=slot.index,
        x=x,
        high=top,
        low=bottom - 1,
        body_top=body_top,
        body_bottom=body_bottom,
        open_tick=None if _tick_row(classes.left) is None else top + _tick_row(classes.left),
        close_tick=None if _tick_row(classes.right) is None else top + _tick_row(classes.right),
        fill=fill,
    )
