"""Shrunk covariance of daily returns: Ledoit-Wolf (the default) and OAS.

Both shrink the sample covariance S towards ``mu * I`` (``mu`` = mean sample variance):
``(1 - delta) * S + delta * mu * I``. The target is positive definite whenever any column moves,
so the estimate stays well conditioned on what breaks a sample covariance: T < N, identical or
near-identical columns (the same coin on several exchanges), a zero-variance column.

Units are those of the input: daily returns in, daily variances out (no annualisation).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.covariance import ledoit_wolf as _sk_ledoit_wolf
from sklearn.covariance import oas as _sk_oas

from quant_assets.errors import ValidationError

_ESTIMATORS = {"ledoit_wolf": _sk_ledoit_wolf, "oas": _sk_oas}


def _validated(returns: np.ndarray) -> np.ndarray:
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2:
        raise ValidationError(f"returns must be a 2-D (T, N) array, got shape {x.shape}")
    n_obs, n_assets = x.shape
    if n_assets == 0:
        raise ValidationError("returns have no columns (N = 0)")
    if n_obs < 2:
        raise ValidationError(f"need at least 2 observations (rows) for a covariance, got T = {n_obs}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=0))
    if bad.size:
        raise ValidationError(
            f"returns contain NaN or inf in {bad.size} of {n_assets} columns "
            f"(first column indices {bad[:10].tolist()}); build them with ReturnsPanel.complete()"
        )
    return x


def _estimate(x: np.ndarray, method: str) -> tuple[np.ndarray, float]:
    cov, shrinkage = _ESTIMATORS[method](x, assume_centered=False)
    # sklearn's result is symmetric up to rounding; the optimiser wants it exactly symmetric.
    return (cov + cov.T) / 2.0, float(shrinkage)


def ledoit_wolf(returns: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance.

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily returns, finite, T >= 2 (T < N is fine). Columns are demeaned.

    Returns
    -------
    cov : numpy.ndarray, shape (N, N)
        Symmetric positive semi-definite covariance, daily variance units.
    shrinkage : float
        Weight ``delta`` in [0, 1] given to the scaled-identity target.

    Raises
    ------
    ValidationError
        If ``returns`` is not 2-D, has no column, fewer than 2 rows, or any NaN/inf.
    """
    return _estimate(_validated(returns), "ledoit_wolf")


def oas(returns: np.ndarray) -> tuple[np.ndarray, float]:
    """Oracle Approximating Shrinkage covariance; same contract as :func:`ledoit_wolf`.

    Raises
    ------
    ValidationError
        If ``returns`` is not 2-D, has no column, fewer than 2 rows, or any NaN/inf.
    """
    return _estimate(_validated(returns), "oas")


def estimate_covariance(
    returns: np.ndarray, method: Literal["ledoit_wolf", "oas"] = "ledoit_wolf"
) -> tuple[np.ndarray, float]:
    """Shrunk covariance by ``method``; see :func:`ledoit_wolf` for shapes and units.

    Raises
    ------
    ValidationError
        On an unknown ``method`` or invalid ``returns``.
    """
    if method not in _ESTIMATORS:
        raise ValidationError(f"unknown covariance method {method!r}; expected one of {sorted(_ESTIMATORS)}")
    return _estimate(_validated(returns), method)
