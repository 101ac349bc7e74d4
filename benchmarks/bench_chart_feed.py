"""Daily bars over the chart websocket: bounded concurrency vs one symbol at a time.

The fake chart feed runs in its own process with a fixed latency before every frame (a symbol's
year of bars is 6 frames: resolved, 4 chunks of bars, completed). Both runs fetch the same
symbols and must return identical bars.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date

import polars as pl

from benchmarks.servers import free_port, start_server
from quant_assets.sources.tradingview.chart_feed import ChartFeedClient, ChartFeedSettings
from quant_assets.sources.synthetic import SyntheticMarketConfig, get_market

AS_OF = date(2024, 6, 3)
N_SYMBOLS, N_BARS, LATENCY_S = 32, 365, 0.02
CONCURRENCY = (4, 8, 16)


def _fetch(url: str, symbols: list[str], concurrency: int) -> tuple[dict[str, pl.DataFrame], float]:
    client = ChartFeedClient(ChartFeedSettings(url=url, concurrency=concurrency))
    started = time.perf_counter()
    bars = asyncio.run(client.fetch_many(symbols, N_BARS))
    return bars, time.perf_counter() - started


def main() -> None:
    market = get_market(SyntheticMarketConfig())
    symbols = market.screen(AS_OF).filter(pl.col("market") == "crypto").sort(
        "Value.Traded", descending=True)["symbol"].head(N_SYMBOLS).to_list()
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "quant_assets.testing.fake_chart_feed", "--port", str(port),
         "--date", AS_OF.isoformat(), "--latency", str(LATENCY_S)], port, "the fake chart feed")
    url = f"ws://127.0.0.1:{port}/socket.io/websocket"
    try:
        sequential, sequential_s = _fetch(url, symbols, 1)
        n_bars = sum(b.height for b in sequential.values())
        print(f"chart feed: {N_SYMBOLS} symbols x {N_BARS} daily bars, {LATENCY_S * 1000:.0f} ms before every "
              "frame (fake feed in its own process)")
        print(f"  one symbol at a time         {sequential_s:6.2f} s  {n_bars / sequential_s:8.0f} bars/s")
        for concurrency in CONCURRENCY:
            bars, elapsed = _fetch(url, symbols, concurrency)
            assert all(bars[s].equals(sequential[s]) for s in symbols), "concurrent and sequential bars differ"
            print(f"  {concurrency:2d} connections at once     {elapsed:6.2f} s  {n_bars / elapsed:8.0f} bars/s"
                  f"  {sequential_s / elapsed:5.1f}x")
        print("  bars identical (concurrent == one at a time, every symbol)")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
