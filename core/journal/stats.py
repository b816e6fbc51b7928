"""Statistics of a trader's closed trades: win rate, P&L, profit factor, expectancy, R and the equity curve."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.journal.models import EntryStatus, JournalEntry


@dataclass(frozen=True)
class StatsPeriod:
    """The closing times a statistics request covers: the last `days` days, or all time when `days` is None."""

    label: str
    days: int | None = None

    def start(self, now: datetime) -> datetime | None:
        """Return the earliest closing time counted, or None for all time."""
        return None if self.days is None else now - timedelta(days=self.days)


ALL_TIME = StatsPeriod("all time")


@dataclass(frozen=True)
class TradeResult:
    """One closed trade as the statistics cite it."""

    short_id: int
    symbol: str
    pnl: float


@dataclass(frozen=True)
class TagStats:
    """The closed trades carrying one tag."""

    tag: str
    trades: int
    wins: int
    total_pnl: float

    @property
    def win_rate(self) -> float:
        """Return the share of winning trades, from 0 to 1."""
        return self.wins / self.trades


@dataclass(frozen=True)
class EquityPoint:
    """Cumulative net P&L after the trade closed at `closed_at`."""

    closed_at: datetime
    equity: float


@dataclass(frozen=True)
class JournalStats:
    """Statistics of the closed trades in a period; P&L values are net of fees, in quote currency.

    A trade with a P&L of exactly zero counts as breakeven: neither a win
    nor a loss, but it is in `trades` and so lowers the win rate.
    """

    period: StatsPeriod
    trades: int
    wins: int
    losses: int
    breakeven: int
    open_trades: int
    total_pnl: float
    gross_profit: float
    gross_loss: float
    best: TradeResult | None
    worst: TradeResult | None
    average_r: float | None
    r_trades: int
    tags: tuple[TagStats, ...]
    equity_curve: tuple[EquityPoint, ...]

    @property
    def win_rate(self) -> float | None:
        """Return wins over closed trades, from 0 to 1, or None without trades."""
        return self.wins / self.trades if self.trades else None

    @property
    def average_pnl(self) -> float | None:
        """Return the mean net P&L per closed trade."""
        return self.total_pnl / self.trades if self.trades else None

    @property
    def profit_factor(self) -> float | None:
        """Return gross profit over gross loss, or None when there is no losing trade to divide by."""
        return self.gross_profit / self.gross_loss if self.gross_loss else None

    @property
    def expectancy(self) -> float | None:
        """Return win rate times average win minus loss rate times average loss, per trade.

        With every trade counted this equals the average P&L; it is reported
        under the name traders look for.
        """
        if not self.trades:
            return None
        average_win = self.gross_profit / self.wins if self.wins else 0.0
        average_loss = self.gross_loss / self.losses if self.losses else 0.0
        return (self.wins / self.trades) * average_win - (self.losses / self.trades) * average_loss


def _in_period(entry: JournalEntry, start: datetime | None) -> bool:
    return entry.closed_at is not None and (start is None or entry.closed_at >= start)


def _tag_stats(closed: Sequence[JournalEntry]) -> tuple[TagStats, ...]:
    counts: dict[str, list[float]] = {}
    for entry in closed:
        for tag in entry.tags:
            counts.setdefault(tag, []).append(entry.pnl or 0.0)
    rows = [
        TagStats(tag=tag, trades=len(pnls), wins=sum(1 for pnl in pnls if pnl > 0), total_pnl=sum(pnls))
        for tag, pnls in counts.items()
    ]
    rows.sort(key=lambda row: (-row.trades, row.tag))
    return tuple(rows)


def _equity_curve(closed: Sequence[JournalEntry]) -> tuple[EquityPoint, ...]:
    points = []
    equity = 0.0
    for entry in sorted(closed, key=lambda e: (e.closed_at, e.short_id)):
        equity += entry.pnl or 0.0
        points.append(EquityPoint(closed_at=entry.closed_at, equity=equity))
    return tuple(points)


def compute_stats(entries: Iterable[JournalEntry], *, period: StatsPeriod = ALL_TIME,
                  now: datetime) -> JournalStats:
    """Compute the statistics of the entries closed in `period`; open entries are only counted.

    `now` is the end of the period, timezone-aware UTC.
    """
    # NOTE: P&L of different symbols is added as if all shared one quote currency. A journal
    # that mixes BTCUSDT with EURJPY gets a meaningless total until amounts are converted.
    entries = list(entries)
    start = period.start(now)
    closed = [e for e in entries if e.status is EntryStatus.CLOSED and _in_period(e, start)]
    open_trades = sum(1 for e in entries if e.status is EntryStatus.OPEN)

    pnls = [e.pnl for e in closed]
    r_multiples = [e.r_multiple for e in closed if e.r_multiple is not None]
    results = [TradeResult(short_id=e.short_id, symbol=e.symbol, pnl=e.pnl) for e in closed]
    # Ties go to the earlier entry, so best and worst do not depend on the storage order.
    best = max(results, key=lambda r: (r.pnl, -r.short_id), default=None)
    worst = min(results, key=lambda r: (r.pnl, r.short_id), default=None)

    return JournalStats(
        period=period,
        trades=len(closed),
        wins=sum(1 for pnl in pnls if pnl > 0),
        losses=sum(1 for pnl in pnls if pnl < 0),
        breakeven=sum(1 for pnl in pnls if pnl == 0),
        open_trades=open_trades,
        total_pnl=sum(pnls),
        gross_profit=sum(pnl for pnl in pnls if pnl > 0),
        gross_loss=-sum(pnl for pnl in pnls if pnl < 0),
        best=best,
        worst=worst,
        average_r=sum(r_multiples) / len(r_multiples) if r_multiples else None,
        r_trades=len(r_multiples),
        tags=_tag_stats(closed),
        equity_curve=_equity_curve(closed),
    )
