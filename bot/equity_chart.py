"""The equity-curve image of /journal stats, drawn with matplotlib's Agg canvas.

It uses a Figure with its own FigureCanvasAgg rather than pyplot, so no
global figure state is shared and it can run in a worker thread
(asyncio.to_thread) while the event loop keeps serving other chats.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.journal.stats import EquityPoint

WIDTH_INCHES = 8
HEIGHT_INCHES = 4.5
DPI = 100


def render_equity_curve(points: Sequence[EquityPoint], *, title: str) -> bytes:
    """Draw cumulative P&L after each closed trade, starting from 0, and return it as a PNG."""
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    trade_numbers = list(range(len(points) + 1))
    equity = [0.0] + [point.equity for point in points]
    axes.plot(trade_numbers, equity, color="#1f77b4", marker="o", markersize=3, linewidth=1.5)
    axes.fill_between(trade_numbers, equity, 0, where=[value >= 0 for value in equity], color="#2ca02c",
                      alpha=0.15, interpolate=True)
    axes.fill_between(trade_numbers, equity, 0, where=[value < 0 for value in equity], color="#d62728",
                      alpha=0.15, interpolate=True)
    axes.axhline(0, color="#555555", linewidth=0.8)
    axes.set_title(title)
    axes.set_xlabel("Closed trades, oldest first")
    axes.set_ylabel("Cumulative P&L (quote currency)")
    axes.grid(True, alpha=0.3)
    axes.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
