"""The one interface every market data source implements, and the query it answers.

A source answers two questions for a business date D, using nothing stamped after D:
``scan`` — the screener's view of the market at the close of D (one row per instrument), and
``daily_bars`` — daily OHLCV bars for some symbols over a window ending at D.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Protocol, Sequence

import polars as pl

from quant_assets.errors import QuantAssetsError

#: Columns every bars frame has, in this order.
BAR_COLUMNS: tuple[str, ...] = ("date", "symbol", "open", "high", "low", "close", "volume")
#: Their types, wherever bars are built or stored.
BAR_SCHEMA: dict[str, pl.DataType] = {"date": pl.Date, "symbol": pl.String, **{c: pl.Float64 for c in BAR_COLUMNS[2:]}}


@dataclass(frozen=True)
class ScanFilter:
    """One screener filter ``{left, operation, right}`` (DESIGN.md §3)."""

    left: str
    operation: str
    right: Any = None


@dataclass(frozen=True)
class ScanQuery:
    """What one screening config asks the screener for.

    Mirrors the scanner's request body: markets, columns, ANDed filters, a sort and a range
    ``[0, limit)``. Building a query is separate from sending it.
    """

    markets: tuple[str, ...]
    columns: tuple[str, ...]
    filters: tuple[ScanFilter, ...] = ()
    sort_by: str = "Value.Traded"
    descending: bool = True
    limit: int = 300
    label: str = field(default="", compare=False)  # the config asking, for error messages


class MarketSource(Protocol):
    """A market data source: synthetic, the live TradingView screener, or a fake of it."""

    name: str

    def scan(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        """Return the screen for ``as_of``: ``symbol`` plus ``query.columns``, sorted and cut."""
        ...

    def scan_many(
        self, as_of: date, queries: Sequence[ScanQuery]
    ) -> list[pl.DataFrame | QuantAssetsError]:
        """Answer every query (concurrently where the source can); a failed query's slot holds
        its error instead of a frame, so one bad config never poisons the others."""
        ...

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Return bars (:data:`BAR_COLUMNS`) for ``symbols`` with ``start <= date <= end``."""
        ...


def answer_each(
    answer: Callable[[ScanQuery], pl.DataFrame], queries: Sequence[ScanQuery]
) -> list[pl.DataFrame | QuantAssetsError]:
    """``answer`` for each query in turn; a failing query's slot holds its error, so one bad
    config does not sink the others (the contract of :meth:`MarketSource.scan_many`)."""
    answers: list[pl.DataFrame | QuantAssetsError] = []
    for query in queries:
        try:
            answers.append(answer(query))
        except QuantAssetsError as exc:
            answers.append(exc)
    return answers
