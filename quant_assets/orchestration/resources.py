"""Dagster resources: where market data comes from, which configs run, risk settings, trading
costs, lakehouse."""

from __future__ import annotations

from datetime import date

from dagster import ConfigurableResource

from quant_assets.backtest.costs import CostSettings
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.risk.settings import RiskSettings
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

    def get_source(self, bars_cache: BarsCache | None = None) -> MarketSource:
        """The source; the live one keeps the bars of past screens in ``bars_cache``."""
        return open_source(
            self.source, seed=self.seed, n_instruments=self.n_instruments,
            tradingview_url=self.tradingview_url,
            perturb_after=date.fromisoformat(self.perturb_after) if self.perturb_after else None,
            bars_cache=bars_cache,
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


class RiskResource(ConfigurableResource, RiskSettings):
    """Risk-stage settings (:class:`~quant_assets.risk.settings.RiskSettings`, whose fields this
    resource takes as its config): lookbacks, covariance estimator, returns, position cap,
    aggressor count, core share by regime."""

    def settings(self) -> RiskSettings:
        return RiskSettings.model_validate(self.model_dump(include=set(RiskSettings.model_fields)))


class CostsResource(ConfigurableResource, CostSettings):
    """The backtest's trading costs (:class:`~quant_assets.backtest.costs.CostSettings`, whose
    fields this resource takes as its config): commission and half spread in basis points per
    asset class, the spread at least half a tick."""

    def settings(self) -> CostSettings:
        return CostSettings.model_validate(self.model_dump(include=set(CostSettings.model_fields)))


class LakehouseResource(ConfigurableResource):
    """The lakehouse root: ``root``, else ``$QUANT_ASSETS_LAKEHOUSE``, else ``data/lakehouse``."""

    root: str = ""

    def store(self) -> PartitionStore:
        return PartitionStore(self.root or None)

    def bars_cache(self) -> BarsCache:
        """The daily-bars cache under the lakehouse root (``<root>/_bars/``)."""
        return BarsCache(self.store().root)
