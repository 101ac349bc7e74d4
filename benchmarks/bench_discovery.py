"""Async discovery: every config's pages fetched concurrently over one session against one
request at a time, through the fake scanner with 200 ms of latency per request.

The bound for the concurrent wall time is ceil(requests / concurrency) x latency: every page
of every query is requested at once. The polite request rate spaces request starts too
(requests / rate seconds), so the last row lifts it to show the rest is the bound itself.
The fake runs in a process of its own, as the real scanner would: in the client's event loop
its own work would be charged to the client. It is still one process answering every request
in turn (~5 ms of filtering, sorting and JSON per 150-row page), which the real service is not.

Then the daily screen as shipped: the four configs in configs/ (7 requests) with the shipped
client settings (4 in flight, 1 request/s sustained, a token bucket of 8), against the same
client one request after another at the same rate limit, and against today's limiter (a bucket
of depth one, 1 s between request starts). Last, the wall time of `quant-assets screen
--source tradingview` over the four configs against an instant fake scanner, start-up included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

from benchmarks.servers import free_port, start_server
from quant_assets.screening.config import resolve_configs
from quant_assets.sources.base import ScanQuery
from quant_assets.sources.tradingview import URL_ENV, ScannerClient, ScannerSettings, scan_all

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


async def _timed_scan_all(
    requests: list[tuple[str, ScanQuery]], settings: ScannerSettings
) -> tuple[dict[str, pl.DataFrame], float]:
    """Every request through ``scan_all`` at once; the frames (an error is raised) and the wall time."""
    started = time.perf_counter()
    results = await scan_all(requests, settings)
    elapsed = time.perf_counter() - started
    frames = {}
    for key, result in results.items():
        if not isinstance(result, pl.DataFrame):
            raise result
        frames[key] = result.drop("market")
    return frames, elapsed


async def _concurrent(url: str, concurrency: int, rate_per_s: float) -> tuple[dict[str, pl.DataFrame], float]:
    settings = ScannerSettings(base_url=url, concurrency=concurrency, rate_per_s=rate_per_s, page_size=PAGE_SIZE)
    return await _timed_scan_all(list(QUERIES.items()), settings)


async def _sequential(url: str) -> tuple[dict[str, pl.DataFrame], float, int]:
    settings = ScannerSettings(base_url=url, concurrency=1, rate_per_s=RATE_PER_S, page_size=PAGE_SIZE)
    started = time.perf_counter()
    async with ScannerClient(settings) as client:
        frames = {key: await client.scan(query.markets[0], query) for key, query in QUERIES.items()}
    elapsed = time.perf_counter() - started
    n_requests = sum(math.ceil(q.limit / PAGE_SIZE) for q in QUERIES.values())
    return frames, elapsed, n_requests


def _shipped_requests() -> list[tuple[str, ScanQuery]]:
    """The shipped configs' requests as stage 1 sends them: one per (config, market)."""
    return [
        (f"{cfg.name}/{market}", dataclasses.replace(cfg.scan_query(), markets=(market,)))
        for cfg in resolve_configs([]) for market in cfg.markets
    ]


async def _shipped_sequential(settings: ScannerSettings) -> tuple[dict[str, pl.DataFrame], float]:
    started = time.perf_counter()
    async with ScannerClient(dataclasses.replace(settings, concurrency=1)) as client:
        frames = {key: await client.scan(query.markets[0], query) for key, query in _shipped_requests()}
    return frames, time.perf_counter() - started


def _shipped_screen(url: str) -> None:
    requests = _shipped_requests()
    shipped = ScannerSettings(base_url=url)
    n_requests = sum(math.ceil(q.limit / shipped.page_size) for _, q in requests)
    n_configs = len({key.split("/")[0] for key, _ in requests})
    print(
        f"\nshipped configs: {n_configs} configs, {len(requests)} (config, market) queries = {n_requests} requests, "
        f"{LATENCY_S * 1000:.0f} ms latency each; shipped settings: {shipped.concurrency} in flight, "
        f"{shipped.rate_per_s:g} req/s sustained, burst {shipped.burst}"
    )
    sequential, sequential_s = asyncio.run(_shipped_sequential(shipped))
    print(f"  {'client':<39} in flight  req/s  burst    wall   cut vs sequential")
    print(f"  {'sequential, one request after another':<39}{1:10d}{shipped.rate_per_s:7g}{shipped.burst:7d}"
          f"  {sequential_s:5.2f} s")
    today, defaults = "today's limiter (bucket of depth one)", "shipped defaults (token bucket)"
    runs = (
        (today, dataclasses.replace(shipped, burst=1)),
        (defaults, shipped),
        ("shipped defaults, 8 in flight", dataclasses.replace(shipped, concurrency=8)),
    )
    elapsed_of = {}
    for name, settings in runs:
        frames, elapsed = asyncio.run(_timed_scan_all(_shipped_requests(), settings))
        for key, frame in frames.items():
            assert frame.equals(sequential[key]), f"{key}: {name} and sequential answers differ"
        elapsed_of[name] = elapsed
        print(
            f"  {name:<39}{settings.concurrency:10d}{settings.rate_per_s:7g}{settings.burst:7d}  {elapsed:5.2f} s"
            f"   {100 * (1 - elapsed / sequential_s):5.1f}%"
        )
    shipped_s, today_s = elapsed_of[defaults], elapsed_of[today]
    print(
        f"  KPI: shipped defaults cut the fetch latency by {100 * (1 - shipped_s / sequential_s):.1f}% vs sequential "
        f"({sequential_s / shipped_s:.1f}x faster; target >= 60%, better >= 90%) and by "
        f"{100 * (1 - shipped_s / today_s):.1f}% vs today's limiter"
    )
    print("  answers identical (every run == sequential, every query)")


def _cli_screen_wall_time() -> None:
    """``quant-assets screen`` over the shipped configs against an instant fake serving today."""
    port = free_port()
    server = _start_fake(port, date_served=None, latency_s=0.0)
    try:
        env = {**os.environ, URL_ENV: f"http://127.0.0.1:{port}"}
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "quant_assets.cli", "screen", "--source", "tradingview",
                       "--output", str(Path(tmp) / "signals.parquet")]
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"quant-assets screen failed ({done.returncode}): {done.stderr.strip()}")
        print(
            f"\n`quant-assets screen --source tradingview` over the shipped configs, instant fake scanner: "
            f"{elapsed:.2f} s wall, start-up included ({done.stdout.split(' written to')[0].strip()})"
        )
    finally:
        server.terminate()
        server.wait(30)


def _start_fake(port: int, date_served: date | None = AS_OF, latency_s: float = LATENCY_S) -> subprocess.Popen:
    command = [sys.executable, "-m", "quant_assets.cli", "fake-scanner", "--port", str(port),
               "--latency", str(latency_s), "--instruments", str(N_INSTRUMENTS)]
    if date_served is not None:
        command += ["--date", date_served.isoformat()]
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
        _shipped_screen(url)
    finally:
        server.terminate()
        server.wait(30)
    _cli_screen_wall_time()


if __name__ == "__main__":
    main()
