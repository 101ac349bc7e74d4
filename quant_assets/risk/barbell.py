"""Barbell portfolio: a maximum-diversification safe core plus a small convex aggressor sleeve.

Rules (DESIGN.md §1 Stage 3), in the order :func:`build_barbell` applies them. They give a
book whose weights sum to 1 for any number of names N >= 1 (an empty book is an empty frame):

1. Every name gets an antifragility score (:func:`antifragility_score`): its convexity to the
   market, zero unless significant.
2. The cap is ``max_weight``, unless N names cannot hold the whole book under it
   (``N * max_weight < 1``, e.g. a book of three names under a 0.2 cap): then the cap widens to
   ``1 / N``, the tightest cap that book allows, and the ``cap`` column says so (the asset
   turns that into a warning check). One name alone gets weight 1.
3. The core must hold its share ``core_share[regime]`` under the cap, which takes at least
   ``ceil(core_share / cap)`` names. Aggressors are the highest **positive** scores (ties broken
   by symbol, so the input order never matters), at most ``n_aggressors`` of them and never so
   many that fewer names than that are left to the core: a small book has fewer aggressors, not
   a thinner core. A name with a score <= 0 has no proven convexity to offer and stays in the
   core, so most days have fewer aggressors than ``n_aggressors``, often none; if no score is
   positive (or ``n_aggressors = 0``), the core takes the whole book.
4. The aggressor sleeve has ``n_aggressors`` slots of ``(1 - core_share[regime]) / n_aggressors``
   each; a slot no name qualifies for leaves its part to the core, so ``core_share`` is the
   core's least share and one convex name does not get the whole sleeve. The sleeve's target,
   its filled slots' parts, is spread equally or in proportion to the scores. Each aggressor is
   capped; overshoot is handed to the uncapped aggressors (water-filling) and, when every
   aggressor is at the cap, the remainder goes to the core, whose share then grows.
5. The core is the maximum-diversification portfolio of the other names with per-asset caps
   ``cap / core_total``, so that combined weights respect the cap.
6. A core share of 0 (allowed by the config) may leave every name an aggressor: the aggressors
   then take the whole book under the same cap.

Rules 2 and 3 make every book feasible: N names under a cap >= 1/N can always hold 1, and the
core keeps enough names for its share. Only a failed optimisation raises
:class:`OptimisationError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np
import polars as pl
from scipy.stats import norm

from quant_assets.errors import ConfigError, OptimisationError, ValidationError
from quant_assets.risk.max_diversification import WEIGHT_TOLERANCE, max_diversification

#: Output columns of :func:`build_barbell`, in this order.
BARBELL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String, "sleeve": pl.String, "weight": pl.Float64, "antifragility": pl.Float64, "cap": pl.Float64,
}
BARBELL_COLUMNS: tuple[str, ...] = tuple(BARBELL_SCHEMA)

_DEFAULT_CORE_SHARE = MappingProxyType({"QUIET": 0.85, "NORMAL": 0.90, "CRISIS": 0.95})
#: Chance that a book of linear names gets any aggressor (:func:`antifragility_score`'s bar).
FAMILY_ERROR = 0.05
#: Fewest days of returns a convexity is estimated from.
MIN_SCORE_OBSERVATIONS = 10


def antifragility_score(
    returns: np.ndarray,
    market: np.ndarray,
    *,
    traded: np.ndarray | None = None,
    family_error: float = FAMILY_ERROR,
) -> np.ndarray:
    """Score each column's convexity to the market, zero unless it is significant.

    Each column ``y`` (a leg's position returns) is regressed on the market return and on its
    absolute deviation, the payoff of a straddle on the market: the market-timing regression of
    Treynor & Mazuy ("Can mutual funds outguess the market?", Harvard Business Review 1966) with
    the option payoff of Henriksson & Merton (Journal of Business 1981) in place of the square:

    ``y_t = a + b (m_t - mean m) + c (|m_t - mean m| - mean |m - mean m|) + e_t``

    ``c > 0`` is convexity: the leg gains more in big market moves, up or down, than its beta
    explains, as a long option does. A linear name (any beta, any drift, any symmetric or skewed
    noise of its own, jumps included) has ``c = 0``. The score is ``c * std|m - mean m| / std(y)``,
    the convex term's share of the leg's volatility, so a volatile name does not win by
    volatility alone. The absolute value rather than Treynor-Mazuy's square because market
    returns are fat tailed: the square of a Student-t(4) market has no variance, and on 200 books
    of 20 linear names over 2,000 days its t-statistic passed the bar below in 38 books, the
    absolute value's in 17 (the bar allows 10).

    Significance bar: the score is 0 unless ``|t(c)|`` reaches ``norm.ppf(1 - family_error / 2N)``
    (two-sided Bonferroni over the N columns scored together), with ``t(c)`` from
    heteroskedasticity-robust HC3 standard errors (MacKinnon & White 1985: a few crisis days
    carry high leverage). A book of N linear names then gets any non-zero score with probability
    about ``family_error``. A significant concave column (a short option) keeps its negative
    score, which marks it fragile. A window without large market moves holds no evidence of
    convexity either way, so even a convex name scores 0 in a calm market.

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily returns of the positions (SHORT columns already sign-flipped), finite, T >= 10.
    market : numpy.ndarray, shape (T,)
        The market's return on the same days (e.g. the equal-weight return of the universe).
    traded : numpy.ndarray of bool, shape (T, N), optional
        Days each column's market was open. A column is fitted on its own days only: a stock's
        weekend zeros, beside the market's crypto weekends, would only dilute the evidence.
        Default: every day.
    family_error : float in (0, 1)
        Chance that a book of linear names has any non-zero score.

    Returns
    -------
    numpy.ndarray, shape (N,)
        Finite scores; 0 for a column without significant curvature, with fewer than
        :data:`MIN_SCORE_OBSERVATIONS` traded days, of zero variance, or where the market does
        not move.

    Raises
    ------
    ValidationError
        On a non-2-D input, T < 10, a market or ``traded`` of another shape, NaN/inf, or
        ``family_error`` outside (0, 1).
    """
    y = np.asarray(returns, dtype=np.float64)
    m = np.asarray(market, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < MIN_SCORE_OBSERVATIONS:
        raise ValidationError(f"returns must be (T, N) with T >= {MIN_SCORE_OBSERVATIONS}, got shape {y.shape}")
    mask = np.ones(y.shape, dtype=bool) if traded is None else np.asarray(traded, dtype=bool)
    if m.shape != (y.shape[0],) or mask.shape != y.shape:
        raise ValidationError(
            f"market must be ({y.shape[0]},) and traded {y.shape} like returns, got {m.shape} and {mask.shape}"
        )
    if not (np.isfinite(y).all() and np.isfinite(m).all()):
        raise ValidationError("returns or market contain NaN or inf; build them with ReturnsPanel.complete()")
    if not 0.0 < family_error < 1.0:
        raise ValidationError(f"family_error must be in (0, 1), got {family_error}")
    n = y.shape[1]
    scores = np.zeros(n)
    if n == 0:
        return scores
    bar = norm.ppf(1.0 - family_error / (2 * n))  # two-sided: concave names are found too
    # Columns sharing a calendar (all crypto, all weekday markets) are fitted together.
    patterns, group = np.unique(mask.T, axis=0, return_inverse=True)
    for k, days in enumerate(patterns):
        columns = np.flatnonzero(group.ravel() == k)
        if days.sum() >= MIN_SCORE_OBSERVATIONS:
            scores[columns] = _significant_curvature(y[days][:, columns], m[days], bar)
    return scores


def _significant_curvature(y: np.ndarray, m: np.ndarray, bar: float) -> np.ndarray:
    """``c * std|m - mean m| / std(y)`` of each column where ``|t(c)| >= bar``, else 0 (see above)."""
    n_obs, n = y.shape
    scores = np.zeros(n)
    centred = m - m.mean()
    straddle = np.abs(centred)
    design = np.column_stack([np.ones(n_obs), centred, straddle - straddle.mean()])
    if np.linalg.matrix_rank(design) < 3:
        return scores  # a market that does not move, or moves by one size, shows no curvature
    gram_inv = np.linalg.inv(design.T @ design)
    projector = gram_inv @ design.T  # (3, T): coefficients = projector @ y
    coefficients = projector @ y
    residuals = y - design @ coefficients
    leverage = np.einsum("ti,ij,tj->t", design, gram_inv, design)
    if leverage.max() >= 1.0 - 1e-9:
        return scores  # one day decides the fit: no standard error, no evidence
    # HC3: each squared residual inflated by 1 / (1 - h)^2.
    curvature_var = (projector[2] ** 2 / (1.0 - leverage) ** 2) @ residuals**2
    curvature = coefficients[2]
    std = y.std(axis=0)
    flat = std <= 1e-12 * np.maximum(np.abs(y).max(axis=0), np.finfo(float).tiny)
    t_stat = np.divide(curvature, np.sqrt(curvature_var), out=np.zeros(n), where=curvature_var > 0.0)
    significant = (np.abs(t_stat) >= bar) & ~flat
    scores[significant] = curvature[significant] * straddle.std() / std[significant]
    return scores


@dataclass(frozen=True)
class BarbellConfig:
    """How the barbell splits and caps the book.

    Attributes
    ----------
    core_share : mapping of regime to float in [0, 1]
        Least share of the safe core per regime label; the aggressors get the rest when all
        ``n_aggressors`` slots are filled (each empty slot's part goes to the core).
    n_aggressors : int
        Maximum number of aggressor names (0 disables the sleeve).
    max_weight : float in (0, 1]
        Cap on every combined weight (fraction of the book).
    aggressor_weighting : {"equal", "score"}
        Within the aggressor sleeve: equal weights or in proportion to the (positive) scores.
    """

    core_share: Mapping[str, float] = field(default_factory=lambda: _DEFAULT_CORE_SHARE)
    n_aggressors: int = 5
    max_weight: float = 0.2
    aggressor_weighting: Literal["equal", "score"] = "equal"

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.core_share.items() if not 0.0 <= v <= 1.0}
        if not self.core_share or bad:
            raise ConfigError(f"core_share must map regimes to shares in [0, 1]; got {dict(self.core_share)}")
        if self.n_aggressors < 0:
            raise ConfigError(f"n_aggressors must be >= 0, got {self.n_aggressors}")
        if not 0.0 < self.max_weight <= 1.0:
            raise ConfigError(f"max_weight must be in (0, 1], got {self.max_weight}")
        if self.aggressor_weighting not in ("equal", "score"):
            raise ConfigError(
                f"aggressor_weighting must be 'equal' or 'score', got {self.aggressor_weighting!r}"
            )
        # Frozen means frozen: do not keep a reference to a dict the caller may mutate.
        object.__setattr__(self, "core_share", MappingProxyType(dict(self.core_share)))


def build_barbell(
    returns: np.ndarray,
    market: np.ndarray,
    cov: np.ndarray,
    symbols: Sequence[str],
    regime: str,
    config: BarbellConfig | None = None,
    *,
    traded: np.ndarray | None = None,
) -> pl.DataFrame:
    """Build the barbell weights for one day (rules in the module docstring).

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily returns of the positions (SHORT columns sign-flipped), finite, T >= 10 (any T
        when N = 0).
    market : numpy.ndarray, shape (T,)
        The market's return on the same days, which convexity is measured against.
    cov : numpy.ndarray, shape (N, N)
        Covariance of the same columns (e.g. Ledoit-Wolf of ``returns``).
    symbols : sequence of str, length N
        Unique names of the columns; none gives an empty book.
    regime : str
        A key of ``config.core_share`` (QUIET / NORMAL / CRISIS by default).
    config : BarbellConfig, optional
        Defaults to ``BarbellConfig()``.
    traded : numpy.ndarray of bool, shape (T, N), optional
        Days each name's market was open (see :func:`antifragility_score`).

    Returns
    -------
    polars.DataFrame
        One row per symbol: ``symbol`` (str), ``sleeve`` ("core" | "aggressor"), ``weight``
        (f64, fraction of the book, sums to 1 within 1e-9 unless N = 0), ``antifragility``
        (f64 score), ``cap`` (f64, the bound on ``weight``: ``max_weight``, or ``1 / N`` when
        the book is too small for it). Sorted by sleeve (core first), weight descending, symbol.

    Raises
    ------
    ValidationError
        On an unknown regime, mismatched shapes, duplicate symbols or invalid returns.
    OptimisationError
        If the core optimisation fails.
    """
    config = config or BarbellConfig()
    if regime not in config.core_share:
        raise ValidationError(f"unknown regime {regime!r}; expected one of {sorted(config.core_share)}")
    x = np.asarray(returns, dtype=np.float64)
    names = list(symbols)
    n = len(names)
    if x.ndim != 2 or x.shape[1] != n or np.shape(cov) != (n, n):
        raise ValidationError(
            f"need returns (T, N) and cov (N, N) for the N = {n} symbols; got returns {x.shape}, "
            f"cov {np.shape(cov)}"
        )
    if len(set(names)) != n:
        raise ValidationError("symbols must be unique")
    if n == 0:
        return pl.DataFrame(schema=BARBELL_SCHEMA)
    scores = antifragility_score(x, market, traded=traded)
    cap = max(config.max_weight, 1.0 / n)
    core_share = config.core_share[regime]
    # Names the core needs to hold its share under the cap (the epsilon keeps 0.8 / 0.2 at 4).
    core_needs = math.ceil(core_share / cap - 1e-9) if core_share > 0.0 else 0

    # Rank by score descending, then symbol, so ties and input order cannot change the pick.
    order = sorted(range(n), key=lambda i: (-scores[i], names[i]))
    room = min(config.n_aggressors, n - core_needs)
    aggressors = [i for i in order[:room] if scores[i] > 0.0]
    core = sorted(set(range(n)) - set(aggressors))

    target = (1.0 - core_share) * len(aggressors) / max(config.n_aggressors, 1) if core else 1.0
    raw = np.ones(len(aggressors)) if config.aggressor_weighting == "equal" else scores[aggressors]
    aggressor_weights = _capped_sleeve(raw, target, cap) if aggressors else np.zeros(0)
    weights = np.zeros(n)
    weights[aggressors] = aggressor_weights
    core_total = 1.0 - float(aggressor_weights.sum())
    # A core share of 0 (allowed by the config) leaves the core names at weight 0.
    if core and core_total > WEIGHT_TOLERANCE:
        cov_core = np.asarray(cov, dtype=np.float64)[np.ix_(core, core)]
        weights[core] = core_total * max_diversification(cov_core, min(1.0, cap / core_total))

    if abs(weights.sum() - 1.0) > WEIGHT_TOLERANCE or (weights > cap + WEIGHT_TOLERANCE).any():
        raise OptimisationError(
            f"regime {regime}: barbell weights failed verification (sum {weights.sum():.12g}, "
            f"max {weights.max():.6g}, cap {cap:g})"
        )
    is_aggressor = np.zeros(n, dtype=bool)
    is_aggressor[aggressors] = True
    return (
        pl.DataFrame(
            {
                "symbol": names,
                "sleeve": np.where(is_aggressor, "aggressor", "core").tolist(),
                "weight": weights,
                "antifragility": scores,
                "cap": np.full(n, cap),
            },
            schema=BARBELL_SCHEMA,
        )
        .sort(["sleeve", "weight", "symbol"], descending=[True, True, False])
    )


def _capped_sleeve(raw: np.ndarray, target: float, cap: float) -> np.ndarray:
    """Split ``target`` in proportion to ``raw > 0`` with every part <= ``cap`` (water-filling).

    Returns parts summing to ``min(target, len(raw) * cap)``; the caller decides where any
    shortfall goes.
    """
    parts = np.zeros(raw.size)
    free = np.ones(raw.size, dtype=bool)
    remaining = target
    # Each pass caps at least one more name or finishes, so at most len(raw) passes.
    for _ in range(raw.size):
        share = remaining * raw[free] / raw[free].sum()
        over = share > cap
        if not over.any():
            parts[free] = share
            return parts
        idx = np.flatnonzero(free)[over]
        parts[idx] = cap
        free[idx] = False
        remaining -= cap * idx.size
        if not free.any():
            break
    return parts
