"""The scanner's wire format: a request body built from a query, nothing sent."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_assets.sources.base import ScanFilter, ScanQuery
from quant_assets.sources.tradingview.wire import BadBody, build_scan_body, page_frame


def test_build_scan_body_is_the_scanner_wire_format() -> None:
    query = ScanQuery(
        markets=("crypto",),
        columns=("symbol", "close", "volume", "close"),
        filters=(ScanFilter("exchange", "in_range", ("BINANCE", "OKX")), ScanFilter("listed", "egreater", date(2024, 1, 2))),
        sort_by="Value.Traded",
        descending=False,
    )
    assert build_scan_body(query, "crypto", 150, 300) == {
        "columns": ["close", "volume", "Value.Traded"],
        "filter": [
            {"left": "exchange", "operation": "in_range", "right": ["BINANCE", "OKX"]},
            {"left": "listed", "operation": "egreater", "right": "2024-01-02"},
        ],
        "sort": {"sortBy": "Value.Traded", "sortOrder": "asc", "nullsFirst": False},
        "range": [150, 300],
        "options": {"lang": "en"},
    }


def test_each_market_is_asked_only_for_the_fields_it_has() -> None:
    # No recorded field list shows market_cap_calc for futures or forex: TradingView would
    # answer HTTP 400 and fail the config.
    query = ScanQuery(markets=("futures",), columns=("close", "market_cap_calc", "Value.Traded", "Perf.3M"))
    assert build_scan_body(query, "futures", 0, 50)["columns"] == ["close", "Value.Traded", "Perf.3M"]
    assert build_scan_body(query, "america", 0, 50)["columns"] == ["close", "market_cap_calc", "Value.Traded", "Perf.3M"]


def test_an_answer_without_rows_is_typed_like_any_other() -> None:
    columns = ["name", "currency", "close", "pricescale", "typespecs"]
    empty = page_frame({"totalCount": 0, "data": []}, columns)
    full = page_frame({"totalCount": 1, "data": [{"s": "X:A", "d": ["A", "USD", 1, 100.0, ["common"]]}]}, columns)
    assert empty.schema == full.schema == pl.Schema({
        "symbol": pl.String, "name": pl.String, "currency": pl.String, "close": pl.Float64,
        "pricescale": pl.Int64, "typespecs": pl.List(pl.String)})
    with pytest.raises(BadBody, match="values of 'close' that are not Float64"):
        page_frame({"totalCount": 1, "data": [{"s": "X:A", "d": ["A", "USD", "n/a", 100, None]}]}, columns)
