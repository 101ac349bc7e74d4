"""Stage 3 for one business day: regime, covariance of the signal legs, barbell weights.

Each function takes the prices (bars a source returned, stamped up to the day, or a
:class:`PriceMatrix` of them), the day and the risk settings, and returns the frame its asset
stores. Bars after the day are never read: the returns panel cuts its window at the day.

A run of several days loads its inputs once: :func:`load_prices` reads the bars of every day's
lookback through the lakehouse's bars cache and pivots them once, and :func:`universe_windows`
assembles each day's window of liquid universes for the regime.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.risk.barbell import BARBELL_SCHEMA, BarbellConfig, build_barbell
from quant_assets.risk.covariance import estimate_covariance
from quant_assets.risk.regime import cross_sectional_dispersion, detect_regimes, turbulence_at
from quant_assets.risk.returns import MAX_STALE_DAYS, PriceMatrix, ReturnsPanel, equal_weight_market_returns
from quant_assets.risk.settings import RiskSettings
from quant_assets.sources.base import MarketSource

#: The regime's candidate set is every symbol in the liquid universe on any of this many days
#: up to D, so one day's churn at the edge of the universe does not move the market it measures.
UNIVERSE_WINDOW_DAYS = 30
#: The columns of ``liquid_universe`` the window reads.
UNIVERSE_COLUMNS = ["symbol", "in_universe"]


#: Daily bars (``date``, ``symbol``, ``close``), or the same already pivoted: a backfill pivots
#: the bars of its whole range once and cuts every day's window from the matrix.
Prices = pl.DataFrame | PriceMatrix


def _matrix(prices: Prices) -> PriceMatrix:
    return prices if isinstance(prices, PriceMatrix) else PriceMatrix.from_bars(prices)


def load_prices(
    source: MarketSource, cache: BarsCache, symbols_by_day: Mapping[date, Collection[str]], lookback_days: int
) -> PriceMatrix:
    """Closes of every symbol any of the days needs, from the first day's lookback to the last
    day, read through the bars cache (the source is asked only for days not cached yet) and
    pivoted once; each day then cuts its own window, identical to fetching it alone."""
    days = sorted(symbols_by_day)
    symbols = sorted(set().union(*symbols_by_day.values()))
    bars = cache.bars(source.daily_bars, symbols, days[0] - timedelta(days=lookback_days), days[-1])
    return PriceMatrix.from_bars(bars)


@dataclass(frozen=True)
class UniverseWindow:
    """The liquid universes one day's regime looks at.

    Attributes
    ----------
    days : tuple of datetime.date
        The window, oldest first, ending on the day.
    materialised : tuple of datetime.date
        The days of the window whose universe exists.
    symbols : tuple of str
        Every member of those universes, sorted.
    """

    days: tuple[date, ...]
    materialised: tuple[date, ...]
    symbols: tuple[str, ...]


def universe_windows(
    run_universes: Mapping[date, pl.DataFrame],
    store: PartitionStore,
    first_partition: date,
    window_days: int = UNIVERSE_WINDOW_DAYS,
) -> dict[date, UniverseWindow]:
    """Each day of a run (the keys of ``run_universes``, consecutive) with its window of
    ``window_days`` liquid universes.

    The run's own days come from ``run_universes`` (the asset's input); the earlier days of the
    first window are read from ``store`` where they were materialised (only
    :data:`UNIVERSE_COLUMNS`); days before ``first_partition`` have no partition.
    """
    days = sorted(run_universes)
    universes = dict(run_universes)
    for back in range(1, window_days):
        past = days[0] - timedelta(days=back)
        if past >= first_partition and store.exists("liquid_universe", past):
            universes[past] = store.read("liquid_universe", past, columns=UNIVERSE_COLUMNS)
    windows = {}
    for day in days:
        window = tuple(day - timedelta(days=back) for back in range(window_days - 1, -1, -1))
        known = tuple(d for d in window if d in universes)
        members = pl.concat([universes[d].select(UNIVERSE_COLUMNS) for d in known]).filter(pl.col("in_universe"))
        windows[day] = UniverseWindow(window, known, tuple(members["symbol"].unique().sort().to_list()))
    return windows


def market_regime_history(
    prices: Prices, day: date, settings: RiskSettings, symbols: Collection[str] | None = None
) -> pl.DataFrame:
    """The regime of every day of the lookback ending at ``day``, from the equal-weight
    (unhedged) returns of ``symbols`` (default: every symbol in ``prices``).

    Returns
    -------
    pl.DataFrame
        One row per union-calendar day: ``date``, ``regime``, ``vol_short``, ``vol_long``,
        ``vol_ratio``, ``dispersion_ratio`` (of the symbols' cross-sectional dispersion; null
        until two of them have returns), ``warm_up`` (see :func:`detect_regimes`), plus
        ``n_symbols`` and ``n_days`` of history used.

    Raises
    ------
    ValidationError
        If no symbol has ``min_observations`` returns in the lookback (a symbol whose last bar
        is more than :data:`MAX_STALE_DAYS` days before ``day`` is not counted).
    """
    history, _ = _regime_history(prices, day, settings, symbols)
    if history is None:
        raise ValidationError(f"regime {day}: {no_regime_reason(settings)}")
    return history


def _regime_history(
    prices: Prices, day: date, settings: RiskSettings, symbols: Collection[str] | None
) -> tuple[pl.DataFrame | None, ReturnsPanel]:
    """The regime history and the panel it was measured on; no history without symbols."""
    panel = _session_panel(
        _matrix(prices), day, settings.regime_lookback_days, symbols=symbols, min_observations=settings.min_observations
    )
    if not panel.symbols:
        return None, panel
    history = detect_regimes(equal_weight_market_returns(panel), panel.dates, settings.regime,
                             dispersion=cross_sectional_dispersion(panel.values))
    history = history.with_columns(
        n_symbols=pl.lit(len(panel.symbols), pl.Int64), n_days=pl.lit(len(panel.dates), pl.Int64)
    )
    return history, panel


def no_regime_reason(settings: RiskSettings) -> str:
    """Why a day has no regime: its universe has no name with enough history."""
    return (
        f"no symbol of the universe has {settings.min_observations} returns in the "
        f"{settings.regime_lookback_days}-day lookback"
    )


#: The columns of :func:`assess_regime`'s frame, also those of an empty regime partition.
REGIME_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date, "session": pl.Date, "regime": pl.String, "vol_short": pl.Float64,
    "vol_long": pl.Float64, "vol_ratio": pl.Float64, "dispersion_ratio": pl.Float64, "warm_up": pl.Boolean,
    "turbulence": pl.Float64, "n_symbols": pl.Int64, "n_days": pl.Int64,
}


def assess_regime(
    prices: Prices, day: date, settings: RiskSettings, symbols: Collection[str] | None = None
) -> pl.DataFrame:
    """The regime on ``day`` from the equal-weight (unhedged) returns of ``symbols`` (default:
    every symbol in ``prices``).

    Returns
    -------
    pl.DataFrame
        One row (:data:`REGIME_SCHEMA`): the last row of :func:`market_regime_history`, dated
        ``day``, with ``session`` (the last day on or before ``day`` on which the universe
        traded: ``day`` itself, or the Friday before a weekend of stocks and futures) and that
        session's ``turbulence`` (null in the first ``turbulence_window`` days of history).
        No row when no symbol has the history to measure a market (an empty screen, a universe
        of new listings): see :func:`no_regime_reason`.
    """
    history, panel = _regime_history(prices, day, settings, symbols)
    if history is None:
        return pl.DataFrame(schema=REGIME_SCHEMA)
    # Only the day's turbulence is kept, so only the day's is computed (O(1) estimates, not O(T)).
    turbulence = turbulence_at(panel.values, len(panel.dates) - 1, settings.regime.turbulence_window)
    # On a day its markets were closed, the regime is that of their last session before it.
    return history.tail(1).select(
        pl.lit(day).alias("date"),
        pl.col("date").alias("session"),
        pl.exclude("date", "n_symbols", "n_days"),
        pl.Series("turbulence", [turbulence], dtype=pl.Float64).fill_nan(None),
        "n_symbols",
        "n_days",
    )


def _session_panel(prices: PriceMatrix, day: date, lookback_days: int, *, symbols: Collection[str] | None,
                   **options: Any) -> ReturnsPanel:
    """The returns panel of the lookback ending at the symbols' last session on or before
    ``day``: on a day their markets were closed, exactly the panel of that session."""
    session = prices.last_session(day, symbols)
    if session is None:
        stale = f"no bar within {MAX_STALE_DAYS} days before {day}"
        return ReturnsPanel((), (), np.empty((0, 0)), {s: stale for s in symbols or ()})
    return prices.returns_panel(session, lookback_days, symbols=symbols, **options)


def _legs_panel(prices: Prices, legs: pl.DataFrame, day: date, settings: RiskSettings) -> ReturnsPanel:
    directions = dict(zip(legs["symbol"].to_list(), legs["direction"].to_list()))
    panel = _session_panel(
        _matrix(prices), day, settings.lookback_days, symbols=list(directions),
        min_observations=settings.min_observations, kind=settings.returns_kind, directions=directions,
    )
    return panel.complete(settings.min_coverage)


def estimate_signal_covariance(
    prices: Prices, legs: pl.DataFrame, day: date, settings: RiskSettings
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Shrunk covariance of the legs' daily position returns (SHORT legs sign-flipped).

    Returns
    -------
    frame
        Long form: ``date``, ``session`` (the last day of the returns window: ``day``, or the
        legs' last session before it when their markets were closed), ``symbol_a``,
        ``symbol_b``, ``covariance`` (daily, in return²), N² rows sorted by (symbol_a,
        symbol_b); no row when no leg has the history (or there are no legs).
    info
        ``shrinkage``, ``n_observations``, the window, and the symbols dropped with reasons.
    """
    panel = _legs_panel(prices, legs, day, settings)
    symbols = list(panel.symbols)
    if symbols:
        cov, shrinkage = estimate_covariance(panel.values, settings.covariance_method)
    else:
        cov, shrinkage = np.empty((0, 0)), float("nan")
    n = len(symbols)
    session = panel.dates[-1] if panel.dates else None
    frame = pl.DataFrame(
        {
            "date": [day] * (n * n),
            "session": [session] * (n * n),
            "symbol_a": np.repeat(symbols, n).tolist(),
            "symbol_b": symbols * n,
            "covariance": cov.ravel(),
        },
        schema={"date": pl.Date, "session": pl.Date, "symbol_a": pl.String, "symbol_b": pl.String,
                "covariance": pl.Float64},
    )
    info = {
        "method": settings.covariance_method,
        "shrinkage": float(shrinkage),
        "n_symbols": n,
        "n_observations": len(panel.dates),
        "window": f"{panel.dates[0]}..{panel.dates[-1]}" if panel.dates else "empty",
        "dropped": "; ".join(f"{s}: {why}" for s, why in sorted(panel.dropped.items())) or "none",
    }
    return frame, info


def covariance_matrix(frame: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Symbols and the (N, N) matrix back from the long form of :func:`estimate_signal_covariance`."""
    symbols = sorted(frame["symbol_a"].unique().to_list())
    n = len(symbols)
    if frame.height != n * n:
        raise ValidationError(f"covariance frame has {frame.height} rows, expected {n}² = {n * n}")
    ordered = frame.sort(["symbol_a", "symbol_b"])
    return symbols, ordered["covariance"].to_numpy().reshape(n, n)


def covariance_problems(frame: pl.DataFrame, tol: float = 1e-10) -> list[str]:
    """Ways the long-form covariance is not a covariance: not square, NaN, asymmetric, not PSD.

    ``tol`` is relative to the largest variance.
    """
    try:
        symbols, cov = covariance_matrix(frame)
    except ValidationError as exc:
        return [str(exc)]
    if not symbols:
        return []  # an empty book has an empty covariance
    if not np.isfinite(cov).all():
        return [f"{int((~np.isfinite(cov)).sum())} NaN or infinite entries"]
    scale = max(float(np.abs(np.diag(cov)).max()), np.finfo(float).tiny)
    problems = []
    asymmetry = float(np.abs(cov - cov.T).max())
    if asymmetry > tol * scale:
        problems.append(f"not symmetric: max |C - C'| = {asymmetry:.3g}")
    smallest = float(np.linalg.eigvalsh((cov + cov.T) / 2.0)[0])
    if smallest < -tol * scale:
        problems.append(f"not positive semi-definite: smallest eigenvalue {smallest:.3g}")
    return problems


def market_returns(prices: Prices, day: date, settings: RiskSettings, symbols: Collection[str]) -> dict[date, float]:
    """The equal-weight (unhedged) return of ``symbols`` on every day of the covariance
    lookback ending at their last session on or before ``day``: the market the barbell measures
    its legs' convexity against. Empty when no symbol has the history."""
    panel = _session_panel(_matrix(prices), day, settings.lookback_days, symbols=symbols,
                           min_observations=settings.min_observations)
    if not panel.symbols:
        return {}
    return dict(zip(panel.dates, equal_weight_market_returns(panel).tolist()))


def allocate_barbell(
    prices: Prices,
    legs: pl.DataFrame,
    covariance: pl.DataFrame,
    regime: str | None,
    day: date,
    settings: RiskSettings,
    market: Mapping[date, float],
) -> pl.DataFrame:
    """Barbell weights for ``day`` over the legs the covariance kept.

    ``market`` is the market's return by day (:func:`market_returns` of the day's universe); a
    leg's antifragility is its convexity to it, fitted on the days the leg's market was open. A
    day of the legs' window the market has no return for counts as a flat market day.

    Returns
    -------
    pl.DataFrame
        ``date``, ``session`` (that of the returns window, as in the covariance), ``symbol``,
        ``direction``, ``sleeve`` (core | aggressor), ``weight``, ``antifragility``, ``cap``
        (``max_weight``, or wider for a book too small for it), ``regime``; weights sum to 1,
        or no row when the covariance has no symbol (an empty book).

    Raises
    ------
    ValidationError
        If the returns do not cover the covariance's symbols, or the book is not empty but the
        day has no ``regime``.
    """
    symbols, cov = covariance_matrix(covariance)
    matrix = _matrix(prices)
    panel = _legs_panel(matrix, legs, day, settings)
    if list(panel.symbols) != symbols:
        raise ValidationError(
            f"barbell_weights {day}: returns cover {list(panel.symbols)} but the covariance has {symbols}"
        )
    if not symbols:
        weights = pl.DataFrame(schema=BARBELL_SCHEMA)
    elif regime is None:
        raise ValidationError(f"barbell_weights {day}: {len(symbols)} legs to allocate to but no regime for the day")
    else:
        config = BarbellConfig(
            core_share=dict(settings.core_share),
            n_aggressors=settings.n_aggressors,
            max_weight=settings.max_weight,
        )
        market_return = np.array([market.get(d, 0.0) for d in panel.dates])
        traded = matrix.traded(panel.dates, symbols)
        weights = build_barbell(panel.values, market_return, cov, symbols, regime, config, traded=traded)
    directions = legs.select("symbol", "direction")
    session = panel.dates[-1] if panel.dates else None
    return (
        weights.join(directions, on="symbol", how="left")
        .with_columns(date=pl.lit(day), session=pl.lit(session, pl.Date), regime=pl.lit(regime, pl.String))
        .select("date", "session", "symbol", "direction", "sleeve", "weight", "antifragility", "cap", "regime")
        .sort("symbol")
    )


def book_warnings(weights: pl.DataFrame, settings: RiskSettings) -> list[str]:
    """Ways the day's book departs from its configuration without being wrong: no legs at all,
    or too few names for ``max_weight`` (the cap widened to 1/N)."""
    if weights.is_empty():
        return ["empty book: no signal leg has the history to be weighted"]
    cap = float(weights["cap"].max())
    if cap > settings.max_weight:
        return [f"{weights.height} names cannot hold the book under max_weight {settings.max_weight:g}: "
                f"cap widened to 1/{weights.height} = {cap:.6g}"]
    return []


def check_weights(weights: pl.DataFrame, tol: float = 1e-9) -> list[str]:
    """Problems with a weights frame: total not 1, a negative weight, a weight over its cap."""
    if weights.is_empty():
        return []  # an empty book (book_warnings says so)
    problems = []
    total = float(weights["weight"].sum())
    if abs(total - 1.0) > tol:
        problems.append(f"weights sum to {total:.12f}, not 1")
    negative = weights.filter(pl.col("weight") < -tol)["symbol"].to_list()
    if negative:
        problems.append(f"negative weights: {negative}")
    over = weights.filter(pl.col("weight") > pl.col("cap") + tol)["symbol"].to_list()
    if over:
        problems.append(f"weights above their cap: {over}")
    return problems
