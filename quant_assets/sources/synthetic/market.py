"""The simulated market: screens and daily bars for any date, deterministic from its config."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.instruments import BAR_COLUMNS, BAR_SCHEMA
from quant_assets.sources.screener import indicators
from quant_assets.sources.synthetic.config import MAX_YEARS, SyntheticMarketConfig, is_date
from quant_assets.sources.synthetic.simulation import REGIMES, Panel, simulate
from quant_assets.sources.synthetic.universe import build_universe

#: Columns of :meth:`SyntheticMarket.screen`, named as the screener names them.
SCREEN_COLUMNS: tuple[str, ...] = (
    "symbol",
    "name",
    "description",
    "exchange",
    "type",
    "subtype",
    "currency",
    "market",
    "close",
    "open",
    "high",
    "low",
    "volume",
    "Value.Traded",
    "market_cap_calc",
    *indicators.INDICATOR_COLUMNS,
    "pricescale",
    "minmov",
    "minmove2",
    "fractional",
)


class SyntheticMarket:
    """A simulated market, deterministic from its config; screens and bars for any date.

    The panel is simulated on first use up to the end of the calendar year of the latest date
    asked for, and re-simulated (identically in its earlier rows) when a later year is asked.
    Safe to share between threads.

    Parameters
    ----------
    config : SyntheticMarketConfig, optional
        Seed, size, start date and optional perturbation of the future.
    """

    def __init__(self, config: SyntheticMarketConfig | None = None) -> None:
        self.config = config or SyntheticMarketConfig()
        self._universe = build_universe(self.config)
        self._symbols = self._universe.frame["symbol"].to_numpy()
        self._symbol_index = {symbol: i for i, symbol in enumerate(self._symbols)}
        self._panel: Panel | None = None
        self._lock = threading.Lock()

    @property
    def instruments(self) -> pl.DataFrame:
        """One row per instrument, sorted by symbol; columns
        :data:`~quant_assets.sources.synthetic.universe.INSTRUMENT_COLUMNS`.

        ``clone_of`` names the listing an exact or near clone copies (``clone_kind`` says
        which); pairs quoted in BTC follow their coin divided by BTC and are not clones.
        """
        return self._universe.frame

    @property
    def payoffs(self) -> pl.DataFrame:
        """The hidden payoff of every instrument on the market, the antifragility score's truth.

        One row per instrument, sorted by symbol: ``symbol``, ``market_beta``, ``convexity``,
        ``tail_hedge`` (the volatility products' parameters of
        :func:`~quant_assets.sources.synthetic.simulation.market_payoff`, 0 for every other
        instrument), and ``payoff``: ``convex`` (long volatility, tail hedges), ``concave`` (short
        volatility) or ``linear`` (everything else, jumpy names included: their jumps are their
        own, not the market's).
        """
        arrays = self._universe.arrays
        convexity, tail_hedge = arrays["convexity"], arrays["tail_hedge"]
        curvature = convexity + tail_hedge  # both payoffs are convex for positive parameters
        return pl.DataFrame({
            "symbol": self._symbols,
            "market_beta": arrays["market_beta"],
            "convexity": convexity,
            "tail_hedge": tail_hedge,
            "payoff": np.where(curvature > 0, "convex", np.where(curvature < 0, "concave", "linear")),
        })

    @property
    def tick_size_history(self) -> pl.DataFrame:
        """Tick-size versions: ``symbol, valid_from, pricescale, minmov`` (tick = minmov/pricescale)."""
        return self._universe.tick_history

    @property
    def horizon(self) -> date | None:
        """The last simulated day, or None before anything was asked for."""
        panel = self._panel
        return None if panel is None else panel.end

    def _day(self, day: date, what: str) -> int:
        if not is_date(day):
            raise ValidationError(f"{what} must be a datetime.date, got {day!r}")
        start = self.config.start
        if day < start:
            raise ValidationError(
                f"{what} {day.isoformat()} is before the synthetic market's start {start.isoformat()}"
            )
        if day.year > start.year + MAX_YEARS:
            raise ValidationError(
                f"{what} {day.isoformat()} is more than {MAX_YEARS} years after the synthetic market's start "
                f"{start.isoformat()}"
            )
        return (day - start).days

    def _panel_through(self, day: date) -> Panel:
        with self._lock:
            panel = self._panel
            if panel is None or panel.end < day:
                year_end = date(day.year, 12, 31)
                panel = simulate(self._universe, self.config, (year_end - self.config.start).days + 1)
                self._panel = panel
            return panel

    def regime_path(self, start: date, end: date) -> pl.DataFrame:
        """The hidden regime of every calendar day in ``[start, end]``: ``date, regime``.

        Raises
        ------
        ValidationError
            If ``start`` is before the market's start or after ``end``.
        """
        first, last = self._day(start, "regime_path start"), self._day(end, "regime_path end")
        if last < first:
            raise ValidationError(
                f"regime_path end {end.isoformat()} is before its start {start.isoformat()}"
            )
        panel = self._panel_through(end)
        return pl.DataFrame(
            {
                "date": pl.Series(panel.dates[first : last + 1]),
                "regime": pl.Series(np.array(REGIMES)[panel.regime[first : last + 1]], dtype=pl.String),
            }
        )

    def _columns_of(self, symbols: Sequence[str] | None) -> np.ndarray:
        if symbols is None:
            return np.arange(len(self._symbol_index))
        if isinstance(symbols, str):
            raise ValidationError(f"symbols must be a sequence of symbols, got the string {symbols!r}")
        unknown = [s for s in symbols if s not in self._symbol_index]
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:5])
            raise ValidationError(
                f"unknown symbol{'s' if len(unknown) > 1 else ''} {shown}"
                f"{f' and {len(unknown) - 5} more' if len(unknown) > 5 else ''} in the synthetic market "
                f"(seed {self.config.seed}, {self.config.n_instruments} instruments)"
            )
        return np.unique([self._symbol_index[s] for s in symbols])

    def bars(self, start: date, end: date, symbols: Sequence[str] | None = None) -> pl.DataFrame:
        """Daily bars with ``start <= date <= end``: :data:`~quant_assets.instruments.BAR_COLUMNS`, sorted by (symbol, date).

        Only real bars: none on a weekend for weekday instruments, none outside
        ``[listed_on, delisted_on)``, none before the market's start.

        Raises
        ------
        ValidationError
            On an unknown symbol, or ``end`` before ``start``.
        """
        for what, day in (("bars start", start), ("bars end", end)):
            if not is_date(day):
                raise ValidationError(f"{what} must be a datetime.date, got {day!r}")
        if end < start:
            raise ValidationError(f"bars end {end.isoformat()} is before start {start.isoformat()}")
        columns = self._columns_of(symbols)
        first = max(0, (start - self.config.start).days)
        stop = (end - self.config.start).days + 1
        if stop <= first:  # the window ends before the market starts
            return pl.DataFrame(schema=BAR_SCHEMA)
        self._day(end, "bars end")
        panel = self._panel_through(end)
        window = panel.prices["close"][first:stop][:, columns]
        # Column-major nonzero: grouped by symbol (columns are in symbol order), then by date.
        col, row = np.nonzero(np.isfinite(window.T))
        rows, cols = row + first, columns[col]
        data = {"date": panel.dates[rows], "symbol": self._symbols[cols]}
        for name in BAR_COLUMNS[2:]:
            data[name] = panel.prices[name][rows, cols]
        return pl.DataFrame(data, schema=BAR_SCHEMA)

    def screen(self, as_of: date) -> pl.DataFrame:
        """The screener's view at the close of ``as_of``: one row per listed instrument.

        Rows are the instruments listed on ``as_of`` (``listed_on <= as_of < delisted_on``)
        with a bar on or before it, sorted by symbol; columns :data:`SCREEN_COLUMNS`. Values
        are those of each instrument's last bar on or before ``as_of`` (a stock on a Saturday
        shows Friday's). ``Value.Traded = volume * close * pointvalue``; ``market_cap_calc``
        is, as TradingView reports it, per listing: the coin's supply x the listing's own
        close, in its quote currency (so the listings of one coin differ a little, and a pair
        quoted in BTC is counted in BTC), and a company's shares x close; null for ETFs,
        futures and forex, which have none. ``pricescale`` is the one in force on ``as_of``.
        Missing indicator values (not enough history yet) are null.

        Raises
        ------
        ValidationError
            If ``as_of`` is before the market's start (or absurdly far after it).
        """
        r = self._day(as_of, "screen date")
        panel = self._panel_through(as_of)
        a = self._universe.arrays
        n = len(a["sigma"])
        last_rows = panel.last_bar_row[r]
        idx = np.flatnonzero((a["listed_day"] <= r) & (r < a["delisted_day"]) & (last_rows >= 0))
        rows = last_rows[idx].astype(np.int64)
        flat = rows * n + idx

        def at(values: np.ndarray) -> np.ndarray:
            return values.ravel()[flat]

        close, volume = at(panel.prices["close"]), at(panel.prices["volume"])
        capped = a["has_market_cap"][idx]
        market_cap = np.where(capped, a["supply"][idx] * close, np.nan)
        pricescale = np.where(a["tick_change_day"][idx] <= r, a["new_pricescale"][idx], a["pricescale"][idx])
        numeric = {
            "close": close,
            "open": at(panel.prices["open"]),
            "high": at(panel.prices["high"]),
            "low": at(panel.prices["low"]),
            "volume": volume,
            "Value.Traded": volume * close * a["pointvalue"][idx],
            "market_cap_calc": market_cap,
            **{name: at(values) for name, values in panel.fields.items()},
        }
        frame = self._universe.frame[idx].select(
            "symbol",
            pl.col("ticker").alias("name"),
            "description",
            "exchange",
            "type",
            "subtype",
            pl.col("quote").alias("currency"),
            "market",
        )
        return frame.with_columns(
            *(pl.Series(name, v, dtype=pl.Float64, nan_to_null=True) for name, v in numeric.items()),
            pl.Series("pricescale", pricescale, dtype=pl.Int64),
            pl.Series("minmov", a["minmov"][idx], dtype=pl.Int64),
            pl.lit(0, dtype=pl.Int64).alias("minmove2"),
            pl.lit("false").alias("fractional"),  # text, as the scanner answers it
        ).select(SCREEN_COLUMNS)


def get_market(config: SyntheticMarketConfig | None = None) -> SyntheticMarket:
    """The process-wide :class:`SyntheticMarket` of ``config`` (default config if None).

    Several assets materialised in one process then share one simulated panel.
    """
    return _market_of(config or SyntheticMarketConfig())


@functools.lru_cache(maxsize=4)
def _market_of(config: SyntheticMarketConfig) -> SyntheticMarket:
    return SyntheticMarket(config)
