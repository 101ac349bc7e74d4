"""The performance statistics agree with empyrical (a well-kept reference) on random and
hand-made series, and by hand on what empyrical does not compute: the drawdown's dates, the
hit rate, turnover, cost drag, the regime split, nulls for degenerate series and the errors."""

from __future__ import annotations

import math
from datetime import date, timedelta

import empyrical
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.backtest.performance import (
    PERIODS_PER_YEAR,
    STATISTICS_SCHEMA,
    equity_curves,
    performance,
    performance_by_regime,
)
from quant_assets.errors import ValidationError
from quant_assets.lakehouse.contracts import CONTRACTS

DAY = date(2024, 3, 1)
YEAR = PERIODS_PER_YEAR


def book_days(book: str, net: list[float] | np.ndarray, *, first: date = DAY, cost: list[float] | None = None,
              turnover: list[float] | None = None, regimes: list[str | None] | None = None) -> pl.DataFrame:
    """``portfolio_returns`` rows of one book on consecutive days from ``first``, keeping the contract."""
    n = len(net)
    cost = [0.0] * n if cost is None else cost
    days = [first + timedelta(days=k) for k in range(n)]
    return pl.DataFrame({
        "date": days, "book": [book] * n, "decided_on": [d - timedelta(days=1) for d in days],
        "regime": ["NORMAL"] * n if regimes is None else regimes, "n_legs": [3] * n, "gross_exposure": [1.0] * n,
        "gross_return": [float(r) + c for r, c in zip(net, cost, strict=True)],
        "turnover": [0.1] * n if turnover is None else turnover, "cost": cost,
        "net_return": [float(r) for r in net], "rebalanced": [True] * n, "legs": [[]] * n,
    }, schema=CONTRACTS["portfolio_returns"].columns)


def _one(frame: pl.DataFrame) -> dict[str, object]:
    assert frame.height == 1
    return frame.row(0, named=True)


def _assert_no_nan_or_inf(frame: pl.DataFrame) -> None:
    floats = [c for c, t in frame.schema.items() if t == pl.Float64]
    assert not frame.select(pl.any_horizontal(pl.col(floats).is_nan() | pl.col(floats).is_infinite()).any()).item()


def _series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    flat = rng.normal(0.0005, 0.02, 400)
    flat[rng.random(400) < 0.3] = 0.0  # flat days: a book in cash
    return {
        "random": rng.normal(0.0008, 0.025, 500),
        "random_with_flat_days": flat,
        "fat_tails": rng.standard_t(3, 1000) * 0.01,
        "first_day_loss": np.array([-0.05, 0.02, 0.01, -0.03, 0.04, 0.02, -0.01]),
        "first_day_gain": np.array([0.03, -0.02, -0.01, 0.05, -0.04, 0.01]),
        "losing": np.array([-0.01, -0.02, 0.005, -0.03, 0.001, -0.002]),
    }


@pytest.mark.parametrize("name", list(_series()))
def test_performance_statistics_match_empyrical(name):
    net = _series()[name]
    cost = np.linspace(0.0, 0.001, net.size)
    got = _one(performance(book_days("barbell", net, cost=cost.tolist())))
    # empyrical's max_drawdown starts from the first day's nav, ignoring the starting capital;
    # ours counts the capital as a peak, so compare it on the series behind one flat day.
    from_capital = np.r_[0.0, net]
    approx = {"rel": 1e-10, "abs": 1e-14}
    assert got["days"] == net.size
    assert got["cumulative_return"] == pytest.approx(empyrical.cum_returns_final(net), **approx)
    assert got["annual_return"] == pytest.approx(empyrical.annual_return(net, annualization=YEAR), **approx)
    assert got["annual_volatility"] == pytest.approx(empyrical.annual_volatility(net, annualization=YEAR), **approx)
    assert got["sharpe"] == pytest.approx(empyrical.sharpe_ratio(net, annualization=YEAR), **approx)
    assert got["sortino"] == pytest.approx(empyrical.sortino_ratio(net, annualization=YEAR), **approx)
    assert got["max_drawdown"] == pytest.approx(empyrical.max_drawdown(from_capital), **approx)
    # empyrical's calmar_ratio is its annual return over its |max drawdown|: built from the parts
    # (the drawdown from the capital), and equal to calmar_ratio itself when day 1 gains.
    calmar = empyrical.annual_return(net, annualization=YEAR) / abs(empyrical.max_drawdown(from_capital))
    assert got["calmar"] == pytest.approx(calmar, **approx)
    if net[0] >= 0:
        assert got["calmar"] == pytest.approx(empyrical.calmar_ratio(net, annualization=YEAR), **approx)
    drag = empyrical.annual_return(net + cost, annualization=YEAR) - empyrical.annual_return(net, annualization=YEAR)
    assert got["cost_drag"] == pytest.approx(drag, **approx)


@pytest.mark.parametrize("net, peak, trough, recovery", [
    # The flat day after the high is the last day at the mark; the flat day after the low repeats it.
    ([0.10, 0.0, -0.20, 0.0, 0.05, 0.20, -0.01], 1, 2, 5),
    # A loss on the first day: the peak is the starting capital, the day before the first.
    ([-0.10, 0.05, 0.06], -1, 0, 2),
    ([0.05, -0.10, 0.01, 0.02], 0, 1, None),
    # A first drawdown recovers, a deeper one later does not.
    ([-0.10, 0.20, -0.30, 0.10], 1, 2, None),
])
def test_performance_dates_the_worst_drawdown(net, peak, trough, recovery):
    got = _one(performance(book_days("barbell", net)))
    nav = np.cumprod(1.0 + np.array(net))
    high = np.maximum.accumulate(np.maximum(nav, 1.0))
    assert got["max_drawdown"] == pytest.approx(float(np.min(nav / high)) - 1.0, rel=1e-15)
    assert got["max_drawdown_peak"] == DAY + timedelta(days=peak)
    assert got["max_drawdown_trough"] == DAY + timedelta(days=trough)
    assert got["max_drawdown_recovery"] == (None if recovery is None else DAY + timedelta(days=recovery))


def test_performance_hit_rate_turnover_and_cost_drag_by_hand():
    net = [0.01, 0.0, -0.02, 0.03, 0.0]
    cost = [0.001, 0.0, 0.002, 0.0, 0.0]
    got = _one(performance(book_days("barbell", net, cost=cost, turnover=[0.2, 0.0, 0.4, 0.1, 0.0])))
    assert got["hit_rate"] == pytest.approx(2 / 3)  # two gains of three days that moved
    assert got["annual_turnover"] == pytest.approx(0.14 * 365)
    gross = math.prod(1 + r + c for r, c in zip(net, cost, strict=True)) ** (365 / 5) - 1
    assert got["cost_drag"] == pytest.approx(gross - (math.prod(1 + r for r in net) ** (365 / 5) - 1), rel=1e-12)
    assert got["cost_drag"] > 0


@pytest.mark.parametrize("net, expected", [
    ([0.01], {"annual_volatility": None, "sharpe": None, "sortino": None, "hit_rate": 1.0}),
    ([0.001] * 10, {"annual_volatility": 0.0, "sharpe": None, "sortino": None, "hit_rate": 1.0}),
    ([0.0] * 5, {"annual_volatility": 0.0, "sharpe": None, "sortino": None, "hit_rate": None, "annual_return": 0.0}),
    ([0.01, 0.03, 0.02], {"sortino": None, "max_drawdown": 0.0, "calmar": None, "max_drawdown_trough": None}),
])
def test_performance_undefined_statistics_are_null(net, expected):
    got = performance(book_days("barbell", net))
    _assert_no_nan_or_inf(got)
    row = _one(got)
    assert {k: row[k] for k in expected} == expected
    if all(r >= 0 for r in net):  # no drawdown: no dates, no Calmar
        assert row["max_drawdown"] == 0.0
        assert (row["max_drawdown_peak"], row["max_drawdown_trough"], row["max_drawdown_recovery"], row["calmar"]) \
            == (None, None, None, None)


def test_performance_of_a_steady_loser_has_sortino_but_no_sharpe():
    row = _one(performance(book_days("barbell", [-0.01] * 4)))
    assert row["sharpe"] is None and row["annual_volatility"] == 0.0
    assert row["sortino"] == pytest.approx(-math.sqrt(365))
    assert row["max_drawdown"] == pytest.approx(0.99**4 - 1)
    assert (row["max_drawdown_peak"], row["max_drawdown_trough"]) == (DAY - timedelta(days=1), DAY + timedelta(days=3))


def test_performance_of_a_nav_below_zero_has_no_annual_return():
    got = performance(book_days("barbell", [0.5, -2.5, 0.1]))
    _assert_no_nan_or_inf(got)
    row = _one(got)
    assert row["cumulative_return"] == pytest.approx(1.5 * -1.5 * 1.1 - 1)
    assert (row["annual_return"], row["calmar"], row["cost_drag"]) == (None, None, None)
    assert row["max_drawdown"] == pytest.approx(1.5 * -1.5 * 1.1 / 1.5 - 1)  # below nothing: less than -100%


def test_performance_orders_books_and_counts_each_over_its_own_days():
    books = ["zeta", "fixed_core_90", "alpha", "core_only", "equal_weight", "barbell"]
    daily = pl.concat([book_days(b, [0.01 * (k + 1), -0.005], first=DAY + timedelta(days=k))
                       for k, b in enumerate(books)])
    got = performance(daily.sample(fraction=1.0, shuffle=True, seed=1))
    assert got["book"].to_list() == ["barbell", "equal_weight", "core_only", "fixed_core_90", "alpha", "zeta"]
    assert got.schema == pl.Schema({"book": pl.String(), **STATISTICS_SCHEMA})
    zeta = got.row(5, named=True)
    assert (zeta["start"], zeta["end"], zeta["days"]) == (DAY, DAY + timedelta(days=1), 2)
    assert zeta["cumulative_return"] == pytest.approx(1.01 * 0.995 - 1)


def test_performance_counts_only_the_days_in_range():
    daily = book_days("barbell", [-0.05, 0.02, -0.01, 0.03, 0.04])
    got = performance(daily, start=DAY + timedelta(days=1), end=DAY + timedelta(days=3))
    assert_frame_equal(got, performance(daily.slice(1, 3)))
    row = _one(got)
    assert (row["start"], row["days"]) == (DAY + timedelta(days=1), 3)
    assert row["max_drawdown_peak"] == DAY + timedelta(days=1)  # the nav restarts from 1 on the first day counted
    empty = performance(daily, start=DAY + timedelta(days=30))
    assert empty.height == 0 and empty.schema == got.schema
    assert performance(daily.head(0)).schema == got.schema


def test_performance_by_regime_counts_each_regime_over_its_own_days():
    regimes = ["QUIET", "CRISIS", "QUIET", None, "NORMAL", "CRISIS", "QUIET", "OTHER"]
    net = [0.02, -0.04, -0.01, 0.5, 0.01, 0.03, 0.015, 0.0]
    daily = pl.concat([book_days("core_only", [0.01, -0.01], regimes=["NORMAL", "NORMAL"]),
                       book_days("barbell", net, regimes=regimes)])
    got = performance_by_regime(daily)
    assert got.select("book", "regime").rows() == [
        ("barbell", "QUIET"), ("barbell", "NORMAL"), ("barbell", "CRISIS"), ("barbell", "OTHER"),
        ("core_only", "NORMAL")]
    for row in got.iter_rows(named=True):
        alone = daily.filter((pl.col("book") == row["book"]) & (pl.col("regime") == row["regime"]))
        assert_frame_equal(got.filter(pl.col("book") == row["book"], pl.col("regime") == row["regime"]).drop("regime"),
                           performance(alone))
    quiet = got.row(0, named=True)
    assert quiet["cumulative_return"] == pytest.approx(1.02 * 0.99 * 1.015 - 1)  # the 50% day has no regime
    assert quiet["days"] == 3 and got["days"].sum() == 7 + 2
    crisis = got.row(2, named=True)
    assert crisis["max_drawdown_peak"] == DAY  # the day before CRISIS's first day, which lost
    assert crisis["max_drawdown_trough"] == DAY + timedelta(days=1)
    assert crisis["max_drawdown_recovery"] is None  # 0.96 * 1.03 < 1
    assert performance_by_regime(daily.head(0)).columns == ["book", "regime", *STATISTICS_SCHEMA]


def test_equity_curves_compound_from_the_starting_capital():
    daily = pl.concat([book_days("core_only", [0.01, 0.02]), book_days("barbell", [-0.1, 0.2, -0.05])])
    got = equity_curves(daily)
    assert got.columns == ["date", "book", "regime", "net_return", "nav", "drawdown", "rolling_sharpe"]
    assert got["book"].to_list() == ["barbell"] * 3 + ["core_only"] * 2
    np.testing.assert_allclose(got["nav"].to_numpy(), [0.9, 1.08, 1.026, 1.01, 1.0302], rtol=1e-15)
    np.testing.assert_allclose(got["drawdown"].to_numpy(), [-0.1, 0.0, 1.026 / 1.08 - 1, 0.0, 0.0], atol=1e-15)


def test_performance_names_missing_columns():
    daily = book_days("barbell", [0.01, 0.02])
    with pytest.raises(ValidationError, match=r"lack columns \['turnover'\]"):
        performance(daily.drop("turnover"))
    performance(daily.drop("regime"))  # only the regime split needs it
    with pytest.raises(ValidationError, match=r"lack columns \['regime'\]"):
        performance_by_regime(daily.drop("regime"))


def test_performance_names_the_book_and_day_given_twice():
    daily = pl.concat([book_days("core_only", [0.01] * 3), book_days("barbell", [0.01] * 3),
                       book_days("barbell", [0.02], first=DAY + timedelta(days=1))])
    with pytest.raises(ValidationError, match=f"several rows for book 'barbell' on {DAY + timedelta(days=1)}"):
        performance(daily)
    with pytest.raises(ValidationError, match="several rows for book 'barbell'"):
        equity_curves(daily)


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf")])
def test_performance_names_the_book_and_day_of_a_return_that_is_not_a_number(bad):
    daily = book_days("equal_weight", [0.01, 0.02, 0.03]).with_columns(
        net_return=pl.when(pl.col("date") == DAY + timedelta(days=2)).then(bad).otherwise(pl.col("net_return")))
    with pytest.raises(ValidationError, match=rf"book 'equal_weight' on {DAY + timedelta(days=2)}: \['net_return'\]"):
        performance(daily)


def test_performance_names_columns_of_the_wrong_type():
    daily = book_days("barbell", [0.01]).with_columns(pl.col("net_return").cast(pl.String))
    with pytest.raises(ValidationError, match=r"wrong type \{'net_return': 'String'\}"):
        performance(daily)


def _reference_sharpe(returns: np.ndarray, window: int) -> list[float | None]:
    """The rolling Sharpe ratio by hand: numpy over each window."""
    out: list[float | None] = [None] * (window - 1)
    for end in range(window, returns.size + 1):
        w = returns[end - window:end]
        out.append(float(np.mean(w) / np.std(w, ddof=1) * math.sqrt(YEAR)))
    return out


def test_equity_curves_rolling_sharpe_matches_numpy_per_book():
    rng = np.random.default_rng(5)
    daily = pl.concat([book_days("barbell", rng.normal(0.0005, 0.01, 100)),
                       book_days("core_only", rng.normal(0.0, 0.02, 90))])
    got = equity_curves(daily.sample(fraction=1.0, shuffle=True, seed=3))
    assert got.columns == ["date", "book", "regime", "net_return", "nav", "drawdown", "rolling_sharpe"]
    for book in ("barbell", "core_only"):
        returns = daily.filter(pl.col("book") == book).sort("date")["net_return"].to_numpy()
        sharpe = got.filter(pl.col("book") == book)["rolling_sharpe"].to_list()
        assert sharpe[:62] == [None] * 62  # fewer than 63 days
        assert sharpe[62:] == pytest.approx(_reference_sharpe(returns, 63)[62:], rel=1e-9)


def test_equity_curves_leave_the_sharpe_null_when_the_window_has_no_volatility():
    got = equity_curves(book_days("barbell", [0.001] * 63 + [0.002]))["rolling_sharpe"].to_list()
    assert got[:63] == [None] * 63  # 62 days too short, then one flat window
    assert got[63] == pytest.approx(_reference_sharpe(np.array([0.001] * 62 + [0.002]), 63)[-1], rel=1e-9)
