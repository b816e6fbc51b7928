"""Decide the chart type and which way each candle closed, and turn shapes into OHLC rows.

Candle colours differ between styles (green and red, white and black,
hollow and filled, white and blue), so the two colour groups are found on the
chart itself. Which group is "up" is decided by price continuity: a bar
usually opens where the previous one closed, and only the right assignment
of up and down makes the closes and the next opens line up. Hue breaks a
near tie (green up, red down; hollow up).
"""

from __future__ import annotations

import colorsys

import numpy as np

from workers.chart_reader.bars import BarShape
from workers.chart_reader.models import Bar

# A body whose colour is this close to the background is hollow (its outline is drawn, not its inside).
HOLLOW_DISTANCE = 40.0


# Below this bar spacing (pixels) ticks and bodies are too narrow to tell apart.
MIN_OHLC_SPACING = 5.0


def classify_chart_type(shapes: list[BarShape], spacing: float) -> str:
    """Return "ohlc" when more bars show an open and a close tick than a body of three rows or more, else "candle".

    Bars closer than MIN_OHLC_SPACING are called candles, the common case
    in screenshots of long daily charts.
    """
    if spacing < MIN_OHLC_SPACING:
        return "candle"
    # A line crossing an OHLC bar, or ticks at one row, look like a body of one or two rows.
    ohlc = sum(1 for s in shapes if s.open_tick is not None and s.close_tick is not None and s.body_height <= 2)
    candle = sum(1 for s in shapes if s.body_height >= 3)
    return "ohlc" if ohlc > candle else "candle"


def _two_groups(colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split colours into two groups by 2-means; returns each colour's group (0 or 1) and the group centres."""
    # Start from a split halfway along the main axis of the colours, between
    # its 5th and 95th percentiles, so that a few odd colours (a bar crossed
    # by a line) cannot pull a group's start aside.
    centred = colours - colours.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    projection = centred @ axis
    low, high = np.percentile(projection, [5, 95])
    groups = (projection > (low + high) / 2).astype(int)
    centres = np.array(
        [colours[groups == g].mean(axis=0) if np.any(groups == g) else colours.mean(axis=0) for g in (0, 1)]
    )
    for _ in range(10):
        groups = np.linalg.norm(colours[:, None, :] - centres[None, :, :], axis=2).argmin(axis=1)
        for group in (0, 1):
            if np.any(groups == group):
                centres[group] = colours[groups == group].mean(axis=0)
    return groups, centres


def _continuity_cost(shapes: list[BarShape], up: np.ndarray) -> float:
    """Sum of the distances between each close and the next bar's open, in rows."""
    cost = 0.0
    for (a, a_up), (b, b_up) in zip(zip(shapes, up), zip(shapes[1:], up[1:])):
        if b.index != a.index + 1 or a.body_top is None or b.body_top is None:
            continue
        close = a.body_top if a_up else a.body_bottom
        next_open = b.body_bottom if b_up else b.body_top
        cost += abs(close - next_open)
    return cost


def _hue_vote(colour: np.ndarray, background: np.ndarray) -> float:
    """Return +1 for a green or hollow colour, -1 for a red one, 0 otherwise."""
    if np.abs(colour - background).max() < HOLLOW_DISTANCE:
        return 1.0
    hue, _, saturation = colorsys.rgb_to_hls(*(colour / 255.0))
    if saturation < 0.25:
        return 0.0
    degrees = hue * 360
    if 70 <= degrees <= 180:
        return 1.0
    if degrees <= 20 or degrees >= 330:
        return -1.0
    return 0.0


def candle_directions(shapes: list[BarShape], background: tuple[int, int, int]) -> list[bool | None]:
    """Return True for an up candle, False for down, None when its colour is unknown."""
    known = [i for i, s in enumerate(shapes) if s.fill is not None]
    if len(known) < 2:
        return [None] * len(shapes)
    colours = np.array([shapes[i].fill for i in known], dtype=float)
    back = np.array(background, dtype=float)
    groups, centres = _two_groups(colours)

    up_if_zero = np.zeros(len(shapes), dtype=bool)
    up_if_zero[known] = groups == 0
    cost_zero_up = _continuity_cost(shapes, up_if_zero)
    up_if_one = np.zeros(len(shapes), dtype=bool)
    up_if_one[known] = groups == 1
    cost_one_up = _continuity_cost(shapes, up_if_one)

    hue_margin = _hue_vote(centres[0], back) - _hue_vote(centres[1], back)
    total = cost_zero_up + cost_one_up
    if total > 0 and abs(cost_zero_up - cost_one_up) / total >= 0.1:
        zero_is_up = cost_zero_up < cost_one_up
    elif hue_margin != 0:
        zero_is_up = hue_margin > 0
    else:
        zero_is_up = cost_zero_up <= cost_one_up

    result: list[bool | None] = [None] * len(shapes)
    for position, group in zip(known, groups):
        result[position] = bool(group == 0) == zero_is_up
    return result


def _candle_bar(shape: BarShape, up: bool | None) -> Bar:
    if shape.body_top is None or shape.body_bottom is None:
        middle = (shape.high + shape.low) / 2
        return Bar(x=float(shape.x), open=middle, high=float(shape.high), low=float(shape.low), close=middle)
    top, bottom = float(shape.body_top), float(shape.body_bottom - 1)
    if up is None:
        top = bottom = (top + bottom) / 2
    open_row, close_row = (bottom, top) if up else (top, bottom)
    return Bar(x=float(shape.x), open=open_row, high=float(shape.high), low=float(shape.low), close=close_row)


def _ohlc_bar(shape: BarShape) -> Bar:
    middle = (shape.high + shape.low) / 2
    open_row = shape.open_tick if shape.open_tick is not None else middle
    close_row = shape.close_tick if shape.close_tick is not None else open_row
    return Bar(x=float(shape.x), open=open_row, high=float(shape.high), low=float(shape.low), close=close_row)


def _word(up: bool | None) -> str:
    """Name a direction: None is flat."""
    if up is None:
        return "flat"
    return "up" if up else "down"


def to_bars(shapes: list[BarShape], chart_type: str, background: tuple[int, int, int]) -> tuple[list[Bar], list[str]]:
    """Convert measured shapes into bars whose open, high, low and close are pixel rows.

    Also returns each bar's direction ("up", "down" or "flat"). A candle's
    direction comes from its body colour, which still shows on a one-pixel
    body. An OHLC bar's direction comes from its ticks.
    """
    if chart_type == "ohlc":
        bars = [_ohlc_bar(shape) for shape in shapes]
        words = [_word(None if abs(b.close - b.open) < 0.5 else b.close < b.open) for b in bars]
        return bars, words
    directions = candle_directions(shapes, background)
    bars = [_candle_bar(shape, up) for shape, up in zip(shapes, directions)]
    return bars, [_word(up) for up in directions]
