from __future__ import annotations

import asyncio
from datetime import date, timedelta

import polars as pl
import pytest
from aiohttp.test_utils import TestServer

from quant_assets.errors import ValidationError
from quant_assets.lakehouse.bars_cache import BarsCache, symbol_file_name
from quant_assets.sources.chart_feed import ChartFeedClient, ChartFeedSettings
from quant_assets.sources.fake_chart_feed import FakeChartFeed
from quant_assets.sources.synthetic import SyntheticMarketConfig, get_market

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
    cache.append(symbol, _bars(symbol, date(2024, 1, 1), 3))
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
    assert cache.append("X:A", _bars("X:A", date(2024, 1, 1), 5, close=1.0)) == 5
    # An overlapping fetch with a revised close: cached dates keep their bars, new ones are added.
    assert cache.append("X:A", _bars("X:A", date(2024, 1, 4), 5, close=2.0)) == 3
    bars = cache.read("X:A")
    assert bars["date"].to_list() == [date(2024, 1, 1) + timedelta(days=i) for i in range(8)]
    assert bars["close"].to_list() == [1.0] * 5 + [2.0] * 3
    assert cache.read("X:A", end=date(2024, 1, 2)).height == 2
    with pytest.raises(ValidationError, match="bars of other symbols"):
        cache.append("X:A", _bars("X:B", date(2024, 2, 1), 1))


def test_fill_fetches_only_what_is_missing(tmp_path):
    cache, calls = BarsCache(tmp_path), []

    def fetch(symbols, n_bars):
        calls.append((sorted(symbols), n_bars))
        end = date(2024, 1, 10)
        return {s: _bars(s, end - timedelta(days=n_bars - 1), n_bars) for s in symbols}

    assert cache.fill(fetch, ["X:A", "X:B"], date(2024, 1, 10), history_days=10) == {"X:A": 10, "X:B": 10}
    assert cache.fill(fetch, ["X:A", "X:B"], date(2024, 1, 10), history_days=10) == {"X:A": 0, "X:B": 0}
    assert calls == [(["X:A", "X:B"], 10)]  # nothing fetched the second time


def test_incremental_fill_from_the_chart_feed_matches_one_full_fetch(tmp_path):
    symbols = MARKET.screen(date(2024, 6, 1)).sort("Value.Traded", descending=True)["symbol"].head(3).to_list()

    def fill(cache: BarsCache, feed: FakeChartFeed, end: date) -> dict[str, int]:
        async def fetch(wanted, n_bars):
            server = TestServer(feed.app(), host="127.0.0.1")
            await server.start_server()
            try:
                client = ChartFeedClient(ChartFeedSettings(url=str(server.make_url("/socket.io/websocket"))))
                return await client.fetch_many(wanted, n_bars)
            finally:
                await server.close()

        return cache.fill(lambda wanted, n_bars: asyncio.run(fetch(wanted, n_bars)), symbols, end, history_days=200)

    incremental = BarsCache(tmp_path / "inc")
    fill(incremental, FakeChartFeed(MARKET, date(2024, 5, 20)), date(2024, 5, 20))
    added = fill(incremental, FakeChartFeed(MARKET, date(2024, 6, 3)), date(2024, 6, 3))
    assert all(0 < n <= 14 for n in added.values())  # only the days after the first fill
    for symbol in symbols:
        expected = MARKET.bars(date(2021, 1, 1), date(2024, 6, 3), [symbol])
        expected = expected.filter(pl.col("date") >= incremental.read(symbol)["date"].min())
        assert incremental.read(symbol).equals(expected.select(incremental.read(symbol).columns)), symbol
