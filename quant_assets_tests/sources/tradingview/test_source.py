"""The live MarketSource over the fakes: today's screen from the scanner, a past screen
reconstructed from the chart feed's bars, one result or error per query."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date

import polars as pl
import pytest

from quant_assets.errors import SourceResponseError
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.sources.base import ScanFilter, ScanQuery
from quant_assets.sources.screener.scan_filters import answer_query
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticSource
from quant_assets.sources.tradingview import ChartFeedSettings, ScannerSettings, TradingViewSource
from quant_assets.testing.fake_scanner import FaultPlan
from quant_assets_tests.sources.tradingview.conftest import (
    AS_OF,
    QUERY,
    chart_feed_in_thread,
    fake_in_thread,
    settings_for,
)



def test_tradingview_source_refuses_a_future_date() -> None:
    source = TradingViewSource(ScannerSettings(), today=lambda: date(2024, 5, 2))
    with pytest.raises(SourceResponseError, match=r"nothing after today \(2024-05-02\), asked for 2024-05-03"):
        source.scan(date(2024, 5, 3), QUERY)


def test_past_screen_is_reconstructed_from_bars(market: SyntheticMarket, tmp_path) -> None:
    past = date(2023, 3, 1)
    # Price-only fields, so today's supply or tick size cannot enter the comparison.
    query = ScanQuery(markets=("crypto",), columns=("close", "Value.Traded", "change", "Perf.W"),
                      filters=(ScanFilter("Value.Traded", "greater", 1e6),), limit=40, label="past")
    with fake_in_thread(market) as fake, chart_feed_in_thread(market) as chart_url:
        source = TradingViewSource(settings_for(fake), today=lambda: AS_OF,
                                   chart_settings=ChartFeedSettings(url=chart_url),
                                   bars_cache=BarsCache(tmp_path), history_days=1000)
        ours = source.scan(past, query)
    assert ours["reconstructed"].all() and ours.height == 40
    # The synthetic screener's own answer that day, less what was delisted before today.
    listed_today = set(market.screen(AS_OF)["symbol"])
    truth = answer_query(market.screen(past).filter(pl.col("symbol").is_in(list(listed_today))), query)
    assert ours.drop("reconstructed").equals(truth)
    assert len(list((tmp_path / "_bars").iterdir())) > 40  # the bars were cached for the next run



def test_tradingview_source_scans_today_from_the_fake(market: SyntheticMarket) -> None:
    with fake_in_thread(market) as fake:
        source = TradingViewSource(settings_for(fake), today=lambda: AS_OF)
        frame = source.scan(AS_OF, QUERY)
        assert source.name == "tradingview"
        assert frame.drop("market").equals(SyntheticSource(market=market).scan(AS_OF, QUERY))

        # From inside a running event loop too (a notebook, an async caller).
        async def inside_a_loop() -> pl.DataFrame:
            return source.scan(AS_OF, QUERY)

        assert asyncio.run(inside_a_loop()).equals(frame)


def test_tradingview_source_scan_many_returns_each_result_or_error(market: SyntheticMarket) -> None:
    plan = FaultPlan(latency_s=0.05)
    queries = [
        QUERY,
        dataclasses.replace(QUERY, columns=("nope",), label="bad.yaml"),
        dataclasses.replace(QUERY, markets=("america",)),
    ]
    with fake_in_thread(market, plan) as fake:
        source = TradingViewSource(settings_for(fake, concurrency=4), today=lambda: AS_OF)
        results = source.scan_many(AS_OF, queries)
        with pytest.raises(SourceResponseError, match="bad.yaml"):
            source.scan(AS_OF, queries[1])
    assert isinstance(results[0], pl.DataFrame) and isinstance(results[2], pl.DataFrame)
    assert isinstance(results[1], SourceResponseError) and 'Unknown field "nope"' in str(results[1])
    assert results[2]["market"].unique().to_list() == ["america"]
    assert plan.max_in_flight == 3  # all three queries at once


def test_an_empty_answer_flows_through_the_stages_typed(market: SyntheticMarket) -> None:
    """A valid answer with no rows (nothing passes the filter) is an empty screen of the usual
    types, which the gates and the catalog take like any other."""
    from quant_assets.lakehouse.catalog import build_observations
    from quant_assets.screening.config import ScreeningConfig
    from quant_assets.screening.discovery import fetch_raw_screen
    from quant_assets.screening.gates import select_liquid_universe, select_signals

    nothing = ScreeningConfig.model_validate(dict(
        name="nothing", direction="LONG", markets=["crypto", "futures"], prefilter_limit=50, base_limit=20, limit=5,
        filters=[{"left": "close", "operation": "greater", "right": 1e15}]))
    with fake_in_thread(market) as fake:
        source = TradingViewSource(settings_for(fake), today=lambda: AS_OF)
        fetched = fetch_raw_screen(source, [nothing], AS_OF)
        reference = source.scan(AS_OF, dataclasses.replace(nothing.scan_query(), filters=()))
    raw = fetched.frame
    assert raw.is_empty() and fetched.failures == {}
    assert {c: t for c, t in raw.schema.items() if c in reference.columns} == {
        c: t for c, t in reference.schema.items() if c in raw.columns}
    universe = select_liquid_universe(raw, [nothing])
    signals = select_signals(universe, [nothing])
    catalog = build_observations(raw, signals, AS_OF)
    assert universe.is_empty() and signals.is_empty() and catalog.is_empty()
    assert universe.schema["tick_size"] == pl.Float64 and signals.schema["alpha_value"] == pl.Float64
