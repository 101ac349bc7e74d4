"""The resources: the risk resource is the risk settings, declared once."""

from __future__ import annotations

from quant_assets.orchestration.resources import RiskResource
from quant_assets.risk.settings import RiskSettings


def test_risk_resource_takes_every_risk_setting_as_its_config():
    changed = {"lookback_days": 90, "regime_lookback_days": 365, "min_observations": 30, "min_coverage": 0.8,
               "covariance_method": "oas", "returns_kind": "log", "max_weight": 0.3, "n_aggressors": 2,
               "core_share": {"QUIET": 0.5, "NORMAL": 0.6, "CRISIS": 0.7}}
    assert set(changed) == set(RiskSettings.model_fields)  # this test covers every setting
    assert RiskResource(**changed).settings() == RiskSettings(**changed)
    assert RiskResource().settings() == RiskSettings()
