"""Choose a market data source by name: the one place that knows every source.

Importing this module is cheap (the CLI lists :data:`SOURCES` in its help): each source's
package is imported only when that source is opened.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from quant_assets.errors import ConfigError

if TYPE_CHECKING:
    from quant_assets.lakehouse.bars_cache import BarsCache
    from quant_assets.sources.base import MarketSource

SOURCES: tuple[str, ...] = ("synthetic", "tradingview")


def open_source(
    name: str = "synthetic",
    *,
    seed: int = 7,
    n_instruments: int = 1200,
    tradingview_url: str = "",
    perturb_after: date | None = None,
    bars_cache: BarsCache | None = None,
) -> MarketSource:
    """The market data source called ``name``.

    ``synthetic`` is the offline market of ``seed`` and ``n_instruments`` (with every draw after
    ``perturb_after`` redrawn, for lookahead audits); ``tradingview`` is the
    live scanner at ``tradingview_url`` (default ``$QUANT_ASSETS_TRADINGVIEW_URL``, else the
    public scanner) and chart feed, keeping the bars of past screens in ``bars_cache`` when
    given.

    Raises
    ------
    ConfigError
        ``name`` is not a known source.
    """
    if name == "synthetic":
        from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

        config = SyntheticMarketConfig(seed=seed, n_instruments=n_instruments, perturb_after=perturb_after)
        return SyntheticSource(config)
    if name == "tradingview":
        from quant_assets.sources.tradingview import ScannerSettings, TradingViewSource

        overrides = {"base_url": tradingview_url} if tradingview_url else {}
        return TradingViewSource(ScannerSettings.from_env(**overrides), bars_cache=bars_cache)
    raise ConfigError(f"market data source {name!r} is unknown; choose one of {SOURCES}")
