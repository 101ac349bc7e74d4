from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import OAS, LedoitWolf

from quant_assets.errors import ValidationError
from quant_assets.risk.covariance import estimate_covariance, ledoit_wolf, oas


def _returns(n_obs: int, n_assets: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((n_obs, 1)) * 0.01
    return factor @ rng.uniform(0.5, 1.5, (1, n_assets)) + rng.standard_normal((n_obs, n_assets)) * 0.02


def _assert_symmetric_psd(cov: np.ndarray) -> None:
    np.testing.assert_array_equal(cov, cov.T)
    scale = max(float(np.abs(np.diag(cov)).max()), 1e-300)
    assert np.linalg.eigvalsh(cov).min() >= -1e-12 * scale


def _degenerate_cases() -> dict[str, np.ndarray]:
    base = _returns(60, 5)
    identical = np.hstack([base, base[:, :2]])  # exact clones (same coin, two exchanges)
    near = np.hstack([base, base[:, :2] * (1.0 + 1e-9)])
    flat = base.copy()
    flat[:, 3] = 0.001  # zero variance (a stablecoin)
    return {
        "identical": identical,
        "near_identical": near,
        "zero_variance": flat,
        "t_less_than_n": _returns(10, 40),
        "all_zero": np.zeros((30, 4)),
        "t_equals_2": _returns(2, 6),
    }


@pytest.mark.parametrize("case", list(_degenerate_cases()))
@pytest.mark.parametrize("method", ["ledoit_wolf", "oas"])
def test_estimate_covariance_is_symmetric_psd_on_degenerate_input(case: str, method: str) -> None:
    cov, shrinkage = estimate_covariance(_degenerate_cases()[case], method)
    assert cov.shape == (_degenerate_cases()[case].shape[1],) * 2
    assert np.isfinite(cov).all() and 0.0 <= shrinkage <= 1.0
    _assert_symmetric_psd(cov)


def test_ledoit_wolf_is_positive_definite_on_identical_columns() -> None:
    cov, shrinkage = ledoit_wolf(_degenerate_cases()["identical"])
    assert shrinkage > 0.0
    assert np.linalg.eigvalsh(cov).min() > 0.0  # invertible although the sample cov is singular


def test_ledoit_wolf_and_oas_match_sklearn_estimators() -> None:
    x = _returns(80, 12, seed=3)
    for ours, reference in ((ledoit_wolf, LedoitWolf()), (oas, OAS())):
        cov, shrinkage = ours(x)
        fitted = reference.fit(x)
        np.testing.assert_allclose(cov, fitted.covariance_, rtol=1e-12, atol=1e-18)
        assert shrinkage == pytest.approx(fitted.shrinkage_)


def test_ledoit_wolf_is_demeaned() -> None:
    x = _returns(50, 4)
    np.testing.assert_allclose(ledoit_wolf(x + 0.5)[0], ledoit_wolf(x)[0], rtol=1e-9)


def test_estimate_covariance_rejects_nan_naming_column_count() -> None:
    x = _returns(20, 5)
    x[3, 1] = np.nan
    x[7, 4] = np.inf
    with pytest.raises(ValidationError, match=r"2 of 5 columns.*\[1, 4\]"):
        estimate_covariance(x)


@pytest.mark.parametrize("shape", [(1, 3), (0, 3), (5, 0)])
def test_estimate_covariance_rejects_too_few_rows_or_no_columns(shape: tuple[int, int]) -> None:
    with pytest.raises(ValidationError):
        ledoit_wolf(np.zeros(shape))


def test_estimate_covariance_rejects_unknown_method_and_1d_input() -> None:
    with pytest.raises(ValidationError, match="unknown covariance method"):
        estimate_covariance(_returns(10, 2), "sample")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="2-D"):
        oas(np.zeros(10))
