"""Point-in-time symbol catalog: each day's immutable observations, versions derived from them.

Each ``metadata_catalog`` partition D holds what the workflow observed about every instrument
it screened on D (exchange, quote, type, pricescale, minmov, tick size). The partition store
keeps every rewrite as a new version stamped with its recorded time (knowledge time), so:

- re-materialising D with the same facts changes nothing (no new version is written);
- re-materialising D with different facts (a correction) adds a version, and a query "as known
  at T" still sees the version that was current at T;
- the type-2 versions of each symbol (``valid_from`` / ``valid_to``, business time) are derived
  from the observations by :mod:`quant_assets.lakehouse.catalog_index`, as runs of identical
  attributes over observation dates, so backfilling days in any order yields the same history.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.instruments import METADATA_COLUMNS, normalise_metadata

#: Attributes whose change starts a new version of a symbol. The tick size is not one of them:
#: it is ``minmov / pricescale`` of the version, so it always agrees with them.
TRACKED_ATTRIBUTES: tuple[str, ...] = (
    "exchange", "ticker", "base", "quote", "asset_class", "instrument_type", "pricescale", "minmov",
)

#: The columns of a ``metadata_catalog`` partition, with their types.
OBSERVATION_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date, "symbol": pl.String, "exchange": pl.String, "ticker": pl.String, "base": pl.String,
    "quote": pl.String, "asset_class": pl.String, "instrument_type": pl.String, "pricescale": pl.Int64,
    "minmov": pl.Int64, "tick_size": pl.Float64, "in_signals": pl.Boolean,
}


def tick_size(minmov: pl.Expr, pricescale: pl.Expr) -> pl.Expr:
    """``minmov / pricescale``; null unless both are positive."""
    return pl.when((pricescale > 0) & (minmov > 0)).then(minmov / pricescale)


def build_observations(raw_screen: pl.DataFrame, signals: pl.DataFrame, day: date) -> pl.DataFrame:
    """The catalog partition for ``day``: one observation per instrument screened that day.

    Parameters
    ----------
    raw_screen
        That day's raw screen (several configs may list one symbol; the symbol's attributes
        are the same in each, so the first row by config name is kept).
    signals
        That day's signals; ``in_signals`` marks symbols any config selected.

    Returns
    -------
    pl.DataFrame
        :data:`OBSERVATION_SCHEMA`, sorted by symbol.

    Raises
    ------
    ValidationError
        A row is stamped with another day than ``day``.
    """
    stamped = raw_screen["date"].unique().to_list()
    if any(d != day for d in stamped):
        raise ValidationError(f"metadata_catalog {day}: raw screen rows stamped {sorted(stamped)}")
    chosen = set(signals.filter(pl.col("selected"))["symbol"].to_list())
    return (
        normalise_metadata(raw_screen)
        .sort(["symbol", "config"])
        .unique("symbol", keep="first", maintain_order=True)
        .select(
            pl.lit(day).alias("date"),
            *METADATA_COLUMNS,
            pl.col("symbol").is_in(sorted(chosen)).alias("in_signals"),
        )
        .with_columns(pl.col("pricescale").cast(pl.Int64), pl.col("minmov").cast(pl.Int64))
        .select(list(OBSERVATION_SCHEMA))
        .cast(OBSERVATION_SCHEMA)
    )


def missing_tick_sizes(observations: pl.DataFrame) -> list[str]:
    """Symbols selected into signals whose tick size is missing or not positive."""
    bad = observations.filter(pl.col("in_signals") & (pl.col("tick_size").is_null() | (pl.col("tick_size") <= 0)))
    return bad["symbol"].to_list()


def constituents_without_tick_size(weights: pl.DataFrame, observations: pl.DataFrame) -> list[str]:
    """Portfolio constituents with no positive tick size in the day's catalog."""
    known = observations.filter(pl.col("tick_size") > 0)["symbol"]
    return sorted(weights.filter(~pl.col("symbol").is_in(known.implode()))["symbol"].to_list())
