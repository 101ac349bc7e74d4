"""The bitemporal catalog index against a plain reference: at any knowledge time, its versions
equal a from-scratch derivation over the catalog files known then, whatever order the files
were written in, with corrections, gaps, missing fields and removals; an incremental update
equals a full build."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quant_assets.lakehouse.catalog import OBSERVATION_SCHEMA, TRACKED_ATTRIBUTES
from quant_assets.lakehouse.catalog_index import (
    CatalogFile,
    build_index,
    derive_versions,
    update_index,
)

T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
START = date(2024, 1, 1)


def _observations(rng: np.random.Generator, day: date, symbols: list[str]) -> pl.DataFrame:
    """One day's catalog rows: a few symbols missing, some attributes missing, scales that change."""
    present = [s for s in symbols if rng.random() < 0.8]
    scales = [int(10 ** rng.integers(2, 4)) if rng.random() < 0.9 else None for _ in present]
    minmovs = [1 if rng.random() < 0.9 else None for _ in present]
    return pl.DataFrame({
        "date": [day] * len(present), "symbol": present, "exchange": [s.split(":")[0] for s in present],
        "ticker": [s.split(":")[1] for s in present], "base": ["B"] * len(present), "quote": ["USD"] * len(present),
        "asset_class": ["crypto"] * len(present), "instrument_type": ["spot"] * len(present),
        "pricescale": scales, "minmov": minmovs, "tick_size": [None] * len(present),
        "in_signals": [False] * len(present),
    }, schema=OBSERVATION_SCHEMA)


def _history(seed: int, n_days: int = 12, corrections: int = 4, shuffled: bool = True):
    """Catalog files written at increasing times, days in random order, some days corrected."""
    rng = np.random.default_rng(seed)
    symbols = [f"EX:S{i}" for i in range(6)]
    days = [START + timedelta(days=k) for k in range(n_days) if rng.random() < 0.85]
    order = list(rng.permutation(len(days))) if shuffled else list(range(len(days)))
    order += list(rng.choice(len(days), size=corrections))
    files, data = [], {}
    for i, k in enumerate(order):
        day = days[int(k)]
        # Some events share a recorded time, as a run's outputs do.
        at = T0 + timedelta(hours=int(i // 2 if rng.random() < 0.5 else i))
        at = max(at, files[-1].recorded_at) if files else at
        file = CatalogFile(f"{day}-{i}", day, at)
        files.append(file)
        data[file.name] = _observations(rng, day, symbols)
    return files, data


def _known(files: list[CatalogFile], data: dict, at: datetime) -> pl.DataFrame:
    """The observations known at ``at``: per day, the latest file recorded by then."""
    latest: dict[date, CatalogFile] = {}
    for f in sorted(files, key=lambda f: (f.recorded_at, f.date, f.name)):
        if f.recorded_at <= at:
            latest[f.date] = f
    frames = [data[f.name] for f in latest.values()]
    return pl.concat(frames) if frames else pl.DataFrame(schema=OBSERVATION_SCHEMA)


def _versions_at(index, at: datetime) -> pl.DataFrame:
    known = index.versions.filter(
        (pl.col("known_from") <= at) & (pl.col("known_to").is_null() | (pl.col("known_to") > at)))
    return known.select("symbol", *TRACKED_ATTRIBUTES, "valid_from", "valid_to").sort("symbol", "valid_from")


@pytest.mark.parametrize("seed", range(8))
def test_versions_known_at_any_time_equal_a_derivation_from_scratch(seed):
    files, data = _history(seed)
    index = build_index(files, lambda f: data[f.name])
    times = sorted({f.recorded_at for f in files})
    for at in [times[0] - timedelta(seconds=1), *times, *(t + timedelta(minutes=30) for t in times)]:
        expected = derive_versions(_known(files, data, at)).sort("symbol", "valid_from")
        assert _versions_at(index, at).equals(expected), at


@pytest.mark.parametrize("seed", range(4))
def test_incremental_updates_equal_a_full_build(seed):
    files, data = _history(seed, shuffled=seed % 2 == 0)
    read = lambda f: data[f.name]  # noqa: E731
    full = build_index(files, read)
    for cut in (1, len(files) // 3, len(files) - 1):
        index = update_index(build_index(files[:cut], read), files, read)
        for table in ("files", "presence", "ids", "versions", "tails", "symbols", "runs"):
            assert getattr(index, table).equals(getattr(full, table)), (cut, table)


def test_tick_size_always_agrees_with_pricescale_and_minmov():
    files, data = _history(3, n_days=20)
    index = build_index(files, lambda f: data[f.name])
    rows = index.versions.filter(pl.col("tick_size").is_not_null())
    assert rows.height and (rows["tick_size"] == rows["minmov"] / rows["pricescale"]).all()
    unknown = index.versions.filter(pl.col("tick_size").is_null())
    assert (unknown["pricescale"].is_null() | unknown["minmov"].is_null()).all()
