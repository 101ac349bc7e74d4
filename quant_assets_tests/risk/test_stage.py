"""Stage 3 for one day, end to end from the source: point in time and weights contract."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from quant_assets.risk.stage import (
    RiskSettings,
    allocate_barbell,
    assess_regime,
    check_weights,
    covariance_matrix,
    estimate_signal_covariance,
)
from quant_assets.screening.config import resolve_configs
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

DAY = date(2024, 6, 3)
SETTINGS = RiskSettings()


def _day_outputs(source: SyntheticSource) -> dict[str, pl.DataFrame]:
    """Every stage's output for DAY, computed the way the assets compute it."""
    configs = resolve_configs()
    raw = fetch_raw_screen(source, configs, DAY).frame
    universe = select_liquid_universe(raw, configs)
    signals = select_signals(universe, configs)
    members = universe.filter(pl.col("in_universe"))["symbol"].unique().sort().to_list()
    market_bars = source.daily_bars(members, DAY - timedelta(days=SETTINGS.regime_lookback_days), DAY)
    regime = assess_regime(market_bars, DAY, SETTINGS)
    legs = selected_signals(signals)
    leg_bars = source.daily_bars(legs["symbol"].to_list(), DAY - timedelta(days=SETTINGS.lookback_days), DAY)
    covariance, _ = estimate_signal_covariance(leg_bars, legs, DAY, SETTINGS)
    weights = allocate_barbell(leg_bars, legs, covariance, regime["regime"][0], DAY, SETTINGS)
    return {"raw": raw, "universe": universe, "signals": signals, "regime": regime,
            "legs": legs, "leg_bars": leg_bars, "covariance": covariance, "weights": weights}


@pytest.fixture(scope="module")
def outputs() -> dict[str, pl.DataFrame]:
    return _day_outputs(SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11)))


def test_no_data_after_the_day_reaches_any_stage(outputs):
    # The same market with every draw after DAY redrawn: DAY's outputs must not move.
    future_changed = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11, perturb_after=DAY))
    again = _day_outputs(future_changed)
    for name, frame in outputs.items():
        assert again[name].equals(frame), name
    # ...while the perturbed market really is different the next day.
    base = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11))
    nxt = DAY + timedelta(days=1)
    assert not base.market.screen(nxt).equals(future_changed.market.screen(nxt))


def test_weights_contract(outputs):
    weights = outputs["weights"]
    assert check_weights(weights) == []
    assert weights["weight"].sum() == pytest.approx(1.0, abs=1e-9)
    core = weights.filter(pl.col("sleeve") == "core")["weight"].sum()
    expected_core = SETTINGS.core_share[outputs["regime"]["regime"][0]]
    assert core == pytest.approx(expected_core, abs=1e-9) or core == pytest.approx(1.0)


def test_covariance_long_form_round_trips_symmetric(outputs):
    symbols, matrix = covariance_matrix(outputs["covariance"])
    assert symbols == sorted(symbols) and matrix.shape == (len(symbols), len(symbols))
    assert (matrix == matrix.T).all()
    assert set(outputs["weights"]["symbol"]) == set(symbols)


def test_check_weights_reports_each_problem():
    bad = pl.DataFrame({"symbol": ["A", "B", "C"], "weight": [0.7, -0.1, 0.3], "cap": [0.5, 0.5, 0.5]})
    assert check_weights(bad) == [
        "weights sum to 0.900000000000, not 1",
        "negative weights: ['B']",
        "weights above their cap: ['A']",
    ]
    assert check_weights(bad.with_columns(weight=pl.Series([0.5, 0.0, 0.5]))) == []


def test_oas_and_log_returns_are_settings(outputs):
    settings = RiskSettings(covariance_method="oas", returns_kind="log")
    frame, info = estimate_signal_covariance(outputs["leg_bars"], outputs["legs"], DAY, settings)
    _, lw_info = estimate_signal_covariance(outputs["leg_bars"], outputs["legs"], DAY, SETTINGS)
    assert info["method"] == "oas" and lw_info["method"] == "ledoit_wolf"
    assert info["shrinkage"] != lw_info["shrinkage"]
    assert covariance_matrix(frame)[0] == covariance_matrix(outputs["covariance"])[0]
