"""Point-in-time catalog at scale: 5,000 symbols over 3 years of daily partitions with churn.

Each day's catalog, signals and weights are recorded the morning after (as the daily schedule
does) and a few days are corrected weeks later. Times one day's upsert, the first connection
(which derives the versions from scratch and publishes them), the first query after one more
day (which only extends the published versions; the ratio compares it with a rebuild), and
the as-of queries a backtest runs on random days, now and as known the morning after.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from quant_assets.lakehouse import catalog_cache, sql
from quant_assets.lakehouse.catalog import build_observations
from quant_assets.lakehouse.catalog_index import build_index
from quant_assets.lakehouse.store import PartitionStore, read_version

N_SYMBOLS, N_DAYS = 5_000, 3 * 365
START = date(2022, 1, 1)
QUERIES = 20
N_LEGS = 50  # signals and weights per day, for universe_as_of
N_CORRECTIONS = 10


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
        pl.lit(1.0).alias("close"), pl.lit(1.0).alias("volume"), pl.lit(1.0).alias("Value.Traded"),
        pl.when(pl.col("change") <= k).then(pl.col("pricescale") * 10).otherwise("pricescale")
        .alias("pricescale"),
        pl.lit(1).alias("minmov"),
    )


def _recorded(k: int) -> datetime:
    """The morning after day ``k``."""
    return datetime.combine(START + timedelta(days=k + 1), datetime.min.time(), timezone.utc) + timedelta(hours=1)


def _write_day(store: PartitionStore, universe: pl.DataFrame, k: int, at: datetime) -> None:
    day = START + timedelta(days=k)
    raw = _raw_screen(universe, k)
    no_signals = pl.DataFrame(schema={"symbol": pl.String, "selected": pl.Boolean})
    store.write("metadata_catalog", day, build_observations(raw, no_signals, day), recorded_at=at)
    legs = raw.select("date", "symbol").head(N_LEGS)
    store.write("signals", day, legs.with_columns(
        config=pl.lit("bench"), direction=pl.lit("LONG"), rank=pl.int_range(1, N_LEGS + 1),
        alpha_field=pl.lit("Perf.3M"), alpha_value=pl.lit(1.0), selected=pl.lit(True)), recorded_at=at)
    store.write("barbell_weights", day, legs.with_columns(
        sleeve=pl.lit("core"), weight=pl.lit(1.0 / N_LEGS)), recorded_at=at)


def _percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1e3
    return f"p50 {np.percentile(ms, 50):7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms"


def _time_queries(con: sql.LakehouseConnection, days: list[date], queries: list[tuple[str, str, int]]) -> None:
    for label, template, target_ms in queries:
        timings = []
        for d in days:
            known = _recorded((d - START).days) + timedelta(hours=1)
            text = template.format(d=d, known=f"TIMESTAMPTZ '{known.isoformat()}'")
            t0 = time.perf_counter()
            con.sql(text).pl()
            timings.append(time.perf_counter() - t0)
        print(f"  {label:44} {_percentiles(timings)}  (target p50 <= {target_ms} ms)")


def main() -> None:
    rng = np.random.default_rng(0)
    universe = _universe(rng)
    with tempfile.TemporaryDirectory() as root:
        store = PartitionStore(root)
        started = time.perf_counter()
        for k in range(N_DAYS - 2):
            _write_day(store, universe, k, _recorded(k))
        for k in sorted(rng.choice(N_DAYS - 60, N_CORRECTIONS, replace=False)):  # fixed weeks later
            day = START + timedelta(days=int(k))
            fixed = store.read("metadata_catalog", day).with_columns(
                pricescale=pl.when(pl.int_range(pl.len()) % 7 == 0).then(pl.col("pricescale") * 10)
                .otherwise("pricescale"))
            store.write("metadata_catalog", day, fixed, recorded_at=_recorded(int(k) + 30) + timedelta(hours=2))
        print(f"catalog: {N_SYMBOLS:,} symbols, {N_DAYS - 2} daily partitions recorded the morning after "
              f"({N_CORRECTIONS} corrected weeks later; plus {N_LEGS} signals and weights a day) written in "
              f"{time.perf_counter() - started:.1f} s")

        upserts = []
        for attempt in range(5):  # day N_DAYS - 2: a first version, then reruns and corrections
            t0 = time.perf_counter()
            day = START + timedelta(days=N_DAYS - 2)
            raw = _raw_screen(universe, N_DAYS - 2 - attempt % 2)
            store.write("metadata_catalog", day, build_observations(
                raw.with_columns(date=pl.lit(day)), pl.DataFrame(schema={"symbol": pl.String, "selected": pl.Boolean}),
                day), recorded_at=_recorded(N_DAYS - 2) + timedelta(minutes=attempt))
            upserts.append(time.perf_counter() - t0)
        print(f"  one-day upsert ({raw.height:,} symbols)        {_percentiles(upserts)}  (target <= 200 ms)")

        started = time.perf_counter()
        sql.query("SELECT count(*) FROM symbols", root)  # derives every version from scratch, publishes it
        print(f"  first catalog query (derive and publish)     {time.perf_counter() - started:6.2f} s")

        _write_day(store, universe, N_DAYS - 1, _recorded(N_DAYS - 1))
        last = START + timedelta(days=N_DAYS - 1)
        started = time.perf_counter()
        sql.query(f"SELECT * FROM symbols_as_of(DATE '{last}')", root)
        incremental = time.perf_counter() - started
        files = catalog_cache.catalog_files(store)
        started = time.perf_counter()
        build_index(files, lambda f: read_version(store.partition_dir("metadata_catalog", f.date) / f.name))
        rebuild = time.perf_counter() - started
        print(f"  first query after one new day                {incremental:6.2f} s  (target <= 1 s; "
              f"a rebuild of the versions alone takes {rebuild:.2f} s: {rebuild / incremental:.1f}x)")

        fixed_day = START + timedelta(days=N_DAYS - 100)
        store.write("metadata_catalog", fixed_day, store.read("metadata_catalog", fixed_day).with_columns(
            minmov=pl.when(pl.int_range(pl.len()) % 5 == 0).then(5).otherwise("minmov")),
            recorded_at=_recorded(N_DAYS - 1) + timedelta(hours=3))
        started = time.perf_counter()
        sql.query(f"SELECT * FROM symbols_as_of(DATE '{last}')", root)
        corrected = time.perf_counter() - started
        print(f"  first query after correcting a day 99 days back {corrected:6.2f} s  (re-derives the symbols it "
              f"changes; a rebuild takes {rebuild / corrected:.1f}x as long)")

        with sql.connect(root) as con:
            con.sql("SELECT 1 FROM universe_as_of(DATE '2022-06-01')")  # prepares the views used below
            n_versions = con.sql("SELECT count(*) FROM symbols").fetchall()[0][0]
            n_rows = con.sql("SELECT count(*) FROM catalog_versions").fetchall()[0][0]
            n_observations = con.sql("SELECT count(*) FROM catalog_presence").fetchall()[0][0]
            print(f"  versions: {n_versions:,} as known now, {n_rows:,} rows over all knowledge times, "
                  f"from {n_observations:,} observations")
            days = [START + timedelta(days=int(k)) for k in rng.integers(30, N_DAYS - 1, QUERIES)]
            _time_queries(con, days, [
                ("symbols_as_of(random day)", "SELECT * FROM symbols_as_of(DATE '{d}')", 20),
                ("one symbol's tick size as of a day", "SELECT tick_size FROM symbols_as_of(DATE '{d}') "
                                                       "WHERE symbol = 'EX1:SYM00001USDT'", 20),
                ("universe_as_of(random day)", "SELECT * FROM universe_as_of(DATE '{d}')", 20),
                ("symbols_as_of(day, known the morning after)", "SELECT * FROM symbols_as_of(DATE '{d}', {known})",
                 100),
                ("universe_as_of(day, known the morning after)",
                 "SELECT * FROM universe_as_of(DATE '{d}', {known})", 100),
            ])


if __name__ == "__main__":
    main()
