"""The SQL names over ``portfolio_returns`` (``portfolio_equity``, ``performance``,
``performance_by_regime``) answer what :mod:`quant_assets.backtest.performance` computes, in a
connection and in an exported DuckDB file, and say clearly when there is nothing to answer from."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.backtest.performance import equity_curves, performance, performance_by_regime
from quant_assets.errors import LakehouseError
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.store import PartitionStore
from quant_assets_tests.backtest.test_performance import book_days
from quant_assets_tests.lakehouse.conftest import DAY, T1, write_book

FIRST = date(2024, 1, 1)
N_DAYS = 120
#: The four books, and one outside the contract that answers must list after them.
BOOKS = ("fixed_core_90", "core_only", "alpha", "equal_weight", "barbell")


#: Barbell's path: quiet days, a 30% gain to a high, 6 flat days there, a 20% loss, 6 flat days at
#: the low, a 50% gain past the high. Its flat days repeat a nav exactly; a product multiplied in
#: another order than date order puts some of them a rounding above or below the others.
BARBELL_JUMPS = {60: 0.3, 67: -0.2, 74: 0.5}
BARBELL_FLAT = [*range(61, 67), *range(68, 74)]


def _portfolio(seed: int = 0) -> pl.DataFrame:
    """Random books with flat days, first days that lose, books starting on different days and
    days without a regime, and barbell's path of :data:`BARBELL_JUMPS`."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, book in enumerate(BOOKS):
        n = N_DAYS - 7 * k
        net = rng.normal(0.0005, 0.02, n)
        net[rng.random(n) < 0.25] = 0.0
        net[0] = -abs(net[0]) - 0.001
        if book == "barbell":
            net = rng.normal(0.0005, 0.004, n)
            net[BARBELL_FLAT] = 0.0
            net[list(BARBELL_JUMPS)] = list(BARBELL_JUMPS.values())
        regimes = rng.choice(np.array(["QUIET", "NORMAL", "CRISIS", None], dtype=object), n).tolist()
        frames.append(book_days(book, net, first=FIRST + timedelta(days=7 * k), cost=(rng.random(n) * 1e-4).tolist(),
                                turnover=rng.random(n).tolist(), regimes=regimes))
    return pl.concat(frames)


@pytest.fixture
def lake(tmp_path) -> PartitionStore:
    store = PartitionStore(tmp_path / "lake")
    write_book(store, DAY, ["EX:A", "EX:B"], T1)  # a catalog: export needs one
    daily = _portfolio()
    for (day,), frame in daily.partition_by("date", as_dict=True).items():
        store.write("portfolio_returns", day, frame, recorded_at=T1)
    # A corrected day: only the live version counts.
    fixed = FIRST + timedelta(days=30)
    store.write("portfolio_returns", fixed, daily.filter(pl.col("date") == fixed).with_columns(
        net_return=pl.col("net_return") - 0.05), recorded_at=T1 + timedelta(days=40))
    return store


def _live(store: PartitionStore) -> pl.DataFrame:
    return pl.concat([store.read("portfolio_returns", day) for day in store.partitions("portfolio_returns")])


def _assert_same(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert got.height > 0 or expected.height == 0
    assert_frame_equal(got, expected, rel_tol=1e-12, abs_tol=1e-12)


RANGES = [
    ("NULL, NULL", None, None),
    ("", None, None),
    ("'2024-01-20', '2024-03-15'", date(2024, 1, 20), date(2024, 3, 15)),
    ("DATE '2024-02-01', NULL", date(2024, 2, 1), None),
    ("NULL, DATE '2024-02-10'", None, date(2024, 2, 10)),
    ("'2030-01-01', NULL", date(2030, 1, 1), None),
]


@pytest.mark.parametrize("args, start, end", RANGES)
def test_performance_macros_answer_as_the_python(lake, args, start, end):
    daily = _live(lake)
    with sql.connect(lake.root) as con:
        _assert_same(con.sql(f"SELECT * FROM performance({args})").pl(), performance(daily, start, end))
        _assert_same(con.sql(f"SELECT * FROM performance_by_regime({args})").pl(),
                     performance_by_regime(daily, start, end))


def test_performance_dates_break_ties_between_flat_days_as_the_python(lake):
    got = sql.query("SELECT * FROM performance()", lake.root)
    dates = ["max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery"]
    assert got.select("book", *dates).rows() == performance(_live(lake)).select("book", *dates).rows()
    barbell = got.row(0, named=True)
    first = FIRST + timedelta(days=7 * BOOKS.index("barbell"))
    # The last of the flat days at the high, the first of those at the low (on these returns a
    # window product, which multiplies in another order, puts the peak on day 62).
    assert barbell["book"] == "barbell"
    assert [barbell[d] for d in dates] == [first + timedelta(days=k) for k in (66, 67, 74)]
    assert got["book"].to_list() == ["barbell", "equal_weight", "core_only", "fixed_core_90", "alpha"]


def test_portfolio_equity_answers_as_the_python(lake):
    got = sql.query("SELECT * FROM portfolio_equity", lake.root).sort("book", "date")
    _assert_same(got, equity_curves(_live(lake)).sort("book", "date"))


def test_an_exported_file_answers_the_same(lake, tmp_path):
    path = sql.export(tmp_path / "lake.duckdb", lake.root)
    daily = _live(lake)
    with duckdb.connect(str(path), read_only=True) as con:
        for args, start, end in RANGES:
            _assert_same(con.sql(f"SELECT * FROM performance({args})").pl(), performance(daily, start, end))
            _assert_same(con.sql(f"SELECT * FROM performance_by_regime({args})").pl(),
                         performance_by_regime(daily, start, end))
        _assert_same(con.sql("SELECT * FROM portfolio_equity ORDER BY book, date").pl(),
                     equity_curves(daily).sort("book", "date"))


def test_without_portfolio_returns_the_names_say_so_like_any_missing_asset(tmp_path):
    store = PartitionStore(tmp_path / "lake")
    write_book(store, DAY, ["EX:A"], T1)
    why = f"the lakehouse at {store.root} holds no portfolio_returns partitions yet"
    for name, query in [("portfolio_returns", "SELECT * FROM portfolio_returns"),
                        ("performance", "SELECT * FROM performance(NULL, NULL)"),
                        ("performance_by_regime", "SELECT * FROM performance_by_regime('2024-01-01', NULL)"),
                        ("portfolio_equity", "SELECT * FROM portfolio_equity")]:
        with pytest.raises(LakehouseError) as raised:
            sql.query(query, store.root)
        assert str(raised.value) == f"{name}: {why}"
    assert sql.query("SELECT count(*) FROM regime", store.root).item() == 1


def test_a_foreign_portfolio_file_fails_the_performance_queries_naming_it(lake):
    day = FIRST + timedelta(days=3)
    path = lake.write("portfolio_returns", day, book_days("barbell", [0.01], first=day).drop("book"),
                      recorded_at=T1 + timedelta(days=50)).path
    with pytest.raises(LakehouseError, match=f"performance: .*{path}.* lacks date, book"):
        sql.query("SELECT * FROM performance()", lake.root)
    assert sql.query("SELECT count(*) FROM regime", lake.root).item() == 1
