"""Follow the price line of a line chart, column by column.

In every column the line is one short run of marks. The run is picked by a
Viterbi pass like the bar slots, but runs gain nothing for length: the
line is the most continuous path, and a thick run (text, a filled shape)
pays for its thickness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.grid import find_period
from workers.chart_reader.runs import ColumnRuns, column_runs
from workers.chart_reader.slots import interval_gaps, merge_intervals

# Without a step between data points, the line is sampled at this many points at most.
MAX_POINTS = 240

# The bends of the line must fold onto one phase at least this well to give the points.
MIN_VERTEX_CONTRAST = 0.05

# Score a run loses per pixel of its height; a one-row jump between columns costs 1.
THICKNESS_COST = 0.2


@dataclass(frozen=True)
class LineTrace:
    """The traced line: the row span of the run picked in each traced column."""

    xs: np.ndarray
    tops: np.ndarray
    bottoms: np.ndarray  # exclusive

    @property
    def ys(self) -> np.ndarray:
        """The middle row of each traced column's run."""
        return (self.tops + self.bottoms - 1) / 2

    def gaps(self) -> np.ndarray:
        """Empty rows between the runs of neighbouring traced columns."""
        return np.maximum(0, np.maximum(self.tops[1:] - self.bottoms[:-1], self.tops[:-1] - self.bottoms[1:]))

    def part(self, start: int, end: int) -> LineTrace:
        return LineTrace(xs=self.xs[start:end], tops=self.tops[start:end], bottoms=self.bottoms[start:end])


def _column_candidates(runs: ColumnRuns) -> list[tuple[int, np.ndarray]]:
    """Group the runs by column: (column, array of merged (top, bottom) intervals) per marked column."""
    columns = []
    boundaries = np.nonzero(np.diff(runs.column))[0] + 1
    for start, end in zip(np.concatenate(([0], boundaries)), np.concatenate((boundaries, [runs.column.size]))):
        merged = merge_intervals(runs.top[start:end], runs.bottom[start:end])
        columns.append((int(runs.column[start]), np.array(merged, dtype=np.int64)))
    return columns


def trace_line(marks: np.ndarray, x0: int, x1: int, y0: int, y1: int) -> LineTrace | None:
    """Trace the most continuous thin path through the marks inside the box (x1, y1 exclusive).

    Returns None when fewer than 20 columns hold marks.
    """
    runs = column_runs(marks[y0:y1, x0:x1])
    if runs.column.size == 0:
        return None
    columns = _column_candidates(runs)
    if len(columns) < 20:
        return None

    first = columns[0][1]
    scores = -THICKNESS_COST * (first[:, 1] - first[:, 0]).astype(float)
    back: list[np.ndarray] = []
    for (_, previous), (_, current) in zip(columns, columns[1:]):
        total = scores[:, None] - interval_gaps(previous, current).astype(float)
        best = total.argmax(axis=0)
        back.append(best)
        scores = total[best, np.arange(current.shape[0])] - THICKNESS_COST * (current[:, 1] - current[:, 0])

    choice = int(scores.argmax())
    chosen = []
    for position in range(len(columns) - 1, -1, -1):
        column, intervals = columns[position]
        chosen.append((column, intervals[choice]))
        if position > 0:
            choice = int(back[position - 1][choice])
    chosen.reverse()

    xs = np.array([column for column, _ in chosen], dtype=float) + x0
    tops = np.array([interval[0] for _, interval in chosen], dtype=float) + y0
    bottoms = np.array([interval[1] for _, interval in chosen], dtype=float) + y0
    return _longest_piece(LineTrace(xs=xs, tops=tops, bottoms=bottoms), max_jump=max(3.0, 0.02 * (y1 - y0)))


def _longest_piece(trace: LineTrace, *, max_jump: float) -> LineTrace:
    """Cut the trace where it jumps or skips columns and keep the widest piece.

    The path must pass through every column that contains marks, so beyond
    the ends of the line it wanders over labels. Those stretches join the
    line only through a jump.
    """
    breaks = (trace.gaps() > max_jump) | (np.diff(trace.xs) > max_jump)
    cuts = np.concatenate(([0], np.nonzero(breaks)[0] + 1, [trace.xs.size]))
    widths = [trace.xs[end - 1] - trace.xs[start] for start, end in zip(cuts[:-1], cuts[1:])]
    best = int(np.argmax(widths))
    return trace.part(int(cuts[best]), int(cuts[best + 1]))


def _vertices(trace: LineTrace) -> tuple[float, float] | None:
    """Find the x step between the data points of a line chart: (first point's x, step).

    A line chart joins its points with straight segments, so the line bends
    only at the points. The bends form a pulse train whose period is the
    step between points.
    """
    columns = np.arange(trace.xs[0], trace.xs[-1] + 1)
    if columns.size < 40:
        return None
    rows = np.interp(columns, trace.xs, trace.ys)
    bends = np.abs(np.diff(rows, 2))
    signal = np.minimum(np.concatenate(([0.0], bends, [0.0])), np.percentile(bends, 99))
    found = find_period(signal)
    if found is None or found[2] < MIN_VERTEX_CONTRAST:
        return None
    step, phase, _ = found
    return float(columns[0] + phase % step), step


def sample_points(trace: LineTrace) -> list[tuple[float, float]]:
    """Return the line's data points when their step can be found, else evenly spaced points.

    The evenly spaced fallback has at most MAX_POINTS points and keeps both ends.
    """
    vertices = _vertices(trace)
    if vertices is not None:
        first, step = vertices
        # The line may start on a point less than a step before the first bend found.
        if first - step >= trace.xs[0] - 0.5 * step:
            first -= step
        xs = np.arange(first, trace.xs[-1] + 0.5 * step, step)
        xs = np.clip(xs, trace.xs[0], trace.xs[-1])
    else:
        count = min(MAX_POINTS, trace.xs.size)
        xs = trace.xs[np.linspace(0, trace.xs.size - 1, count).round().astype(int)]
    ys = np.interp(xs, trace.xs, trace.ys)
    return [(float(x), float(y)) for x, y in zip(xs, ys)]
