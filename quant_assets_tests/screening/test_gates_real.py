"""The market-cap and stablecoin gates on TradingView's own recorded answers, not our fakes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from quant_assets.screening.config import ScreeningConfig
from quant_assets.screening.gates import select_liquid_universe

DATA = Path(__file__).resolve().parents[1] / "data" / "real_tradingview"
DAY = date(2025, 12, 18)


def _recorded_crypto_screen() -> pl.DataFrame:
    """TradingView's crypto market caps of 2025-12-18 (1,000 listings of 264 tickers) as raw
    screen rows. The recording holds pairs quoted in USD, and on GEMINI in RLUSD (its README);
    the scanner's ``currency`` says which, the recording does not, so the suffix does."""
    rows = json.loads((DATA / "tommy-ca__market_caps_crypto__2025-12-18.json").read_text())

    def quote_of(ticker: str) -> str:
        return "RLUSD" if ticker.endswith("RLUSD") else "USD"

    return pl.DataFrame([{
        "date": DAY, "config": "real", "symbol": r["symbol"], "market": "crypto",
        "name": r["symbol"].split(":")[1], "exchange": r["symbol"].split(":")[0], "type": "spot",
        "currency": quote_of(r["symbol"].split(":")[1]), "close": 1.0, "volume": 1e6,
        "Value.Traded": 1e7, "market_cap_calc": float(r["market_cap"]), "Volatility.D": 3.0,
        "pricescale": 100, "minmov": 1,
    } for r in rows])


def _config(**overrides) -> ScreeningConfig:
    return ScreeningConfig.model_validate(
        dict(name="real", direction="LONG", markets=["crypto"], prefilter_limit=5000, base_limit=1000,
             limit=10, **overrides))


def test_each_listing_has_its_own_market_cap_so_a_rank_must_count_coins():
    raw = _recorded_crypto_screen()
    btc = raw.filter(pl.col("name").str.starts_with("BTC") & pl.col("currency").is_in(["USD", "RLUSD"]))
    assert btc.height == 12 and btc["market_cap_calc"].n_unique() == 11  # eleven values for one coin
    # A dense rank over listings (what the gate did) fills the top 150 with a few coins' listings.
    by_listing = raw.with_columns(rank=pl.col("market_cap_calc").rank("dense", descending=True))
    assert by_listing.filter(pl.col("rank") <= 150)["name"].str.replace(r"(RL)?USD$", "").n_unique() < 50

    universe = select_liquid_universe(raw, [_config(market_cap={"max_rank": 150})])
    ranked = universe.filter(pl.col("rejected_by").is_null() | (pl.col("rejected_by") == "duplicate_base"))
    assert ranked["base"].n_unique() == 150  # the top 150 coins, each with every listing
    one_coin = universe.filter(pl.col("base") == "BTC")
    assert one_coin["asset_market_cap"].n_unique() == 1  # one cap per coin, in dollars
    assert one_coin.filter(pl.col("in_universe")).height == 1  # and one listing represents it
    assert (universe["rejected_by"] == "market_cap.rank").sum() > 0


def test_the_recorded_stablecoins_are_not_traded():
    universe = select_liquid_universe(_recorded_crypto_screen(), [_config()])
    for coin in ("USDT", "USDC", "USDS", "USD1", "USDG", "RLUSD", "USDE", "PYUSD", "DAI"):
        rows = universe.filter(pl.col("base") == coin)
        assert rows.height >= 1, coin
        assert (rows["rejected_by"] == "hygiene.stable_base").all(), coin
    # A coin quoted in a stablecoin is not a stablecoin.
    assert universe.filter(pl.col("symbol") == "GEMINI:BTCRLUSD")["rejected_by"].to_list() != ["hygiene.stable_base"]


def test_types_without_a_market_cap_skip_the_market_cap_gates():
    base = {"date": DAY, "config": "mixed", "market": "america", "currency": "USD", "close": 100.0,
            "volume": 1e6, "Value.Traded": 1e8, "Volatility.D": 2.0, "pricescale": 100, "minmov": 1}
    raw = pl.DataFrame([
        {**base, "symbol": "AMEX:SPY", "name": "SPY", "exchange": "AMEX", "type": "fund", "market_cap_calc": None},
        {**base, "symbol": "NASDAQ:AAPL", "name": "AAPL", "exchange": "NASDAQ", "type": "stock", "market_cap_calc": 3e12},
        {**base, "symbol": "NYSE:TINY", "name": "TINY", "exchange": "NYSE", "type": "stock", "market_cap_calc": 1e8},
        {**base, "symbol": "NYSE:NOCAP", "name": "NOCAP", "exchange": "NYSE", "type": "stock", "market_cap_calc": None},
    ])
    config = ScreeningConfig.model_validate(dict(name="mixed", direction="LONG", markets=["america"],
                                                 market_cap={"min": 2e9, "max_rank": 1}, limit=5))
    why = dict(select_liquid_universe(raw, [config]).select("symbol", "rejected_by").iter_rows())
    assert why == {"AMEX:SPY": None, "NASDAQ:AAPL": None, "NYSE:TINY": "market_cap.min",
                   "NYSE:NOCAP": "market_cap.min"}
