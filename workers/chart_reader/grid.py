"""Find the regular x grid that the bars of a bar or candle chart stand on.

Charting tools place bars at equal steps along x, so the columns that
contain marks form a pulse train at that step. Its period is estimated from
the spectrum and confirmed by folding the columns onto one period (epoch
folding). At the true period the bars pile up on the same phase and the gaps
stay empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.chart_reader.plot_area import Layout

# The shortest bar spacing searched, pixels: two-pixel bars leave no gap to see.
MIN_SPACING = 2.2

# The spectrum is searched for periods that repeat at least this often across
# the signal: long periods fold few columns onto each phase bin and win on slow
# changes of the signal rather than on bars.
MIN_REPEATS = 12

# A period folds well when it explains at least this share of the best contrast.
# The shortest such period wins, because every multiple of the true one folds too.
GOOD_FOLD = 0.85


@dataclass(frozen=True)
class BarGrid:
    """Bar centres at `origin + spacing * k` for k in range(count), in pixels."""

    origin: float
    spacing: float
    count: int
    contrast: float  # 0..1: the share of the column signal's variance that the spacing explains

    def centre(self, index: int) -> float:
        return self.origin + self.spacing * index


def column_presence(layout: Layout, width: int) -> np.ndarray:
    """Return 1.0 for each column that contains a run of the layout, else 0.0."""
    present = np.zeros(width, dtype=np.float64)
    present[layout.runs.column] = 1.0
    return present


def _phase_bins(size: int, period: float) -> tuple[np.ndarray, int]:
    """Assign each of `size` columns to one of about `period` phase bins of one pixel."""
    bins = max(3, int(round(period)))
    phase = ((np.arange(size) / period) % 1.0 * bins).astype(np.int64) % bins
    return phase, bins


def fold(signal: np.ndarray, period: float) -> np.ndarray:
    """Average the signal over phase bins of about one pixel each at the given period."""
    phase, bins = _phase_bins(signal.size, period)
    totals = np.bincount(phase, weights=signal, minlength=bins)
    counts = np.bincount(phase, minlength=bins)
    return totals / np.maximum(counts, 1)


def _contrast(signal: np.ndarray, period: float) -> float:
    """Return the share of the signal's variance that the folded profile explains, less chance.

    With B phase bins over N columns, a random signal already explains about
    (B - 1) / N of its variance. That share is taken off, so long periods
    (few columns per bin) do not win by chance.
    """
    phase, bins = _phase_bins(signal.size, period)
    counts = np.bincount(phase, minlength=bins)
    means = np.bincount(phase, weights=signal, minlength=bins) / np.maximum(counts, 1)
    mean = signal.mean()
    total = float(np.sum((signal - mean) ** 2))
    if total <= 0:
        return 0.0
    explained = float(np.sum(counts * (means - mean) ** 2)) / total
    chance = (bins - 1) / signal.size
    return (explained - chance) / (1.0 - chance)


def _spectral_candidates(signal: np.ndarray, max_period: float) -> list[float]:
    """Return periods of the strongest spectral peaks, with their double and triple."""
    size = signal.size
    centred = (signal - signal.mean()) * np.hanning(size)
    power = np.abs(np.fft.rfft(centred, 8 * size))
    frequency = np.fft.rfftfreq(8 * size)
    usable = np.nonzero((frequency >= 1.0 / max_period) & (frequency <= 1.0 / MIN_SPACING))[0]
    if usable.size < 3:
        return []
    values = power[usable]
    is_peak = (values[1:-1] > values[:-2]) & (values[1:-1] >= values[2:])
    peaks = usable[1:-1][is_peak]
    strongest = peaks[np.argsort(-power[peaks])][:4]
    periods = {1.0 / frequency[i] * multiple for i in strongest for multiple in (1, 2, 3)}
    return sorted(p for p in periods if MIN_SPACING <= p <= max_period)


def _refine(signal: np.ndarray, period: float) -> tuple[float, float]:
    """Search ±1.5% around a period for the best folding contrast, in steps of 0.3% then 0.05%."""
    best_contrast, best_period = -1.0, period
    for step, reach in ((0.003, 0.015), (0.0005, 0.003)):
        centre = best_period
        for candidate in centre * (1.0 + np.arange(-reach, reach + step / 2, step)):
            value = _contrast(signal, candidate)
            if value > best_contrast:
                best_contrast, best_period = value, candidate
    return best_period, best_contrast


def _bar_phase(signal: np.ndarray, period: float) -> float:
    """Return the x offset (0..period) of the bar centres: the middle of the busiest phase bins."""
    profile = fold(signal, period)
    bins = profile.size
    angles = 2 * np.pi * (np.arange(bins) + 0.5) / bins
    weights = np.clip(profile - profile.min(), 0, None) ** 2
    mean_angle = np.angle(np.sum(weights * np.exp(1j * angles)))
    return float((mean_angle % (2 * np.pi)) / (2 * np.pi) * period)


def find_period(signal: np.ndarray) -> tuple[float, float, float] | None:
    """Find the steady period of a pulse train; returns (period, phase, contrast) or None.

    `phase` is the offset of the pulses' centres within a period, measured
    from the signal's first sample.
    """
    candidates = _spectral_candidates(signal, signal.size / MIN_REPEATS)
    if not candidates:
        return None
    rough = sorted(candidates, key=lambda period: _contrast(signal, period), reverse=True)[:5]
    scored = [_refine(signal, period) for period in rough]
    best = max(contrast for _, contrast in scored)
    if best <= 0:
        return None
    period, contrast = min((item for item in scored if item[1] >= GOOD_FOLD * best), key=lambda item: item[0])
    return period, _bar_phase(signal, period), contrast


def _regular_segments(presence: np.ndarray) -> tuple[float, float, int] | None:
    """Read the grid straight from the runs of marked columns when they are few and regular.

    A chart with a few wide-apart bars has too few repeats for the spectrum,
    but each bar is then its own run of columns. Runs under a third of the
    median width are left out first. Returns (first centre, spacing, count)
    when 5 to 40 runs remain, every step between their centres is within 15%
    of the median step, and no run is more than three times as wide as another.
    """
    steps = np.diff(np.concatenate(([0], (presence > 0).astype(np.int8), [0])))
    starts = np.nonzero(steps == 1)[0]
    ends = np.nonzero(steps == -1)[0]
    # Slivers (the remains of a frame side, a tick mark) are left out.
    keep = (ends - starts) >= np.median(ends - starts) / 3 if starts.size else np.zeros(0, dtype=bool)
    starts, ends = starts[keep], ends[keep]
    if not 5 <= starts.size <= 40:
        return None
    widths = ends - starts
    centres = (starts + ends - 1) / 2.0
    gaps = np.diff(centres)
    spacing = float(np.median(gaps))
    if widths.max() > 3 * widths.min() or np.any(np.abs(gaps - spacing) > 0.15 * spacing):
        return None
    return float(centres[0]), spacing, int(starts.size)


def find_bar_grid(layout: Layout, width: int) -> BarGrid | None:
    """Estimate the bar spacing and the first and last bar positions.

    NOTE: bars closer than about 4 pixels (a 640-pixel screenshot of 150 or
    more daily candles) touch once anti-aliased or JPEG-compressed, so the
    columns show no gaps. The spacing found there is often a multiple of the
    true one, and the bar count is then too low.

    Returns None when the marked columns show no steady spacing that
    repeats MIN_REPEATS times (a line chart, or no chart at all).
    """
    presence = column_presence(layout, width)
    marked = np.nonzero(presence)[0]
    if marked.size < 5:
        return None
    first, last = int(marked[0]), int(marked[-1]) + 1
    regular = _regular_segments(presence)
    if regular is not None:
        origin, spacing, count = regular
        return BarGrid(origin=origin, spacing=spacing, count=count, contrast=_contrast(presence[first:last], spacing))
    found = find_period(presence[first:last])
    if found is None:
        return None
    spacing, phase, contrast = found
    phase += first
    # The first bar centre within half a spacing of the first marked column.
    start = phase - spacing * np.floor((phase - first + 0.5 * spacing) / spacing)
    count = int(np.floor((last - 1 - start + 0.5 * spacing) / spacing)) + 1
    return BarGrid(origin=float(start), spacing=float(spacing), count=count, contrast=contrast)
