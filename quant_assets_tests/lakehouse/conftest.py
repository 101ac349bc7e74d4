"""Small, hand-built lakehouses for the SQL and catalog tests: partitions that keep their
contracts, written at chosen knowledge times."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl

from quant_assets.lakehouse.catalog import build_observations
from quant_assets.lakehouse.store import PartitionStore

DAY = date(2024, 3, 4)
T1 = datetime(2024, 3, 5, 1, 0, tzinfo=timezone.utc)  # the day's first run
T2 = T1 + timedelta(days=10)  # a correction


def raw_screen(day: date, symbols: list[str], scales: dict[str, int | None] | None = None) -> pl.DataFrame:
    scales = scales or {}
    n = len(symbols)
    return pl.DataFrame({
        "date": [day] * n, "config": ["c"] * n, "symbol": symbols, "market": ["crypto"] * n,
        "name": [s.split(":")[1] for s in symbols], "exchange": [s.split(":")[0] for s in symbols],
        "type": ["spot"] * n, "currency": ["USDT"] * n,
        "close": [1.0] * n, "volume": [1.0] * n, "Value.Traded": [1.0] * n,
        "pricescale": [scales.get(s, 100) for s in symbols], "minmov": [1] * n,
    }, schema_overrides={"pricescale": pl.Int64})


def signals(day: date, symbols: list[str]) -> pl.DataFrame:
    n = len(symbols)
    return pl.DataFrame({
        "date": [day] * n, "config": ["c"] * n, "symbol": symbols, "direction": ["LONG"] * n,
        "selected": [True] * n, "rank": list(range(1, n + 1)), "alpha_field": ["Perf.3M"] * n,
        "alpha_value": [1.0] * n, "tick_size": [0.01] * n,
    })


def weights(day: date, symbols: list[str]) -> pl.DataFrame:
    n = len(symbols)
    return pl.DataFrame({
        "date": [day] * n, "session": [day] * n, "symbol": symbols, "direction": ["LONG"] * n, "sleeve": ["core"] * n,
        "weight": [1.0 / n] * n, "cap": [1.0] * n, "regime": ["NORMAL"] * n,
    })


def regime(day: date, label: str) -> pl.DataFrame:
    return pl.DataFrame({"date": [day], "session": [day], "regime": [label], "vol_short": [0.2], "vol_long": [0.2],
                         "vol_ratio": [1.0], "dispersion_ratio": [1.0], "n_symbols": [10], "n_days": [700]})


def write_book(store: PartitionStore, day: date, symbols: list[str], at: datetime, label: str = "NORMAL",
               scales: dict[str, int | None] | None = None) -> None:
    """One day of every read-side asset, recorded at ``at``: the book is ``symbols``."""
    store.write("signals", day, signals(day, symbols), recorded_at=at)
    store.write("barbell_weights", day, weights(day, symbols), recorded_at=at)
    store.write("regime", day, regime(day, label), recorded_at=at)
    store.write("metadata_catalog", day, build_observations(raw_screen(day, symbols, scales), signals(day, symbols), day),
                recorded_at=at)
