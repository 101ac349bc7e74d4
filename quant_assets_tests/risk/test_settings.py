"""The risk settings: defaults and validation at the entry point."""

from __future__ import annotations

import pydantic
import pytest

from quant_assets.risk.settings import RiskSettings


def test_risk_settings_defaults_are_the_documented_barbell():
    settings = RiskSettings()
    assert settings.core_share == {"QUIET": 0.85, "NORMAL": 0.90, "CRISIS": 0.95}
    assert (settings.max_weight, settings.n_aggressors, settings.lookback_days) == (0.2, 5, 180)
    assert settings.regime.periods_per_year == 365.0  # the union calendar's days


@pytest.mark.parametrize("bad, field", [
    ({"core_share": {"QUIET": 0.85, "NORMAL": 0.9}}, "core_share"),
    ({"core_share": {"QUIET": 0.85, "NORMAL": 0.9, "CRISIS": 1.5}}, "core_share"),
    ({"covariance_method": "sample"}, "covariance_method"),
    ({"max_weight": 0.0}, "max_weight"),
    ({"lookback_dayz": 90}, "lookback_dayz"),
])
def test_risk_settings_refuse_impossible_values_naming_the_field(bad, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        RiskSettings(**bad)
