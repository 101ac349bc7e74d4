"""Normalised instrument metadata, derived from screen rows."""

from __future__ import annotations

import polars as pl

from quant_assets.instruments import normalise_metadata


def _frame(rows: list[dict]) -> pl.DataFrame:
    """Screen rows of config ``demo`` with the columns the metadata is derived from."""
    base = {"config": "demo", "market": "crypto", "type": "spot", "currency": "USDT",
            "close": 10.0, "volume": 1e6, "Value.Traded": 1e7, "pricescale": 100, "minmov": 1}
    return pl.DataFrame([{**base, "exchange": r["symbol"].split(":")[0], "name": r["symbol"].split(":")[1], **r}
                         for r in rows], infer_schema_length=None)


def test_normalise_metadata_derives_base_quote_and_tick_size():
    frame = normalise_metadata(_frame([
        {"symbol": "BINANCE:BTCUSDT.P", "type": "swap", "pricescale": 10, "minmov": 1},
        {"symbol": "BINANCE:ETHUSDT"},
        {"symbol": "BINANCE:XUSDT", "pricescale": 0},
    ]))
    assert frame["base"].to_list() == ["BTC", "ETH", "X"]
    assert frame["ticker"].to_list() == ["BTCUSDT.P", "ETHUSDT", "XUSDT"]
    assert frame["tick_size"].to_list() == [0.1, 0.01, None]
    assert frame["asset_class"].to_list() == ["crypto"] * 3


def test_a_futures_base_is_its_root_whatever_the_contract_and_venue():
    frame = normalise_metadata(_frame([
        {"symbol": symbol, "market": "futures", "type": "futures", "currency": "USD"}
        for symbol in ["CME_MINI:ES1!", "CME_MINI:ES2!", "CME_MINI:ESH2025", "CBOT:ZN1!", "NYMEX:CL1!"]
    ]))
    assert frame["base"].to_list() == ["ES", "ES", "ES", "ZN", "CL"]
    assert frame["exchange"].to_list()[0] == "CME_MINI"
