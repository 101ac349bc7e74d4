"""Stage 1: ask the source for every config's screen and stack the answers.

One row per (config, symbol), stamped with the business date; the union of every config's
columns (a column a config did not ask for is null in its rows).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Sequence

import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.screening.config import ScreeningConfig
from quant_assets.sources.base import MarketSource


def fetch_raw_screen(source: MarketSource, configs: Sequence[ScreeningConfig], day: date) -> pl.DataFrame:
    """Screen ``day`` once per config and return the stacked raw screen, sorted by (config, symbol).

    Raises
    ------
    ValidationError
        The source answered without a ``symbol`` column or with duplicate symbols.
    """
    frames = []
    for cfg in configs:
        query = cfg.scan_query()
        per_market = []
        # The scanner answers one market per request (POST /{market}/scan).
        for market in cfg.markets:
            rows = source.scan(day, replace(query, markets=(market,)))
            _check_rows(rows, cfg, day)
            per_market.append(rows.with_columns(market=pl.lit(market)))
        merged = pl.concat(per_market, how="diagonal_relaxed")
        merged = merged.sort(
            [query.sort_by, "symbol"], descending=[query.descending, False], nulls_last=True
        ).head(query.limit)
        frames.append(merged.with_columns(date=pl.lit(day), config=pl.lit(cfg.name)))
    raw = pl.concat(frames, how="diagonal_relaxed")
    leading = ["date", "config", "symbol", "market"]
    return raw.select(*leading, *[c for c in raw.columns if c not in leading]).sort(["config", "symbol"])


def _check_rows(rows: pl.DataFrame, cfg: ScreeningConfig, day: date) -> None:
    where = cfg.source_file or cfg.name
    if "symbol" not in rows.columns:
        raise ValidationError(f"{where}: screen for {day} has no 'symbol' column")
    if rows["symbol"].is_duplicated().any():
        dupes = rows.filter(pl.col("symbol").is_duplicated())["symbol"].unique().sort().to_list()
        raise ValidationError(f"{where}: screen for {day} repeats symbols {dupes[:5]}")
