"""Pick, for every slot of the bar grid, the vertical run that is the bar.

A slot's columns can also contain parts of titles, labels and lines. The
bar is chosen by a Viterbi pass over the slots. Each candidate run scores by
its length. A jump between the runs of neighbouring slots costs in
proportion to the empty rows between them, because consecutive bars of a
price series touch or nearly touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.grid import BarGrid
from workers.chart_reader.runs import ColumnRuns

# A jump of this share of the band's height costs as much as a run e times longer earns.
JUMP_UNIT = 0.04

# A slot gathers the runs of the columns within this share of the spacing of
# its centre: a hollow candle's outline is off centre and its middle is empty.
SLOT_REACH = 0.45

# An end slot whose ink is further than this (RGB distance) from every bar's
# ink in the middle of the chart is not a bar.
INK_DISTANCE = 60.0


@dataclass(frozen=True)
class Slot:
    """The run picked for one grid slot: the slot's index and centre, its busiest column, first and last+1 rows."""

    index: int
    centre: float
    x: int
    top: int
    bottom: int
    share: float  # the run's rows over all marked rows in the slot's columns


def merge_intervals(tops: np.ndarray, bottoms: np.ndarray) -> list[tuple[int, int]]:
    """Merge row intervals that overlap or touch into disjoint intervals, top to bottom."""
    order = np.argsort(tops)
    merged: list[list[int]] = []
    for top, bottom in zip(tops[order], bottoms[order]):
        if merged and top <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], int(bottom))
        else:
            merged.append([int(top), int(bottom)])
    return [(top, bottom) for top, bottom in merged]


def _slot_candidates(runs: ColumnRuns, grid: BarGrid, index: int) -> tuple[int, list[tuple[int, int]]]:
    """Return the slot's busiest column and the merged runs of its central columns."""
    centre = grid.centre(index)
    half = max(0.5, SLOT_REACH * grid.spacing)
    first = np.searchsorted(runs.column, int(np.ceil(centre - half)), side="left")
    last = np.searchsorted(runs.column, int(np.floor(centre + half)), side="right")
    if first >= last:
        return int(round(centre)), []
    columns = runs.column[first:last]
    lengths = runs.length[first:last]
    totals = np.bincount(columns - columns.min(), weights=lengths)
    busiest = int(columns.min() + totals.argmax())
    return busiest, merge_intervals(runs.top[first:last], runs.bottom[first:last])


def interval_gaps(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Empty rows between every previous interval (rows) and every current one (columns)."""
    above = current[None, :, 0] - previous[:, None, 1]
    below = previous[:, None, 0] - current[None, :, 1]
    return np.maximum(0, np.maximum(above, below))


def pick_slot_runs(runs: ColumnRuns, grid: BarGrid, band_height: int) -> list[Slot]:
    """Choose one run per grid slot that has any, by the best-scoring continuous path."""
    unit = max(2.0, JUMP_UNIT * band_height)
    slots: list[tuple[int, int, np.ndarray]] = []
    for index in range(grid.count):
        x, candidates = _slot_candidates(runs, grid, index)
        if candidates:
            slots.append((index, x, np.array(candidates, dtype=np.int64)))
    if not slots:
        return []

    scores = np.log1p(slots[0][2][:, 1] - slots[0][2][:, 0]).astype(float)
    back: list[np.ndarray] = []
    for (_, _, previous), (_, _, current) in zip(slots, slots[1:]):
        total = scores[:, None] - interval_gaps(previous, current) / unit
        best = total.argmax(axis=0)
        back.append(best)
        scores = total[best, np.arange(current.shape[0])] + np.log1p(current[:, 1] - current[:, 0])

    choice = int(scores.argmax())
    picked: list[Slot] = []
    for position in range(len(slots) - 1, -1, -1):
        index, x, intervals = slots[position]
        top, bottom = intervals[choice]
        share = (bottom - top) / float(np.sum(intervals[:, 1] - intervals[:, 0]))
        picked.append(Slot(index=index, centre=grid.centre(index), x=x, top=int(top), bottom=int(bottom), share=share))
        if position > 0:
            choice = int(back[position - 1][choice])
    picked.reverse()
    return picked


def _strongest_ink(rgb: np.ndarray, slot: Slot, background: np.ndarray) -> np.ndarray:
    """Return the colour of the run's pixel that differs most from the background."""
    pixels = rgb[slot.top : slot.bottom, slot.x].reshape(-1, 3).astype(float)
    return pixels[np.abs(pixels - background).max(axis=1).argmax()]


def trim_ends(slots: list[Slot], rgb: np.ndarray, background: tuple[int, int, int], band_height: int) -> list[Slot]:
    """Drop slots at either end that are not bars.

    Tick marks, grid-line dashes, labels and drawings beside the first or
    last bar fall into grid slots too. The kept slots start (and end) with a
    slot that the next two slots inward continue. Each of the three is within
    a fifth of the band of the next and at most four slots away from it. None
    of them is a run under three pixels tall in a foreign ink. A foreign ink
    is one whose pixel furthest from the background matches the ink of no
    bar in the middle of the chart, as a grey grid dash beside black bars.
    """
    if len(slots) < 3:
        return slots
    back = np.asarray(background, dtype=float)
    inks = np.array([_strongest_ink(rgb, slot, back) for slot in slots])
    edge = max(1, len(slots) // 10)
    middle = [i for i in range(edge, len(slots) - edge) if slots[i].bottom - slots[i].top >= 3]
    reference = inks[middle] if middle else inks
    # Only a short run can be foreign: a tall bar in a colour seen nowhere else
    # (the one falling candle after a rally) is still a bar.
    foreign = np.array(
        [
            slot.bottom - slot.top < 3 and float(np.min(np.linalg.norm(reference - ink, axis=1))) > INK_DISTANCE
            for slot, ink in zip(slots, inks)
        ]
    )
    limit = 0.2 * band_height

    def joined(a: int, b: int) -> bool:
        gap = max(0, slots[a].top - slots[b].bottom, slots[b].top - slots[a].bottom)
        return gap <= limit and abs(slots[a].index - slots[b].index) <= 4

    def solid(position: int, step: int) -> bool:
        """Tell whether this slot and the next two inward are bar-coloured and joined."""
        chain = [position, position + step, position + 2 * step]
        if not all(0 <= i < len(slots) for i in chain):
            return True
        return not foreign[chain].any() and joined(chain[0], chain[1]) and joined(chain[1], chain[2])

    first, last = 0, len(slots)
    while last - first > 2 and not solid(first, 1):
        first += 1
    while last - first > 2 and not solid(last - 1, -1):
        last -= 1
    return slots[first:last]
