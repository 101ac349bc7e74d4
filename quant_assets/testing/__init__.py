"""Fakes of the external services, for tests, benchmarks and demos: the TradingView scanner
(``fake_scanner``, an aiohttp app with injectable latency and faults) and its chart websocket
(``fake_chart_feed``), both serving the synthetic market on 127.0.0.1.

Shipped inside the package, as ``polars.testing`` is, so tests, benchmarks and
``quant-assets fake-scanner`` share one fake; no runtime module imports it (an import-linter
contract says so). May import ``sources``.
"""
