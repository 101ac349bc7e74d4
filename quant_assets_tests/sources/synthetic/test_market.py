"""The synthetic market: determinism, structure, screens and the scanner contract."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.errors import ConfigError, SourceResponseError, ValidationError
from quant_assets.instruments import BAR_COLUMNS
from quant_assets.sources.base import MarketSource, ScanFilter, ScanQuery
from quant_assets.sources.screener.indicators import INDICATOR_COLUMNS
from quant_assets.sources.screener.scan_filters import apply_scan_filters
from quant_assets.sources.synthetic import (
    INSTRUMENT_COLUMNS,
    SCREEN_COLUMNS,
    SyntheticMarket,
    SyntheticMarketConfig,
    SyntheticSource,
    get_market,
)

SMALL = SyntheticMarketConfig(n_instruments=200)
MID_2022 = date(2022, 6, 15)


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    """A small market simulated through 2023 (shared: read-only use)."""
    m = SyntheticMarket(SMALL)
    m.screen(date(2023, 12, 31))
    return m


@pytest.fixture(scope="module")
def default_market() -> SyntheticMarket:
    """The default universe (no panel simulated unless a test asks)."""
    return SyntheticMarket()


def rows_of(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
    return frame.filter(pl.col("symbol") == symbol)


# ---------------------------------------------------------------------------------------------
# Config and universe.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [({"n_instruments": 10}, "n_instruments"), ({"seed": -1}, "seed"), ({"start": "2021-01-01"}, "start")],
)
def test_config_rejects_bad_values(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SyntheticMarketConfig(**kwargs)


def test_default_universe_has_the_asset_mix(default_market: SyntheticMarket) -> None:
    inst = default_market.instruments
    assert inst.columns == list(INSTRUMENT_COLUMNS)
    assert inst.height == 1200 >= 1000
    assert inst["symbol"].is_unique().all()
    assert inst["symbol"].to_list() == sorted(inst["symbol"].to_list())
    share = dict(inst.group_by("asset_class").len().iter_rows())
    assert 0.5 <= share["crypto"] / 1200 <= 0.6
    assert 0.25 <= share["stock"] / 1200 <= 0.35
    assert share["futures"] == 120 and share["forex"] == 60
    crypto = inst.filter(pl.col("asset_class") == "crypto")
    assert {"BINANCE", "BYBIT", "OKX", "COINBASE", "KRAKEN"} <= set(crypto["exchange"])
    assert {"USDT", "USDC", "USD", "EUR", "BTC"} <= set(crypto["quote"])
    perps = crypto.filter(pl.col("type") == "swap")
    assert perps.height > 10 and perps["symbol"].str.ends_with(".P").all()
    assert "BINANCE:BTCUSDT.P" in perps["symbol"].to_list()
    stables = crypto.filter(pl.col("base").is_in(["USDC", "DAI", "TUSD"]) & (pl.col("quote") == "USDT"))
    assert stables.height >= 3
    futures = inst.filter(pl.col("asset_class") == "futures")
    assert (futures["pointvalue"] > 1).all() and "CME_MINI:ES1!" in futures["symbol"].to_list()
    assert set(futures["exchange"]) <= {"CME", "NYMEX", "COMEX", "CBOT", "CME_MINI", "CBOT_MINI", "COMEX_MINI", "NYMEX_MINI"}
    assert {"stock", "fund"} == set(inst.filter(pl.col("asset_class") == "stock")["type"])
    assert "FX:EURUSD" in inst["symbol"].to_list()
    assert dict(zip(inst["asset_class"], inst["market"])) == {
        "crypto": "crypto", "futures": "futures", "stock": "america", "forex": "forex",
    }
    assert (inst.filter(pl.col("calendar") == "7d")["asset_class"] == "crypto").all()
    assert inst.filter(pl.col("clone_kind") == "exact").height > 10
    assert inst.filter(pl.col("clone_kind") == "near").height > 10
    clones = inst.filter(pl.col("clone_of").is_not_null())
    assert clones["clone_of"].is_in(inst["symbol"].implode()).all()


def test_universe_scales_to_ten_thousand_instruments() -> None:
    inst = SyntheticMarket(SyntheticMarketConfig(n_instruments=10_000)).instruments
    assert inst.height == 10_000 and inst["symbol"].is_unique().all()
    assert inst.filter(pl.col("asset_class") == "futures").height == 1000


# ---------------------------------------------------------------------------------------------
# Determinism, order independence, prefix stability, perturbation.
# ---------------------------------------------------------------------------------------------


def test_two_fresh_instances_are_identical(market: SyntheticMarket) -> None:
    other = SyntheticMarket(SMALL)
    assert other.screen(MID_2022).equals(market.screen(MID_2022))
    assert other.instruments.equals(market.instruments)
    window = (date(2021, 3, 1), date(2021, 4, 1))
    assert other.bars(*window).equals(market.bars(*window))


def test_screen_is_byte_identical_in_another_process(market: SyntheticMarket) -> None:
    code = (
        "import hashlib, sys; from datetime import date; "
        "from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig; "
        "m = SyntheticMarket(SyntheticMarketConfig(n_instruments=200)); "
        "sys.stdout.write(hashlib.sha256(m.screen(date(2022, 6, 15)).write_csv().encode()).hexdigest())"
    )
    digest = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert digest == hashlib.sha256(market.screen(MID_2022).write_csv().encode()).hexdigest()


def test_screens_do_not_depend_on_the_order_dates_are_asked(market: SyntheticMarket) -> None:
    early, late = date(2021, 8, 3), date(2023, 9, 30)
    forward = SyntheticMarket(SMALL)
    a_early = forward.screen(early)  # horizon: end of 2021
    assert forward.horizon == date(2021, 12, 31)
    a_late = forward.screen(late)  # extends to the end of 2023
    assert forward.horizon == date(2023, 12, 31)
    assert a_early.equals(market.screen(early))  # `market` was built straight to 2023
    assert a_late.equals(market.screen(late))
    assert forward.screen(early).equals(a_early)


def test_extending_the_horizon_keeps_earlier_bars_and_indicators(market: SyntheticMarket) -> None:
    short = SyntheticMarket(SMALL)
    start, end = date(2021, 1, 1), date(2021, 12, 31)
    assert short.bars(start, end).equals(market.bars(start, end))
    assert short.horizon == end
    for day in (date(2021, 2, 14), date(2021, 12, 31)):
        assert short.screen(day).equals(market.screen(day))
    assert short.regime_path(start, end).equals(market.regime_path(start, end))


def test_perturb_after_changes_only_the_future(market: SyntheticMarket) -> None:
    cut = date(2022, 3, 10)
    perturbed = SyntheticMarket(SyntheticMarketConfig(n_instruments=200, perturb_after=cut))
    assert perturbed.instruments.equals(market.instruments)
    for day in (date(2021, 7, 1), cut):
        assert perturbed.screen(day).equals(market.screen(day))
    assert perturbed.bars(date(2021, 1, 1), cut).equals(market.bars(date(2021, 1, 1), cut))
    after = cut + timedelta(days=1)
    mine, theirs = perturbed.screen(after), market.screen(after)
    assert mine["symbol"].equals(theirs["symbol"])
    assert not mine["close"].equals(theirs["close"])
    # Perf.W on the day after mixes one perturbed day into an unperturbed window.
    assert not mine["Perf.W"].equals(theirs["Perf.W"])


def test_get_market_shares_one_instance_per_config() -> None:
    assert get_market(SMALL) is get_market(SyntheticMarketConfig(n_instruments=200))
    assert get_market(SMALL) is not get_market(SyntheticMarketConfig(n_instruments=200, seed=8))
    assert get_market() is get_market(SyntheticMarketConfig())


# ---------------------------------------------------------------------------------------------
# Bars, listings, calendars, clones, tick sizes.
# ---------------------------------------------------------------------------------------------


def test_bars_contract(market: SyntheticMarket) -> None:
    symbols = ["NYSE:TWTR", "BINANCE:BTCUSDT", "AMEX:SPY"]
    bars = market.bars(date(2021, 1, 1), date(2021, 1, 31), symbols)
    assert bars.columns == list(BAR_COLUMNS)
    assert bars.schema["date"] == pl.Date and bars.schema["close"] == pl.Float64
    assert bars.equals(bars.sort("symbol", "date"))
    assert set(bars["symbol"]) == set(symbols)
    assert rows_of(bars, "BINANCE:BTCUSDT").height == 31
    assert rows_of(bars, "AMEX:SPY").height == 21  # weekdays of January 2021
    assert (bars["high"] >= bars["close"]).all() and (bars["high"] >= bars["open"]).all()
    assert (bars["low"] <= bars["close"]).all() and (bars["low"] <= bars["open"]).all()
    assert (bars["volume"] >= 0).all()
    assert market.bars(date(2020, 1, 1), date(2020, 12, 31), symbols).height == 0
    with pytest.raises(ValidationError, match="NOPE:XYZ"):
        market.bars(date(2021, 1, 1), date(2021, 1, 31), ["BINANCE:BTCUSDT", "NOPE:XYZ"])


def test_weekday_instruments_have_no_weekend_bars(market: SyntheticMarket) -> None:
    bars = market.bars(date(2021, 1, 1), date(2021, 6, 30))
    weekday_symbols = market.instruments.filter(pl.col("calendar") == "weekdays")["symbol"].implode()
    weekend = bars.filter(pl.col("date").dt.weekday() >= 6)
    assert weekend.height > 0  # crypto trades every day
    assert not weekend["symbol"].is_in(weekday_symbols).any()


def test_listings_and_delistings_are_respected(market: SyntheticMarket) -> None:
    inst = market.instruments
    bars = market.bars(date(2021, 1, 1), date(2023, 12, 31))
    spans = bars.group_by("symbol").agg(first=pl.col("date").min(), last=pl.col("date").max())
    joined = inst.join(spans, on="symbol", how="left")
    late = joined.filter(pl.col("listed_on") > date(2021, 1, 1))
    gone = joined.filter(pl.col("delisted_on").is_not_null() & (pl.col("delisted_on") < date(2023, 12, 31)))
    assert late.height >= 3 and gone.height >= 3
    assert (late["first"] >= late["listed_on"]).all()
    assert (gone["last"] < gone["delisted_on"]).all()
    twtr = rows_of(inst, "NYSE:TWTR").row(0, named=True)
    before, after = twtr["delisted_on"] - timedelta(days=3), twtr["delisted_on"]
    assert "NYSE:TWTR" in market.screen(before)["symbol"].to_list()
    assert "NYSE:TWTR" not in market.screen(after)["symbol"].to_list()
    icp = rows_of(inst, "BINANCE:ICPUSDT").row(0, named=True)
    assert "BINANCE:ICPUSDT" not in market.screen(icp["listed_on"] - timedelta(days=1))["symbol"].to_list()
    assert "BINANCE:ICPUSDT" in market.screen(icp["listed_on"])["symbol"].to_list()


def test_exact_clones_have_identical_returns_and_near_clones_track(market: SyntheticMarket) -> None:
    inst = market.instruments
    bars = market.bars(date(2021, 1, 1), date(2022, 12, 31))
    for kind in ("exact", "near"):
        # Stablecoins are all noise: their near clones need not correlate.
        clones = inst.filter(
            (pl.col("clone_kind") == kind)
            & (pl.col("asset_class") == "crypto")
            & ~pl.col("base").is_in(["USDC", "DAI", "TUSD", "BUSD", "FDUSD"])
        ).head(5)
        assert clones.height >= 3
        for symbol, lead in clones.select("symbol", "clone_of").iter_rows():
            pair = rows_of(bars, symbol).join(rows_of(bars, lead), on="date", suffix="_lead").sort("date")
            returns = pair.select(
                pl.col("close").pct_change().alias("clone"), pl.col("close_lead").pct_change().alias("lead")
            ).drop_nulls()
            assert returns.height > 30
            if kind == "exact":
                assert returns["clone"].equals(returns["lead"]), symbol
            else:
                assert not returns["clone"].equals(returns["lead"])
                assert np.corrcoef(returns["clone"], returns["lead"])[0, 1] > 0.95, symbol


def test_market_caps_are_per_listing_and_only_where_an_asset_has_one(market: SyntheticMarket) -> None:
    """As TradingView reports them: each listing of a coin its own value (supply x its own
    close, in its quote currency), a company's own, none for ETFs, futures and forex."""
    screen = market.screen(MID_2022)
    btc = screen.filter(pl.col("name").str.starts_with("BTC") & (pl.col("market") == "crypto")).join(
        market.instruments.select("symbol", "quote"), on="symbol")
    in_usdt = btc.filter(pl.col("quote") == "USDT")
    assert btc.height >= 3 and btc["market_cap_calc"].n_unique() > 1  # exact clones trade at one price
    supply = in_usdt["market_cap_calc"] / in_usdt["close"]
    np.testing.assert_allclose(supply, supply[0], rtol=1e-12)  # one coin, one supply
    futures_forex = screen.filter(pl.col("market").is_in(["futures", "forex"]))
    assert futures_forex["market_cap_calc"].is_null().all()
    stocks = screen.filter(pl.col("market") == "america")
    assert stocks.filter(pl.col("type") == "stock")["market_cap_calc"].is_not_null().all()
    assert stocks.filter(pl.col("type") == "fund")["market_cap_calc"].is_null().all()


def test_futures_are_listed_on_tradingviews_venues(market: SyntheticMarket) -> None:
    futures = set(market.screen(MID_2022).filter(pl.col("market") == "futures")["symbol"])
    assert {"CME_MINI:ES1!", "CME_MINI:NQ1!", "CME_MINI:RTY1!", "CBOT_MINI:YM1!", "COMEX:GC1!",
            "NYMEX:CL1!", "CBOT:ZN1!"} <= futures
    assert "CME:ES1!" not in futures


def test_a_tick_size_change_is_visible_between_two_screens(market: SyntheticMarket) -> None:
    history = market.tick_size_history
    changes = history.filter(pl.col("symbol").is_duplicated()).sort("symbol", "valid_from")
    assert changes.height >= 6  # at least three instruments change once
    seen_change = False
    for symbol, rows in changes.group_by("symbol", maintain_order=True):
        (old, new) = rows.rows(named=True)
        before, after = new["valid_from"] - timedelta(days=1), new["valid_from"]
        row_before = rows_of(market.screen(before), symbol[0])
        row_after = rows_of(market.screen(after), symbol[0])
        if row_before.height and row_after.height:
            assert row_before["pricescale"].item() == old["pricescale"]
            assert row_after["pricescale"].item() == new["pricescale"] != old["pricescale"]
            seen_change = True
    assert seen_change


# ---------------------------------------------------------------------------------------------
# Screens.
# ---------------------------------------------------------------------------------------------


def test_screen_columns_types_and_value_traded(market: SyntheticMarket) -> None:
    screen = market.screen(MID_2022)
    assert screen.columns == list(SCREEN_COLUMNS)
    assert screen["symbol"].to_list() == sorted(screen["symbol"].to_list())
    assert screen.schema["pricescale"] == pl.Int64 and screen.schema["fractional"] == pl.String
    assert (screen["minmove2"] == 0).all() and (screen["fractional"] == "false").all()
    pointvalue = screen.join(market.instruments.select("symbol", "pointvalue"), on="symbol")["pointvalue"]
    expected = screen["volume"] * screen["close"] * pointvalue
    np.testing.assert_allclose(screen["Value.Traded"], expected, rtol=1e-12)
    # A year and a half in, every long-listed instrument has every indicator.
    seasoned = screen.join(market.instruments.select("symbol", "listed_on"), on="symbol").filter(
        pl.col("listed_on") < date(2021, 1, 1)
    )
    assert seasoned.select(INDICATOR_COLUMNS[:-1]).null_count().sum_horizontal().item() == 0
    assert seasoned["Recommend.All"].is_between(-1, 1).all()
    assert (seasoned["ADX"].is_between(0, 100)).all() and (seasoned["RSI"].is_between(0, 100)).all()


def test_a_stock_on_saturday_shows_fridays_bar(market: SyntheticMarket) -> None:
    friday, saturday = date(2022, 6, 17), date(2022, 6, 18)
    fri, sat = rows_of(market.screen(friday), "AMEX:SPY"), rows_of(market.screen(saturday), "AMEX:SPY")
    assert sat.equals(fri)
    btc_fri = rows_of(market.screen(friday), "BINANCE:BTCUSDT")
    btc_sat = rows_of(market.screen(saturday), "BINANCE:BTCUSDT")
    assert btc_fri["close"].item() != btc_sat["close"].item()


def test_screen_values_come_from_the_bars(market: SyntheticMarket) -> None:
    day = date(2022, 3, 2)
    screen = rows_of(market.screen(day), "BINANCE:ETHUSDT").row(0, named=True)
    bars = market.bars(day - timedelta(days=7), day, ["BINANCE:ETHUSDT"])
    assert screen["close"] == bars["close"][-1] and screen["open"] == bars["open"][-1]
    assert screen["change"] == pytest.approx((bars["close"][-1] / bars["close"][-2] - 1) * 100)
    # Perf.W: the window (D-7, D] starts with the bar of D-6.
    assert screen["Perf.W"] == pytest.approx((bars["close"][-1] - bars["open"][1]) / bars["open"][1] * 100)


def test_screen_before_start_names_the_date(market: SyntheticMarket) -> None:
    with pytest.raises(ValidationError, match="2020-12-31"):
        market.screen(date(2020, 12, 31))
    with pytest.raises(ValidationError, match="2020-06-01"):
        market.regime_path(date(2020, 6, 1), date(2021, 6, 1))


def test_regime_path_has_crisis_episodes_that_the_market_shows(market: SyntheticMarket) -> None:
    path = market.regime_path(date(2021, 1, 1), date(2023, 12, 31))
    assert path.height == 1095 and set(path["regime"]) <= {"QUIET", "NORMAL", "CRISIS"}
    runs = path.with_columns(run=(pl.col("regime") != pl.col("regime").shift()).cum_sum()).group_by(
        "run", "regime"
    ).len()
    crises = runs.filter(pl.col("regime") == "CRISIS")
    assert 1 <= crises.height <= 8 and crises["len"].max() >= 10
    # The equal-weight market moves far more in a crisis than in quiet times.
    bars = market.bars(date(2021, 1, 1), date(2023, 12, 31))
    ew = (
        bars.sort("symbol", "date")
        .with_columns(ret=pl.col("close").log().diff().over("symbol"))
        .group_by("date")
        .agg(pl.col("ret").mean())
        .join(path, on="date")
    )
    size = dict(ew.group_by("regime").agg(pl.col("ret").abs().mean()).iter_rows())
    assert size["CRISIS"] > 2 * size["NORMAL"] and size["NORMAL"] > size.get("QUIET", 0)


def test_some_instruments_have_positive_skew(market: SyntheticMarket) -> None:
    bars = market.bars(date(2021, 1, 1), date(2023, 12, 31))
    skews = bars.sort("symbol", "date").group_by("symbol").agg(pl.col("close").log().diff().skew())
    assert skews.filter(pl.col("close") > 1).height >= 3


def test_volatility_products_are_convex_or_concave_in_the_market(market: SyntheticMarket) -> None:
    payoffs = market.payoffs
    assert payoffs.height == market.instruments.height
    labelled = dict(payoffs.filter(pl.col("payoff") != "linear").select("symbol", "payoff").iter_rows())
    assert labelled == {"AMEX:VIXY": "convex", "AMEX:UVXY": "convex", "AMEX:VXX": "convex",
                        "AMEX:TAIL": "convex", "AMEX:SVXY": "concave"}
    # The curvature of each product's weekday returns on the equal-weight market's: a quadratic
    # fit over three years has the payoff's sign; a linear stock's is far smaller.
    returns = (
        market.bars(date(2021, 1, 1), date(2023, 12, 31)).sort("symbol", "date")
        .with_columns(ret=pl.col("close").log().diff().over("symbol"))
        .filter(pl.col("date").dt.weekday() <= 5)
    )
    ew = returns.group_by("date").agg(pl.col("ret").mean().alias("market"))

    def curvature(symbol: str) -> float:
        joined = rows_of(returns, symbol).join(ew, on="date").drop_nulls("ret")
        return float(np.polyfit(joined["market"].to_numpy(), joined["ret"].to_numpy(), 2)[0])

    curvatures = {symbol: curvature(symbol) for symbol in labelled}
    assert all(curvatures[s] > 0 for s, kind in labelled.items() if kind == "convex"), curvatures
    assert curvatures["AMEX:SVXY"] < 0, curvatures
    assert abs(curvature("NASDAQ:AAPL")) < min(abs(c) for c in curvatures.values())


# ---------------------------------------------------------------------------------------------
# The MarketSource: scan filters, sort, limit, errors.
# ---------------------------------------------------------------------------------------------


def test_source_implements_market_source(market: SyntheticMarket) -> None:
    source: MarketSource = SyntheticSource(market=market)
    assert source.name == "synthetic"
    assert source.daily_bars(["AMEX:SPY"], date(2021, 1, 4), date(2021, 1, 8)).height == 5


def test_scan_filters_sorts_and_cuts(market: SyntheticMarket) -> None:
    source = SyntheticSource(market=market)
    query = ScanQuery(
        markets=("crypto",),
        columns=("close", "Value.Traded", "type", "exchange"),
        filters=(ScanFilter("type", "equal", "spot"), ScanFilter("Value.Traded", "greater", 1e6)),
        limit=7,
        label="crypto_spot",
    )
    out = source.scan(MID_2022, query)
    assert out.columns == ["symbol", "close", "Value.Traded", "type", "exchange"]
    assert out.height == 7
    assert (out["type"] == "spot").all() and (out["Value.Traded"] > 1e6).all()
    assert out["Value.Traded"].to_list() == sorted(out["Value.Traded"].to_list(), reverse=True)
    full = market.screen(MID_2022).filter((pl.col("market") == "crypto") & (pl.col("type") == "spot"))
    assert out["Value.Traded"][0] == full["Value.Traded"].max()
    by_adx = ScanQuery(markets=("america",), columns=("ADX",), sort_by="ADX", descending=False)
    ascending = source.scan(MID_2022, by_adx)
    assert ascending["ADX"].drop_nulls().is_sorted()
    assert ascending["ADX"].is_null().sum() == 0 or ascending["ADX"][-1] is None  # nulls last


def test_scan_unknown_fields_name_the_field_and_config(market: SyntheticMarket) -> None:
    source = SyntheticSource(market=market)
    for query in (
        ScanQuery(("crypto",), ("close",), filters=(ScanFilter("nope", "less", 1),), label="cfg_a"),
        ScanQuery(markets=("crypto",), columns=("close", "nope"), label="cfg_a"),
        ScanQuery(markets=("crypto",), columns=("close",), sort_by="nope", label="cfg_a"),
    ):
        with pytest.raises(SourceResponseError, match=r'"nope".*cfg_a'):
            source.scan(MID_2022, query)


TINY = pl.DataFrame(
    {
        "symbol": ["A", "B", "C", "D"],
        "close": [1.0, 5.0, None, 10.0],
        "open": [2.0, 4.0, 1.0, 10.0],
        "type": ["spot", "swap", "stock", None],
        "description": ["Bitcoin / USDT", "Ether", "Apple Inc.", "Gold"],
        "tags": [["a", "b"], ["c"], None, []],
    }
)


@pytest.mark.parametrize(
    "flt, expected",
    [
        (ScanFilter("close", "greater", 1), ["B", "D"]),
        (ScanFilter("close", "egreater", 1), ["A", "B", "D"]),
        (ScanFilter("close", "less", 5), ["A"]),
        (ScanFilter("close", "eless", 5), ["A", "B"]),
        (ScanFilter("close", "equal", 10), ["D"]),
        (ScanFilter("close", "nequal", 10), ["A", "B"]),
        (ScanFilter("close", "greater", "open"), ["B"]),
        (ScanFilter("close", "in_range", [2, 10]), ["B", "D"]),
        (ScanFilter("close", "not_in_range", [2, 10]), ["A"]),
        (ScanFilter("type", "in_range", ["spot", "stock"]), ["A", "C"]),
        (ScanFilter("close", "empty"), ["C"]),
        (ScanFilter("type", "nempty"), ["A", "B", "C"]),
        (ScanFilter("description", "match", "usdt"), ["A"]),
        (ScanFilter("description", "match", "^(ether|gold)$"), ["B", "D"]),
        (ScanFilter("description", "nmatch", "inc"), ["A", "B", "D"]),
        (ScanFilter("tags", "has", ["b", "c"]), ["A", "B"]),
        (ScanFilter("tags", "has_none_of", "a"), ["B", "C", "D"]),
        (ScanFilter("type", "has", "swap"), ["B"]),
        (ScanFilter("type", "has_none_of", ["spot", "swap"]), ["C", "D"]),
    ],
)
def test_apply_scan_filters_operations(flt: ScanFilter, expected: list[str]) -> None:
    assert apply_scan_filters(TINY, [flt])["symbol"].to_list() == expected


def test_apply_scan_filters_ands_filters_and_rejects_bad_ones() -> None:
    both = [ScanFilter("close", "greater", 0), ScanFilter("type", "equal", "swap")]
    assert apply_scan_filters(TINY, both)["symbol"].to_list() == ["B"]
    with pytest.raises(SourceResponseError, match=r'"volume".*my_cfg'):
        apply_scan_filters(TINY, [ScanFilter("volume", "greater", 1)], label="my_cfg")
    with pytest.raises(SourceResponseError, match="crosses"):
        apply_scan_filters(TINY, [ScanFilter("close", "crosses", 1)], label="my_cfg")
    with pytest.raises(SourceResponseError, match="low, high"):
        apply_scan_filters(TINY, [ScanFilter("close", "in_range", [1])], label="my_cfg")
    with pytest.raises(SourceResponseError, match="my_cfg"):
        apply_scan_filters(TINY, [ScanFilter("description", "match", "([")], label="my_cfg")
