"""Find the bars or the price line of a chart and measure the evidence that it is one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.axis_labels import LabelColumn, TextBox
from workers.chart_reader.bars import BarShape, measure_bar
from workers.chart_reader.direction import classify_chart_type, to_bars
from workers.chart_reader.gate import BarEvidence, LineEvidence, bar_evidence, bar_score
from workers.chart_reader.grid import find_bar_grid
from workers.chart_reader.line import LineTrace, trace_line
from workers.chart_reader.marks import MarkMap
from workers.chart_reader.models import Bar
from workers.chart_reader.plot_area import Layout, find_layout
from workers.chart_reader.slots import pick_slot_runs, trim_ends

# From this bar score on the bars are taken as they are and no line is traced.
# Below it the steep pieces of a line chart's line may pass for bars, and the
# traced line wins when it scores higher. A moving average over candles
# traces as a good line too, which is why strong bars are not compared.
CLEAR_BAR_SCORE = 0.86


@dataclass(frozen=True)
class BarReading:
    """The bars of a chart: their shapes, their OHLC rows and directions, and the evidence."""

    chart_type: str
    spacing: float
    shapes: tuple[BarShape, ...]
    bars: tuple[Bar, ...]
    directions: tuple[str, ...]
    evidence: BarEvidence


@dataclass(frozen=True)
class Structure:
    """The findings on one image: the layout, the bars if any, the traced line if any."""

    layout: Layout | None
    bars: BarReading | None
    line: LineTrace | None
    line_evidence: LineEvidence | None


def _read_bars(rgb: np.ndarray, mark_map: MarkMap, layout: Layout) -> BarReading | None:
    """Find the bar grid, pick and measure each bar, and tell candles from OHLC bars."""
    width = mark_map.marks.shape[1]
    grid = find_bar_grid(layout, width)
    if grid is None:
        return None
    band_height = layout.y1 - layout.y0
    slots = pick_slot_runs(layout.all_runs, grid, band_height)
    slots = trim_ends(slots, rgb, mark_map.backgrounds[-1], band_height)
    if len(slots) < 2:
        return None

    shapes = [measure_bar(mark_map.marks, rgb, slot, grid.spacing) for slot in slots]
    chart_type = classify_chart_type(shapes, grid.spacing)
    bars, directions = to_bars(shapes, chart_type, mark_map.backgrounds[-1])

    evidence = bar_evidence(
        highs=np.array([shape.high for shape in shapes]),
        lows=np.array([shape.low for shape in shapes]),
        indices=np.array([shape.index for shape in shapes]),
        shares=np.array([slot.share for slot in slots]),
        grid_contrast=grid.contrast,
        band_height=band_height,
    )
    return BarReading(
        chart_type=chart_type,
        spacing=grid.spacing,
        shapes=tuple(shapes),
        bars=tuple(bars),
        directions=tuple(directions),
        evidence=evidence,
    )


def _read_line(mark_map: MarkMap, layout: Layout) -> tuple[LineTrace | None, LineEvidence | None]:
    """Trace the line above any volume band and measure how much it looks like a price line."""
    height = mark_map.marks.shape[0]
    bottom = layout.volume_top if layout.volume_top is not None else height
    trace = trace_line(mark_map.marks, layout.x0, layout.x1, 0, bottom)
    if trace is None or trace.xs.size < 20:
        return None, None
    runs = trace.bottoms - trace.tops
    # A steep stretch or a peak makes a tall run; the steeper neighbouring step allows for it.
    step = np.abs(np.diff(trace.ys))
    steps = np.maximum(np.concatenate(([0.0], step)), np.concatenate((step, [0.0])))
    evidence = LineEvidence(
        span_share=(trace.xs[-1] - trace.xs[0] + 1) / max(1, layout.x1 - layout.x0),
        coverage=trace.xs.size / (trace.xs[-1] - trace.xs[0] + 1),
        continuity=float(np.mean(trace.gaps() <= 1)),
        thin_share=float(np.mean(runs <= np.maximum(5, 1.5 * steps + 3))),
        vertical_range=float(np.ptp(trace.ys)) / max(1, bottom),
    )
    return trace, evidence


def read_structure(
    rgb: np.ndarray, mark_map: MarkMap, label_columns: list[LabelColumn], text_boxes: list[TextBox]
) -> Structure:
    """Find the price panel, then its bars, and trace a line when the bars are not convincing.

    `label_columns` are the axis label columns at the image's edges.
    """
    layout = find_layout(
        mark_map.marks,
        label_columns,
        text_boxes,
        horizontal_lines=mark_map.horizontal_lines,
        vertical_lines=mark_map.vertical_lines,
    )
    if layout is None:
        return Structure(layout=None, bars=None, line=None, line_evidence=None)
    bars = _read_bars(rgb, mark_map, layout)
    if bars is not None and bar_score(bars.evidence) >= CLEAR_BAR_SCORE:
        return Structure(layout=layout, bars=bars, line=None, line_evidence=None)
    line, line_evidence = _read_line(mark_map, layout)
    return Structure(layout=layout, bars=bars, line=line, line_evidence=line_evidence)
