"""The chart websocket client against the fake feed on 127.0.0.1: framing, heartbeats, a full
history, each fault kind, unknown symbols and bounded concurrency."""

from __future__ import annotations

import asyncio
import random
from datetime import date

import polars as pl
import pytest
from aiohttp.test_utils import TestServer

from quant_assets.errors import SourceConnectionError, SourceResponseError
from quant_assets.sources.tradingview.chart_feed import (
    ChartFeedClient,
    ChartFeedSettings,
    UnknownSymbolError,
    decode_frames,
    encode_frame,
    parse_bars,
)
from quant_assets.testing.fake_chart_feed import ChartFault, FakeChartFeed
from quant_assets.sources.synthetic import SyntheticMarketConfig, get_market
from quant_assets.sources.tradingview import RetryPolicy, ScannerSettings, TradingViewSource

AS_OF = date(2024, 6, 3)
MARKET = get_market(SyntheticMarketConfig(n_instruments=200, seed=3))


def _symbols(n: int) -> list[str]:
    return MARKET.screen(AS_OF).sort("Value.Traded", descending=True)["symbol"].head(n).to_list()


def _run(feed: FakeChartFeed, symbols: list[str], n_bars: int, **settings) -> dict[str, pl.DataFrame]:
    async def go() -> dict[str, pl.DataFrame]:
        server = TestServer(feed.app(), host="127.0.0.1")
        await server.start_server()
        try:
            client = ChartFeedClient(
                ChartFeedSettings(url=str(server.make_url("/socket.io/websocket")),
                                  retry=RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05),
                                  **settings),
                rng=random.Random(0),
            )
            return await client.fetch_many(symbols, n_bars)
        finally:
            await server.close()

    return asyncio.run(go())


def test_frames_round_trip_and_concatenate():
    frames = encode_frame("~h~7") + encode_frame({"m": "x", "p": [1, "é"]})
    assert decode_frames(frames) == ["~h~7", '{"m":"x","p":[1,"é"]}']


@pytest.mark.parametrize("bad", ["~m~5~m~abc", "hello", "~m~x~m~a"])
def test_malformed_frames_are_an_error(bad):
    with pytest.raises(SourceResponseError, match="chart feed"):
        decode_frames(bad)


def test_parse_bars_keeps_the_last_update_of_a_day_and_rejects_garbage():
    day = 1717372800  # 2024-06-03 00:00 UTC
    bars = parse_bars("X:Y", [{"i": 0, "v": [day, 1, 2, 0.5, 1.5, 10]}, {"i": 0, "v": [day + 60, 1, 2, 0.5, 1.7, 12]}])
    assert bars.rows() == [(date(2024, 6, 3), "X:Y", 1.0, 2.0, 0.5, 1.7, 12.0)]
    with pytest.raises(SourceResponseError, match="malformed bar"):
        parse_bars("X:Y", [{"i": 0, "v": [day, "1", 2, 0.5, 1.5, 10]}])


def test_full_history_equals_the_markets_bars():
    symbols = _symbols(3)
    feed = FakeChartFeed(MARKET, AS_OF)
    got = _run(feed, symbols, 300)  # several timescale_update chunks each
    for symbol in symbols:
        expected = MARKET.bars(date(2021, 1, 1), AS_OF, [symbol]).tail(300).select(got[symbol].columns)
        assert got[symbol].equals(expected), symbol
    assert all(feed.connections[s] == 1 for s in symbols)


@pytest.mark.parametrize("kind", ["drop", "slow"])
def test_dropped_or_stalled_session_is_retried(kind):
    symbol = _symbols(1)[0]
    feed = FakeChartFeed(MARKET, AS_OF, faults={symbol: ChartFault(kind, times=1, delay_s=1.0)})
    got = _run(feed, [symbol], 150, idle_timeout_s=0.3)
    assert got[symbol].height == 150
    assert feed.connections[symbol] == 2  # the first session failed, the retry completed


def test_persistent_drop_fails_after_the_retries_naming_the_symbol():
    symbol = _symbols(1)[0]
    feed = FakeChartFeed(MARKET, AS_OF, faults={symbol: ChartFault("drop", times=10)})
    with pytest.raises(SourceConnectionError, match=f"chart feed {symbol}: .*3 attempts"):
        _run(feed, [symbol], 150)
    assert feed.connections[symbol] == 3


def test_protocol_error_is_a_response_error():
    symbol = _symbols(1)[0]
    feed = FakeChartFeed(MARKET, AS_OF, faults={symbol: ChartFault("protocol_error")})
    with pytest.raises(SourceResponseError, match="claims 99 characters"):
        _run(feed, [symbol], 50)


def test_unknown_symbol_is_named_and_not_retried():
    feed = FakeChartFeed(MARKET, AS_OF)
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'NOPE:NOTHING'"):
        _run(feed, [_symbols(1)[0], "NOPE:NOTHING"], 50)
    assert feed.connections["NOPE:NOTHING"] == 1


def test_concurrency_is_bounded():
    symbols = _symbols(6)
    feed = FakeChartFeed(MARKET, AS_OF, latency_s=0.05)
    open_now, peak = 0, 0
    serve = feed._serve

    async def counted(*args):
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            await serve(*args)
        finally:
            open_now -= 1

    feed._serve = counted
    got = _run(feed, symbols, 20, concurrency=2)
    assert set(got) == set(symbols) and peak == 2


def test_live_source_daily_bars_come_from_the_chart_feed():
    symbols = _symbols(2)
    start, end = date(2024, 3, 1), date(2024, 5, 31)

    async def go() -> pl.DataFrame:
        server = TestServer(FakeChartFeed(MARKET, AS_OF).app(), host="127.0.0.1")
        await server.start_server()
        try:
            source = TradingViewSource(
                ScannerSettings(), today=lambda: AS_OF,
                chart_settings=ChartFeedSettings(url=str(server.make_url("/socket.io/websocket"))))
            # daily_bars blocks: run it beside the loop that serves the fake.
            return await asyncio.get_running_loop().run_in_executor(None, source.daily_bars, symbols, start, end)
        finally:
            await server.close()

    bars = asyncio.run(go())
    assert bars.equals(MARKET.bars(start, end, symbols).select(bars.columns))
