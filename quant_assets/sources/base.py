"""The one interface every market data source implements, and the query it answers.

A source answers two questions for a business date D, using nothing stamped after D:
``scan`` — the screener's view of the market at the close of D (one row per instrument), and
``daily_bars`` — daily OHLCV bars for some symbols over a window ending at D.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, Sequence

from quant_assets.errors import QuantAssetsError

if TYPE_CHECKING:
    import polars as pl

#: The scanner's filter operations that our sources evaluate (the scanner knows a few more,
#: ``crosses`` and ``above%`` among them); configs may use exactly these.
FilterOperation = Literal[
    "greater", "egreater", "less", "eless", "equal", "nequal", "in_range", "not_in_range",
    "empty", "nempty", "match", "nmatch", "has", "has_none_of",
]


@dataclass(frozen=True)
class ScanFilter:
    """One screener filter ``{left, operation, right}`` (DESIGN.md §3)."""

    left: str
    operation: FilterOperation
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


def scan_query_name(label: str) -> str:
    """How messages name the query a config (``label``) asks: ``scan query 'configs/x.yaml'``."""
    return f"scan query {label!r}" if label else "a scan query"


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
        """Return bars (:data:`~quant_assets.instruments.BAR_COLUMNS`) for ``symbols`` with ``start <= date <= end``."""
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
