from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from quant_assets.errors import OptimisationError, ValidationError
from quant_assets.risk.max_diversification import diversification_ratio, max_diversification

TOL = 1e-9


def _cov(n: int, seed: int) -> np.ndarray:
    """Factor-model covariance with heterogeneous loadings and vols (daily units).

    Positive loadings, as in a real market, push the most market-like names to weight 0.
    """
    rng = np.random.default_rng(seed)
    loadings = np.abs(rng.standard_normal((3, n))) * rng.uniform(0.0, 2.0, n)
    idio = (0.01 * rng.uniform(0.3, 3.0, n)) ** 2
    return 1e-4 * loadings.T @ loadings + np.diag(idio)


def _instances() -> list[tuple[np.ndarray, np.ndarray]]:
    cases = []
    for seed, n in enumerate((5, 8, 12, 20, 30)):
        cov = _cov(n, seed)
        for cap in sorted({1.0, 0.25, 2.0 / n}, reverse=True):
            if n * cap >= 1.0:
                cases.append((cov, np.full(n, cap)))
    return cases


def _gradient(w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Gradient of DR(w) divided by DR(w), so tolerances are unit free."""
    vols = np.sqrt(np.diag(cov))
    variance = w @ cov @ w
    return vols / (w @ vols) - (cov @ w) / variance


def _slsqp(cov: np.ndarray, caps: np.ndarray) -> np.ndarray:
    vols = np.sqrt(np.diag(cov))

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        variance = w @ cov @ w
        ratio = (w @ vols) / np.sqrt(variance)
        return -ratio, -ratio * _gradient(w, cov)

    n = vols.size
    result = minimize(
        objective, np.full(n, 1.0 / n), jac=True, method="SLSQP",
        bounds=[(0.0, c) for c in caps], constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    return result.x


@pytest.mark.parametrize(("cov", "caps"), _instances())
def test_max_diversification_weights_sum_to_one_within_caps(cov: np.ndarray, caps: np.ndarray) -> None:
    w = max_diversification(cov, caps[0])
    assert abs(w.sum() - 1.0) <= TOL
    assert (w >= 0.0).all() and (w <= caps + TOL).all()


@pytest.mark.parametrize(("cov", "caps"), _instances())
def test_max_diversification_satisfies_kkt_conditions(cov: np.ndarray, caps: np.ndarray) -> None:
    w = max_diversification(cov, caps)
    g = _gradient(w, cov)
    at_zero = w <= 1e-8
    at_cap = w >= caps - 1e-8
    interior = ~at_zero & ~at_cap
    assert interior.any()
    lam = np.median(g[interior])
    # Equal marginal gain on interior weights; a zero weight would not gain; a capped one would.
    assert np.abs(g[interior] - lam).max() <= 1e-6
    assert (g[at_zero] <= lam + 1e-6).all()
    assert (g[at_cap & ~at_zero] >= lam - 1e-6).all()


def test_kkt_instances_exercise_zero_and_capped_weights() -> None:
    weights = [(max_diversification(cov, caps), caps) for cov, caps in _instances()]
    assert any((w <= 1e-8).any() for w, _ in weights)
    assert any(((w >= caps - 1e-8) & (caps < 1.0)).any() for w, caps in weights)


@pytest.mark.parametrize(("cov", "caps"), _instances())
def test_max_diversification_matches_or_beats_slsqp(cov: np.ndarray, caps: np.ndarray) -> None:
    ours = diversification_ratio(max_diversification(cov, caps), cov)
    reference = _slsqp(cov, caps)
    assert ours >= diversification_ratio(reference, cov) * (1.0 - 1e-6)


def test_max_diversification_is_permutation_invariant() -> None:
    cov = _cov(15, 42)
    perm = np.random.default_rng(1).permutation(15)
    w = max_diversification(cov, 0.15)
    w_perm = max_diversification(cov[np.ix_(perm, perm)], 0.15)
    np.testing.assert_allclose(w_perm, w[perm], atol=1e-6)


@pytest.mark.parametrize("factor", [1e-6, 252.0, 1e4])
def test_max_diversification_is_scale_invariant(factor: float) -> None:
    cov = _cov(15, 7)
    scaled = max_diversification(cov * factor, 0.2)
    np.testing.assert_allclose(scaled, max_diversification(cov, 0.2), atol=1e-6)


def test_max_diversification_two_assets_is_inverse_vol() -> None:
    # With two assets, argmax DR is w ∝ Sigma^-1 sigma ∝ (sigma_2, sigma_1) for any correlation < 1.
    s1, s2, rho = 0.01, 0.03, 0.4
    cov = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    np.testing.assert_allclose(max_diversification(cov), [s2 / (s1 + s2), s1 / (s1 + s2)], atol=1e-7)


def test_max_diversification_single_asset() -> None:
    np.testing.assert_array_equal(max_diversification(np.array([[4e-4]])), [1.0])
    with pytest.raises(OptimisationError, match="N = 1"):
        max_diversification(np.array([[4e-4]]), 0.5)


def test_max_diversification_handles_identical_columns() -> None:
    cov = _cov(6, 3)
    clone = np.insert(np.insert(cov, 6, cov[0], axis=0), 6, np.append(cov[0], cov[0, 0]), axis=1)
    w = max_diversification(clone, 1.0)
    assert abs(w.sum() - 1.0) <= TOL
    # Splitting the clone's weight does not change the ratio of the original problem.
    assert diversification_ratio(w, clone) == pytest.approx(
        diversification_ratio(max_diversification(cov), cov), rel=1e-7
    )


def test_max_diversification_gives_zero_variance_asset_no_weight_when_caps_allow() -> None:
    cov = _cov(5, 9)
    cov[2, :] = cov[:, 2] = 0.0
    w = max_diversification(cov, 0.5)
    assert w[2] == 0.0 and abs(w.sum() - 1.0) <= TOL


def test_max_diversification_zero_variance_asset_takes_what_risky_caps_cannot() -> None:
    cov = _cov(3, 9)
    cov[2, :] = cov[:, 2] = 0.0
    w = max_diversification(cov, 0.4)
    np.testing.assert_allclose(w, [0.4, 0.4, 0.2], atol=TOL)


def test_max_diversification_all_zero_variance_is_equal_weight() -> None:
    np.testing.assert_allclose(max_diversification(np.zeros((4, 4)), 0.3), np.full(4, 0.25))


def test_max_diversification_caps_summing_to_one_give_the_caps() -> None:
    caps = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(max_diversification(_cov(3, 1), caps), caps, atol=TOL)


def test_max_diversification_infeasible_cap_says_why() -> None:
    with pytest.raises(OptimisationError, match=r"max_weight 0.1 is infeasible for N = 5.*sum to 0.5 < 1"):
        max_diversification(_cov(5, 0), 0.1)


@pytest.mark.parametrize(
    ("cov", "cap", "message"),
    [
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), 1.0, "NaN"),
        (np.ones((2, 3)), 1.0, "square"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), 1.0, "symmetric"),
        (np.array([[-1.0]]), 1.0, "negative variances"),
        (np.eye(2), -0.1, ">= 0"),
        (np.eye(2), np.array([0.5, 0.5, 0.5]), "shape"),
    ],
)
def test_max_diversification_rejects_invalid_input(
    cov: np.ndarray, cap: float | np.ndarray, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        max_diversification(cov, cap)


def test_diversification_ratio_values() -> None:
    assert diversification_ratio(np.array([1.0]), np.array([[4e-4]])) == pytest.approx(1.0)
    # Two uncorrelated equal-vol assets, equal weights: DR = sqrt(2).
    assert diversification_ratio(np.array([0.5, 0.5]), np.eye(2) * 1e-4) == pytest.approx(np.sqrt(2.0))
    with pytest.raises(ValidationError, match="undefined"):
        diversification_ratio(np.array([1.0, 0.0]), np.zeros((2, 2)))
