"""Dagster resources: where market data comes from, which configs run, risk settings, lakehouse."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from quant_assets.errors import ConfigError
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.risk.stage import RiskSettings
from quant_assets.screening.config import ScreeningConfig, default_config_paths, load_configs
from quant_assets.sources.base import MarketSource
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

#: Environment variable naming the directory of screening configs.
CONFIGS_ENV = "QUANT_ASSETS_CONFIGS"
#: The repository's own configs, found from the package so any working directory works.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SOURCES = ("synthetic",)


class MarketDataResource(ConfigurableResource):
    """Market data source: ``synthetic`` (offline, deterministic, the default)."""

    source: str = "synthetic"
    seed: int = 7
    n_instruments: int = 1200

    def get_source(self) -> MarketSource:
        if self.source == "synthetic":
            config = SyntheticMarketConfig(seed=self.seed, n_instruments=self.n_instruments)
            return SyntheticSource(config)
        raise ConfigError(f"market data source {self.source!r} is unknown; choose one of {SOURCES}")


class ScreeningResource(ConfigurableResource):
    """Which screening configs run: explicit files, else every YAML in the configs directory."""

    config_paths: list[str] = []
    config_dir: str = ""

    def load(self) -> list[ScreeningConfig]:
        if self.config_paths:
            return load_configs(self.config_paths)
        directory = self.config_dir or os.environ.get(CONFIGS_ENV) or str(DEFAULT_CONFIG_DIR)
        return load_configs(default_config_paths(directory))


class RiskResource(ConfigurableResource):
    """Risk-stage settings: lookbacks, position cap, aggressor count, core share by regime."""

    lookback_days: int = 180
    regime_lookback_days: int = 730
    min_observations: int = 60
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
