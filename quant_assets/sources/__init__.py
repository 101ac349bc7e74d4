"""Market data sources: one interface, one folder per kind.

``base`` (the :class:`~quant_assets.sources.base.MarketSource` interface and the scan query),
``registry`` (choose a source by name), ``screener/`` (the screener's column definitions),
``synthetic/`` (the offline simulated market), ``tradingview/`` (the live scanner and chart
feed). Sources import ``instruments`` and ``errors``; the live source keeps past bars in the
lakehouse's bars cache. Nothing here imports the stages (``screening``, ``risk``), reporting,
``orchestration`` or ``testing``.
"""
