"""Maximum diversification portfolio, long-only, fully invested, per-asset caps.

The diversification ratio ``DR(w) = (w' sigma) / sqrt(w' Sigma w)`` (``sigma`` = asset vols) is
scale invariant in ``w``, so with ``y = w / (sigma' w)`` maximising DR is the convex QP
(DESIGN.md §6)::

    minimise    y' Sigma y
    subject to  sigma' y = 1
                sum(y) = k
                y >= 0
                y_i <= c_i * k         (the cap w_i <= c_i, homogeneous in y)

and ``w = y / k``. The auxiliary ``k`` keeps every cap row down to two non-zeros instead of a
dense row ``e_i - c_i * 1``. The QP is solved by the Clarabel interior-point solver; the
result is cleaned (solver dust, rounding over the caps), renormalised and verified.

Zero-variance assets (``sigma_i = 0`` after rounding) add neither risk nor ``w' sigma``: moving
weight into them scales numerator and denominator of DR alike, so DR cannot choose between them.
Rule: they are left out of the QP and receive the least weight the caps allow — none if the
risky assets' caps sum to at least 1, otherwise the risky assets sit at their caps and the
remainder is spread over the zero-variance assets in proportion to their caps. If every asset
has zero variance the weights are proportional to the caps (equal weights under one cap).
"""

from __future__ import annotations

import clarabel
import numpy as np
import scipy.sparse as sp

from quant_assets.errors import OptimisationError, ValidationError

#: Tolerance of the verified invariants: weights sum to 1 and respect caps within this.
WEIGHT_TOLERANCE = 1e-9
#: Vol below this fraction of the largest vol counts as zero (LW-shrunk inputs never hit it).
_ZERO_VOL_RTOL = 1e-10
#: Interior-point solutions leave ~1e-10 on assets that should be 0; below this they are 0.
_DUST = 1e-10
_SOLVER_TOL = 1e-10
_ACCEPTED = (clarabel.SolverStatus.Solved, clarabel.SolverStatus.AlmostSolved)


def diversification_ratio(weights: np.ndarray, cov: np.ndarray) -> float:
    """Diversification ratio ``(w' sigma) / sqrt(w' Sigma w)``, >= 1 for long-only ``w``.

    Parameters
    ----------
    weights : numpy.ndarray, shape (N,)
    cov : numpy.ndarray, shape (N, N)
        Covariance in any consistent units (the ratio is unit free).

    Raises
    ------
    ValidationError
        On mismatched shapes or a portfolio with zero variance (ratio undefined).
    """
    w = np.asarray(weights, dtype=np.float64)
    sigma_mat = np.asarray(cov, dtype=np.float64)
    if w.ndim != 1 or sigma_mat.shape != (w.size, w.size):
        raise ValidationError(f"weights shape {w.shape} does not match cov shape {sigma_mat.shape}")
    variance = float(w @ sigma_mat @ w)
    if not variance > 0.0:
        raise ValidationError(f"portfolio variance is {variance}; the diversification ratio is undefined")
    return float(w @ np.sqrt(np.clip(np.diag(sigma_mat), 0.0, None))) / np.sqrt(variance)


def max_diversification(cov: np.ndarray, max_weight: float | np.ndarray = 1.0) -> np.ndarray:
    """Solve the maximum diversification portfolio.

    Parameters
    ----------
    cov : numpy.ndarray, shape (N, N)
        Covariance matrix (e.g. Ledoit-Wolf), symmetric positive semi-definite, finite.
    max_weight : float or numpy.ndarray of shape (N,)
        Per-asset cap ``c_i >= 0`` on the weight (fraction of the portfolio); caps above 1 are
        the same as 1.

    Returns
    -------
    numpy.ndarray, shape (N,)
        Weights ``w >= 0`` with ``|sum(w) - 1| <= 1e-9`` and ``w_i <= c_i + 1e-9``.

    Raises
    ------
    ValidationError
        If ``cov`` is not a finite symmetric square matrix with a non-negative diagonal, or a cap
        is negative, NaN or of the wrong shape.
    OptimisationError
        If the caps are infeasible (they sum to less than 1), the solver does not converge, or
        the solution fails verification.
    """
    sigma_mat = _validated_cov(cov)
    n = sigma_mat.shape[0]
    caps = _validated_caps(max_weight, n)
    total_cap = float(caps.sum())
    if total_cap < 1.0 - WEIGHT_TOLERANCE:
        cap_text = f"{caps[0]:g}" if np.all(caps == caps[0]) else f"caps {np.round(caps, 6).tolist()}"
        raise OptimisationError(
            f"max_weight {cap_text} is infeasible for N = {n} assets: the caps sum to "
            f"{total_cap:.6g} < 1, so no fully invested portfolio respects them "
            f"(a uniform cap needs at least 1/N = {1.0 / n:.6g})"
        )

    vols = np.sqrt(np.diag(sigma_mat))
    risky = vols > _ZERO_VOL_RTOL * vols.max()
    weights = np.zeros(n)
    if not risky.any():
        weights = caps / total_cap
    else:
        # Share the risky assets take: all of it unless their caps cannot hold it.
        risky_share = min(1.0, float(caps[risky].sum()))
        sub_caps = np.minimum(caps[risky] / risky_share, 1.0)
        if sub_caps.sum() <= 1.0 + WEIGHT_TOLERANCE:
            # The caps leave exactly one feasible point; an interior-point method has no
            # interior to walk through, so answer directly.
            sub_weights = sub_caps / sub_caps.sum()
        else:
            sub_weights = _solve_qp(sigma_mat[np.ix_(risky, risky)], vols[risky], sub_caps)
        weights[risky] = risky_share * sub_weights
        if risky_share < 1.0:
            weights[~risky] = (1.0 - risky_share) * caps[~risky] / caps[~risky].sum()
    return _finalised(weights, caps)


def _validated_cov(cov: np.ndarray) -> np.ndarray:
    sigma_mat = np.asarray(cov, dtype=np.float64)
    if sigma_mat.ndim != 2 or sigma_mat.shape[0] != sigma_mat.shape[1] or sigma_mat.shape[0] == 0:
        raise ValidationError(f"cov must be a non-empty square (N, N) matrix, got shape {sigma_mat.shape}")
    if not np.isfinite(sigma_mat).all():
        raise ValidationError("cov contains NaN or inf")
    diag = np.diag(sigma_mat)
    if (diag < 0).any():
        negative = np.flatnonzero(diag < 0)[:10].tolist()
        raise ValidationError(f"cov has negative variances at indices {negative}")
    scale = max(float(diag.max()), np.finfo(float).tiny)
    if np.abs(sigma_mat - sigma_mat.T).max() > 1e-8 * scale:
        raise ValidationError("cov is not symmetric")
    return (sigma_mat + sigma_mat.T) / 2.0


def _validated_caps(max_weight: float | np.ndarray, n: int) -> np.ndarray:
    caps = np.asarray(max_weight, dtype=np.float64)
    if caps.ndim == 0:
        caps = np.full(n, float(caps))
    if caps.shape != (n,):
        raise ValidationError(f"max_weight must be a scalar or shape ({n},), got shape {caps.shape}")
    if not np.isfinite(caps).all() or (caps < 0).any():
        bad = caps[~np.isfinite(caps) | (caps < 0)][:5].tolist()
        raise ValidationError(f"max_weight must be finite and >= 0, got {bad}")
    return np.minimum(caps, 1.0)


def _solve_qp(sigma_mat: np.ndarray, vols: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Solve the y-space QP with Clarabel; ``vols > 0``; returns ``w = y / sum(y)``."""
    n = vols.size
    # DR is invariant to rescaling Sigma, so scale it for the solver: unit mean variance makes
    # the result independent of the units (daily, annual, percent), and the extra factor n
    # lifts the optimal objective y'Sigma y = 1/DR^2 (DR grows up to sqrt(n)) to O(1), where
    # Clarabel's absolute gap tolerance bites; unscaled, small weights came out ~1e-6 off.
    scale = float(np.mean(np.diag(sigma_mat)))
    sigma_mat = sigma_mat * (n / scale)
    vols = vols / np.sqrt(scale)

    # Variables x = (y_1..y_n, k). Only caps below 1 can bind (y >= 0 gives y_i <= sum(y)).
    binding = np.flatnonzero(caps < 1.0)
    m = binding.size
    p_full = np.zeros((n + 1, n + 1))
    p_full[:n, :n] = sigma_mat
    p_upper = sp.triu(sp.csc_matrix(p_full), format="csc")
    q = np.zeros(n + 1)

    # Rows of A x + s = b: 2 equalities (ZeroCone), then n + m inequalities s >= 0.
    equality = sp.csc_matrix(np.vstack([np.append(vols, 0.0), np.append(np.ones(n), -1.0)]))
    nonneg = sp.hstack([-sp.identity(n, format="csc"), sp.csc_matrix((n, 1))])
    cap_rows = sp.csc_matrix(
        (
            np.concatenate([np.ones(m), -caps[binding]]),
            (np.concatenate([np.arange(m), np.arange(m)]), np.concatenate([binding, np.full(m, n)])),
        ),
        shape=(m, n + 1),
    )
    a_mat = sp.vstack([equality, nonneg, cap_rows], format="csc")
    b = np.concatenate([[1.0, 0.0], np.zeros(n + m)])
    cones = [clarabel.ZeroConeT(2), clarabel.NonnegativeConeT(n + m)]

    settings = clarabel.DefaultSettings()
    settings.verbose = False
    # Tighter than the 1e-8 defaults: KKT residuals of the weights drop from ~1e-3 to ~1e-7 at
    # N = 300 for ~15% more time (measured with benchmarks/bench_risk.py).
    settings.tol_gap_abs = settings.tol_gap_rel = _SOLVER_TOL
    settings.tol_feas = _SOLVER_TOL
    solution = clarabel.DefaultSolver(p_upper, q, a_mat, b, cones, settings).solve()
    if solution.status not in _ACCEPTED:
        raise OptimisationError(
            f"max diversification QP for N = {n} assets did not solve: Clarabel status {solution.status} "
            f"after {solution.iterations} iterations"
        )
    y = np.asarray(solution.x)[:n]
    total = y.sum()
    if not np.isfinite(total) or total <= 0.0:
        raise OptimisationError(
            f"max diversification QP for N = {n} returned an unusable solution (sum(y) = {total})"
        )
    return y / total


def _finalised(weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Remove solver dust and cap overshoot, renormalise, and verify the invariants."""
    w = np.where(weights > _DUST, weights, 0.0)
    w /= w.sum()
    over = w > caps
    if over.any():
        # Interior-point output meets the caps only to ~1e-8; hand the overshoot to assets with
        # room, in proportion to their room, so none of them can cross its own cap.
        excess = float((w[over] - caps[over]).sum())
        w[over] = caps[over]
        room = np.where(w < caps, caps - w, 0.0)
        held = np.where(w > 0, room, 0.0)
        receivers = held if held.sum() >= excess else room
        if receivers.sum() > 0.0:
            w += excess * receivers / receivers.sum()
    if abs(w.sum() - 1.0) > WEIGHT_TOLERANCE or (w > caps + WEIGHT_TOLERANCE).any() or (w < 0).any():
        worst = int(np.argmax(w - caps))
        raise OptimisationError(
            f"max diversification weights failed verification: sum {w.sum():.12g}, "
            f"largest cap excess {w[worst] - caps[worst]:.3g} at index {worst}"
        )
    return w
