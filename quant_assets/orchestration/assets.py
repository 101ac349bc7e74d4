"""The seven daily-partitioned assets. Each turns its partitions into dates, calls a resource
and one core function per day, and returns the frames with metadata and check results; no
maths, SQL or HTTP here.

Every asset runs over a range of partitions in one run (``BackfillPolicy.single_run()``): a
backfill of a year is one run that shares the market data, sources and sessions across the
days, and writes each partition on its own. A run of one partition is the same code with a
range of one day, so both give identical partitions.

No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation at
definition time and rejects it as a string.
"""

import warnings
from datetime import date, timedelta
from typing import Iterator

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Backoff,
    BetaWarning,
    DailyPartitionsDefinition,
    Failure,
    Jitter,
    Output,
    RetryPolicy,
    asset,
)

from quant_assets.errors import QuantAssetsError, SourceConnectionError
from quant_assets.lakehouse.catalog import (
    build_observations,
    constituents_without_tick_size,
    missing_tick_sizes,
)
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.lakehouse.contracts import contract_problems
from quant_assets.orchestration.metadata import check_result, frame_metadata, picture
from quant_assets.orchestration.resources import (
    LakehouseResource,
    MarketDataResource,
    RiskResource,
    ScreeningResource,
)
from quant_assets.reporting.charts import (
    plot_correlation_heatmap,
    plot_regime_history,
    plot_weights_by_sleeve,
)
from quant_assets.risk.returns import PriceMatrix
from quant_assets.risk.stage import (
    allocate_barbell,
    assess_regime,
    check_weights,
    covariance_matrix,
    covariance_problems,
    estimate_signal_covariance,
    market_regime_history,
)
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals

# Single-run backfills are what these assets are built on; Dagster marks them as beta and
# warns at every definition and run.
warnings.filterwarnings("ignore", category=BetaWarning)

#: First business day with a partition; the synthetic market simulates a year before it.
PARTITIONS_START = "2022-01-01"
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

#: The regime's candidate set is every symbol in the liquid universe on any of this many days
#: up to D, so one day's churn at the edge of the universe does not move the market it measures.
#: The day's own partition is the asset's input; the days before it are read from the lakehouse.
#: (Declaring the window as a TimeWindowPartitionMapping would make Dagster add the next 29
#: days of regime to every backfill, computed without their own day's universe.)
UNIVERSE_WINDOW_DAYS = 30
_UNIVERSE_COLUMNS = ["symbol", "in_universe"]

#: Screener pool: the instance limits how many runs hit the scanner at once (deploy/local).
SCREENER_POOL = "tradingview_scanner"

_COMMON = dict(
    partitions_def=daily_partitions,
    io_manager_key="parquet_io_manager",
    backfill_policy=BackfillPolicy.single_run(),
)
_CONTRACT = "contract"


def _checks(asset_name: str, *names: str, blocking: tuple[str, ...] = ()) -> list[AssetCheckSpec]:
    """The data-contract check every asset has, plus ``names``."""
    return [
        AssetCheckSpec(name, asset=asset_name, blocking=name in blocking)
        for name in (_CONTRACT, *names)
    ]


def _contract_check(asset_name: str, frames: dict[str, pl.DataFrame]) -> AssetCheckResult:
    return check_result(
        _CONTRACT, {key: contract_problems(asset_name, frame, date.fromisoformat(key)) for key, frame in frames.items()}
    )


def _days(context: AssetExecutionContext) -> list[tuple[str, date]]:
    """The run's partitions, ascending: one in a normal run, a range in a single-run backfill."""
    return [(key, date.fromisoformat(key)) for key in sorted(context.partition_keys)]


def _prices(
    market_data: MarketDataResource,
    lakehouse: LakehouseResource,
    symbols_by_day: dict[str, list[str]],
    lookback_days: int,
) -> PriceMatrix:
    """Bars of every symbol any day of the run needs, from the first day's lookback to the last
    day, through the lakehouse's bars cache (the source is asked only for days not cached yet),
    pivoted once; each day cuts its own window (identical to fetching it alone)."""
    days = sorted(symbols_by_day)
    symbols = sorted(set().union(*symbols_by_day.values()))
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    cache = BarsCache(lakehouse.store().root)
    bars = cache.bars(market_data.get_source().daily_bars, symbols, first - timedelta(days=lookback_days), last)
    return PriceMatrix.from_bars(bars)


@asset(
    group_name="discovery",
    # Only this asset talks to the network: an unreachable screener gets the step retried, and
    # a pool caps how many runs query the screener at once.
    retry_policy=RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
    pool=SCREENER_POOL,
    check_specs=_checks("raw_screen", "all_configs_answered"),
    **_COMMON,
)
def raw_screen(
    context: AssetExecutionContext,
    market_data: MarketDataResource,
    screening: ScreeningResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Top instruments by Value.Traded per screening config, as the screener saw them at the close."""
    store = lakehouse.store()
    source = market_data.get_source(bars_cache_root=store.root)
    frames, failures = {}, {}
    days = _days(context)
    try:
        configs = screening.load()
        for key, day in days:
            fetched = fetch_raw_screen(source, configs, day, strict=screening.strict)
            for name, why in sorted(fetched.failures.items()):
                context.log.warning(f"config {name} failed and is left out of {key}: {why}")
            frames[key], failures[key] = fetched.frame, fetched.failures
    except SourceConnectionError:
        raise  # the screener was unreachable after the client's retries: retry the step later
    except QuantAssetsError as exc:  # a bad config or answer fails the same way every time
        span = days[0][0] if len(days) == 1 else f"{days[0][0]}..{days[-1][0]}"
        raise Failure(f"raw_screen {span}: {exc}", allow_retries=False) from exc
    for key, day in days:
        per_config = frames[key].group_by("config").len().sort("config")
        reconstructed = int(frames[key]["reconstructed"].sum()) if "reconstructed" in frames[key].columns else 0
        context.add_asset_metadata({
            **frame_metadata(frames[key], store.path("raw_screen", day)),
            "rows_per_config": {r["config"]: r["len"] for r in per_config.iter_rows(named=True)},
            "failed_configs": failures[key] or "none",
            "reconstructed": (
                f"{reconstructed} rows recomputed from cached daily bars, not seen by the scanner that "
                "day; only instruments listed today can appear (survivorship)"
            ) if reconstructed else "none",
        }, partition_key=key)
    yield Output(frames)
    yield _contract_check("raw_screen", frames)
    yield check_result(
        "all_configs_answered",
        {k: [f"{name}: {why}" for name, why in sorted(failed.items())] for k, failed in failures.items()},
        severity=AssetCheckSeverity.WARN,
    )


@asset(group_name="alpha", check_specs=_checks("liquid_universe"), **_COMMON)
def liquid_universe(
    context: AssetExecutionContext,
    raw_screen: dict[str, pl.DataFrame],
    screening: ScreeningResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Every screened candidate with the hygiene/liquidity gate that rejected it (null = in universe)."""
    configs, store = screening.load(), lakehouse.store()
    frames = {}
    for key, day in _days(context):
        frame = frames[key] = select_liquid_universe(raw_screen[key], configs)
        rejected = frame.group_by("rejected_by").len().sort("len", descending=True)
        context.add_asset_metadata({
            **frame_metadata(frame.filter(pl.col("in_universe")), store.path("liquid_universe", day)),
            "dagster/row_count": frame.height,
            "in_universe": int(frame["in_universe"].sum()),
            "rejections": {str(r["rejected_by"]): r["len"] for r in rejected.iter_rows(named=True)},
        }, partition_key=key)
    yield Output(frames)
    yield _contract_check("liquid_universe", frames)


@asset(group_name="alpha", check_specs=_checks("signals"), **_COMMON)
def signals(
    context: AssetExecutionContext,
    liquid_universe: dict[str, pl.DataFrame],
    screening: ScreeningResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """LONG/SHORT signals: universe members through the trend gates, ranked by alpha and cut."""
    configs, store = screening.load(), lakehouse.store()
    frames = {}
    for key, day in _days(context):
        frame = frames[key] = select_signals(liquid_universe[key], configs)
        chosen = frame.filter(pl.col("selected")).sort(["config", "rank"])
        context.add_asset_metadata({
            **frame_metadata(frame, store.path("signals", day), preview=chosen.select(
                "config", "rank", "symbol", "direction", "alpha_field", "alpha_value", "ADX")),
            "selected": chosen.height,
        }, partition_key=key)
    yield Output(frames)
    yield _contract_check("signals", frames)


@asset(
    group_name="risk",
    ins={"liquid_universe": AssetIn(metadata={"columns": _UNIVERSE_COLUMNS})},
    check_specs=_checks("regime", "label_valid"),
    **_COMMON,
)
def regime(
    context: AssetExecutionContext,
    liquid_universe: dict[str, pl.DataFrame],
    market_data: MarketDataResource,
    risk: RiskResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Market regime (QUIET / NORMAL / CRISIS) of the candidate universe, with its inputs."""
    settings, store = risk.settings(), lakehouse.store()
    first = daily_partitions.start.date()
    days = _days(context)
    universes = dict(liquid_universe)  # the run's days; earlier days of the windows from the lakehouse
    for k in range(1, UNIVERSE_WINDOW_DAYS):
        past = days[0][1] - timedelta(days=k)
        if past >= first and store.exists("liquid_universe", past):
            universes[past.isoformat()] = store.read("liquid_universe", past, columns=_UNIVERSE_COLUMNS)
    members = {}  # partition key -> its window's days, those materialised, and their universe
    for key, day in days:
        window = [day - timedelta(days=i) for i in range(UNIVERSE_WINDOW_DAYS - 1, -1, -1)]
        known = [d.isoformat() for d in window if d.isoformat() in universes]
        universe = pl.concat([universes[k] for k in known]).filter(pl.col("in_universe"))
        members[key] = (window, known, universe["symbol"].unique().sort().to_list())
    prices = _prices(market_data, lakehouse, {key: symbols for key, (_, _, symbols) in members.items()},
                     settings.regime_lookback_days)
    frames, newest = {}, max(members)
    for key, (window, known, symbols) in members.items():
        day = window[-1]
        frame = frames[key] = assess_regime(prices, day, settings, symbols)
        before_start = [d for d in window if d < first]
        not_materialised = [d.isoformat() for d in window if d >= first and d.isoformat() not in known]
        metadata = {
            **frame_metadata(frame, store.path("regime", day)),
            "regime": frame["regime"][0],
            "universe_window": f"{window[0]}..{day} ({UNIVERSE_WINDOW_DAYS} liquid_universe partitions)",
            "universe_partitions_missing": "; ".join(filter(None, [
                f"{len(before_start)} before the first partition {first}" if before_start else "",
                f"{len(not_materialised)} not materialised: {', '.join(not_materialised)}" if not_materialised else "",
            ])) or "none",
            "returns_window": f"{day - timedelta(days=settings.regime_lookback_days - 1)}..{day}",
        }
        if key == newest:  # one picture per run: the newest day, the one people look at
            history = market_regime_history(prices, day, settings, symbols)
            metadata["regime_history"] = picture(plot_regime_history(history), f"regime up to {day}")
        context.add_asset_metadata(metadata, partition_key=key)
    yield Output(frames)
    yield _contract_check("regime", frames)
    yield check_result("label_valid", {
        k: [] if f.height == 1 and f["regime"][0] in ("QUIET", "NORMAL", "CRISIS")
        else [f"labels {f['regime'].to_list()}, expected one of QUIET, NORMAL, CRISIS"]
        for k, f in frames.items()
    })


@asset(group_name="risk", check_specs=_checks("covariance", "symmetric_psd"), **_COMMON)
def covariance(
    context: AssetExecutionContext,
    signals: dict[str, pl.DataFrame],
    market_data: MarketDataResource,
    risk: RiskResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Ledoit-Wolf covariance of the signal legs' daily returns (SHORT legs sign-flipped), long form."""
    settings, store = risk.settings(), lakehouse.store()
    legs = {key: selected_signals(signals[key]) for key, _ in _days(context)}
    prices = _prices(market_data, lakehouse, {k: leg["symbol"].to_list() for k, leg in legs.items()}, settings.lookback_days)
    frames, newest = {}, max(legs)
    for key, day in _days(context):
        frame, info = estimate_signal_covariance(prices, legs[key], day, settings)
        frames[key] = frame
        metadata = {**frame_metadata(frame, store.path("covariance", day)), **info}
        if key == newest and frame.height:
            metadata["correlation"] = picture(plot_correlation_heatmap(*covariance_matrix(frame)), f"correlation on {day}")
        context.add_asset_metadata(metadata, partition_key=key)
    yield Output(frames)
    yield _contract_check("covariance", frames)
    yield check_result("symmetric_psd", {k: covariance_problems(f) for k, f in frames.items()})


@asset(
    group_name="risk",
    # Runs after the catalog so every constituent's tick size can be verified as of the day.
    deps=["metadata_catalog"],
    check_specs=_checks("barbell_weights", "weights_valid", "constituents_have_tick_size",
                        blocking=("constituents_have_tick_size",)),
    **_COMMON,
)
def barbell_weights(
    context: AssetExecutionContext,
    signals: dict[str, pl.DataFrame],
    regime: dict[str, pl.DataFrame],
    covariance: dict[str, pl.DataFrame],
    market_data: MarketDataResource,
    risk: RiskResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Barbell portfolio: max-diversification core plus antifragile aggressors, split by regime."""
    settings, store = risk.settings(), lakehouse.store()
    legs = {key: selected_signals(signals[key]) for key, _ in _days(context)}
    prices = _prices(market_data, lakehouse, {k: leg["symbol"].to_list() for k, leg in legs.items()}, settings.lookback_days)
    frames, untradeable, newest = {}, {}, max(legs)
    for key, day in _days(context):
        label = regime[key]["regime"][0]
        frame = frames[key] = allocate_barbell(prices, legs[key], covariance[key], label, day, settings)
        untradeable[key] = constituents_without_tick_size(frame, store.read("metadata_catalog", day))
        by_sleeve = frame.group_by("sleeve").agg(pl.col("weight").sum()).sort("sleeve")
        metadata = {
            **frame_metadata(frame, store.path("barbell_weights", day), preview=frame.sort("weight", descending=True)),
            "regime": label,
            "sleeve_weights": {r["sleeve"]: round(r["weight"], 6) for r in by_sleeve.iter_rows(named=True)},
        }
        if key == newest:
            metadata["weights_by_sleeve"] = picture(plot_weights_by_sleeve(frame), f"weights on {day}")
        context.add_asset_metadata(metadata, partition_key=key)
    yield Output(frames)
    yield _contract_check("barbell_weights", frames)
    yield check_result("weights_valid", {k: check_weights(f) for k, f in frames.items()})
    yield check_result("constituents_have_tick_size", {
        k: [f"no positive tick size for {', '.join(missing)}"] if missing else []
        for k, missing in untradeable.items()
    })


@asset(
    group_name="catalog",
    check_specs=_checks("metadata_catalog", "signals_have_tick_size", blocking=("signals_have_tick_size",)),
    **_COMMON,
)
def metadata_catalog(
    context: AssetExecutionContext,
    raw_screen: dict[str, pl.DataFrame],
    signals: dict[str, pl.DataFrame],
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """The day's symbol observations (tick size, pricescale, exchange...): the PIT catalog's facts."""
    store = lakehouse.store()
    frames = {}
    for key, day in _days(context):
        previous = store.read("metadata_catalog", day) if store.exists("metadata_catalog", day) else None
        frame = frames[key] = build_observations(raw_screen[key], signals[key], day, previous=previous)
        context.add_asset_metadata(
            {**frame_metadata(frame, store.path("metadata_catalog", day)), "symbols": frame.height},
            partition_key=key,
        )
    yield Output(frames)
    yield _contract_check("metadata_catalog", frames)
    yield check_result("signals_have_tick_size", {
        k: [f"no positive tick size for {', '.join(missing)}"] if (missing := missing_tick_sizes(f)) else []
        for k, f in frames.items()
    })


ASSETS = [raw_screen, liquid_universe, signals, regime, covariance, barbell_weights, metadata_catalog]
