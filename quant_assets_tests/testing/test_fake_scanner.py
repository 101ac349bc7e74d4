"""The fake scanner speaks the scanner's wire format, answers like the synthetic source, and
serves the faults it is told to."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import aiohttp
import polars as pl
import pytest

from quant_assets.errors import ConfigError
from quant_assets.sources.base import ScanFilter, ScanQuery
from quant_assets.testing.fake_scanner import FakeScanner, FaultPlan
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig, SyntheticSource
from quant_assets.sources.tradingview import build_scan_body

AS_OF = date(2023, 6, 15)
COLUMNS = ["name", "exchange", "type", "close", "Value.Traded", "Perf.3M", "pricescale", "fractional"]

T = TypeVar("T")


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(SyntheticMarketConfig(n_instruments=200))


@pytest.fixture(scope="module")
def crypto(market: SyntheticMarket) -> pl.DataFrame:
    """The crypto rows of the screen the fake serves."""
    return market.screen(AS_OF).filter(pl.col("market") == "crypto")


def with_fake(
    market: SyntheticMarket, plan: FaultPlan | None, scenario: Callable[[FakeScanner, aiohttp.ClientSession], Awaitable[T]]
) -> T:
    async def run() -> T:
        async with FakeScanner(market, AS_OF, plan) as fake, aiohttp.ClientSession() as session:
            return await scenario(fake, session)

    return asyncio.run(run())


async def post(
    fake: FakeScanner, session: aiohttp.ClientSession, body: Any, market: str = "crypto"
) -> tuple[int, str]:
    async with session.post(f"{fake.url}/{market}/scan", data=json.dumps(body)) as response:
        return response.status, await response.text()


def scan(market: SyntheticMarket, body: Any, where: str = "crypto") -> tuple[int, Any]:
    """POST ``body`` once to a fault-free fake; the status and the parsed JSON answer."""

    async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> tuple[int, Any]:
        status, text = await post(fake, session, body, where)
        return status, json.loads(text)

    return with_fake(market, None, scenario)


def body_of(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "columns": COLUMNS,
        "filter": [],
        "sort": {"sortBy": "Value.Traded", "sortOrder": "desc", "nullsFirst": False},
        "range": [0, 1000],
        "options": {"lang": "en"},
    }
    return {**body, **overrides}


def symbols_of(answer: dict[str, Any]) -> list[str]:
    return [row["s"] for row in answer["data"]]


# ---------------------------------------------------------------------------------------------
# The wire format.
# ---------------------------------------------------------------------------------------------


def test_fake_scanner_answers_like_the_synthetic_source(market: SyntheticMarket) -> None:
    query = ScanQuery(
        markets=("crypto",),
        columns=tuple(COLUMNS),
        filters=(ScanFilter("type", "in_range", ["spot", "swap"]), ScanFilter("Value.Traded", "greater", 1e6)),
        sort_by="Perf.3M",
        descending=False,
        limit=40,
    )
    status, answer = scan(market, build_scan_body(query, "crypto", 0, query.limit))
    expected = SyntheticSource(market=market).scan(AS_OF, query)
    assert status == 200
    assert symbols_of(answer) == expected["symbol"].to_list()
    assert [tuple(row["d"]) for row in answer["data"]] == expected.select(COLUMNS).rows()


def test_fake_scanner_range_is_end_exclusive_and_total_count_ignores_it(
    market: SyntheticMarket, crypto: pl.DataFrame
) -> None:
    _, whole = scan(market, body_of())
    _, middle = scan(market, body_of(range=[5, 15]))
    _, beyond = scan(market, body_of(range=[500, 600]))
    assert whole["totalCount"] == middle["totalCount"] == beyond["totalCount"] == crypto.height
    assert middle["data"] == whole["data"][5:15]
    assert beyond["data"] == []


def test_fake_scanner_filter2_evaluates_an_and_or_tree(market: SyntheticMarket, crypto: pl.DataFrame) -> None:
    tree = {
        "operator": "or",
        "operands": [
            {"expression": {"left": "exchange", "operation": "equal", "right": "KRAKEN"}},
            {
                "operation": {
                    "operator": "and",
                    "operands": [
                        {"expression": {"left": "type", "operation": "equal", "right": "swap"}},
                        {"expression": {"left": "close", "operation": "greater", "right": 1.0}},
                    ],
                }
            },
        ],
    }
    # filter (ANDed with the tree) drops one exchange the tree would let through.
    flt = [{"left": "exchange", "operation": "nequal", "right": "BYBIT"}]
    _, answer = scan(market, body_of(filter=flt, filter2=tree))
    expected = crypto.filter(
        ((pl.col("exchange") == "KRAKEN") | ((pl.col("type") == "swap") & (pl.col("close") > 1.0)))
        & (pl.col("exchange") != "BYBIT")
    )
    assert expected.height > 0 and expected.height < crypto.height
    assert sorted(symbols_of(answer)) == sorted(expected["symbol"].to_list())
    assert answer["totalCount"] == expected.height


def test_fake_scanner_filter2_empty_and_keeps_all_empty_or_keeps_none(
    market: SyntheticMarket, crypto: pl.DataFrame
) -> None:
    _, kept = scan(market, body_of(filter2={"operator": "and", "operands": []}))
    _, dropped = scan(market, body_of(filter2={"operator": "or", "operands": []}))
    assert kept["totalCount"] == crypto.height
    assert dropped["totalCount"] == 0


@pytest.fixture(scope="module")
def stocks(market: SyntheticMarket) -> pl.DataFrame:
    """The US rows of the screen the fake serves: ETFs have no market cap (null)."""
    return market.screen(AS_OF).filter(pl.col("market") == "america")


@pytest.mark.parametrize("nulls_first", [True, False])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_fake_scanner_sort_puts_nulls_where_asked(
    market: SyntheticMarket, stocks: pl.DataFrame, order: str, nulls_first: bool
) -> None:
    n_null = stocks["market_cap_calc"].null_count()
    assert 0 < n_null < stocks.height
    sort = {"sortBy": "market_cap_calc", "sortOrder": order, "nullsFirst": nulls_first}
    _, answer = scan(market, body_of(columns=["market_cap_calc"], sort=sort), "america")
    values = [row["d"][0] for row in answer["data"]]
    nulls, rest = (values[:n_null], values[n_null:]) if nulls_first else (values[-n_null:], values[:-n_null])
    assert nulls == [None] * n_null
    assert rest == sorted(rest, reverse=order == "desc")


def test_fake_scanner_sort_defaults_to_nulls_last(market: SyntheticMarket) -> None:
    body = body_of(columns=["market_cap_calc"], sort={"sortBy": "market_cap_calc", "sortOrder": "asc"})
    _, answer = scan(market, body, "america")
    assert answer["data"][-1]["d"] == [None]


def test_fake_scanner_sends_missing_values_as_json_null(market: SyntheticMarket, stocks: pl.DataFrame) -> None:
    async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> str:
        body = body_of(columns=["market_cap_calc", "fractional", "pricescale"])
        return (await post(fake, session, body, "america"))[1]

    text = with_fake(market, None, scenario)
    assert "NaN" not in text and "null" in text
    rows = {row["s"]: row["d"] for row in json.loads(text)["data"]}
    reference = stocks.select("symbol", "market_cap_calc", "fractional", "pricescale").rows()
    assert {s: list(values) for s, *values in reference} == rows
    assert all(d[1] == "false" and isinstance(d[2], int) for d in rows.values())  # text, as TradingView sends it


def test_fake_scanner_symbols_tickers_restrict_the_rows(market: SyntheticMarket, crypto: pl.DataFrame) -> None:
    wanted = crypto["symbol"].head(3).to_list()
    _, answer = scan(market, body_of(symbols={"query": {"types": []}, "tickers": wanted}))
    assert sorted(symbols_of(answer)) == sorted(wanted)


@pytest.mark.parametrize(
    "overrides",
    [
        {"columns": ["close", "x"]},
        {"filter": [{"left": "x", "operation": "greater", "right": 1}]},
        {"filter": [{"left": "close", "operation": "greater", "right": "x"}]},
        {"filter2": {"operator": "and", "operands": [{"expression": {"left": "x", "operation": "nempty"}}]}},
        {"sort": {"sortBy": "x", "sortOrder": "desc"}},
    ],
    ids=["columns", "filter", "filter-right", "filter2", "sort"],
)
def test_fake_scanner_unknown_field_is_the_scanners_400(market: SyntheticMarket, overrides: dict) -> None:
    status, answer = scan(market, body_of(**overrides))
    assert status == 400
    assert answer == {"totalCount": 0, "error": 'Unknown field "x"', "data": None}


def test_fake_scanner_malformed_body_is_400_saying_what(market: SyntheticMarket) -> None:
    status, answer = scan(market, body_of(range=[10, 5]))
    assert status == 400 and "range" in answer["error"]
    status, answer = scan(market, body_of(filter2={"operator": "xor", "operands": []}))
    assert status == 400 and "filter2" in answer["error"]


def test_fake_scanner_unknown_market_is_404(market: SyntheticMarket) -> None:
    status, answer = scan(market, body_of(), where="bond")
    assert status == 404 and "bond" in answer["error"]


# ---------------------------------------------------------------------------------------------
# Faults and records.
# ---------------------------------------------------------------------------------------------


def test_fake_scanner_serves_scripted_faults_in_order(market: SyntheticMarket) -> None:
    plan = FaultPlan(faults=["429-retry-after:2", "429", "403", "500", "503", "empty", "html", "truncated", "ok"])

    async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> list[tuple[int, str | None, str]]:
        answers = []
        for _ in range(len(plan.faults)):
            async with session.post(f"{fake.url}/crypto/scan", data=json.dumps(body_of())) as response:
                answers.append((response.status, response.headers.get("Retry-After"), await response.text()))
        return answers

    answers = with_fake(market, plan, scenario)
    assert [(status, after) for status, after, _ in answers] == [
        (429, "2"), (429, None), (403, None), (500, None), (503, None), (200, None), (200, None), (200, None), (200, None)
    ]
    empty, html, truncated, ok = (text for _, _, text in answers[5:])
    assert empty == ""
    assert html.startswith("<!DOCTYPE html>")
    assert ok.startswith(truncated) and len(truncated) < len(ok)
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated)
    assert json.loads(ok)["totalCount"] > 0
    assert plan.requests == 9 and plan.faults == []
    assert [r.fault for r in plan.records][:3] == ["429-retry-after:2", "429", "403"]


def test_fake_scanner_reset_drops_the_connection(market: SyntheticMarket) -> None:
    async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> None:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(fake, session, body_of())
        assert (await post(fake, session, body_of()))[0] == 200

    with_fake(market, FaultPlan(faults=["reset"]), scenario)


def test_fake_scanner_hang_ends_at_shutdown(market: SyntheticMarket) -> None:
    plan = FaultPlan(faults=["hang"])

    async def run() -> float:
        async with aiohttp.ClientSession() as session:
            fake = FakeScanner(market, AS_OF, plan)
            await fake.__aenter__()
            with pytest.raises(asyncio.TimeoutError):
                async with session.post(
                    f"{fake.url}/crypto/scan", data=json.dumps(body_of()), timeout=aiohttp.ClientTimeout(total=0.2)
                ):
                    pass
            assert plan.in_flight == 1  # still hanging server-side
            started = time.monotonic()
            await fake.__aexit__(None, None, None)
            return time.monotonic() - started

    assert asyncio.run(run()) < 1.0
    assert plan.in_flight == 0


def test_fake_scanner_fail_markets_fail_every_request_to_that_market(market: SyntheticMarket) -> None:
    async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> list[int]:
        return [(await post(fake, session, body_of(), m))[0] for m in ("futures", "crypto", "futures")]

    assert with_fake(market, FaultPlan(fail_markets={"futures": "503"}), scenario) == [503, 200, 503]


def test_fake_scanner_random_faults_are_seeded(market: SyntheticMarket) -> None:
    def faults(seed: int) -> list[str | None]:
        plan = FaultPlan(fault_rate=0.5, random_faults=("429", "empty"), seed=seed)

        async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> None:
            for _ in range(20):
                await post(fake, session, body_of(range=[0, 1]))

        with_fake(market, plan, scenario)
        return [r.fault for r in plan.records]

    first = faults(3)
    assert first == faults(3)
    assert {None, "429", "empty"} == set(first)


def test_fake_scanner_records_latency_and_in_flight(market: SyntheticMarket) -> None:
    plan = FaultPlan(latency_s=0.1)

    async def scenario(fake: FakeScanner, session: aiohttp.ClientSession) -> float:
        started = time.monotonic()
        await asyncio.gather(*(post(fake, session, body_of(range=[0, 1])) for _ in range(3)))
        return time.monotonic() - started

    elapsed = with_fake(market, plan, scenario)
    assert 0.1 <= elapsed < 0.3  # concurrent: one latency, not three
    assert plan.requests == 3 and plan.max_in_flight == 3 and plan.in_flight == 0
    assert plan.records[0].body["range"] == [0, 1]
    assert plan.timestamps == sorted(plan.timestamps)


@pytest.mark.parametrize(
    "kwargs", [{"faults": ["429", "boom"]}, {"fail_markets": {"crypto": "200"}}, {"latency_s": -1}, {"fault_rate": 2}]
)
def test_fault_plan_rejects_impossible_plans(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="FaultPlan"):
        FaultPlan(**kwargs)
