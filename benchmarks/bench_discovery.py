"""Async discovery: every config's pages fetched concurrently over one session against one
request at a time, through the fake scanner with 200 ms of latency per request.

The bound for the concurrent wall time is ceil(requests / concurrency) x latency: every page
of every query is requested at once. The polite request rate spaces request starts too
(requests / rate seconds), so the last row lifts it to show the rest is the bound itself.
The fake runs in a process of its own, as the real scanner would: in the client's event loop
its own work would be charged to the client. It is still one process answering every request
in turn (~5 ms of filtering, sorting and JSON per 150-row page), which the real service is not.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from datetime import date

import polars as pl

from benchmarks.servers import free_port, start_server
from quant_assets.sources.base import ScanQuery
from quant_assets.sources.tradingview import ScannerClient, ScannerSettings, scan_all

AS_OF = date(2023, 6, 15)
N_INSTRUMENTS = 2500  # enough for 600 rows in both crypto and america
LATENCY_S = 0.2
LIMIT, PAGE_SIZE = 600, 150
RATE_PER_S = 100.0
# (in flight, requests/s): a few in flight, one per request, and no rate limit to speak of.
RUNS = ((8, RATE_PER_S), (16, RATE_PER_S), (16, 1000.0))
COLUMNS = (
    "name", "exchange", "type", "currency", "close", "volume", "Value.Traded", "market_cap_calc", "Perf.W",
    "Perf.1M", "Perf.3M", "Volatility.D", "ADX", "RSI", "Recommend.All", "pricescale", "minmov",
)
_ORDERS = (
    ("crypto", "Value.Traded"), ("crypto", "Perf.1M"), ("america", "Value.Traded"), ("america", "market_cap_calc")
)
QUERIES = {
    f"{m}_by_{by}": ScanQuery((m,), COLUMNS, sort_by=by, limit=LIMIT, label=f"{m}_by_{by}") for m, by in _ORDERS
}


async def _concurrent(url: str, concurrency: int, rate_per_s: float) -> tuple[dict[str, pl.DataFrame], float]:
    settings = ScannerSettings(base_url=url, concurrency=concurrency, rate_per_s=rate_per_s, page_size=PAGE_SIZE)
    started = time.perf_counter()
    results = await scan_all(list(QUERIES.items()), settings)
    elapsed = time.perf_counter() - started
    frames = {}
    for key, result in results.items():
        if not isinstance(result, pl.DataFrame):
            raise result
        frames[key] = result.drop("market")
    return frames, elapsed


async def _sequential(url: str) -> tuple[dict[str, pl.DataFrame], float, int]:
    settings = ScannerSettings(base_url=url, concurrency=1, rate_per_s=RATE_PER_S, page_size=PAGE_SIZE)
    started = time.perf_counter()
    async with ScannerClient(settings) as client:
        frames = {key: await client.scan(query.markets[0], query) for key, query in QUERIES.items()}
    elapsed = time.perf_counter() - started
    n_requests = sum(math.ceil(q.limit / PAGE_SIZE) for q in QUERIES.values())
    return frames, elapsed, n_requests


def _start_fake(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "quant_assets.cli", "fake-scanner", "--port", str(port),
               "--date", AS_OF.isoformat(), "--latency", str(LATENCY_S), "--instruments", str(N_INSTRUMENTS)]
    return start_server(command, port, "the fake scanner")


def main() -> None:
    port = free_port()
    server = _start_fake(port)
    url = f"http://127.0.0.1:{port}"
    try:
        sequential, sequential_s, n_requests = asyncio.run(_sequential(url))
        print(
            f"discovery: {len(QUERIES)} queries x {LIMIT} rows in pages of {PAGE_SIZE} = {n_requests} requests, "
            f"{LATENCY_S * 1000:.0f} ms latency each (fake scanner in its own process)"
        )
        print(f"  sequential, one request at a time         {sequential_s:5.2f} s")
        print("  concurrent  in flight  req/s   wall    cut   vs ceil(R/C)xL")
        for concurrency, rate_per_s in RUNS:
            frames, elapsed = asyncio.run(_concurrent(url, concurrency, rate_per_s))
            for key, frame in frames.items():
                assert frame.equals(sequential[key]), f"{key}: concurrent and sequential answers differ"
            bound = math.ceil(n_requests / concurrency) * LATENCY_S
            print(
                f"{concurrency:22d}{rate_per_s:7g}  {elapsed:5.2f} s"
                f"  {100 * (1 - elapsed / sequential_s):4.1f}%   {elapsed / bound:4.2f}x ({bound:.2f} s)"
            )
        print("  answers identical (concurrent == sequential, every query)")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
