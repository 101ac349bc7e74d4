"""The seven daily-partitioned assets. Each turns its partition into a date, calls a resource
and one core function, and returns the frame with metadata; no maths, SQL or HTTP here.

No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation at
definition time and rejects it as a string.
"""

from datetime import date, timedelta
from typing import Iterator

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DailyPartitionsDefinition,
    Output,
    asset,
)

from quant_assets.lakehouse.catalog import (
    build_observations,
    constituents_without_tick_size,
    missing_tick_sizes,
)
from quant_assets.orchestration.metadata import frame_metadata
from quant_assets.orchestration.resources import (
    LakehouseResource,
    MarketDataResource,
    RiskResource,
    ScreeningResource,
)
from quant_assets.risk.stage import (
    RiskSettings,
    allocate_barbell,
    assess_regime,
    check_weights,
    estimate_signal_covariance,
)
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals

#: First business day with a partition; the synthetic market simulates a year before it.
PARTITIONS_START = "2022-01-01"
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

_COMMON = dict(partitions_def=daily_partitions, io_manager_key="parquet_io_manager")


def _day(context: AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _leg_bars(
    market_data: MarketDataResource, legs: pl.DataFrame, day: date, settings: RiskSettings
) -> pl.DataFrame:
    """Daily bars of the portfolio legs over the covariance lookback ending at ``day``."""
    start = day - timedelta(days=settings.lookback_days)
    return market_data.get_source().daily_bars(legs["symbol"].to_list(), start, day)


@asset(group_name="discovery", **_COMMON)
def raw_screen(
    context: AssetExecutionContext, market_data: MarketDataResource, screening: ScreeningResource
) -> Output[pl.DataFrame]:
    """Top instruments by Value.Traded per screening config, as the screener saw them at the close."""
    fetched = fetch_raw_screen(
        market_data.get_source(), screening.load(), _day(context), strict=screening.strict
    )
    for name, why in sorted(fetched.failures.items()):
        context.log.warning(f"config {name} failed and is left out of {context.partition_key}: {why}")
    frame = fetched.frame
    per_config = frame.group_by("config").len().sort("config")
    return Output(frame, metadata={
        **frame_metadata(frame),
        "rows_per_config": {row["config"]: row["len"] for row in per_config.iter_rows(named=True)},
        "failed_configs": fetched.failures or "none",
    })


@asset(group_name="alpha", **_COMMON)
def liquid_universe(
    raw_screen: pl.DataFrame, screening: ScreeningResource
) -> Output[pl.DataFrame]:
    """Every screened candidate with the hygiene/liquidity gate that rejected it (null = in universe)."""
    frame = select_liquid_universe(raw_screen, screening.load())
    rejected = frame.group_by("rejected_by").len().sort("len", descending=True)
    return Output(frame, metadata={
        **frame_metadata(frame.filter(pl.col("in_universe"))),
        "dagster/row_count": frame.height,
        "in_universe": int(frame["in_universe"].sum()),
        "rejections": {str(r["rejected_by"]): r["len"] for r in rejected.iter_rows(named=True)},
    })


@asset(group_name="alpha", **_COMMON)
def signals(liquid_universe: pl.DataFrame, screening: ScreeningResource) -> Output[pl.DataFrame]:
    """LONG/SHORT signals: universe members through the trend gates, ranked by alpha and cut."""
    frame = select_signals(liquid_universe, screening.load())
    chosen = frame.filter(pl.col("selected")).sort(["config", "rank"])
    return Output(frame, metadata={
        **frame_metadata(frame, preview=chosen.select(
            "config", "rank", "symbol", "direction", "alpha_field", "alpha_value", "ADX")),
        "selected": chosen.height,
    })


@asset(group_name="risk", **_COMMON)
def regime(
    context: AssetExecutionContext,
    liquid_universe: pl.DataFrame,
    market_data: MarketDataResource,
    risk: RiskResource,
) -> Output[pl.DataFrame]:
    """Market regime (QUIET / NORMAL / CRISIS) of the candidate universe, with its inputs."""
    day, settings = _day(context), risk.settings()
    symbols = liquid_universe.filter(pl.col("in_universe"))["symbol"].unique().sort().to_list()
    bars = market_data.get_source().daily_bars(
        symbols, day - timedelta(days=settings.regime_lookback_days), day
    )
    frame = assess_regime(bars, day, settings)
    return Output(frame, metadata={**frame_metadata(frame), "regime": frame["regime"][0]})


@asset(group_name="risk", **_COMMON)
def covariance(
    context: AssetExecutionContext,
    signals: pl.DataFrame,
    market_data: MarketDataResource,
    risk: RiskResource,
) -> Output[pl.DataFrame]:
    """Ledoit-Wolf covariance of the signal legs' daily returns (SHORT legs sign-flipped), long form."""
    day, settings = _day(context), risk.settings()
    legs = selected_signals(signals)
    bars = _leg_bars(market_data, legs, day, settings)
    frame, info = estimate_signal_covariance(bars, legs, day, settings)
    return Output(frame, metadata={**frame_metadata(frame), **info})


@asset(
    group_name="risk",
    # Runs after the catalog so every constituent's tick size can be verified as of the day.
    deps=["metadata_catalog"],
    check_specs=[
        AssetCheckSpec("weights_valid", asset="barbell_weights"),
        AssetCheckSpec("constituents_have_tick_size", asset="barbell_weights", blocking=True),
    ],
    **_COMMON,
)
def barbell_weights(
    context: AssetExecutionContext,
    signals: pl.DataFrame,
    regime: pl.DataFrame,
    covariance: pl.DataFrame,
    market_data: MarketDataResource,
    risk: RiskResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[pl.DataFrame] | AssetCheckResult]:
    """Barbell portfolio: max-diversification core plus antifragile aggressors, split by regime."""
    day, settings = _day(context), risk.settings()
    legs = selected_signals(signals)
    bars = _leg_bars(market_data, legs, day, settings)
    frame = allocate_barbell(bars, legs, covariance, regime["regime"][0], day, settings)
    by_sleeve = frame.group_by("sleeve").agg(pl.col("weight").sum()).sort("sleeve")
    yield Output(frame, metadata={
        **frame_metadata(frame, preview=frame.sort("weight", descending=True)),
        "regime": regime["regime"][0],
        "sleeve_weights": {r["sleeve"]: round(r["weight"], 6) for r in by_sleeve.iter_rows(named=True)},
    })
    problems = check_weights(frame)
    yield AssetCheckResult(
        check_name="weights_valid",
        passed=not problems,
        metadata={"problems": "; ".join(problems) or "none", "total_weight": float(frame["weight"].sum())},
    )
    untradeable = constituents_without_tick_size(frame, lakehouse.store().read("metadata_catalog", day))
    yield AssetCheckResult(
        check_name="constituents_have_tick_size",
        passed=not untradeable,
        severity=AssetCheckSeverity.ERROR,
        metadata={"missing": ", ".join(untradeable) or "none"},
    )


@asset(
    group_name="catalog",
    check_specs=[AssetCheckSpec("signals_have_tick_size", asset="metadata_catalog", blocking=True)],
    **_COMMON,
)
def metadata_catalog(
    context: AssetExecutionContext,
    raw_screen: pl.DataFrame,
    signals: pl.DataFrame,
    lakehouse: LakehouseResource,
) -> Iterator[Output[pl.DataFrame] | AssetCheckResult]:
    """The day's symbol observations (tick size, pricescale, exchange...): the PIT catalog's facts."""
    day, store = _day(context), lakehouse.store()
    previous = store.read("metadata_catalog", day) if store.exists("metadata_catalog", day) else None
    frame = build_observations(raw_screen, signals, day, previous=previous)
    yield Output(frame, metadata={**frame_metadata(frame), "symbols": frame.height})
    missing = missing_tick_sizes(frame)
    yield AssetCheckResult(
        check_name="signals_have_tick_size",
        passed=not missing,
        severity=AssetCheckSeverity.ERROR,
        metadata={"missing": ", ".join(missing) or "none"},
    )


ASSETS = [raw_screen, liquid_universe, signals, regime, covariance, barbell_weights, metadata_catalog]
