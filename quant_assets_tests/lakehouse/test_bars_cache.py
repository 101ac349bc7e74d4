from __future__ import annotations

import asyncio
from datetime import date, timedelta

import polars as pl
import pytest
from aiohttp.test_utils import TestServer

from quant_assets.errors import ValidationError
from quant_assets.lakehouse.bars_cache import BarsCache, symbol_file_name
from quant_assets.sources.tradingview.chart_feed import ChartFeedSettings
from quant_assets.testing.fake_chart_feed import FakeChartFeed
from quant_assets.sources.synthetic import SyntheticMarketConfig, get_market
from quant_assets.sources.tradingview import ScannerSettings, TradingViewSource

MARKET = get_market(SyntheticMarketConfig(n_instruments=200, seed=3))


def _bars(symbol: str, start: date, days: int, close: float = 1.0) -> pl.DataFrame:
    dates = [start + timedelta(days=i) for i in range(days)]
    return pl.DataFrame({"date": dates, "symbol": [symbol] * days, "open": [close] * days, "high": [close] * days,
                         "low": [close] * days, "close": [close] * days, "volume": [1.0] * days})


@pytest.mark.parametrize("symbol", ["../../etc/passwd", "..", ".", "A/B", "A\\B", "C:\\x", "BINANCE:BTCUSDT.P",
                                    "ÉX:ÇA", "a b", "%2E%2E"])
def test_no_symbol_escapes_the_cache_or_collides(tmp_path, symbol):
    cache = BarsCache(tmp_path)
    name = symbol_file_name(symbol)
    assert "/" not in name and "\\" not in name and not name.startswith(".") and name.endswith(".parquet")
    cache.append(symbol, _bars(symbol, date(2024, 1, 1), 3), (date(2024, 1, 1), date(2024, 1, 3)))
    assert cache.path(symbol).parent == cache.dir  # one level below _bars, always
    assert [p.name for p in cache.dir.iterdir()] == [name]
    assert cache.read(symbol)["symbol"].to_list() == [symbol] * 3


def test_encoding_is_injective_on_lookalikes():
    names = {symbol_file_name(s) for s in ["A.B", "A%2EB", "A_B", "A-B", "a.b", "A:B", "A%3AB"]}
    assert len(names) == 7


@pytest.mark.parametrize("bad", ["", "X" * 81])
def test_empty_or_overlong_symbol_is_rejected(bad):
    with pytest.raises(ValidationError, match="bars cache: symbol"):
        symbol_file_name(bad)


def test_append_keeps_cached_history_and_adds_only_new_dates(tmp_path):
    cache = BarsCache(tmp_path)
    jan = (date(2024, 1, 1), date(2024, 1, 31))
    assert cache.append("X:A", _bars("X:A", date(2024, 1, 1), 5, close=1.0), jan)[0].height == 5
    # An overlapping fetch with a revised close: cached dates keep their bars, new ones are added.
    assert cache.append("X:A", _bars("X:A", date(2024, 1, 4), 5, close=2.0), jan)[0].height == 8
    bars = cache.read("X:A")
    assert bars["date"].to_list() == [date(2024, 1, 1) + timedelta(days=i) for i in range(8)]
    assert bars["close"].to_list() == [1.0] * 5 + [2.0] * 3
    assert cache.coverage("X:A") == jan
    with pytest.raises(ValidationError, match="bars of other symbols"):
        cache.append("X:A", _bars("X:B", date(2024, 1, 1), 1), jan)
    with pytest.raises(ValidationError, match="outside the span fetched"):
        cache.append("X:A", _bars("X:A", date(2024, 2, 1), 1), jan)


def test_only_days_outside_the_coverage_are_fetched(tmp_path):
    cache, calls = BarsCache(tmp_path), []

    def fetch(symbols, start, end):
        calls.append((sorted(symbols), start, end))
        return MARKET.bars(start, end, symbols)

    symbols = MARKET.screen(date(2024, 6, 1))["symbol"].head(3).to_list()
    first = cache.bars(fetch, symbols, date(2024, 3, 1), date(2024, 4, 30))
    assert first.equals(MARKET.bars(date(2024, 3, 1), date(2024, 4, 30), symbols))
    assert cache.bars(fetch, symbols, date(2024, 3, 10), date(2024, 4, 20)).height < first.height
    assert len(calls) == 1  # covered: nothing fetched again
    wider = cache.bars(fetch, symbols, date(2024, 2, 1), date(2024, 5, 31))
    assert wider.equals(MARKET.bars(date(2024, 2, 1), date(2024, 5, 31), symbols))
    assert calls[1:] == [(sorted(symbols), date(2024, 2, 1), date(2024, 2, 29)),
                         (sorted(symbols), date(2024, 5, 1), date(2024, 5, 31))]  # only the gaps
    assert cache.coverage(symbols[0]) == (date(2024, 2, 1), date(2024, 5, 31))


def test_a_day_without_trading_inside_the_coverage_is_not_refetched(tmp_path):
    cache, calls = BarsCache(tmp_path), []
    stock = next(s for s in MARKET.screen(date(2024, 6, 1))["symbol"] if s.startswith(("NYSE:", "NASDAQ:")))

    def fetch(symbols, start, end):
        calls.append((start, end))
        return MARKET.bars(start, end, symbols)

    cache.bars(fetch, [stock], date(2024, 6, 1), date(2024, 6, 9))  # two weekends
    cache.bars(fetch, [stock], date(2024, 6, 1), date(2024, 6, 9))
    assert calls == [(date(2024, 6, 1), date(2024, 6, 9))]


def test_bars_from_the_live_source_through_the_fake_chart_feed(tmp_path):
    symbols = MARKET.screen(date(2024, 6, 1)).sort("Value.Traded", descending=True)["symbol"].head(3).to_list()

    def fetch_from(feed: FakeChartFeed):
        async def serve_and_fetch(wanted, start, end):
            server = TestServer(feed.app(), host="127.0.0.1")
            await server.start_server()
            try:
                source = TradingViewSource(
                    ScannerSettings(), today=lambda: feed.as_of,
                    chart_settings=ChartFeedSettings(url=str(server.make_url("/socket.io/websocket"))))
                return await asyncio.get_running_loop().run_in_executor(None, source.daily_bars, wanted, start, end)
            finally:
                await server.close()

        return lambda wanted, start, end: asyncio.run(serve_and_fetch(wanted, start, end))

    cache = BarsCache(tmp_path)
    cache.bars(fetch_from(FakeChartFeed(MARKET, date(2024, 5, 20))), symbols, date(2024, 1, 1), date(2024, 5, 20))
    feed = FakeChartFeed(MARKET, date(2024, 6, 3))
    bars = cache.bars(fetch_from(feed), symbols, date(2024, 1, 1), date(2024, 6, 3))  # incremental fill
    assert bars.equals(MARKET.bars(date(2024, 1, 1), date(2024, 6, 3), symbols))
    assert all(feed.connections[s] == 1 for s in symbols)
