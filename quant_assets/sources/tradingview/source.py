"""The live market data source: today's TradingView screen, daily bars from the chart feed,
and past screens reconstructed from bars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import polars as pl

from quant_assets.errors import QuantAssetsError, SourceResponseError
from quant_assets.instruments import BAR_SCHEMA
from quant_assets.sources.base import ScanQuery, answer_each
from quant_assets.sources.screener.reconstruct import DESCRIPTIVE_COLUMNS, reconstruct_screen
from quant_assets.sources.screener.scan_filters import answer_query
from quant_assets.sources.tradingview.chart_feed import ChartFeedClient, ChartFeedSettings
from quant_assets.sources.tradingview.scanner import ScannerSettings, scan_all
from quant_assets.sources.tradingview.transport import run_sync

if TYPE_CHECKING:
    from quant_assets.lakehouse.bars_cache import BarsCache


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


class TradingViewSource:
    """The live :class:`~quant_assets.sources.base.MarketSource`: today's TradingView screen.

    Parameters
    ----------
    settings : ScannerSettings, optional
        Defaults to :meth:`ScannerSettings.from_env`.
    today : callable returning a date, optional
        The only date the live scanner can answer for; UTC today by default (tests pin it).
    chart_settings : ChartFeedSettings, optional
        The chart websocket that serves daily bars; its URL defaults to
        ``$QUANT_ASSETS_TRADINGVIEW_CHART_URL``, else TradingView's.
    bars_cache : BarsCache, optional
        Where bars for past screens are kept between runs (else they are fetched each time).

    A past date's screen is reconstructed (:mod:`quant_assets.sources.screener.reconstruct`): today's
    ``universe_size`` most traded instruments of each market, their bars over the
    ``history_days`` before the date, the screen recomputed from them and the query answered
    from it; rows carry ``reconstructed = true``. Only instruments listed today can appear.
    """

    name = "tradingview"

    def __init__(
        self,
        settings: ScannerSettings | None = None,
        today: Callable[[], date] | None = None,
        chart_settings: ChartFeedSettings | None = None,
        bars_cache: BarsCache | None = None,
        history_days: int = 400,
        universe_size: int = 1000,
    ) -> None:
        self.settings = settings if settings is not None else ScannerSettings.from_env()
        self._today = today or _utc_today
        self.chart_settings = chart_settings if chart_settings is not None else ChartFeedSettings()
        self.bars_cache, self.history_days, self.universe_size = bars_cache, history_days, universe_size
        self._universe: dict[str, pl.DataFrame] = {}  # market -> today's rows, fetched once
        self._screens: dict[tuple[str, date], pl.DataFrame] = {}  # (market, day) -> reconstructed

    def __repr__(self) -> str:
        return f"TradingViewSource({self.settings!r})"

    def _reconstructed(self, market: str, as_of: date) -> pl.DataFrame:
        """The screen of ``market`` at the close of ``as_of``, recomputed from bars."""
        if market not in self._universe:
            columns = tuple(dict.fromkeys((*DESCRIPTIVE_COLUMNS, "close", "volume", "Value.Traded", "market_cap_calc")))
            query = ScanQuery(markets=(market,), columns=columns, limit=self.universe_size,
                              label=f"reconstruction universe ({market})")
            (rows,) = self.scan_many(self._today(), [query])
            if isinstance(rows, QuantAssetsError):
                raise rows
            self._universe[market] = rows.with_columns(market=pl.lit(market))
        if (market, as_of) not in self._screens:
            today = self._universe[market]
            symbols, start = today["symbol"].to_list(), as_of - timedelta(days=self.history_days)
            bars = (self.bars_cache.bars(self.daily_bars, symbols, start, as_of) if self.bars_cache is not None
                    else self.daily_bars(symbols, start, as_of))
            self._screens[(market, as_of)] = reconstruct_screen(bars, today, as_of)
        return self._screens[(market, as_of)]

    def _answer_past(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        screen = pl.concat([self._reconstructed(m, as_of) for m in query.markets], how="diagonal_relaxed")
        return answer_query(screen, query).with_columns(reconstructed=pl.lit(True))

    def scan(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        """The screen for ``query``: ``symbol`` + ``query.columns``, sorted and cut; live today,
        reconstructed from bars for a past date.

        Raises
        ------
        SourceResponseError
            ``as_of`` is after today, or the scanner rejected or kept failing the query.
        SourceConnectionError
            The scanner could not be reached.
        """
        (result,) = self.scan_many(as_of, [query])
        if isinstance(result, QuantAssetsError):
            raise result
        return result

    def scan_many(self, as_of: date, queries: Sequence[ScanQuery]) -> list[pl.DataFrame | QuantAssetsError]:
        """Every query; per query its frame or its error, in order. Today's are asked of the
        scanner at once over one session; a past date's are answered from reconstructed screens.

        Raises
        ------
        SourceResponseError
            ``as_of`` is after today.
        """
        today = self._today()
        if as_of > today:
            raise SourceResponseError(
                f"the TradingView source knows nothing after today ({today.isoformat()}), asked for {as_of.isoformat()}"
            )
        if as_of == today:
            results = run_sync(scan_all([(str(i), q) for i, q in enumerate(queries)], self.settings))
            return [results[str(i)] for i in range(len(queries))]
        return answer_each(lambda query: self._answer_past(as_of, query), queries)

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Daily bars with ``start <= date <= end`` from the chart websocket (the feed serves the
        last N bars up to today, so N reaches back to ``start``), sorted by (symbol, date).

        Raises
        ------
        UnknownSymbolError
            The feed does not know a symbol.
        SourceConnectionError, SourceResponseError
            The feed could not be reached, or answered unusably, after the retries.
        """
        if end < start:
            raise SourceResponseError(f"daily bars: end {end.isoformat()} is before start {start.isoformat()}")
        n_bars = (self._today() - start).days + 1
        bars = run_sync(ChartFeedClient(self.chart_settings).fetch_many(list(symbols), n_bars))
        frames = [frame.filter(pl.col("date").is_between(start, end)) for frame in bars.values()]
        return pl.concat(frames).sort("symbol", "date") if frames else pl.DataFrame(schema=BAR_SCHEMA)
