"""Choose a market data source by name: the one place that knows every source."""

from __future__ import annotations

import os
from datetime import date

from quant_assets.errors import ConfigError
from quant_assets.sources.base import MarketSource
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

SOURCES: tuple[str, ...] = ("synthetic", "tradingview")


def open_source(
    name: str = "synthetic",
    *,
    seed: int = 7,
    n_instruments: int = 1200,
    tradingview_url: str = "",
    perturb_after: date | None = None,
    bars_cache_root: str | os.PathLike[str] | None = None,
) -> MarketSource:
    """The market data source called ``name``.

    ``synthetic`` is the offline market of ``seed`` and ``n_instruments`` (with every draw after
    ``perturb_after`` redrawn, for lookahead audits); ``tradingview`` is the
    live scanner at ``tradingview_url`` (default ``$QUANT_ASSETS_TRADINGVIEW_URL``, else the
    public scanner) and chart feed, keeping the bars of past screens under ``bars_cache_root``
    (a lakehouse root) when given.

    Raises
    ------
    ConfigError
        ``name`` is not a known source.
    """
    if name == "synthetic":
        config = SyntheticMarketConfig(seed=seed, n_instruments=n_instruments, perturb_after=perturb_after)
        return SyntheticSource(config)
    if name == "tradingview":
        # Imported here so the offline path never needs the HTTP client.
        from quant_assets.lakehouse.bars_cache import BarsCache
        from quant_assets.sources.tradingview import ScannerSettings, TradingViewSource

        overrides = {"base_url": tradingview_url} if tradingview_url else {}
        cache = BarsCache(bars_cache_root) if bars_cache_root is not None else None
        return TradingViewSource(ScannerSettings.from_env(**overrides), bars_cache=cache)
    raise ConfigError(f"market data source {name!r} is unknown; choose one of {SOURCES}")
