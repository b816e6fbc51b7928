"""P&L, R multiples and journal statistics against values computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.journal.models import EntryStatus, JournalEntry, Side
from core.journal.stats import ALL_TIME, StatsPeriod, TagStats, TradeResult, compute_stats
from core.models import Platform

DAY1 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


def _entry(short_id: int, symbol: str, side: Side, entry: float, size: float, *, exit_price: float | None = None,
           stop: float | None = None, fees: float = 0.0, tags: tuple[str, ...] = (), day: int = 1) -> JournalEntry:
    opened = DAY1 + timedelta(days=day - 1, hours=-2)
    closed = DAY1 + timedelta(days=day - 1) if exit_price is not None else None
    return JournalEntry(
        id=f"e{short_id}", short_id=short_id, platform=Platform.TELEGRAM, user_id="7", symbol=symbol, side=side,
        entry_price=entry, size=size, exit_price=exit_price, stop_loss=stop, fees=fees, tags=tags,
        opened_at=opened, closed_at=closed, created_at=opened, updated_at=opened,
    )


# Six closed trades and one open one. P&L by hand, net of fees:
#   1  long  (42000 - 40000) x 0.5 - 10      =  990   risk (40000 - 39000) x 0.5 = 500  R =  1.98
#   2  short (3000 - 3150) x 2 - 4           = -304   risk (3100 - 3000) x 2 = 200      R = -1.52
#   3  long  (130 - 100) x 10                =  300   no stop                           R = none
#   4  short (45000 - 44000) x 0.2 - 2       =  198   risk 1000 x 0.2 = 200             R =  0.99
#   5  long  (2900 - 3000) x 1               = -100   risk 50 x 1 = 50                  R = -2
#   6  long  (0.5 - 0.5) x 1000              =    0   risk 0.05 x 1000 = 50             R =  0
TRADES = [
    _entry(1, "BTCUSDT", Side.LONG, 40000, 0.5, exit_price=42000, stop=39000, fees=10, tags=("breakout",), day=1),
    _entry(2, "ETHUSDT", Side.SHORT, 3000, 2, exit_price=3150, stop=3100, fees=4, tags=("breakout", "news"), day=2),
    _entry(3, "SOLUSDT", Side.LONG, 100, 10, exit_price=130, tags=("news",), day=3),
    _entry(4, "BTCUSDT", Side.SHORT, 45000, 0.2, exit_price=44000, stop=46000, fees=2, day=4),
    _entry(5, "ETHUSDT", Side.LONG, 3000, 1, exit_price=2900, stop=2950, tags=("news",), day=5),
    _entry(6, "XRPUSDT", Side.LONG, 0.5, 1000, exit_price=0.5, stop=0.45, day=6),
    _entry(7, "BTCUSDT", Side.LONG, 50000, 0.1, stop=49000, day=7),
]


def test_long_pnl_and_r_with_fees():
    entry = TRADES[0]
    assert entry.status is EntryStatus.CLOSED
    assert entry.pnl == 990
    assert entry.pnl_percent == pytest.approx(4.95)
    assert entry.risk == 500
    assert entry.r_multiple == pytest.approx(1.98)


def test_short_pnl_and_r_with_fees():
    entry = TRADES[1]
    assert entry.pnl == -304
    assert entry.pnl_percent == pytest.approx(-304 / 6000 * 100)
    assert entry.risk == 200
    assert entry.r_multiple == pytest.approx(-1.52)


def test_short_winner_pnl():
    entry = TRADES[3]
    assert entry.pnl == pytest.approx(198)
    assert entry.r_multiple == pytest.approx(0.99)


def test_r_needs_stop_loss():
    assert TRADES[2].pnl == 300
    assert TRADES[2].pnl_percent == pytest.approx(30)
    assert TRADES[2].r_multiple is None


def test_open_entry_has_no_pnl():
    entry = TRADES[6]
    assert entry.status is EntryStatus.OPEN
    assert entry.pnl is None
    assert entry.pnl_percent is None
    assert entry.r_multiple is None
    assert entry.risk == 100


def test_stats_all_time():
    stats = compute_stats(TRADES, period=ALL_TIME, now=NOW)
    assert stats.trades == 6
    assert stats.wins == 3
    assert stats.losses == 2
    assert stats.breakeven == 1
    assert stats.open_trades == 1
    assert stats.win_rate == pytest.approx(0.5)
    assert stats.total_pnl == pytest.approx(1084)
    assert stats.average_pnl == pytest.approx(1084 / 6)
    assert stats.gross_profit == pytest.approx(1488)
    assert stats.gross_loss == pytest.approx(404)
    assert stats.profit_factor == pytest.approx(1488 / 404)
    # 3/6 x 1488/3 - 2/6 x 404/2 = 248 - 67.33
    assert stats.expectancy == pytest.approx(248 - 404 / 6)
    # (1.98 - 1.52 + 0.99 - 2 + 0) / 5
    assert stats.average_r == pytest.approx(-0.11)
    assert stats.r_trades == 5
    assert stats.best == TradeResult(short_id=1, symbol="BTCUSDT", pnl=990)
    assert stats.worst == TradeResult(short_id=2, symbol="ETHUSDT", pnl=-304)


def test_stats_per_tag():
    stats = compute_stats(TRADES, now=NOW)
    assert stats.tags == (
        TagStats(tag="news", trades=3, wins=1, total_pnl=-104),
        TagStats(tag="breakout", trades=2, wins=1, total_pnl=686),
    )
    assert stats.tags[0].win_rate == pytest.approx(1 / 3)


def test_equity_curve_in_closing_order():
    stats = compute_stats(list(reversed(TRADES)), now=NOW)
    assert [round(point.equity, 6) for point in stats.equity_curve] == [990, 686, 986, 1184, 1084, 1084]
    assert [point.closed_at.day for point in stats.equity_curve] == [1, 2, 3, 4, 5, 6]


def test_stats_for_last_week():
    # From 2026-05-03 12:00: trades 3 to 6.
    stats = compute_stats(TRADES, period=StatsPeriod("the last 7 days", 7), now=NOW)
    assert stats.trades == 4
    assert stats.total_pnl == pytest.approx(398)
    assert stats.wins == 2
    assert stats.losses == 1
    assert stats.profit_factor == pytest.approx(4.98)
    assert stats.best == TradeResult(short_id=3, symbol="SOLUSDT", pnl=300)
    assert stats.worst == TradeResult(short_id=5, symbol="ETHUSDT", pnl=-100)


def test_stats_without_losses_or_trades():
    winners = compute_stats(TRADES[:1], now=NOW)
    assert winners.profit_factor is None
    assert winners.win_rate == 1
    empty = compute_stats(TRADES[6:], now=NOW)
    assert empty.trades == 0
    assert empty.open_trades == 1
    assert empty.win_rate is None
    assert empty.average_pnl is None
    assert empty.expectancy is None
    assert empty.average_r is None
    assert empty.best is None
    assert empty.equity_curve == ()
