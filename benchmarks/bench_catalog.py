"""Point-in-time catalog at scale: 5,000 symbols over 3 years of daily partitions with churn.

Writes the catalog's daily observation partitions (listings, delistings, tick-size changes),
then times one day's upsert (build the observations from a raw screen, write the partition),
the first connection (which derives and caches the versions), and the as-of queries a
backtest runs on random days, into polars frames.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from quant_assets.lakehouse import sql
from quant_assets.lakehouse.catalog import build_observations
from quant_assets.lakehouse.store import PartitionStore

N_SYMBOLS, N_DAYS = 5_000, 3 * 365
START = date(2022, 1, 1)
QUERIES = 20
N_LEGS = 50  # signals and weights per day, for universe_as_of


def _universe(rng: np.random.Generator) -> pl.DataFrame:
    listed = rng.integers(-N_DAYS, N_DAYS, N_SYMBOLS).clip(0)  # a third listed during the span
    life = rng.integers(200, 3 * N_DAYS, N_SYMBOLS)
    change = rng.integers(0, 2 * N_DAYS, N_SYMBOLS)  # about half change tick size once
    return pl.DataFrame({
        "symbol": [f"EX{i % 5}:SYM{i:05d}USDT" for i in range(N_SYMBOLS)],
        "listed": listed, "delisted": listed + life, "change": change,
        "pricescale": 10 ** rng.integers(2, 8, N_SYMBOLS),
    })


def _raw_screen(universe: pl.DataFrame, k: int) -> pl.DataFrame:
    day = START + timedelta(days=k)
    rows = universe.filter((pl.col("listed") <= k) & (pl.col("delisted") > k))
    return rows.select(
        pl.lit(day).alias("date"), pl.lit("bench").alias("config"), "symbol",
        pl.lit("crypto").alias("market"),
        pl.col("symbol").str.split(":").list.get(1).alias("name"),
        pl.col("symbol").str.split(":").list.get(0).alias("exchange"),
        pl.lit("spot").alias("type"), pl.lit("USDT").alias("currency"),
        pl.lit(None, pl.String).alias("base_currency"),
        pl.lit(1.0).alias("close"), pl.lit(1.0).alias("volume"), pl.lit(1.0).alias("Value.Traded"),
        pl.when(pl.col("change") <= k).then(pl.col("pricescale") * 10).otherwise("pricescale")
        .alias("pricescale"),
        pl.lit(1).alias("minmov"),
    )


def _percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1e3
    return f"p50 {np.percentile(ms, 50):7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms"


def main() -> None:
    rng = np.random.default_rng(0)
    universe = _universe(rng)
    no_signals = pl.DataFrame(schema={"symbol": pl.String, "selected": pl.Boolean})
    stamp = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as root:
        store = PartitionStore(root)
        started = time.perf_counter()
        for k in range(N_DAYS - 1):
            day = START + timedelta(days=k)
            raw = _raw_screen(universe, k)
            store.write("metadata_catalog", day, build_observations(raw, no_signals, day, recorded_at=stamp))
            legs = raw.select("date", "symbol").head(N_LEGS)
            store.write("signals", day, legs.with_columns(
                config=pl.lit("bench"), direction=pl.lit("LONG"), rank=pl.int_range(1, N_LEGS + 1),
                alpha_field=pl.lit("Perf.3M"), alpha_value=pl.lit(1.0), selected=pl.lit(True)))
            store.write("barbell_weights", day, legs.with_columns(
                sleeve=pl.lit("core"), weight=pl.lit(1.0 / N_LEGS)))
        print(f"catalog: {N_SYMBOLS:,} symbols, {N_DAYS - 1} daily partitions (plus {N_LEGS} signals and "
              f"weights a day) written in "
              f"{time.perf_counter() - started:.1f} s")
        last = N_DAYS - 1
        raw = _raw_screen(universe, last)
        upserts = []
        for _ in range(5):
            t0 = time.perf_counter()
            previous = store.read("metadata_catalog", START + timedelta(days=last)) \
                if store.exists("metadata_catalog", START + timedelta(days=last)) else None
            obs = build_observations(raw, no_signals, START + timedelta(days=last), previous=previous)
            store.write("metadata_catalog", START + timedelta(days=last), obs)
            upserts.append(time.perf_counter() - t0)
        print(f"  one-day upsert ({raw.height:,} symbols)        {_percentiles(upserts)}  (target <= 200 ms)")
        started = time.perf_counter()
        con = sql.connect(root)  # derives and caches the versions for this catalog state
        print(f"  first connection (derive and cache versions)   {time.perf_counter() - started:.2f} s")
        n_versions = con.sql("SELECT count(*) FROM symbols").fetchall()[0][0]
        n_observations = con.sql("SELECT count(*) FROM metadata_catalog").fetchall()[0][0]
        print(f"  versions derived: {n_versions:,} from {n_observations:,} observations")
        days = [START + timedelta(days=int(k)) for k in rng.integers(30, N_DAYS, QUERIES)]
        for label, template in (
            ("symbols_as_of(random day)         ", "SELECT * FROM symbols_as_of(DATE '{d}')"),
            ("one symbol's tick size as of a day", "SELECT tick_size FROM symbols_as_of(DATE '{d}') "
                                                   "WHERE symbol = 'EX1:SYM00001USDT'"),
            ("universe_as_of(random day)        ", "SELECT * FROM universe_as_of(DATE '{d}')"),
        ):
            timings = []
            for d in days:
                t0 = time.perf_counter()
                con.sql(template.format(d=d)).pl()
                timings.append(time.perf_counter() - t0)
            print(f"  {label}   {_percentiles(timings)}  (target p50 <= 20 ms)")
        con.close()


if __name__ == "__main__":
    main()
