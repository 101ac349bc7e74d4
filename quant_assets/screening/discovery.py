"""Stage 1: ask the source for every config's screen at once and stack the answers.

One row per (config, symbol), stamped with the business date; the union of every config's
columns (a column a config did not ask for is null in its rows). Every (config, market)
request goes to the source in one batch, so a live source can fetch them concurrently. A
config whose request failed is left out and reported, unless the caller asks for strict mode;
a config is never half-fetched: its rows are all there or none are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Sequence

import polars as pl

from quant_assets.errors import QuantAssetsError, SourceResponseError, ValidationError
from quant_assets.screening.config import ScreeningConfig
from quant_assets.sources.base import MarketSource, ScanQuery

_LEADING = ["date", "config", "symbol", "market"]


@dataclass(frozen=True)
class RawScreen:
    """The stacked raw screen and the configs that could not be fetched (name -> why)."""

    frame: pl.DataFrame
    failures: dict[str, str]


def fetch_raw_screen(
    source: MarketSource, configs: Sequence[ScreeningConfig], day: date, *, strict: bool = False
) -> RawScreen:
    """Screen ``day`` for every config and return the stacked raw screen, sorted by (config, symbol).

    Raises
    ------
    QuantAssetsError
        Every config failed, or any config failed in ``strict`` mode; the message names each
        failed config and why.
    """
    # The scanner answers one market per request (POST /{market}/scan).
    queries = {cfg.name: cfg.scan_query() for cfg in configs}
    requests: list[tuple[ScreeningConfig, str, ScanQuery]] = [
        (cfg, market, replace(queries[cfg.name], markets=(market,)))
        for cfg in configs for market in cfg.markets
    ]
    answers = source.scan_many(day, [q for _, _, q in requests])

    per_config: dict[str, list[pl.DataFrame]] = {cfg.name: [] for cfg in configs}
    failures: dict[str, str] = {}
    for (cfg, market, _), answer in zip(requests, answers, strict=True):
        if cfg.name in failures:
            continue
        try:
            rows = _checked(answer, cfg, day)
        except QuantAssetsError as exc:
            failures[cfg.name] = str(exc)
            continue
        per_config[cfg.name].append(rows.with_columns(market=pl.lit(market)))

    if failures and (strict or len(failures) == len(configs)):
        why = "; ".join(f"{name}: {msg}" for name, msg in sorted(failures.items()))
        raise QuantAssetsError(f"raw_screen {day}: {len(failures)} of {len(configs)} configs failed: {why}")

    frames = []
    for cfg in configs:
        if cfg.name in failures:
            continue
        query = queries[cfg.name]
        merged = pl.concat(per_config[cfg.name], how="diagonal_relaxed").sort(
            [query.sort_by, "symbol"], descending=[query.descending, False], nulls_last=True
        )
        frames.append(merged.head(query.limit).with_columns(date=pl.lit(day), config=pl.lit(cfg.name)))
    raw = pl.concat(frames, how="diagonal_relaxed")
    raw = raw.select(*_LEADING, *[c for c in raw.columns if c not in _LEADING])
    return RawScreen(raw.sort(["config", "symbol"]), failures)


def _checked(answer: pl.DataFrame | QuantAssetsError, cfg: ScreeningConfig, day: date) -> pl.DataFrame:
    where = cfg.source_file or cfg.name
    if isinstance(answer, QuantAssetsError):
        raise answer
    if not isinstance(answer, pl.DataFrame):
        raise SourceResponseError(f"{where}: source answered {type(answer).__name__}, not a frame")
    if "symbol" not in answer.columns:
        raise ValidationError(f"{where}: screen for {day} has no 'symbol' column")
    if answer["symbol"].is_duplicated().any():
        dupes = answer.filter(pl.col("symbol").is_duplicated())["symbol"].unique().sort().to_list()
        raise ValidationError(f"{where}: screen for {day} repeats symbols {dupes[:5]}")
    return answer
