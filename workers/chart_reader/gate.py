"""Score how likely an image is a price chart, from what the reader found in it.

A bar or candle chart shows a long row of bars on a steady x grid. Their
ranges follow on from each other, because a price series moves in small
steps, each bar is alone in its slot, and their heights vary. A line chart
shows one thin line that crosses most of the plot without breaks and moves
up and down. A dominant background and a column of evenly spaced axis labels
add to either. A row of bars on one baseline (a sales bar chart) is not a
price series, and an image made mostly of words (a chat, a table) is not a
chart. The weights and ramps were set on the shared sample charts and on
synthetic charts and non-charts drawn with Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# An image at or above this confidence is reported as a chart. It sits below
# the middle of the scale on purpose: refusing a real chart costs the user
# more than one needless model call.
CHART_THRESHOLD = 0.45

# Fewer bars than this are not scored as a bar chart.
MIN_BARS = 8


@dataclass(frozen=True)
class BarEvidence:
    """Measures of the bars found on the grid."""

    bars: int
    grid_contrast: float  # 0..1, the column signal's variance that the bar spacing explains
    slot_fill: float  # share of grid slots between the first and last bar that hold a bar
    continuity: float  # share of neighbouring bars whose ranges touch or nearly touch
    height_variation: float  # coefficient of variation of the bar heights
    shared_bottom: float  # share of bars whose low sits on the most common low row
    dominance: float  # median share of a slot's marked rows that belong to its bar


@dataclass(frozen=True)
class LineEvidence:
    """Measures of the traced line."""

    span_share: float  # traced width over the plot width
    coverage: float  # share of the columns in the traced span that hold the line
    continuity: float  # share of neighbouring columns whose runs touch
    thin_share: float  # share of columns where the run is no taller than the line's slope explains
    vertical_range: float  # traced height range, in share of the searched height


def _ramp(value: float, low: float, high: float) -> float:
    """Map `value` linearly from [low, high] onto [0, 1], clipped."""
    if high == low:
        return float(value >= high)
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def bar_score(evidence: BarEvidence | None) -> float:
    """Return 0..1: how much the bars look like a price series.

    Continuity (neighbouring bars touch) and dominance (each slot contains
    one bar, not a stack of text lines or dots) are both required, so they
    multiply the rest. A shared baseline (a sales bar chart) cancels the score.
    """
    if evidence is None or evidence.bars < MIN_BARS:
        return 0.0
    support = (
        0.25 * _ramp(evidence.bars, MIN_BARS, 20)
        + 0.25 * _ramp(evidence.slot_fill, 0.5, 0.8)
        + 0.2 * _ramp(evidence.height_variation, 0.15, 0.35)
        + 0.3 * _ramp(evidence.grid_contrast, 0.0, 0.1)
    )
    series = _ramp(evidence.continuity, 0.8, 0.93) * _ramp(evidence.dominance, 0.35, 0.6)
    return support * series * (1.0 - _ramp(evidence.shared_bottom, 0.5, 0.8))


def line_score(evidence: LineEvidence | None) -> float:
    """Return 0..1: how much the traced line looks like a price line.

    Every measure must be good, so the score is the product of the ramps: a
    long thin trace that jumps (text rows) or a continuous but thick one (the
    edge of a filled shape) both fail.
    """
    if evidence is None:
        return 0.0
    return (
        _ramp(evidence.span_share, 0.4, 0.7)
        * _ramp(evidence.coverage, 0.7, 0.9)
        * _ramp(evidence.continuity, 0.7, 0.9)
        * _ramp(evidence.thin_share, 0.6, 0.85)
        * _ramp(evidence.vertical_range, 0.05, 0.2)
    )


def chart_confidence(
    bars: BarEvidence | None,
    line: LineEvidence | None,
    *,
    background_share: float,
    text_share: float,
    has_price_labels: bool,
) -> float:
    """Combine the evidence into a 0..1 confidence that the image is a price chart.

    `text_share` is the share of the marks that are free-standing words: a
    chat, a document or a table is mostly text, a chart has only its title,
    labels and notes.
    """
    structure = max(bar_score(bars), line_score(line))
    backdrop = _ramp(background_share, 0.25, 0.6) * (1.0 - _ramp(text_share, 0.35, 0.6))
    labels = 0.1 if has_price_labels else 0.0
    return float(np.clip((structure + labels) * backdrop, 0.0, 1.0))


def bar_evidence(
    *,
    highs: np.ndarray,
    lows: np.ndarray,
    indices: np.ndarray,
    shares: np.ndarray,
    grid_contrast: float,
    band_height: int,
) -> BarEvidence:
    """Measure the bar evidence from each bar's top row, bottom row, grid index and share of its slot."""
    count = highs.size
    span = int(indices[-1] - indices[0] + 1) if count else 1
    heights = (lows - highs + 1).astype(float)
    near = 0.03 * band_height + 1
    gaps = np.maximum(0, np.maximum(highs[1:] - lows[:-1], highs[:-1] - lows[1:]))
    continuity = float(np.mean(gaps <= near)) if count > 1 else 0.0
    values, counts = np.unique(lows, return_counts=True)
    common = values[counts.argmax()] if values.size else 0
    shared = float(np.mean(np.abs(lows - common) <= 2)) if count else 0.0
    return BarEvidence(
        bars=count,
        grid_contrast=grid_contrast,
        slot_fill=count / span,
        continuity=continuity,
        height_variation=float(heights.std() / heights.mean()) if count and heights.mean() > 0 else 0.0,
        shared_bottom=shared,
        dominance=float(np.median(shares)) if count else 0.0,
    )
