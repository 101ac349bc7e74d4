"""Point-in-time symbol catalog: daily immutable observations, versions derived in SQL.

Each ``metadata_catalog`` partition D holds what the workflow observed about every instrument
it screened on D (exchange, quote, type, pricescale, minmov, tick size), as one or more
*snapshots*, each stamped with the time it was recorded (``recorded_at``, knowledge time).
Nothing is updated in place:

- re-materialising D with the same facts changes nothing (the stored partition is kept);
- re-materialising D with different facts (a correction) appends a new snapshot, so a query
  "as known at T" still sees the snapshot that was current at T;
- the type-2 versions (``valid_from`` / ``valid_to``, business time) are computed by
  :mod:`quant_assets.lakehouse.sql` as runs of identical attributes over observation dates,
  so backfilling days in any order yields the same history.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.instruments import METADATA_COLUMNS, normalise_metadata

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
        The partition already stored for ``day``, if any. When its latest snapshot holds the
        same facts it is returned unchanged (idempotent); otherwise the new snapshot is
        appended to it.

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
    stamp = recorded_at or datetime.now(timezone.utc)
    snapshot = observed.with_columns(recorded_at=pl.lit(stamp, pl.Datetime("us", "UTC")))
    if previous is None:
        return snapshot
    if latest_snapshot(previous).drop("recorded_at").equals(observed):
        return previous
    stored = previous["recorded_at"].max()
    if stamp <= stored:
        raise ValidationError(
            f"metadata_catalog {day}: new snapshot recorded at {stamp} is not after the stored "
            f"one ({stored})"
        )
    return pl.concat([previous, snapshot], how="vertical_relaxed")


def latest_snapshot(observations: pl.DataFrame) -> pl.DataFrame:
    """The rows of a catalog partition's most recent snapshot: what is known now."""
    return observations.filter(pl.col("recorded_at") == pl.col("recorded_at").max())


def missing_tick_sizes(observations: pl.DataFrame) -> list[str]:
    """Symbols selected into signals whose tick size, as known now, is missing or not positive."""
    bad = latest_snapshot(observations).filter(
        pl.col("in_signals") & (pl.col("tick_size").is_null() | (pl.col("tick_size") <= 0))
    )
    return bad["symbol"].to_list()


def constituents_without_tick_size(weights: pl.DataFrame, observations: pl.DataFrame) -> list[str]:
    """Portfolio constituents with no positive tick size in the day's catalog, as known now."""
    known = latest_snapshot(observations).filter(pl.col("tick_size") > 0)["symbol"]
    return sorted(weights.filter(~pl.col("symbol").is_in(known.implode()))["symbol"].to_list())
