"""What the book earned over five years: the backtest's single-run backfill and its SQL.

The seven workflow assets are materialised first for every day from the first partition
(2022-01-01) to 2026-11-29 on the default synthetic market (1,200 instruments, seed 7, the four
shipped configs), in one run (not timed against a target). Then:

* the backtest's asset (``portfolio_returns``) over the same 1,794
  partitions in one single-run backfill, in a process of its own as a run launched from the UI:
  target <= 30 s;
* ``performance(start, end)`` over the five years on an open connection: its first call and the
  median of 20 more, target <= 200 ms;
* the five-year table of the book against its benchmarks, and the same by regime, and its
  tearsheet written to the temporary directory (the README's picture);
* what the barbell's two sleeves earned, by the regime the book was decided in and by the
  market's hidden regime on the day: each sleeve's return is its legs' contributions over their
  weight held, so a sleeve that is small earns comparably; and how the aggressors the assets
  picked over the five years compare with the known payoffs (``bench_aggressors``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from quant_assets.backtest.performance import performance_by_regime
from quant_assets.backtest.report import history, tearsheet
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.runner import materialise_days
from quant_assets.reporting.charts import render_png
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

from benchmarks.bench_aggressors import Tally, convex_legs

START, END = date(2022, 1, 1), date(2026, 11, 29)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
WORKFLOW = ["raw_screen", "liquid_universe", "signals", "regime", "covariance", "barbell_weights",
            "metadata_catalog"]
BACKTEST = ["portfolio_returns"]
QUERY = f"SELECT * FROM performance(DATE '{START}', DATE '{END}')"
COLUMNS = ["book", "days", "cumulative_return", "annual_return", "annual_volatility", "sharpe", "sortino",
           "max_drawdown", "max_drawdown_peak", "max_drawdown_trough", "calmar", "annual_turnover", "cost_drag",
           "hit_rate"]


def _backtest_in_its_own_process(root: Path) -> float:
    """Seconds the backtest's single run takes in a process of its own, as a run launched from
    the UI has (this one holds the setup's market and five years of its objects)."""
    code = (f"import time; from benchmarks.bench_backtest import DAYS, BACKTEST; "
            f"from quant_assets.orchestration.jobs import build_resources; "
            f"from quant_assets.orchestration.runner import materialise_days; "
            f"resources = build_resources(lakehouse_root={str(root)!r}); started = time.perf_counter(); "
            f"materialise_days(DAYS, resources, max_days_per_run=len(DAYS), selection=BACKTEST); "
            f"print(time.perf_counter() - started)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return float(done.stdout.split()[-1])


def sleeve_days(store: PartitionStore, weights: dict[date, pl.DataFrame]) -> pl.DataFrame:
    """Per day and sleeve of the barbell book: the weight held, the contribution earned, the
    decision's regime and the hidden regime of the day (``weights``: the barbell_weights
    partitions)."""
    sleeves = pl.concat(weights.values())
    held = pl.concat(store.read_many("portfolio_returns", DAYS, ["date", "book", "decided_on", "regime", "legs"],
                                     where=pl.col("book") == "barbell").values())
    truth = SyntheticSource(SyntheticMarketConfig()).market.regime_path(START, END).rename({"regime": "hidden"})
    return (
        held.explode("legs").drop_nulls("legs").unnest("legs")
        .join(sleeves.rename({"date": "decided_on"}), on=["decided_on", "symbol", "direction"], how="left")
        .group_by("date", "regime", "sleeve")
        .agg(pl.col("weight").abs().sum(), pl.col("contribution").sum())
        .join(truth, on="date")
    )


def sleeve_table(days: pl.DataFrame, regime: str) -> pl.DataFrame:
    """Days held, mean daily return (bps) and total contribution (%) of each sleeve per
    ``regime`` column value."""
    return (
        days.filter(pl.col("weight") > 0)
        .group_by(regime, "sleeve")
        .agg(
            pl.len().alias("days held"),
            (pl.col("contribution") / pl.col("weight")).mean().mul(1e4).alias("mean daily return, bps"),
            pl.col("contribution").sum().mul(100).alias("contribution to the book, %"),
            pl.col("weight").mean().alias("mean weight"),
        )
        .sort(regime, "sleeve")
    )


def aggressor_scores(weights: dict[date, pl.DataFrame]) -> str:
    """Precision and recall of the five years' aggressors against the known payoffs."""
    payoffs = SyntheticSource(SyntheticMarketConfig()).market.payoffs
    tally = Tally()
    for book in weights.values():
        tally.add(set(book.filter(pl.col("sleeve") == "aggressor")["symbol"].to_list()),
                  convex_legs(book, payoffs), book.height)
    return (f"{tally.books} books, {tally.convex} convex leg-days, {tally.picked} aggressor leg-days picked: "
            f"precision {tally.precision()}, recall {tally.recall()}; {tally.false_books} books given an "
            "aggressor with no convex leg")


def main() -> None:
    os.environ.pop("DAGSTER_HOME", None)  # an ephemeral instance: nothing written to data/
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "lake")
        resources = build_resources(lakehouse_root=str(root))
        started = time.perf_counter()
        materialise_days(DAYS, resources, max_days_per_run=len(DAYS), selection=WORKFLOW)
        workflow_s = time.perf_counter() - started

        backtest_s = _backtest_in_its_own_process(root)

        with sql.connect(root) as con:
            started = time.perf_counter()
            table = con.sql(QUERY).pl()
            first_ms = (time.perf_counter() - started) * 1000
            times = []
            for _ in range(20):
                started = time.perf_counter()
                con.sql(QUERY).pl()
                times.append((time.perf_counter() - started) * 1000)
        store = PartitionStore(root)
        daily = history(store)
        by_regime = performance_by_regime(daily)
        weights = store.read_many("barbell_weights", DAYS, ["date", "symbol", "direction", "sleeve"])
        sleeves = sleeve_days(store, weights)
        selection = aggressor_scores(weights)
        picture = Path(tempfile.gettempdir(), "quant_assets_tearsheet_5y.png")
        picture.write_bytes(render_png(tearsheet(daily)[0]))

    print(f"backtest: {len(DAYS)} daily partitions {START}..{END}, default synthetic market (1,200 instruments)")
    print(f"  the seven workflow assets, one run (setup)           {workflow_s:8.2f} s")
    print(f"  portfolio_returns, one run                           {backtest_s:8.2f} s   "
          f"{backtest_s / len(DAYS) * 1000:6.1f} ms/partition   (target <= 30 s)")
    print(f"  performance(start, end) over five years, first call  {first_ms:8.1f} ms")
    print(f"  performance(start, end), p50 of 20 more calls        {statistics.median(times):8.1f} ms"
          "   (target <= 200 ms)")
    with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=220, tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, float_precision=4):
        print(f"\nfive years, book vs benchmarks (net of costs):\n{table.select(COLUMNS)}")
        print(f"\nby regime (the regime on the day each book was decided):\n"
              f"{by_regime.select('book', 'regime', *COLUMNS[1:])}")
        print(f"\nthe barbell's sleeves by the regime the book was decided in:\n{sleeve_table(sleeves, 'regime')}")
        print(f"\nthe barbell's sleeves by the market's hidden regime on the day:\n{sleeve_table(sleeves, 'hidden')}")
    print(f"\naggressors against the known payoffs: {selection}")
    print(f"\nthe five-year tearsheet: {picture}")


if __name__ == "__main__":
    main()
