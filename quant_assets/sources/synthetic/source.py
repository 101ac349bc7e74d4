"""The offline market data source over a synthetic market."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from quant_assets.errors import QuantAssetsError
from quant_assets.sources.base import ScanQuery, answer_each
from quant_assets.sources.screener.scan_filters import answer_query
from quant_assets.sources.synthetic.config import SyntheticMarketConfig
from quant_assets.sources.synthetic.market import SyntheticMarket, get_market


class SyntheticSource:
    """The offline :class:`~quant_assets.sources.base.MarketSource`: a synthetic market.

    Parameters
    ----------
    config : SyntheticMarketConfig, optional
        Which market; the instance is shared per config through :func:`get_market`.
    market : SyntheticMarket, optional
        Use this market instead (tests).
    """

    name = "synthetic"

    def __init__(
        self, config: SyntheticMarketConfig | None = None, *, market: SyntheticMarket | None = None
    ) -> None:
        self.market = market if market is not None else get_market(config or SyntheticMarketConfig())

    def scan(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        """The screen of ``as_of`` as the scanner answers ``query``: ``symbol`` + its columns.

        Rows of ``query.markets``, passing ``query.filters``, sorted by ``query.sort_by``
        (nulls last, ties by symbol), cut to ``query.limit``.

        Raises
        ------
        SourceResponseError
            On a field the screen does not have (filter, sort or column), naming the field and
            the query's label.
        ValidationError
            If ``as_of`` is before the market's start.
        """
        return answer_query(self.market.screen(as_of), query)

    def scan_many(self, as_of: date, queries: Sequence[ScanQuery]) -> list[pl.DataFrame | QuantAssetsError]:
        """:meth:`scan` for each query in turn; a failing query's slot holds its error."""
        return answer_each(lambda query: self.scan(as_of, query), queries)

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Bars (:data:`~quant_assets.instruments.BAR_COLUMNS`) of ``symbols`` with ``start <= date <= end``.

        Raises
        ------
        ValidationError
            On an unknown symbol or ``end`` before ``start``.
        """
        return self.market.bars(start, end, symbols)
