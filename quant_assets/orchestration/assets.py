"""The daily-partitioned assets: the workflow's seven and the backtest. Each turns its
partitions into dates, calls a resource and one core function per day, and returns the frames
with metadata and check results; no maths, SQL or HTTP here.

Every asset runs over a range of partitions in one run (``BackfillPolicy.single_run()``): a
backfill of a year is one run that shares the market data, sources and sessions across the
days, and writes each partition on its own. A run of one partition is the same code with a
range of one day, so both give identical partitions.

No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation at
definition time and rejects it as a string.
"""

import warnings
from collections.abc import Collection, Mapping
from datetime import date, timedelta
from typing import Any, Callable, Iterator

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
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
)

from quant_assets.backtest.books import book_day, empty_day, ledger_problems
from quant_assets.backtest.daily import load_run
from quant_assets.backtest.report import history, tearsheet
from quant_assets.errors import QuantAssetsError, SourceConnectionError
from quant_assets.lakehouse.catalog import (
    build_observations,
    constituents_without_tick_size,
    missing_tick_sizes,
)
from quant_assets.lakehouse.contracts import contract_problems
from quant_assets.orchestration.metadata import check_result, frame_metadata, markdown_table, picture
from quant_assets.orchestration.resources import (
    CostsResource,
    LakehouseResource,
    MarketDataResource,
    RiskResource,
    ScreeningResource,
)
from quant_assets.reporting.charts import draw_correlation_heatmap, draw_regime_history, draw_weights_by_sleeve
from quant_assets.risk.daily import (
    UNIVERSE_COLUMNS,
    UNIVERSE_WINDOW_DAYS,
    allocate_barbell,
    assess_regime,
    book_warnings,
    check_weights,
    covariance_matrix,
    covariance_problems,
    estimate_signal_covariance,
    load_prices,
    market_returns,
    market_regime_history,
    no_regime_reason,
    universe_windows,
)
from quant_assets.risk.returns import PriceMatrix
from quant_assets.risk.settings import RiskSettings
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals

# Single-run backfills are what these assets are built on; Dagster marks them as beta and
# warns at every definition and run.
warnings.filterwarnings("ignore", category=BetaWarning)

#: First business day with a partition; the synthetic market simulates a year before it.
PARTITIONS_START = "2022-01-01"
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

#: Screener pool: the instance limits how many runs hit the scanner at once (deploy/local).
SCREENER_POOL = "tradingview_scanner"

_COMMON = dict(
    partitions_def=daily_partitions,
    io_manager_key="parquet_io_manager",
    backfill_policy=BackfillPolicy.single_run(),
)
_CONTRACT = "contract"
#: A warning check: the partition has no rows (an empty screen flows through as empty partitions).
_HAS_ROWS = "has_rows"
#: Metadata key saying why a partition has no rows (a build sets it when it knows better than
#: :data:`_NO_ROWS`).
_EMPTY = "empty"
_NO_ROWS = "no rows: its inputs on the day have none"

#: What one partition's computation returns: its frame and its metadata.
Built = tuple[pl.DataFrame, dict[str, Any]]


def _checks(asset_name: str, *names: str, blocking: tuple[str, ...] = ()) -> list[AssetCheckSpec]:
    """The data-contract and has-rows checks every asset has, plus ``names``."""
    return [
        AssetCheckSpec(name, asset=asset_name, blocking=name in blocking)
        for name in (_CONTRACT, _HAS_ROWS, *names)
    ]


def _days(context: AssetExecutionContext) -> list[date]:
    """The run's partitions, ascending: one in a normal run, a range in a single-run backfill."""
    return [date.fromisoformat(key) for key in sorted(context.partition_keys)]


def _each_day(context: AssetExecutionContext, build: Callable[[date], Built]) -> dict[str, pl.DataFrame]:
    """``build`` every partition of the run, attach each one's metadata; ``{key: frame}``.

    An empty partition is a result, not an error (an empty screen, a book with no legs): its
    metadata says why under ``empty``, and the asset's ``has_rows`` check warns.
    """
    frames = {}
    for day in _days(context):
        key = day.isoformat()
        frames[key], metadata = build(day)
        if frames[key].is_empty():
            metadata.setdefault(_EMPTY, _NO_ROWS)
        context.add_asset_metadata(metadata, partition_key=key)
    return frames


def _results(
    asset_name: str, frames: dict[str, pl.DataFrame], *checks: AssetCheckResult
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """The run's output (one frame per partition), its data-contract and has-rows checks, then
    ``checks``."""
    yield Output(frames)
    yield check_result(
        _CONTRACT, {key: contract_problems(asset_name, frame, date.fromisoformat(key)) for key, frame in frames.items()}
    )
    yield check_result(_HAS_ROWS, {key: [] if frame.height else [f"{asset_name} {key} has no rows"]
                                   for key, frame in frames.items()}, severity=AssetCheckSeverity.WARN)
    yield from checks


def _session(frame: pl.DataFrame, day: date) -> dict[str, str]:
    """Metadata naming the market session a risk partition reflects: the day itself, or the
    last session before it when its markets were closed (a weekend, a holiday)."""
    sessions = frame["session"].unique().drop_nulls()
    if sessions.is_empty():
        return {"session": "none"}
    session = sessions.max()
    return {"session": str(session) if session == day else f"{session} (markets closed on {day})"}


def _window(frame: pl.DataFrame, lookback_days: int) -> str:
    """The calendar window a risk partition's returns come from: the lookback ending at its session."""
    if frame.is_empty():
        return "none"
    session = frame["session"][0]
    return f"{session - timedelta(days=lookback_days - 1)}..{session}"


def _legs_and_prices(
    context: AssetExecutionContext,
    signals: dict[str, pl.DataFrame],
    market_data: MarketDataResource,
    lakehouse: LakehouseResource,
    settings: RiskSettings,
    market: Mapping[date, Collection[str]] | None = None,
) -> tuple[dict[date, pl.DataFrame], PriceMatrix]:
    """Each day's portfolio legs, and the prices of every leg (and of each day's ``market``
    symbols) over the run's lookbacks."""
    legs = {day: selected_signals(signals[day.isoformat()]) for day in _days(context)}
    wanted = {day: {*leg["symbol"].to_list(), *(market or {}).get(day, ())} for day, leg in legs.items()}
    prices = load_prices(market_data.get_source(), lakehouse.bars_cache(), wanted, settings.lookback_days)
    return legs, prices


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
    source = market_data.get_source(bars_cache=lakehouse.bars_cache())
    failures = {}

    def build(day: date) -> Built:
        fetched = fetch_raw_screen(source, configs, day, strict=screening.strict)
        for name, why in sorted(fetched.failures.items()):
            context.log.warning(f"config {name} failed and is left out of {day}: {why}")
        frame, failures[day.isoformat()] = fetched.frame, fetched.failures
        per_config = frame.group_by("config").len().sort("config")
        reconstructed = int(frame["reconstructed"].sum()) if "reconstructed" in frame.columns else 0
        return frame, {
            **frame_metadata(frame, store, "raw_screen", day),
            "rows_per_config": {r["config"]: r["len"] for r in per_config.iter_rows(named=True)},
            "failed_configs": fetched.failures or "none",
            "reconstructed": (
                f"{reconstructed} rows recomputed from cached daily bars, not seen by the scanner that "
                "day; only instruments listed today can appear (survivorship)"
            ) if reconstructed else "none",
        }

    try:
        configs = screening.load()
        frames = _each_day(context, build)
    except SourceConnectionError:
        raise  # the screener was unreachable after the client's retries: retry the step later
    except QuantAssetsError as exc:  # a bad config or answer fails the same way every time
        days = _days(context)
        span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
        raise Failure(f"raw_screen {span}: {exc}", allow_retries=False) from exc
    yield from _results("raw_screen", frames, check_result(
        "all_configs_answered",
        {k: [f"{name}: {why}" for name, why in sorted(failed.items())] for k, failed in failures.items()},
        severity=AssetCheckSeverity.WARN,
    ))


@asset(group_name="alpha", check_specs=_checks("liquid_universe"), **_COMMON)
def liquid_universe(
    context: AssetExecutionContext,
    raw_screen: dict[str, pl.DataFrame],
    screening: ScreeningResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Every screened candidate with the hygiene/liquidity gate that rejected it (null = in universe)."""
    configs, store = screening.load(), lakehouse.store()

    def build(day: date) -> Built:
        frame = select_liquid_universe(raw_screen[day.isoformat()], configs)
        rejected = frame.group_by("rejected_by").len().sort("len", descending=True)
        return frame, {
            **frame_metadata(frame.filter(pl.col("in_universe")), store, "liquid_universe", day),
            "dagster/row_count": frame.height,
            "in_universe": int(frame["in_universe"].sum()),
            "rejections": {str(r["rejected_by"]): r["len"] for r in rejected.iter_rows(named=True)},
        }

    yield from _results("liquid_universe", _each_day(context, build))


@asset(group_name="alpha", check_specs=_checks("signals"), **_COMMON)
def signals(
    context: AssetExecutionContext,
    liquid_universe: dict[str, pl.DataFrame],
    screening: ScreeningResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """LONG/SHORT signals: universe members through the trend gates, ranked by alpha and cut."""
    configs, store = screening.load(), lakehouse.store()

    def build(day: date) -> Built:
        frame = select_signals(liquid_universe[day.isoformat()], configs)
        chosen = frame.filter(pl.col("selected")).sort(["config", "rank"])
        return frame, {
            **frame_metadata(frame, store, "signals", day, preview=chosen.select(
                "config", "rank", "symbol", "direction", "alpha_field", "alpha_value", "ADX")),
            "selected": chosen.height,
        }

    yield from _results("signals", _each_day(context, build))


@asset(
    group_name="risk",
    # Only the day's own universe is a Dagster input; the 29 days before it are read from the
    # lakehouse (a TimeWindowPartitionMapping would make Dagster add the next 29 days of regime
    # to every backfill, computed without their own day's universe).
    ins={"liquid_universe": AssetIn(metadata={"columns": UNIVERSE_COLUMNS})},
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
    windows = universe_windows({date.fromisoformat(k): f for k, f in liquid_universe.items()}, store, first)
    prices = load_prices(market_data.get_source(), lakehouse.bars_cache(),
                         {day: window.symbols for day, window in windows.items()}, settings.regime_lookback_days)
    newest = max(windows)

    def build(day: date) -> Built:
        window = windows[day]
        frame = assess_regime(prices, day, settings, window.symbols)
        before_start = [d for d in window.days if d < first]
        not_materialised = [d.isoformat() for d in window.days if d >= first and d not in window.materialised]
        metadata = {
            **frame_metadata(frame, store, "regime", day),
            **_session(frame, day),
            "regime": frame["regime"][0] if frame.height else "none",
            "universe_window": f"{window.days[0]}..{day} ({UNIVERSE_WINDOW_DAYS} liquid_universe partitions)",
            "universe_partitions_missing": "; ".join(filter(None, [
                f"{len(before_start)} before the first partition {first}" if before_start else "",
                f"{len(not_materialised)} not materialised: {', '.join(not_materialised)}" if not_materialised else "",
            ])) or "none",
            "returns_window": _window(frame, settings.regime_lookback_days),
        }
        if frame.is_empty():
            metadata[_EMPTY] = no_regime_reason(settings)
        elif day == newest:  # one picture per run: the newest day, the one people look at
            history = market_regime_history(prices, day, settings, window.symbols)
            metadata["regime_history"] = picture(draw_regime_history(history), f"regime up to {day}")
        return frame, metadata

    frames = _each_day(context, build)
    yield from _results("regime", frames, check_result("label_valid", {
        k: [] if f.height <= 1 and f["regime"].is_in(["QUIET", "NORMAL", "CRISIS"]).all()
        else [f"labels {f['regime'].to_list()}, expected one of QUIET, NORMAL, CRISIS"]
        for k, f in frames.items()
    }))


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
    legs, prices = _legs_and_prices(context, signals, market_data, lakehouse, settings)
    newest = max(legs)

    def build(day: date) -> Built:
        frame, info = estimate_signal_covariance(prices, legs[day], day, settings)
        metadata = {**frame_metadata(frame, store, "covariance", day), **_session(frame, day), **info}
        if frame.is_empty():
            metadata[_EMPTY] = (f"none of the {legs[day].height} signal legs has the history (dropped: "
                                f"{info['dropped']})" if legs[day].height else "no signal leg selected")
        if day == newest and frame.height:
            metadata["correlation"] = picture(draw_correlation_heatmap(*covariance_matrix(frame)), f"correlation on {day}")
        return frame, metadata

    frames = _each_day(context, build)
    yield from _results("covariance", frames,
                        check_result("symmetric_psd", {k: covariance_problems(f) for k, f in frames.items()}))


@asset(
    group_name="risk",
    # Runs after the catalog so every constituent's tick size can be verified as of the day.
    deps=["metadata_catalog"],
    # The universe is the market the legs' convexity is measured against, the regime's market
    # (its window's earlier days are read from the lakehouse, as the regime reads them).
    ins={"liquid_universe": AssetIn(metadata={"columns": UNIVERSE_COLUMNS})},
    check_specs=_checks("barbell_weights", "weights_valid", "book_as_configured", "constituents_have_tick_size",
                        blocking=("constituents_have_tick_size",)),
    **_COMMON,
)
def barbell_weights(
    context: AssetExecutionContext,
    signals: dict[str, pl.DataFrame],
    liquid_universe: dict[str, pl.DataFrame],
    regime: dict[str, pl.DataFrame],
    covariance: dict[str, pl.DataFrame],
    market_data: MarketDataResource,
    risk: RiskResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """Barbell portfolio: max-diversification core plus antifragile aggressors (legs convex in
    the market), split by regime."""
    settings, store = risk.settings(), lakehouse.store()
    windows = universe_windows({date.fromisoformat(k): f for k, f in liquid_universe.items()}, store,
                               daily_partitions.start.date())
    universes = {day: window.symbols for day, window in windows.items()}
    legs, prices = _legs_and_prices(context, signals, market_data, lakehouse, settings, market=universes)
    newest, untradeable = max(legs), {}

    def build(day: date) -> Built:
        key = day.isoformat()
        label = regime[key]["regime"][0] if regime[key].height else None
        market = market_returns(prices, day, settings, universes[day])
        frame = allocate_barbell(prices, legs[day], covariance[key], label, day, settings, market)
        untradeable[key] = constituents_without_tick_size(frame, store.read("metadata_catalog", day))
        by_sleeve = frame.group_by("sleeve").agg(pl.col("weight").sum()).sort("sleeve")
        metadata = {
            **frame_metadata(frame, store, "barbell_weights", day, preview=frame.sort("weight", descending=True)),
            **_session(frame, day),
            "regime": label or "none",
            "sleeve_weights": {r["sleeve"]: round(r["weight"], 6) for r in by_sleeve.iter_rows(named=True)},
            "book": "; ".join(book_warnings(frame, settings)) or "as configured",
        }
        if frame.is_empty():
            metadata[_EMPTY] = "empty book: the covariance kept no signal leg"
        elif day == newest:
            metadata["weights_by_sleeve"] = picture(draw_weights_by_sleeve(frame), f"weights on {day}")
        return frame, metadata

    frames = _each_day(context, build)
    yield from _results(
        "barbell_weights", frames,
        check_result("weights_valid", {k: check_weights(f) for k, f in frames.items()}),
        check_result("book_as_configured", {k: book_warnings(f, settings) for k, f in frames.items()},
                     severity=AssetCheckSeverity.WARN),
        check_result("constituents_have_tick_size", {
            k: [f"no positive tick size for {', '.join(missing)}"] if missing else []
            for k, missing in untradeable.items()
        }),
    )


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

    def build(day: date) -> Built:
        key = day.isoformat()
        frame = build_observations(raw_screen[key], signals[key], day)
        return frame, {**frame_metadata(frame, store, "metadata_catalog", day), "symbols": frame.height}

    frames = _each_day(context, build)
    yield from _results("metadata_catalog", frames, check_result("signals_have_tick_size", {
        k: [f"no positive tick size for {', '.join(missing)}"] if (missing := missing_tick_sizes(f)) else []
        for k, f in frames.items()
    }))


@asset(
    group_name="performance",
    # Partition D reads the partitions of the last two decisions before D from the lakehouse,
    # never D's own: these edges order the steps, they load nothing.
    deps=["barbell_weights", "signals", "regime", "metadata_catalog"],
    check_specs=_checks("portfolio_returns", "legs_add_up"),
    **_COMMON,
)
def portfolio_returns(
    context: AssetExecutionContext,
    market_data: MarketDataResource,
    costs: CostsResource,
    risk: RiskResource,
    lakehouse: LakehouseResource,
) -> Iterator[Output[dict[str, pl.DataFrame]] | AssetCheckResult]:
    """What each book earned over the day, net of costs, with its legs: the barbell and three
    benchmarks (:mod:`quant_assets.backtest.books`). Over D each book holds what was decided at
    the last close before D, drifted with prices, and pays for the trade into it."""
    store, settings, days = lakehouse.store(), costs.settings(), _days(context)
    inputs = load_run(store, market_data.get_source(), lakehouse.bars_cache(), days, risk.settings().core_share)

    def build(day: date) -> Built:
        held, before = inputs.schedule[day]
        if held is None:
            frame = empty_day()
            return frame, {**frame_metadata(frame, store, "portfolio_returns", day),
                           _EMPTY: f"no barbell_weights partition before {day}: nothing is held yet"}
        frame = book_day(day, inputs.decisions[held], inputs.decisions.get(before), inputs.market, settings)
        return frame, {
            **frame_metadata(frame, store, "portfolio_returns", day, preview=frame.drop("legs")),
            "decided_on": str(held),
            "net_return": {book: round(r, 8) for book, r in frame.select("book", "net_return").iter_rows()},
        }

    returns = _each_day(context, build)
    newest = days[-1].isoformat()
    if returns[newest].height:  # the tearsheet of everything up to the run's newest day
        figure, table = tearsheet(pl.concat([history(store, end=days[0] - timedelta(days=1)),
                                             *(frame.drop("legs") for frame in returns.values())]))
        context.add_asset_metadata({
            "tearsheet": picture(figure, f"what the book earned up to {newest}"),
            "performance": MetadataValue.md(markdown_table(table, max_rows=table.height)),
        }, partition_key=newest)
    ledger = ledger_problems(pl.concat(returns.values()))
    yield from _results("portfolio_returns", returns, check_result(
        "legs_add_up", {key: ledger.get(date.fromisoformat(key), []) for key in returns}))


ASSETS = [raw_screen, liquid_universe, signals, regime, covariance, barbell_weights, metadata_catalog,
          portfolio_returns]
