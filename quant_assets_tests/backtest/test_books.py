"""The backtest's accounting, checked against numbers worked out by hand: three instruments over
five days, a SHORT leg, a day without a new decision (the book drifts), a rebalance out of the
SHORT, a day one market is closed, and costs with a tick-size floor."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.books import (
    DailyReturns,
    Decision,
    book_day,
    decision_days,
    drift,
    ledger_problems,
    target_books,
)
from quant_assets.backtest.costs import CostSettings
from quant_assets.errors import ValidationError
from quant_assets.risk.returns import PriceMatrix

D0 = date(2024, 1, 1)
DAYS = [D0 + timedelta(days=k) for k in range(5)]
A, B, C = "EX:A", "EX:B", "NYSE:C"
# Closes; C (a stock) has no bar on DAYS[3], a holiday: its return there is 0.
CLOSES = {
    A: [100.0, 110.0, 99.0, 108.9, 108.9],  # returns +10 %, -10 %, +10 %, 0
    B: [50.0, 55.0, 44.0, 44.0, 48.4],      # +10 %, -20 %, 0, +10 %
    C: [20.0, 21.0, 21.0, None, 22.05],     # +5 %, 0, closed, +5 % (over two days)
}
INSTRUMENTS = {A: ("crypto", 0.01), B: ("crypto", 0.5), C: ("stock", 0.01)}


def _market() -> DailyReturns:
    rows = [(d, s, c) for s, closes in CLOSES.items() for d, c in zip(DAYS, closes) if c is not None]
    return DailyReturns(PriceMatrix.from_bars(pl.DataFrame(rows, schema=["date", "symbol", "close"], orient="row")))


def _decision(day: date, book: dict[str, float]) -> Decision:
    return Decision(day, "NORMAL", {"barbell": book, "equal_weight": {}, "core_only": {}, "fixed_core_90": {}},
                    INSTRUMENTS)


FIRST = _decision(DAYS[0], {A: 0.5, B: -0.3, C: 0.2})  # B is a SHORT leg
SECOND = _decision(DAYS[2], {A: 0.6, C: 0.4})  # out of the SHORT


def _barbell(day: date, held: Decision, before: Decision | None) -> tuple[dict, pl.DataFrame]:
    books = book_day(day, held, before, _market(), CostSettings())
    assert ledger_problems(books) == {day: []}
    cash = books.filter(pl.col("book") != "barbell")  # the other books hold nothing: they earn nothing
    assert (cash["net_return"] == 0.0).all() and (cash["n_legs"] == 0).all()
    return (books.filter(pl.col("book") == "barbell").row(0, named=True),
            books.filter(pl.col("book") == "barbell").select("legs").explode("legs").unnest("legs").sort("symbol"))


def test_first_day_buys_the_book_and_pays_for_it():
    row, legs = _barbell(DAYS[1], FIRST, None)
    # Crypto: 10 bps commission + max(2 bps, half a tick / price): A's half tick is 0.5 bps of
    # its price (2 bps wins), B's 0.25 / 50 = 50 bps. Stock C: 1 bps + max(2 bps, 0.005 / 20 = 2.5 bps).
    cost = 0.5 * (0.0010 + 0.0002) + 0.3 * (0.0010 + 0.0050) + 0.2 * (0.0001 + 0.00025)
    gross = 0.5 * 0.10 - 0.3 * 0.10 + 0.2 * 0.05  # the SHORT leg loses when B rises
    assert row["rebalanced"] and row["decided_on"] == DAYS[0]
    assert row["turnover"] == pytest.approx(1.0, abs=1e-15)
    assert row["cost"] == pytest.approx(0.00247, abs=1e-15) == pytest.approx(cost, abs=1e-15)
    assert row["gross_return"] == pytest.approx(0.03, abs=1e-15)
    assert row["net_return"] == pytest.approx((1 - 0.00247) * 1.03 - 1, abs=1e-15)
    assert row["gross_exposure"] == pytest.approx(1.0) and row["n_legs"] == 3
    short = legs.filter(pl.col("symbol") == B).row(0, named=True)
    assert short["direction"] == "SHORT" and short["contribution"] == pytest.approx(-0.03)
    assert short["trade"] == pytest.approx(-0.3)
    assert legs["weight"].to_list() == pytest.approx([0.5, 0.3, 0.2])  # sorted by symbol: A, B, C
    assert row["gross_return"] == pytest.approx(gross)


def test_without_a_new_decision_the_book_drifts_and_trades_nothing():
    row, legs = _barbell(DAYS[2], FIRST, None)  # no barbell partition on DAYS[1]
    # After DAYS[1]: exposures (0.55, -0.33, 0.21) / 1.03.
    assert not row["rebalanced"] and row["turnover"] == 0.0 and row["cost"] == 0.0
    assert legs["weight"].to_list() == pytest.approx([0.55 / 1.03, 0.33 / 1.03, 0.21 / 1.03], abs=1e-15)
    assert row["gross_return"] == pytest.approx((0.55 * -0.10 + -0.33 * -0.20) / 1.03, abs=1e-15)
    assert row["net_return"] == row["gross_return"]
    assert row["gross_exposure"] == pytest.approx(1.09 / 1.03)  # the SHORT grew less than it fell


def test_rebalance_trades_from_the_drifted_book_and_a_closed_market_earns_nothing():
    row, legs = _barbell(DAYS[3], SECOND, FIRST)
    # The first book after DAYS[1] and DAYS[2]: (0.495, -0.264, 0.21) / 1.041.
    drifted = np.array([0.495, -0.264, 0.21]) / 1.041
    trade = np.array([0.6, 0.0, 0.4]) - drifted
    assert row["rebalanced"] and row["decided_on"] == DAYS[2]
    assert row["turnover"] == pytest.approx(1.0 - 0.441 / 1.041, abs=1e-15)
    # Traded at DAYS[2]'s closes: the half ticks of B (0.25 / 44) and C (0.005 / 21) beat the spreads.
    unit = np.array([0.0012, 0.0010 + 0.25 / 44.0, 0.0001 + 0.005 / 21.0])
    assert row["cost"] == pytest.approx(float(np.abs(trade) @ unit), abs=1e-15)
    # A +10 %; C's market is closed: 0.
    assert row["gross_return"] == pytest.approx(0.06, abs=1e-15)
    assert row["net_return"] == pytest.approx((1 - row["cost"]) * 1.06 - 1, abs=1e-15)
    sold = legs.filter(pl.col("symbol") == B).row(0, named=True)  # bought back in full
    assert sold["weight"] == 0.0 and sold["trade"] == pytest.approx(0.264 / 1.041) and sold["direction"] == "SHORT"
    closed = legs.filter(pl.col("symbol") == C).row(0, named=True)
    assert closed["asset_return"] == 0.0 and closed["contribution"] == 0.0


def test_the_next_session_carries_the_move_over_the_closed_day():
    row, legs = _barbell(DAYS[4], SECOND, FIRST)
    # After DAYS[3]: (0.66, 0.4) / 1.06; C returns 22.05 / 21 - 1 = 5 % over two days.
    assert not row["rebalanced"] and row["cost"] == 0.0
    assert legs["weight"].to_list() == pytest.approx([0.66 / 1.06, 0.4 / 1.06], abs=1e-15)
    assert row["gross_return"] == pytest.approx(0.4 / 1.06 * 0.05, abs=1e-15)


def test_benchmarks_of_a_decision():
    weights = pl.DataFrame({
        "symbol": [A, C, B, "EX:D"], "direction": ["LONG", "LONG", "SHORT", "LONG"],
        "sleeve": ["core", "core", "aggressor", "core"], "weight": [0.5, 0.3, 0.2, 0.0],
    })
    legs = pl.DataFrame({"symbol": [A, B, C], "direction": ["LONG", "SHORT", "LONG"]})
    books = target_books(weights, legs, full_sleeve=0.2)
    assert books["barbell"] == pytest.approx({A: 0.5, B: -0.2, C: 0.3})  # the zero-weight core name is not held
    assert books["core_only"] == pytest.approx({A: 0.625, C: 0.375})
    assert books["fixed_core_90"] == pytest.approx({A: 0.5625, B: -0.1, C: 0.3375})
    assert books["equal_weight"] == pytest.approx({A: 1 / 3, B: -1 / 3, C: 1 / 3})  # one leg per symbol
    assert target_books(weights.clear(), legs.clear(), full_sleeve=0.2) == {book: {} for book in books}
    # An aggressor sleeve half filled (0.2 of a full 0.4) keeps half of the fixed 10 %.
    half = target_books(weights, legs, full_sleeve=0.4)["fixed_core_90"]
    assert half == pytest.approx({A: 0.59375, B: -0.05, C: 0.35625})
    # No sleeve in the regime (a core share of 1): the fixed book is the core.
    assert target_books(weights, legs, full_sleeve=0.0)["fixed_core_90"] == books["barbell"]


def test_the_ledger_check_finds_legs_that_do_not_add_up():
    books = book_day(DAYS[3], SECOND, FIRST, _market(), CostSettings())
    broken = books.with_columns(pl.when(pl.col("book") == "barbell").then(pl.col("cost") * 2)
                                .otherwise(pl.col("cost")).alias("cost"))
    assert [p.split(":")[0] for p in ledger_problems(broken)[DAYS[3]]] == ["barbell"]
    assert "books ['barbell'], expected" in ledger_problems(books.head(1))[DAYS[3]][0]


def test_no_return_is_read_after_the_day():
    # Any close after the day changes nothing the day earns.
    before = book_day(DAYS[3], SECOND, FIRST, _market(), CostSettings())
    later = {s: c[:4] + [c[4] * 3 if c[4] else None] for s, c in CLOSES.items()}
    rows = [(d, s, c) for s, closes in later.items() for d, c in zip(DAYS, closes) if c is not None]
    market = DailyReturns(PriceMatrix.from_bars(pl.DataFrame(rows, schema=["date", "symbol", "close"], orient="row")))
    assert book_day(DAYS[3], SECOND, FIRST, market, CostSettings()).equals(before)


def test_schedule_and_errors():
    assert decision_days([DAYS[0], DAYS[2]], [DAYS[0], DAYS[1], DAYS[3]]) == {
        DAYS[0]: (None, None), DAYS[1]: (DAYS[0], None), DAYS[3]: (DAYS[2], DAYS[0])}
    with pytest.raises(ValidationError, match="decisions must precede"):
        book_day(DAYS[2], SECOND, FIRST, _market(), CostSettings())
    with pytest.raises(ValidationError, match="lost all its value"):
        drift(np.array([-1.0]), np.array([[1.5]]), "short squeeze")
