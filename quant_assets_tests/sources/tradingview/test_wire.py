"""The scanner's wire format: a request body built from a query, nothing sent."""

from __future__ import annotations

from datetime import date

from quant_assets.sources.base import ScanFilter, ScanQuery
from quant_assets.sources.tradingview.wire import build_scan_body


def test_build_scan_body_is_the_scanner_wire_format() -> None:
    query = ScanQuery(
        markets=("crypto",),
        columns=("symbol", "close", "volume", "close"),
        filters=(ScanFilter("exchange", "in_range", ("BINANCE", "OKX")), ScanFilter("listed", "egreater", date(2024, 1, 2))),
        sort_by="Value.Traded",
        descending=False,
    )
    assert build_scan_body(query, 150, 300) == {
        "columns": ["close", "volume", "Value.Traded"],
        "filter": [
            {"left": "exchange", "operation": "in_range", "right": ["BINANCE", "OKX"]},
            {"left": "listed", "operation": "egreater", "right": "2024-01-02"},
        ],
        "sort": {"sortBy": "Value.Traded", "sortOrder": "asc", "nullsFirst": False},
        "range": [150, 300],
        "options": {"lang": "en"},
    }
