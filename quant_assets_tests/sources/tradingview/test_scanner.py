"""The TradingView scanner client against the fake scanner: settings, retries, paging,
concurrency, rate, isolation and secrets."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time

import aiohttp
import polars as pl
import pytest
from aiohttp import web

from quant_assets.errors import ConfigError, QuantAssetsError, SourceConnectionError, SourceResponseError
from quant_assets.sources.base import ScanFilter, ScanQuery
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticSource
from quant_assets.sources.tradingview import (
    COOKIE_ENV,
    URL_ENV,
    ScannerClient,
    ScannerSettings,
    TradingViewSource,
    scan_all,
)
from quant_assets.sources.tradingview.scanner import DEFAULT_BASE_URL
from quant_assets.testing.fake_scanner import FakeScanner, FaultPlan
from quant_assets_tests.sources.tradingview.conftest import (
    AS_OF,
    FAST_RETRY,
    QUERY,
    client_scan,
    settings_for,
    with_fake,
)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"base_url": "scanner.tradingview.com"}, "base_url"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate_per_s": 0}, "rate_per_s"),
        ({"burst": 0}, "burst"),
        ({"page_size": 0}, "page_size"),
        ({"timeout_s": -1}, "timeout_s"),
    ],
)
def test_scanner_settings_reject_impossible_values(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ScannerSettings(**kwargs)


def test_scanner_settings_from_env_reads_url_and_cookie(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv(COOKIE_ENV, raising=False)
    default = ScannerSettings.from_env()
    assert default.base_url == DEFAULT_BASE_URL and default.cookie is None
    assert default.headers["User-Agent"].startswith("quant_assets/")
    assert "Mozilla" not in default.headers["User-Agent"]

    monkeypatch.setenv(URL_ENV, "http://proxy.internal:8080/tv")
    monkeypatch.setenv(COOKIE_ENV, "abc")
    settings = ScannerSettings.from_env(page_size=50)
    assert (settings.base_url, settings.page_size, settings.cookie) == ("http://proxy.internal:8080/tv", 50, "abc")
    assert ScannerSettings.from_env(base_url="http://127.0.0.1:1").base_url == "http://127.0.0.1:1"
    with pytest.raises(ConfigError, match=COOKIE_ENV):
        ScannerSettings.from_env(cookie="xyz")
    with pytest.raises(ConfigError, match="page_sise"):
        ScannerSettings.from_env(page_sise=50)


# ---------------------------------------------------------------------------------------------
# Faults: retried, then a clear error.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    ["429", "429-retry-after:0.05", "403", "500", "503", "hang", "reset", "empty", "html", "truncated", "nodata"],
)
def test_client_retries_a_fault_then_succeeds(market: SyntheticMarket, fault: str) -> None:
    plan = FaultPlan(faults=[fault])
    frame = client_scan(market, plan)
    assert frame.equals(SyntheticSource(market=market).scan(AS_OF, QUERY))
    assert plan.requests == 2  # one page: the faulty attempt and its retry
    assert plan.records[0].body == plan.records[1].body


@pytest.mark.parametrize(
    "fault, error, cause",
    [
        ("503", SourceResponseError, "HTTP 503"),
        ("403", SourceResponseError, "HTTP 403"),
        ("hang", SourceConnectionError, "no complete answer within 0.3 s"),
        ("reset", SourceConnectionError, "ServerDisconnectedError"),
        ("empty", SourceResponseError, "empty body"),
        ("html", SourceResponseError, "non-JSON body"),
        ("truncated", SourceResponseError, "truncated"),
        ("nodata", SourceResponseError, "lacking a 'data' list"),
    ],
)
def test_client_gives_up_after_the_last_attempt_with_a_clear_error(
    market: SyntheticMarket, fault: str, error: type[QuantAssetsError], cause: str
) -> None:
    plan = FaultPlan(fail_markets={"crypto": fault})
    started = time.monotonic()
    with pytest.raises(error) as info:
        client_scan(market, plan, retry=dataclasses.replace(FAST_RETRY, max_attempts=3))
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    for part in ("configs/crypto_long.yaml", "POST /crypto/scan", "after 3 attempts", cause):
        assert part in message
    assert plan.requests == 3
    if error is SourceConnectionError:
        assert isinstance(info.value.__cause__, (aiohttp.ClientError, asyncio.TimeoutError))


def test_client_honours_retry_after(market: SyntheticMarket) -> None:
    plan = FaultPlan(faults=["429-retry-after:1"])
    client_scan(market, plan, retry=dataclasses.replace(FAST_RETRY, max_delay_s=5.0))
    first, second = plan.timestamps
    assert second - first >= 0.95


def test_client_does_not_retry_an_unknown_field(market: SyntheticMarket) -> None:
    plan = FaultPlan()
    query = dataclasses.replace(QUERY, columns=("close", "Perf.2W"))
    with pytest.raises(SourceResponseError) as info:
        client_scan(market, plan, query)
    assert plan.requests == 1
    assert str(info.value).startswith('Unknown field "Perf.2W" in the columns of scan query \'configs/crypto_long.yaml\'')
    assert "HTTP 400 from POST /crypto/scan" in str(info.value)


def test_client_names_an_unknown_filter_field(market: SyntheticMarket) -> None:
    query = dataclasses.replace(QUERY, filters=(ScanFilter("Perf.2W", "greater", 0),))
    with pytest.raises(SourceResponseError, match=r'Unknown field "Perf.2W" in the filters of scan query'):
        client_scan(market, FaultPlan(), query)


def test_client_does_not_retry_an_unknown_market(market: SyntheticMarket) -> None:
    plan = FaultPlan()

    async def scenario(fake: FakeScanner) -> None:
        async with ScannerClient(settings_for(fake)) as client:
            await client.scan("bond", QUERY)

    with pytest.raises(SourceResponseError, match=r"HTTP 404 from POST /bond/scan.*Unknown market"):
        with_fake(market, plan, scenario)
    assert plan.requests == 1


# ---------------------------------------------------------------------------------------------
# Paging, concurrency, rate.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        dataclasses.replace(QUERY, limit=350),
        dataclasses.replace(
            QUERY,
            limit=350,
            filters=(ScanFilter("Value.Traded", "greater", 1e5),),
            sort_by="Perf.3M",
            descending=False,
        ),
    ],
    ids=["by-value-traded", "filtered-by-perf-ascending-with-nulls"],
)
def test_client_pages_match_one_big_page_and_the_synthetic_source(market: SyntheticMarket, query: ScanQuery) -> None:
    paged_plan, single_plan = FaultPlan(), FaultPlan()
    paged = client_scan(market, paged_plan, query, page_size=100)
    single = client_scan(market, single_plan, query, page_size=1000)
    expected = SyntheticSource(market=market).scan(AS_OF, query)
    assert expected.height == 350
    assert paged_plan.requests == 4 and single_plan.requests == 1
    assert sorted(r.body["range"] for r in paged_plan.records) == [[0, 100], [100, 200], [200, 300], [300, 350]]
    assert paged.equals(single)
    assert paged.equals(expected)


def test_client_requests_every_page_up_to_the_limit_at_once(market: SyntheticMarket) -> None:
    plan = FaultPlan(latency_s=0.05)
    query = dataclasses.replace(QUERY, limit=200, filters=(ScanFilter("exchange", "equal", "KRAKEN"),))
    frame = client_scan(market, plan, query, page_size=20)
    expected = SyntheticSource(market=market).scan(AS_OF, query)
    assert expected.height < 200  # fewer rows match than the limit: the last pages are empty
    assert frame.equals(expected)
    assert plan.requests == 10


def test_client_drops_rows_repeated_across_pages() -> None:
    """The live market moves between pages: a row can slide from page 1 into page 2.

    C's close is NaN, which is not JSON but which a proxy might let through: it reads as null.
    """
    values = [("A", 4.0), ("B", 3.0), ("C", 2.0), ("D", 1.0)]
    rows = [{"s": f"X:{name}", "d": [value if name != "C" else math.nan, value]} for name, value in values]

    async def handler(request: web.Request) -> web.Response:
        start, end = (await request.json())["range"]
        shift = 1 if start else 0  # a new row pushed everything down by one after page 1
        return web.json_response({"totalCount": 4, "data": rows[start - shift : end - shift]})

    async def run() -> pl.DataFrame:
        app = web.Application()
        app.router.add_post("/crypto/scan", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            settings = ScannerSettings(base_url=f"http://{host}:{port}", page_size=2, rate_per_s=100.0)
            query = ScanQuery(markets=("crypto",), columns=("close",), sort_by="Value.Traded", limit=4)
            async with ScannerClient(settings) as client:
                return await client.scan("crypto", query)
        finally:
            await runner.cleanup()

    frame = asyncio.run(run())
    assert frame["symbol"].to_list() == ["X:A", "X:B", "X:C"]
    assert frame["close"].to_list() == [4.0, 3.0, None]


def test_client_respects_the_concurrency_bound(market: SyntheticMarket) -> None:
    plan = FaultPlan(latency_s=0.1)
    client_scan(market, plan, dataclasses.replace(QUERY, limit=350), page_size=50, concurrency=2)
    assert plan.requests == 7
    assert plan.max_in_flight == 2


def test_client_respects_the_request_rate(market: SyntheticMarket) -> None:
    plan = FaultPlan()
    query = dataclasses.replace(QUERY, limit=300)
    client_scan(market, plan, query, page_size=50, rate_per_s=10.0, burst=1, concurrency=8)
    gaps = [b - a for a, b in zip(plan.timestamps, plan.timestamps[1:])]
    assert plan.requests == 6
    assert min(gaps) >= 0.08  # 1 / rate_per_s, less the noise of arrival times
    span = plan.timestamps[-1] - plan.timestamps[0]
    assert 0.095 * len(gaps) <= span < 0.1 * len(gaps) + 0.2  # as fast as the rate allows, no slower


def test_client_sends_a_burst_at_once_then_keeps_to_the_rate(market: SyntheticMarket) -> None:
    plan = FaultPlan()
    query = dataclasses.replace(QUERY, limit=300)
    client_scan(market, plan, query, page_size=50, rate_per_s=5.0, burst=3, concurrency=8)
    starts = [t - plan.timestamps[0] for t in plan.timestamps]
    assert plan.requests == 6
    assert starts[2] < 0.15  # the burst: no 0.2 s spacing among the first three
    gaps = [b - a for a, b in zip(starts[2:], starts[3:])]
    assert min(gaps) >= 0.16  # then 1 / rate_per_s apart, less the noise of arrival times


def test_scan_all_spreads_every_query_market_and_page_over_one_session(market: SyntheticMarket) -> None:
    plan = FaultPlan(latency_s=0.1)
    queries = {
        "crypto": dataclasses.replace(QUERY, limit=200),
        "stocks": dataclasses.replace(QUERY, markets=("america",), limit=200),
    }

    async def scenario(fake: FakeScanner) -> tuple[dict, float]:
        started = time.monotonic()
        results = await scan_all(list(queries.items()), settings_for(fake, page_size=100, concurrency=8))
        return results, time.monotonic() - started

    results, elapsed = with_fake(market, plan, scenario)
    assert plan.requests == 4
    assert plan.max_in_flight == 4  # every page of every query at once
    assert elapsed < 0.3  # one round of latency, not four
    for key, query in queries.items():
        expected = SyntheticSource(market=market).scan(AS_OF, query)
        assert results[key].equals(expected.insert_column(1, pl.lit(query.markets[0]).alias("market")))


def test_scan_all_merges_markets_in_sort_order(market: SyntheticMarket) -> None:
    query = dataclasses.replace(QUERY, markets=("crypto", "america", "futures"), limit=100)

    async def scenario(fake: FakeScanner) -> dict:
        return await scan_all([("all", query)], settings_for(fake))

    merged = with_fake(market, FaultPlan(), scenario)["all"]
    expected = SyntheticSource(market=market).scan(AS_OF, query)
    assert merged.drop("market").equals(expected)
    assert set(merged["market"]) == {"crypto", "america", "futures"}
    market_of = dict(market.screen(AS_OF).select("symbol", "market").rows())
    assert all(market_of[symbol] == where for symbol, where in merged.select("symbol", "market").rows())


def test_scan_all_isolates_a_failing_query(market: SyntheticMarket) -> None:
    plan = FaultPlan(fail_markets={"futures": "503"})
    good = dataclasses.replace(QUERY, limit=200, label="good.yaml")
    unknown = dataclasses.replace(QUERY, columns=("close", "Perf.2W"), label="typo.yaml")
    down = dataclasses.replace(QUERY, markets=("futures",), label="futures.yaml")

    async def scenario(fake: FakeScanner) -> dict:
        return await scan_all(
            [("good", good), ("typo", unknown), ("down", down)], settings_for(fake, page_size=50)
        )

    results = with_fake(market, plan, scenario)
    assert results["good"].drop("market").equals(SyntheticSource(market=market).scan(AS_OF, good))
    assert isinstance(results["typo"], SourceResponseError)
    assert 'Unknown field "Perf.2W"' in str(results["typo"]) and "typo.yaml" in str(results["typo"])
    assert isinstance(results["down"], SourceResponseError)
    assert "futures.yaml" in str(results["down"]) and "HTTP 503" in str(results["down"])


def test_scan_all_rejects_repeated_keys() -> None:
    with pytest.raises(ConfigError, match="'a' is repeated"):
        asyncio.run(scan_all([("a", QUERY), ("a", QUERY)], ScannerSettings()))


# ---------------------------------------------------------------------------------------------
# The cookie stays secret.
# ---------------------------------------------------------------------------------------------


def test_cookie_is_sent_but_never_shown(
    market: SyntheticMarket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-session-value"
    monkeypatch.setenv(COOKIE_ENV, secret)
    plan = FaultPlan(faults=["503"], fail_markets={"futures": "reset"})
    queries = [("ok", QUERY), ("down", dataclasses.replace(QUERY, markets=("futures",)))]

    async def scenario(fake: FakeScanner) -> tuple[dict, str]:
        settings = ScannerSettings.from_env(base_url=fake.url, timeout_s=0.3, rate_per_s=200.0, retry=FAST_RETRY)
        async with ScannerClient(settings) as client:
            shown = repr(settings) + repr(client) + str(settings) + repr(TradingViewSource(settings))
        return await scan_all(queries, settings), shown

    with caplog.at_level(logging.DEBUG):
        results, shown = with_fake(market, plan, scenario)
    assert isinstance(results["ok"], pl.DataFrame) and isinstance(results["down"], SourceConnectionError)
    assert all(r.headers.get("Cookie") == f"sessionid={secret}" for r in plan.records)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    for text in (shown, str(results["down"]), repr(results["down"]), caplog.text):
        assert secret not in text
    assert all(secret not in r.getMessage() for r in caplog.records)
