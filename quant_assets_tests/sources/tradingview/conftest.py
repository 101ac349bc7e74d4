"""Shared by the TradingView tests: a synthetic market, the fake scanner and the fake chart feed
on 127.0.0.1 (in the test's event loop or on one of their own in a thread), fast retries."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from typing import TypeVar

import polars as pl
import pytest
from aiohttp import web

from quant_assets.sources.base import ScanQuery
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant_assets.sources.tradingview import RetryPolicy, ScannerClient, ScannerSettings
from quant_assets.testing.fake_chart_feed import FakeChartFeed
from quant_assets.testing.fake_scanner import FakeScanner, FaultPlan

AS_OF = date(2023, 6, 15)
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)
QUERY = ScanQuery(
    markets=("crypto",),
    columns=("name", "exchange", "type", "close", "Value.Traded", "market_cap_calc", "Perf.3M", "pricescale"),
    limit=60,
    label="configs/crypto_long.yaml",
)

T = TypeVar("T")


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    """Big enough for 350 crypto rows (pagination), small enough to simulate in about a second."""
    return SyntheticMarket(SyntheticMarketConfig(n_instruments=800))


def settings_for(fake: FakeScanner, **overrides: object) -> ScannerSettings:
    values: dict = {"base_url": fake.url, "timeout_s": 0.3, "rate_per_s": 200.0, "retry": FAST_RETRY}
    return ScannerSettings(**{**values, **overrides})


def with_fake(
    market: SyntheticMarket, plan: FaultPlan | None, scenario: Callable[[FakeScanner], Awaitable[T]]
) -> T:
    async def run() -> T:
        async with FakeScanner(market, AS_OF, plan) as fake:
            return await scenario(fake)

    return asyncio.run(run())


def client_scan(
    market: SyntheticMarket, plan: FaultPlan | None, query: ScanQuery = QUERY, **settings: object
) -> pl.DataFrame:
    async def scenario(fake: FakeScanner) -> pl.DataFrame:
        async with ScannerClient(settings_for(fake, **settings)) as client:
            return await client.scan("crypto", query)

    return with_fake(market, plan, scenario)


@contextlib.contextmanager
def fake_in_thread(
    market: SyntheticMarket, plan: FaultPlan | None = None, as_of: date = AS_OF
) -> Iterator[FakeScanner]:
    """The fake on its own event loop in a thread, for the synchronous TradingViewSource."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeScanner(market, as_of, plan)
    try:
        asyncio.run_coroutine_threadsafe(fake.__aenter__(), loop).result(timeout=10)
        try:
            yield fake
        finally:
            asyncio.run_coroutine_threadsafe(fake.__aexit__(None, None, None), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@contextlib.contextmanager
def chart_feed_in_thread(market: SyntheticMarket, as_of: date = AS_OF) -> Iterator[str]:
    """The fake chart feed on its own event loop in a thread; yields its websocket URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(FakeChartFeed(market, as_of).app(), shutdown_timeout=1.0)
    try:
        asyncio.run_coroutine_threadsafe(runner.setup(), loop).result(timeout=10)
        asyncio.run_coroutine_threadsafe(web.TCPSite(runner, "127.0.0.1", 0).start(), loop).result(timeout=10)
        host, port = runner.addresses[0][:2]
        yield f"ws://{host}:{port}/socket.io/websocket"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
