"""Vertical runs of marks: for each column, the spans of consecutive marked rows."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ColumnRuns:
    """Every vertical run of a mask, sorted by column then by top row.

    `top` is the first marked row of a run and `bottom` the row after its last.
    """

    column: np.ndarray
    top: np.ndarray
    bottom: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return self.bottom - self.top

    def select(self, keep: np.ndarray) -> ColumnRuns:
        """Return the runs where the boolean array `keep` is true."""
        return ColumnRuns(column=self.column[keep], top=self.top[keep], bottom=self.bottom[keep])


def column_runs(mask: np.ndarray) -> ColumnRuns:
    """Return the vertical runs of a 0/1 mask."""
    x, y, width, height = cv2.boundingRect(mask)
    if width == 0 or height == 0:
        empty = np.zeros(0, dtype=np.int32)
        return ColumnRuns(column=empty, top=empty, bottom=empty)
    # Work column-major on the bounding box: one pass over contiguous memory.
    padded = np.zeros((width, height + 2), dtype=np.int8)
    padded[:, 1:-1] = mask[y : y + height, x : x + width].T
    steps = np.diff(padded, axis=1)
    columns, rows = np.nonzero(steps)
    rising = steps[columns, rows] > 0
    return ColumnRuns(
        column=(columns[rising] + x).astype(np.int32),
        top=(rows[rising] + y).astype(np.int32),
        bottom=(rows[~rising] + y).astype(np.int32),
    )


def mask_from_runs(runs: ColumnRuns, shape: tuple[int, int]) -> np.ndarray:
    """Paint runs back into a 0/1 uint8 mask of the given shape."""
    height, width = shape
    steps = np.zeros((width, height + 1), dtype=np.int8)
    # Runs of one column never touch, so no two runs share a start or an end cell.
    steps[runs.column, runs.top] = 1
    steps[runs.column, runs.bottom] = -1
    return np.ascontiguousarray((np.cumsum(steps, axis=1, dtype=np.int16)[:, :height] > 0).T).astype(np.uint8)
