"""The risk stage's settings: one model, used by the core and, as it is, by Dagster's
``RiskResource`` (which inherits these fields, so they are declared once)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quant_assets.risk.regime import REGIMES, RegimeConfig


class RiskSettings(BaseModel):
    """Everything stage 3 is configured with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lookback_days: int = Field(
        default=180, gt=0, description="Calendar days of returns behind the covariance and the barbell."
    )
    regime_lookback_days: int = Field(
        default=730, gt=0, description="Calendar days of market returns the regime detector reads."
    )
    min_observations: int = Field(
        default=60, gt=0, description="Returns a symbol needs in a lookback to take part."
    )
    min_coverage: float = Field(
        default=0.9, gt=0, le=1, description="Share of the covariance window a leg's returns must cover."
    )
    covariance_method: Literal["ledoit_wolf", "oas"] = Field(
        default="ledoit_wolf", description="Shrinkage estimator of the covariance."
    )
    returns_kind: Literal["simple", "log"] = Field(default="simple", description="Daily returns, simple or log.")
    max_weight: float = Field(default=0.2, gt=0, le=1, description="Cap on every weight (fraction of the book).")
    n_aggressors: int = Field(default=5, ge=0, description="Most names in the aggressor sleeve.")
    core_share: dict[str, float] = Field(
        default_factory=lambda: {"QUIET": 0.85, "NORMAL": 0.90, "CRISIS": 0.95},
        description="Share of the max-diversification core per regime; the aggressors get the rest.",
    )

    @field_validator("core_share")
    @classmethod
    def _one_share_per_regime(cls, shares: dict[str, float]) -> dict[str, float]:
        if set(shares) != set(REGIMES) or not all(0.0 <= v <= 1.0 for v in shares.values()):
            raise ValueError(f"needs a share in [0, 1] for each of {', '.join(REGIMES)}, got {shares}")
        return shares

    @property
    def regime(self) -> RegimeConfig:
        """The detector's parameters: its defaults, annualised over the returns panel's union
        calendar (crypto's 365 days a year)."""
        return RegimeConfig(periods_per_year=365.0)
