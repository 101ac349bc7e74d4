"""Barbell portfolio: a maximum-diversification safe core plus a small convex aggressor sleeve.

Rules (DESIGN.md §1 Stage 3), in the order :func:`build_barbell` applies them. They give a
book whose weights sum to 1 for any number of names N >= 1 (an empty book is an empty frame):

1. Every name gets an antifragility score (:func:`antifragility_score`).
2. The cap is ``max_weight``, unless N names cannot hold the whole book under it
   (``N * max_weight < 1``, e.g. a book of three names under a 0.2 cap): then the cap widens to
   ``1 / N``, the tightest cap that book allows, and the ``cap`` column says so (the asset
   turns that into a warning check). One name alone gets weight 1.
3. The core must hold its share ``core_share[regime]`` under the cap, which takes at least
   ``ceil(core_share / cap)`` names. Aggressors are the highest **positive** scores (ties broken
   by symbol, so the input order never matters), at most ``n_aggressors`` of them and never so
   many that fewer names than that are left to the core: a small book has fewer aggressors, not
   a thinner core. A name with a score <= 0 has no convexity to offer and stays in the core; if
   no score is positive (or ``n_aggressors = 0``), the core takes the whole book.
4. The aggressor sleeve targets ``1 - core_share[regime]`` of the book, spread equally or in
   proportion to the scores. Each aggressor is capped; overshoot is handed to the uncapped
   aggressors (water-filling) and, when every aggressor is at the cap, the remainder goes to the
   core, whose share then grows.
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


def antifragility_score(
    returns: np.ndarray, *, tail_quantile: float = 0.95, skew_weight: float = 0.5
) -> np.ndarray:
    """Score each column's convexity: positive skew and outsized upside tail.

    ``score = skew_weight * skewness + (1 - skew_weight) * (tail_gain - tail_gain_gaussian)``

    * ``skewness``: sample skewness (Fisher-Pearson, biased), unit free.
    * ``tail_gain``: mean of the returns at or above the column's ``tail_quantile`` quantile,
      divided by the column's standard deviation (vol-normalised, so a volatile name does not
      win by volatility alone). ``tail_gain_gaussian = pdf(z_q) / (1 - q)`` (2.06 at q = 0.95) is
      its value for a Gaussian, so a Gaussian column scores about 0 and a positive score means
      convexity beyond a bell curve.

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily returns of the positions (SHORT columns already sign-flipped), finite, T >= 3.
    tail_quantile : float in (0.5, 1)
    skew_weight : float in [0, 1]

    Returns
    -------
    numpy.ndarray, shape (N,)
        Finite scores; 0 for a zero-variance column.

    Raises
    ------
    ValidationError
        On a non-2-D input, T < 3, NaN/inf, or parameters out of range.
    """
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValidationError(f"returns must be (T, N) with T >= 3, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValidationError("returns contain NaN or inf; build them with ReturnsPanel.complete()")
    if not 0.5 < tail_quantile < 1.0 or not 0.0 <= skew_weight <= 1.0:
        raise ValidationError(
            f"need 0.5 < tail_quantile < 1 and 0 <= skew_weight <= 1, got {tail_quantile}, {skew_weight}"
        )
    centred = x - x.mean(axis=0)
    std = np.sqrt((centred**2).mean(axis=0))
    # "Zero variance" relative to the returns' own size: float noise on a flat series is not risk.
    flat = std <= 1e-12 * np.maximum(np.abs(x).max(axis=0), np.finfo(float).tiny)
    safe_std = np.where(flat, 1.0, std)
    skewness = (centred**3).mean(axis=0) / safe_std**3
    threshold = np.quantile(x, tail_quantile, axis=0)
    in_tail = x >= threshold
    tail_mean = np.where(in_tail, x, 0.0).sum(axis=0) / in_tail.sum(axis=0)
    gaussian_tail_gain = norm.pdf(norm.ppf(tail_quantile)) / (1.0 - tail_quantile)
    score = skew_weight * skewness + (1.0 - skew_weight) * (tail_mean / safe_std - gaussian_tail_gain)
    return np.where(flat, 0.0, score)


@dataclass(frozen=True)
class BarbellConfig:
    """How the barbell splits and caps the book.

    Attributes
    ----------
    core_share : mapping of regime to float in [0, 1]
        Target share of the safe core per regime label; the aggressors get the rest.
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
    cov: np.ndarray,
    symbols: Sequence[str],
    regime: str,
    config: BarbellConfig | None = None,
) -> pl.DataFrame:
    """Build the barbell weights for one day (rules in the module docstring).

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily returns of the positions (SHORT columns sign-flipped), finite, T >= 3 (any T when
        N = 0).
    cov : numpy.ndarray, shape (N, N)
        Covariance of the same columns (e.g. Ledoit-Wolf of ``returns``).
    symbols : sequence of str, length N
        Unique names of the columns; none gives an empty book.
    regime : str
        A key of ``config.core_share`` (QUIET / NORMAL / CRISIS by default).
    config : BarbellConfig, optional
        Defaults to ``BarbellConfig()``.

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
    scores = antifragility_score(x)
    cap = max(config.max_weight, 1.0 / n)
    core_share = config.core_share[regime]
    # Names the core needs to hold its share under the cap (the epsilon keeps 0.8 / 0.2 at 4).
    core_needs = math.ceil(core_share / cap - 1e-9) if core_share > 0.0 else 0

    # Rank by score descending, then symbol, so ties and input order cannot change the pick.
    order = sorted(range(n), key=lambda i: (-scores[i], names[i]))
    room = min(config.n_aggressors, n - core_needs)
    aggressors = [i for i in order[:room] if scores[i] > 0.0]
    core = sorted(set(range(n)) - set(aggressors))

    target = 1.0 - core_share if core else 1.0
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
