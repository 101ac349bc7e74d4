"""The live TradingView source: the scanner's HTTP API for screens, the chart websocket for
daily bars (DESIGN.md §3).

Modules, each importing only those listed before it: ``wire`` (request and answer bodies;
building a request is separate from sending it), ``transport`` (retry policy, rate limiter,
running coroutines from synchronous code), ``scanner`` (the async scanner client),
``chart_feed`` (the chart websocket's framing and client), ``source`` (the
:class:`~quant_assets.sources.base.MarketSource` over both, with past screens reconstructed by
:mod:`quant_assets.sources.screener.reconstruct`). They may import ``instruments``, ``errors``,
``sources.base`` and ``sources.screener`` (and the lakehouse's bars cache, for typing); never the
stages or Dagster.
"""

from __future__ import annotations

from quant_assets.sources.tradingview.chart_feed import ChartFeedClient, ChartFeedSettings, UnknownSymbolError
from quant_assets.sources.tradingview.scanner import COOKIE_ENV, URL_ENV, ScannerClient, ScannerSettings, scan_all
from quant_assets.sources.tradingview.source import TradingViewSource
from quant_assets.sources.tradingview.transport import RetryPolicy
from quant_assets.sources.tradingview.wire import build_scan_body

__all__ = [
    "COOKIE_ENV",
    "URL_ENV",
    "ChartFeedClient",
    "ChartFeedSettings",
    "RetryPolicy",
    "ScannerClient",
    "ScannerSettings",
    "TradingViewSource",
    "UnknownSymbolError",
    "build_scan_body",
    "scan_all",
]
