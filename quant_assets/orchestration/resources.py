"""Dagster resources: where market data comes from, which configs run, risk settings, lakehouse."""

from __future__ import annotations

import os
from datetime import date

from dagster import ConfigurableResource

from quant_assets.lakehouse.store import PartitionStore
from quant_assets.risk.stage import RiskSettings
from quant_assets.screening.config import ScreeningConfig, resolve_configs
from quant_assets.sources.base import MarketSource
from quant_assets.sources.registry import open_source


class MarketDataResource(ConfigurableResource):
    """Market data source: ``synthetic`` (offline, deterministic, the default) or ``tradingview``.

    ``tradingview_url`` overrides the scanner's base URL (else ``$QUANT_ASSETS_TRADINGVIEW_URL``).
    ``perturb_after`` (YYYY-MM-DD) redraws the synthetic market after that day: a lookahead
    audit re-materialises a partition with it and expects identical output.
    """

    source: str = "synthetic"
    seed: int = 7
    n_instruments: int = 1200
    tradingview_url: str = ""
    perturb_after: str = ""

    def get_source(self, bars_cache_root: str | os.PathLike[str] | None = None) -> MarketSource:
        """The source; the live one keeps the bars of past screens under ``bars_cache_root``."""
        return open_source(
            self.source, seed=self.seed, n_instruments=self.n_instruments,
            tradingview_url=self.tradingview_url,
            perturb_after=date.fromisoformat(self.perturb_after) if self.perturb_after else None,
            bars_cache_root=bars_cache_root,
        )


class ScreeningResource(ConfigurableResource):
    """Which screening configs run: explicit files, else every YAML in the configs directory.

    ``strict``: fail the partition when any config fails, instead of leaving it out.
    """

    config_paths: list[str] = []
    config_dir: str = ""
    strict: bool = False

    def load(self) -> list[ScreeningConfig]:
        return resolve_configs(self.config_paths, self.config_dir)


class RiskResource(ConfigurableResource):
    """Risk-stage settings: lookbacks, covariance estimator (``ledoit_wolf`` | ``oas``), returns
    (``simple`` | ``log``), position cap, aggressor count, core share by regime."""

    lookback_days: int = 180
    regime_lookback_days: int = 730
    min_observations: int = 60
    covariance_method: str = "ledoit_wolf"
    returns_kind: str = "simple"
    max_weight: float = 0.2
    n_aggressors: int = 5
    core_share_quiet: float = 0.85
    core_share_normal: float = 0.90
    core_share_crisis: float = 0.95

    def settings(self) -> RiskSettings:
        return RiskSettings(
            lookback_days=self.lookback_days,
            regime_lookback_days=self.regime_lookback_days,
            min_observations=self.min_observations,
            covariance_method=self.covariance_method,
            returns_kind=self.returns_kind,
            max_weight=self.max_weight,
            n_aggressors=self.n_aggressors,
            core_share={
                "QUIET": self.core_share_quiet,
                "NORMAL": self.core_share_normal,
                "CRISIS": self.core_share_crisis,
            },
        )


class LakehouseResource(ConfigurableResource):
    """The lakehouse root: ``root``, else ``$QUANT_ASSETS_LAKEHOUSE``, else ``data/lakehouse``."""

    root: str = ""

    def store(self) -> PartitionStore:
        return PartitionStore(self.root or None)
