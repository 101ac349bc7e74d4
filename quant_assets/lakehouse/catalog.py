"""Point-in-time symbol catalog: daily immutable observations, versions derived in SQL.

Each ``metadata_catalog`` partition D holds what the workflow observed about every instrument
it screened on D (exchange, quote, type, pricescale, minmov, tick size). Nothing is updated
in place: the type-2 versions (``valid_from`` / ``valid_to``) are computed by
:mod:`quant_assets.lakehouse.sql` as runs of identical attributes over observation dates, so
backfilling days in any order yields the same history, and a re-materialised day that
observed the same facts keeps its original ``recorded_at`` (idempotent).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.screening.gates import METADATA_COLUMNS, normalise_metadata

#: Attributes whose change starts a new version of a symbol.
TRACKED_ATTRIBUTES: tuple[str, ...] = (
    "exchange", "ticker", "base", "quote", "asset_class", "instrument_type",
    "pricescale", "minmov", "tick_size",
)


def build_observations(
    raw_screen: pl.DataFrame,
    signals: pl.DataFrame,
    day: date,
    *,
    recorded_at: datetime | None = None,
    previous: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The catalog partition for ``day``: one observation per instrument screened that day.

    Parameters
    ----------
    raw_screen
        That day's raw screen (several configs may list one symbol; the symbol's attributes
        are the same in each, so the first row by config name is kept).
    signals
        That day's signals; ``in_signals`` marks symbols any config selected.
    recorded_at
        Knowledge time; defaults to now (UTC).
    previous
        The partition already stored for ``day``, if any. When it holds the same facts its
        ``recorded_at`` is kept, so materialising a day twice changes nothing.

    Raises
    ------
    ValidationError
        A row is stamped with another day than ``day``.
    """
    stamped = raw_screen["date"].unique().to_list()
    if any(d != day for d in stamped):
        raise ValidationError(f"metadata_catalog {day}: raw screen rows stamped {sorted(stamped)}")
    chosen = set(signals.filter(pl.col("selected"))["symbol"].to_list())
    observed = (
        normalise_metadata(raw_screen)
        .sort(["symbol", "config"])
        .unique("symbol", keep="first", maintain_order=True)
        .select(
            pl.lit(day).alias("date"),
            *METADATA_COLUMNS,
            pl.col("symbol").is_in(sorted(chosen)).alias("in_signals"),
        )
        .with_columns(pl.col("pricescale").cast(pl.Int64), pl.col("minmov").cast(pl.Int64))
    )
    if previous is not None and previous.drop("recorded_at").equals(observed):
        return previous
    stamp = recorded_at or datetime.now(timezone.utc)
    return observed.with_columns(recorded_at=pl.lit(stamp, pl.Datetime("us", "UTC")))


def missing_tick_sizes(observations: pl.DataFrame) -> list[str]:
    """Symbols selected into signals whose tick size is missing or not positive."""
    bad = observations.filter(
        pl.col("in_signals") & (pl.col("tick_size").is_null() | (pl.col("tick_size") <= 0))
    )
    return bad["symbol"].to_list()
