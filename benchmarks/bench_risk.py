"""Benchmark: maximum diversification by Clarabel QP versus SLSQP (DESIGN.md §6).

Three solvers on the same Ledoit-Wolf covariances of simulated factor returns (T = 252 days):

* ``clarabel``: :func:`quant_assets.risk.max_diversification.max_diversification`, the convex QP.
* ``slsqp``: SciPy SLSQP maximising DR directly with the covariance precomputed and the analytic
  gradient (ftol 1e-10), i.e. the best one can do with the old approach.
* ``naive``: SLSQP as the replaced system ran it: Ledoit-Wolf recomputed inside the objective and
  finite-difference gradients, default tolerances. Only at N = 20 and 100 (it takes seconds).

At N = 1000 only ours runs.

For each N two caps: 0.2 and a binding 2/N. Printed: milliseconds per solve (median), speed-ups,
DR of each solution relative to ours, and the worst constraint violation of the SLSQP results
(ours is verified to 1e-9 or raises).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from quant_assets.risk.covariance import ledoit_wolf
from quant_assets.risk.max_diversification import diversification_ratio, max_diversification

N_OBS = 252
SIZES = (20, 100, 300, 1000)
SLSQP_SIZES = (20, 100, 300)  # SLSQP at N = 1000 takes minutes per solve
NAIVE_SIZES = (20, 100)


def _factor_returns(n_assets: int, seed: int) -> np.ndarray:
    """Daily returns with 5 positive-loading factors and heterogeneous idiosyncratic vols."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((N_OBS, 5)) * 0.008
    loadings = np.abs(rng.standard_normal((5, n_assets))) * rng.uniform(0.2, 1.5, n_assets)
    idio = rng.standard_normal((N_OBS, n_assets)) * 0.01 * rng.uniform(0.5, 3.0, n_assets)
    return factors @ loadings + idio


def _slsqp(
    objective: Callable[[np.ndarray], float | tuple[float, np.ndarray]],
    n: int,
    cap: float,
    *,
    jac: bool,
    ftol: float,
) -> np.ndarray:
    result = minimize(
        objective, np.full(n, 1.0 / n), jac=jac, method="SLSQP",
        bounds=[(0.0, cap)] * n, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        options={"ftol": ftol, "maxiter": 1000},
    )
    return result.x


def _slsqp_precomputed(cov: np.ndarray, cap: float) -> np.ndarray:
    vols = np.sqrt(np.diag(cov))

    def negative_ratio(w: np.ndarray) -> tuple[float, np.ndarray]:
        cov_w = cov @ w
        variance = w @ cov_w
        exposure = w @ vols
        ratio = exposure / np.sqrt(variance)
        return -ratio, -ratio * (vols / exposure - cov_w / variance)

    return _slsqp(negative_ratio, vols.size, cap, jac=True, ftol=1e-10)


def _slsqp_naive(returns: np.ndarray, cap: float) -> np.ndarray:
    def negative_ratio(w: np.ndarray) -> float:
        cov, _ = ledoit_wolf(returns)  # the §6 trap: re-estimated on every evaluation
        return -(w @ np.sqrt(np.diag(cov))) / np.sqrt(w @ cov @ w)

    return _slsqp(negative_ratio, returns.shape[1], cap, jac=False, ftol=1e-6)


def _median_ms(solve: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        weights = solve()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)), weights


def _violation(w: np.ndarray, cap: float) -> float:
    """Worst breach of sum(w) = 1, w >= 0, w <= cap."""
    return float(max(abs(w.sum() - 1.0), -w.min(), (w - cap).max(), 0.0))


def main() -> None:
    """Run the benchmark and print one table row per (N, cap)."""
    header = (
        f"{'N':>4} {'cap':>7} | {'clarabel ms':>11} {'slsqp ms':>9} {'naive ms':>9} | "
        f"{'x slsqp':>8} {'x naive':>8} | {'DR ours':>8} {'dDR slsqp':>10} {'dDR naive':>10} | "
        f"{'viol slsqp':>10} {'viol naive':>10}"
    )
    print("max diversification, T = 252, Ledoit-Wolf covariance; dDR = DR(other)/DR(ours) - 1")
    print(header)
    print("-" * len(header))
    for n in SIZES:
        returns = _factor_returns(n, seed=n)
        cov, _ = ledoit_wolf(returns)
        for cap in (0.2, 2.0 / n):
            repeats = 20 if n <= 100 else 7 if n <= 300 else 3
            ours_ms, ours = _median_ms(lambda: max_diversification(cov, cap), repeats)
            dr = diversification_ratio(ours, cov)
            if n not in SLSQP_SIZES:
                print(f"{n:>4} {cap:>7.4f} | {ours_ms:>11.1f} {'-':>9} {'-':>9} | {'-':>8} {'-':>8} | "
                      f"{dr:>8.4f} {'-':>10} {'-':>10} | {'-':>10} {'-':>10}")
                continue
            slsqp_ms, slsqp = _median_ms(lambda: _slsqp_precomputed(cov, cap), max(1, repeats // 4))
            row = f"{n:>4} {cap:>7.4f} | {ours_ms:>11.1f} {slsqp_ms:>9.1f} "
            if n in NAIVE_SIZES:
                naive_ms, naive = _median_ms(lambda: _slsqp_naive(returns, cap), 1)
                naive_cols = (
                    f"{naive_ms:>9.0f} | {slsqp_ms / ours_ms:>8.1f} {naive_ms / ours_ms:>8.0f} | "
                    f"{dr:>8.4f} {diversification_ratio(slsqp, cov) / dr - 1:>10.2e} "
                    f"{diversification_ratio(naive, cov) / dr - 1:>10.2e} | "
                    f"{_violation(slsqp, cap):>10.1e} {_violation(naive, cap):>10.1e}"
                )
            else:
                naive_cols = (
                    f"{'-':>9} | {slsqp_ms / ours_ms:>8.1f} {'-':>8} | "
                    f"{dr:>8.4f} {diversification_ratio(slsqp, cov) / dr - 1:>10.2e} {'-':>10} | "
                    f"{_violation(slsqp, cap):>10.1e} {'-':>10}"
                )
            print(row + naive_cols)


if __name__ == "__main__":
    main()
