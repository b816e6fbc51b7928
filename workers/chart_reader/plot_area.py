"""Locate the price panel: the columns between the axis labels, the volume bars and the rows of price marks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.axis_labels import LabelColumn, TextBox
from workers.chart_reader.cleanup import erase_isolated_text, remove_thin_lines
from workers.chart_reader.marks import Segment
from workers.chart_reader.runs import ColumnRuns, column_runs

# Volume bars stand on one baseline row. At least this share of the marked
# columns must end there. The tallest bar must be this tall (share of the
# image height), so a line of text is not taken for volume, though its letters
# also share a bottom row.
VOLUME_COLUMN_SHARE = 0.25
VOLUME_MIN_HEIGHT = 0.04


@dataclass(frozen=True)
class Layout:
    """The price panel's place in the image and the vertical runs of marks found there.

    `runs` are the vertical runs of marks between columns x0 and x1 and
    between rows y0 and y1, with thin lines, volume bars and text removed.
    They find the bar grid. `all_runs` keep the thin lines, and so the flat
    bars that look like them, to find each bar.
    """

    x0: int
    x1: int
    y0: int
    y1: int
    runs: ColumnRuns
    all_runs: ColumnRuns
    volume_top: int | None
    volume_baseline: int | None
    text_share: float  # share of the marks between x0 and x1 that were erased as free-standing text


def _column_bounds(width: int, columns: list[LabelColumn], lines: tuple[Segment, ...]) -> tuple[int, int]:
    """Return the column range between the axis labels, narrowed to the grid lines' extent.

    Horizontal grid lines and the frame span the plot exactly, so when at
    least three long ones are found their typical ends bound the plot.
    """
    x0, x1 = 0, width
    for column in columns:
        if column.side == "right":
            x1 = min(x1, column.x0 - 1)
        else:
            x0 = max(x0, column.x1 + 1)
    long_lines = [line for line in lines if line.length >= 0.4 * width]
    if len(long_lines) >= 3:
        x0 = max(x0, int(np.median([line.start for line in long_lines])))
        x1 = min(x1, int(np.median([line.end for line in long_lines])))
    if x1 - x0 < width // 3:
        return 0, width
    return x0, x1


def _find_volume(runs: ColumnRuns, height: int) -> tuple[int, int] | None:
    """Find the baseline row shared by volume bars and the top of the tallest one."""
    tall = runs.select(runs.length >= 2)
    if tall.column.size == 0:
        return None
    marked_columns = np.unique(runs.column).size
    ends = np.bincount(tall.bottom, minlength=height + 1).astype(np.int64)
    near = ends[:-2] + ends[1:-1] + ends[2:]
    baseline = int(near.argmax()) + 1
    if near[baseline - 1] < max(8, VOLUME_COLUMN_SHARE * marked_columns):
        return None
    on_baseline = tall.select(np.abs(tall.bottom - baseline) <= 1)
    heights = on_baseline.length
    if np.percentile(heights, 95) < max(12, VOLUME_MIN_HEIGHT * height):
        return None
    if np.std(heights) < 0.15 * np.mean(heights):
        return None  # equal heights: a row of boxes or a frame, not volume
    top = int(np.percentile(on_baseline.top, 2))
    return top, baseline


def _mass_bands(runs: ColumnRuns, height: int, max_gap: int) -> list[tuple[int, int, int]]:
    """Split the rows into bands of marks separated by more than `max_gap` empty rows.

    Returns (first row, row after the last, number of marked pixels) per band.
    """
    steps = np.bincount(runs.top, minlength=height + 1) - np.bincount(runs.bottom, minlength=height + 1)
    profile = np.cumsum(steps)[:height]
    marked = np.nonzero(profile > 0)[0]
    if marked.size == 0:
        return []
    breaks = np.nonzero(np.diff(marked) > max_gap + 1)[0]
    starts = np.concatenate(([marked[0]], marked[breaks + 1]))
    ends = np.concatenate((marked[breaks], [marked[-1]])) + 1
    return [(int(a), int(b), int(profile[a:b].sum())) for a, b in zip(starts, ends)]


def _row_bounds(lines: tuple[Segment, ...], height: int) -> tuple[int, int]:
    """Return the rows spanned by the vertical grid lines, or all rows.

    Vertical grid lines and frame sides run from the top to the bottom of a
    panel, so marks beyond their ends (date labels, titles) are outside the
    plot. Only lines that at least one other line matches end to end (within
    2% of the height) count: a single long line may be a tall volume bar or a
    trader's drawing.
    """
    tolerance = 0.02 * height
    long_lines = [line for line in lines if line.length >= 0.4 * height]
    best: list[Segment] = []
    for line in long_lines:
        matching = [
            other
            for other in long_lines
            if abs(other.start - line.start) <= tolerance and abs(other.end - line.end) <= tolerance
        ]
        if len(matching) > len(best):
            best = matching
    if len(best) < 2:
        return 0, height
    top = int(np.median([line.start for line in best]))
    bottom = int(np.median([line.end for line in best]))
    return max(0, top - 2), min(height, bottom + 2)


def _label_row_bounds(columns: list[LabelColumn], height: int) -> tuple[int, int]:
    """Return the rows within 1.2 label steps of the axis labels, or all rows.

    A charting tool labels its price scale across the visible range, so the
    plot ends less than a label step beyond the first and the last label.
    Marks further out (rotated date labels under the plot) are not prices.
    Only label columns spanning at least 40% of the height count, because
    faint labels are often found only in part.
    """
    columns = [c for c in columns if c.boxes[-1].centre_y - c.boxes[0].centre_y >= 0.4 * height]
    if not columns:
        return 0, height
    top = min(column.boxes[0].centre_y - 1.2 * column.step for column in columns)
    bottom = max(column.boxes[-1].centre_y + 1.2 * column.step for column in columns)
    return max(0, int(top)), min(height, int(np.ceil(bottom)))


def _price_band(runs: ColumnRuns, height: int) -> tuple[int, int] | None:
    """Return the first and last+1 rows of the band of rows that contains the most marks.

    Gaps of up to 12% of the height stay inside a band, because a price gap
    leaves empty rows between the bars before and after it.
    """
    bands = _mass_bands(runs, height, max_gap=max(6, height * 12 // 100))
    if not bands:
        return None
    y0, y1, _ = max(bands, key=lambda band: band[2])
    return y0, y1


def _cleaned_runs(
    marks: np.ndarray, text_boxes: list[TextBox], x0: int, x1: int
) -> tuple[ColumnRuns, ColumnRuns, float]:
    """Return the runs between columns x0 and x1 without text, with and without thin lines.

    Also returns the share of those columns' marks that were erased as free-standing text.
    """
    cleaned = erase_isolated_text(marks, text_boxes)
    cleaned[:, :x0] = 0
    cleaned[:, x1:] = 0
    marked = int(np.count_nonzero(marks[:, x0:x1]))
    text_share = 1.0 - int(np.count_nonzero(cleaned)) / marked if marked else 0.0
    return column_runs(remove_thin_lines(cleaned)), column_runs(cleaned), text_share


def find_layout(
    marks: np.ndarray,
    label_columns: list[LabelColumn],
    text_boxes: list[TextBox],
    *,
    horizontal_lines: tuple[Segment, ...] = (),
    vertical_lines: tuple[Segment, ...] = (),
) -> Layout | None:
    """Find the price panel's columns and rows, and its vertical runs.

    Returns None when no marks are left once labels, text and volume bars
    are taken away.
    """
    height, width = marks.shape
    x0, x1 = _column_bounds(width, label_columns, horizontal_lines)
    runs, all_runs, text_share = _cleaned_runs(marks, text_boxes, x0, x1)
    if runs.column.size == 0:
        return None

    volume = _find_volume(runs, height)
    volume_top = volume_baseline = None
    if volume is not None:
        volume_top, volume_baseline = volume
        runs = _without_volume(runs, volume_top, volume_baseline)
        all_runs = _without_volume(all_runs, volume_top, volume_baseline)

    low, high = _row_bounds(vertical_lines, height)
    label_low, label_high = _label_row_bounds(label_columns, height)
    low, high = max(low, label_low), min(high, label_high)
    band = _price_band(runs.select((runs.bottom > low) & (runs.top < high)), height)
    if band is None:
        return None
    y0, y1 = band
    # Flat bars are missing from `runs`, so the band can stop short of them.
    margin = height * 3 // 100
    return Layout(
        x0=x0,
        x1=x1,
        y0=y0,
        y1=y1,
        runs=runs.select((runs.bottom > y0) & (runs.top < y1)),
        all_runs=all_runs.select((all_runs.bottom > max(low, y0 - margin)) & (all_runs.top < min(high, y1 + margin))),
        volume_top=volume_top,
        volume_baseline=volume_baseline,
        text_share=text_share,
    )


def _without_volume(runs: ColumnRuns, volume_top: int, baseline: int) -> ColumnRuns:
    """Drop the runs standing on the volume baseline and those starting inside the volume band.

    Volume bars overlaid on the price pane stand below the price marks, so
    whatever starts inside the band is volume or its labels.
    """
    return runs.select((np.abs(runs.bottom - baseline) > 1) & (runs.top < volume_top))
