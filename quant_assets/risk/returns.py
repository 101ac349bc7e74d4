"""Daily returns panel: bars (long polars frame) in, a dates × symbols numpy matrix out.

Calendar alignment
------------------
Crypto trades every day; stocks, futures and forex only on weekdays; instruments list and
delist over time. The panel's calendar is the **union** of the days on which any kept symbol
has a bar inside the window, and each symbol's close is **forward-filled** over the union days on
which it did not trade. Consequences, chosen on purpose:

* No day is erased: a crypto weekend stays in the panel, and a stock's return on Saturday and
  Sunday is 0 (its price did not move); Monday's stock return carries the whole Friday→Monday
  move. Dropping every row with any gap (the system this replaces, DESIGN.md §6) made the two
  calendars erase each other's weekends and holidays.
* The price is the same object in both views: summing a stock's returns over the union calendar
  gives exactly its return over its own calendar.
* Cost: the zeros lower a weekday asset's measured daily variance and its correlation with
  7-day assets over weekends. For the covariance of a mixed book that is the honest answer for a
  portfolio marked every calendar day; anyone who wants per-asset trading-day statistics should
  build a panel of that asset class alone.
* Days before a symbol's first bar in the window (and its first bar itself, which has no previous
  close) are NaN, never 0: a name that is not listed yet has no return, not a zero return.
  :meth:`ReturnsPanel.complete` turns such a ragged panel into a NaN-free one.

Point in time: only bars with ``end - lookback_days < date <= end`` are read; a bar stamped after
``end`` can never reach the panel.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import polars as pl

from quant_assets.errors import ValidationError

#: Columns :func:`build_returns_panel` needs; the other bar columns are ignored.
REQUIRED_COLUMNS: tuple[str, ...] = ("date", "symbol", "close")

#: A symbol whose last bar is more than this many calendar days before the day is stale
#: (delisted or halted): a weekend and short exchange holidays are within it.
MAX_STALE_DAYS = 5

_DIRECTIONS = frozenset({"LONG", "SHORT"})
_KINDS = frozenset({"simple", "log"})


# eq=False: a generated __eq__ would compare arrays element-wise and fail; compare fields instead.
@dataclass(frozen=True, eq=False)
class ReturnsPanel:
    """Daily returns of N symbols over T union-calendar days.

    Attributes
    ----------
    dates : tuple of datetime.date, length T
        Strictly increasing; row ``t`` holds the return from the close of the previous
        union-calendar day to the close of ``dates[t]``.
    symbols : tuple of str, length N
        Sorted ``EXCHANGE:TICKER`` names.
    values : numpy.ndarray, shape (T, N), float64, read-only
        Returns (fractions, not percent; simple or log as built; SHORT columns sign-flipped when
        directions were given). NaN only before a symbol's history starts.
    dropped : dict of str to str
        Symbol → why it is not in the panel.
    """

    dates: tuple[date, ...]
    symbols: tuple[str, ...]
    values: np.ndarray
    dropped: dict[str, str]

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float64)
        if values.shape != (len(self.dates), len(self.symbols)):
            raise ValidationError(
                f"ReturnsPanel values have shape {values.shape}, expected "
                f"({len(self.dates)}, {len(self.symbols)}) = (dates, symbols)"
            )
        # A private read-only copy keeps the frozen dataclass actually immutable.
        values.flags.writeable = False
        object.__setattr__(self, "values", values)

    def complete(self, min_coverage: float = 0.9) -> ReturnsPanel:
        """Return a NaN-free panel for estimators that need a rectangular matrix.

        Trade-off: trimming rows shortens the history of every symbol to that of the youngest
        survivor, while dropping a symbol loses it entirely. The rule is to drop the symbols
        whose history covers less than ``min_coverage`` of the window (recorded in ``dropped``)
        and then trim the leading rows until every survivor has a value, so one late listing
        cannot shrink the estimation window below ``min_coverage`` of its length.

        Parameters
        ----------
        min_coverage : float in (0, 1]
            Minimum fraction of the panel's rows on which a symbol must have a return.

        Returns
        -------
        ReturnsPanel
            Rows ``dates[k:]`` for the smallest feasible ``k``, no NaN, ``dropped`` extended.

        Raises
        ------
        ValidationError
            If ``min_coverage`` is not in (0, 1].
        """
        if not 0.0 < min_coverage <= 1.0:
            raise ValidationError(f"min_coverage must be in (0, 1], got {min_coverage}")
        n_rows = len(self.dates)
        dropped = dict(self.dropped)
        if n_rows == 0:
            dropped.update({s: "the panel has no rows" for s in self.symbols})
            return ReturnsPanel((), (), np.empty((0, 0)), dropped)
        valid = np.isfinite(self.values)
        coverage = valid.sum(axis=0) / n_rows
        keep = coverage >= min_coverage
        for j in np.flatnonzero(~keep):
            dropped[self.symbols[j]] = (
                f"returns on {coverage[j]:.0%} of the {n_rows} days "
                f"{self.dates[0]}..{self.dates[-1]}, below min_coverage {min_coverage:.0%}"
            )
        first = int(np.argmax(np.all(valid[:, keep], axis=1))) if keep.any() else n_rows
        trimmed = valid[first:]
        # Interior gaps cannot come from build_returns_panel (it forward-fills), but a panel built
        # by hand might have them; such a column cannot be made rectangular by trimming.
        gappy = keep & ~np.all(trimmed, axis=0)
        for j in np.flatnonzero(gappy):
            dropped[self.symbols[j]] = "missing returns inside the window (not only before its start)"
        keep &= ~gappy
        symbols = tuple(s for s, k in zip(self.symbols, keep) if k)
        if not symbols:
            return ReturnsPanel((), (), np.empty((0, 0)), dropped)
        return ReturnsPanel(self.dates[first:], symbols, self.values[first:, keep], dropped)

    def to_frame(self) -> pl.DataFrame:
        """Return the panel as a long frame ``date`` (Date), ``symbol`` (str), ``return`` (f64).

        NaN cells (before a symbol's history starts) are left out rather than written as nulls.
        """
        rows, cols = np.nonzero(np.isfinite(self.values))
        return pl.DataFrame(
            {
                "date": [self.dates[r] for r in rows],
                "symbol": [self.symbols[c] for c in cols],
                "return": self.values[rows, cols],
            },
            schema={"date": pl.Date, "symbol": pl.String, "return": pl.Float64},
        )


def build_returns_panel(
    bars: pl.DataFrame,
    end: date,
    lookback_days: int,
    *,
    symbols: Collection[str] | None = None,
    min_observations: int = 20,
    max_stale_days: int = MAX_STALE_DAYS,
    kind: Literal["simple", "log"] = "simple",
    directions: Mapping[str, str] | None = None,
) -> ReturnsPanel:
    """Build the daily returns panel of the window ``(end - lookback_days, end]``.

    Parameters
    ----------
    bars : polars.DataFrame
        Daily bars, at least ``date`` (pl.Date), ``symbol`` (str) and ``close`` (float); one row
        per (symbol, date). Rows outside the window are ignored, rows after ``end`` are never
        read. A null close counts as "no bar that day".
    end : datetime.date
        Last day of the window (the partition date D), inclusive.
    lookback_days : int
        Window length in calendar days; the window starts the day after ``end - lookback_days``.
    symbols : collection of str, optional
        Symbols to build the panel for; default every symbol in ``bars``. A requested symbol with
        no bar in the window is reported in ``dropped``.
    min_observations : int
        Minimum number of real returns (bar-to-bar moves, i.e. bars in the window minus one) a
        symbol needs to be kept.
    max_stale_days : int
        A symbol whose last bar is more than this many calendar days before ``end`` is dropped as
        delisted or halted; forward-filling it would invent a run of zero returns. The default 5
        tolerates weekends and short exchange holidays.
    kind : {"simple", "log"}
        ``close_t / close_{t-1} - 1`` or ``log(close_t / close_{t-1})``.
    directions : mapping of str to {"LONG", "SHORT"}, optional
        Position direction per symbol; SHORT columns are sign-flipped so the panel holds the
        returns of the positions (for the optimiser). Symbols absent from the mapping are LONG.
        Leave it out for the market view (regime detection).

    Returns
    -------
    ReturnsPanel
        Sorted symbols, union calendar minus its first day, NaN before each symbol's history.

    Raises
    ------
    ValidationError
        On missing columns, a ``date`` column that is not pl.Date, null dates or symbols,
        duplicate (symbol, date) rows, non-positive or non-finite closes (naming the symbol and
        date), or invalid arguments.
    """
    _check_bars(bars)
    _check_arguments(lookback_days, min_observations, max_stale_days, kind, directions)
    start = end - timedelta(days=lookback_days)
    window = bars.filter((pl.col("date") > start) & (pl.col("date") <= end))
    if symbols is not None:
        window = window.filter(pl.col("symbol").is_in(list(symbols)))
    return PriceMatrix.from_bars(window).returns_panel(
        end, lookback_days, symbols=symbols, min_observations=min_observations,
        max_stale_days=max_stale_days, kind=kind, directions=directions,
    )


def _check_bars(bars: pl.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in bars.columns]
    if missing:
        raise ValidationError(f"bars frame lacks columns {missing}; it has {bars.columns}")
    if bars.schema["date"] != pl.Date:
        raise ValidationError(f"bars column 'date' must be pl.Date, got {bars.schema['date']}")
    if not bars.schema["close"].is_numeric():
        raise ValidationError(f"bars column 'close' must be numeric, got {bars.schema['close']}")


def _check_arguments(
    lookback_days: int, min_observations: int, max_stale_days: int, kind: str,
    directions: Mapping[str, str] | None,
) -> None:
    if lookback_days < 1 or min_observations < 1 or max_stale_days < 0:
        raise ValidationError(
            f"need lookback_days >= 1, min_observations >= 1, max_stale_days >= 0; got "
            f"{lookback_days}, {min_observations}, {max_stale_days}"
        )
    if kind not in _KINDS:
        raise ValidationError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    if directions is not None:
        bad = {s: d for s, d in directions.items() if d not in _DIRECTIONS}
        if bad:
            raise ValidationError(f"directions must be LONG or SHORT; got {bad}")


# eq=False: a generated __eq__ would compare arrays element-wise and fail.
@dataclass(frozen=True, eq=False)
class PriceMatrix:
    """Closes of N symbols on T days, pivoted once so that many windows can be cut from it.

    A backfill asks for a 730-day returns panel on each of its days; re-pivoting the bars for
    each day cost more than everything else the regime does. Cutting the window from one
    matrix gives the same panel as building it from that window's bars alone.

    Attributes
    ----------
    dates : numpy.ndarray of datetime64[D], shape (T,)
        Every day on which some symbol has a bar, ascending.
    symbols : tuple of str, length N
        Sorted.
    closes : numpy.ndarray, shape (T, N)
        Close of each symbol on each day; NaN where it has no bar.
    """

    dates: np.ndarray
    symbols: tuple[str, ...]
    closes: np.ndarray

    @classmethod
    def from_bars(cls, bars: pl.DataFrame) -> PriceMatrix:
        """Pivot daily bars (``date``, ``symbol``, ``close``; one row per symbol and date).

        Raises
        ------
        ValidationError
            On missing columns, a ``date`` column that is not pl.Date, null dates or symbols,
            duplicate (symbol, date) rows, or non-positive or non-finite closes (naming the
            symbol and date).
        """
        _check_bars(bars)
        window = bars.select(
            pl.col("date"), pl.col("symbol"), pl.col("close").cast(pl.Float64)
        ).filter(pl.col("close").is_not_null())
        _check_window(window)
        if window.is_empty():  # no bar at all: an empty universe or book
            return cls(np.array([], dtype="datetime64[D]"), (), np.empty((0, 0)))
        symbols = window["symbol"].unique().sort()
        dates = np.unique(window["date"].to_numpy())
        closes = np.full((dates.size, symbols.len()), np.nan)
        row = np.searchsorted(dates, window["date"].to_numpy())
        col = window["symbol"].replace_strict(symbols, pl.int_range(symbols.len(), eager=True)).to_numpy()
        closes[row, col] = window["close"].to_numpy()
        return cls(dates, tuple(symbols.to_list()), closes)

    def last_session(
        self, day: date, symbols: Collection[str] | None = None, max_stale_days: int = MAX_STALE_DAYS
    ) -> date | None:
        """The last day on or before ``day`` on which one of ``symbols`` (default: all) has a
        bar: ``day`` itself, or e.g. the Friday before a weekend of weekday markets. None when
        there is none within ``max_stale_days`` of ``day`` (the same bound that drops a stale
        symbol from a panel)."""
        hi = int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="right"))
        lo = int(np.searchsorted(self.dates, np.datetime64(day - timedelta(days=max_stale_days), "D"), side="left"))
        if symbols is None:
            cols = np.arange(len(self.symbols))
        else:
            index = {s: j for j, s in enumerate(self.symbols)}
            cols = np.array([index[s] for s in set(symbols) if s in index], dtype=np.int64)
        traded = np.flatnonzero(np.isfinite(self.closes[lo:hi][:, cols]).any(axis=1))
        return self.dates[lo + traded[-1]].item() if traded.size else None

    def traded(self, dates: Sequence[date], symbols: Sequence[str]) -> np.ndarray:
        """``(len(dates), len(symbols))`` bool: whether each symbol has a bar on each date (False
        for a date or symbol the matrix does not hold)."""
        out = np.zeros((len(dates), len(symbols)), dtype=bool)
        if not self.symbols or not dates:
            return out
        days = np.array(dates, dtype="datetime64[D]")
        rows = np.clip(np.searchsorted(self.dates, days), 0, self.dates.size - 1)
        on_file = self.dates[rows] == days
        index = {s: j for j, s in enumerate(self.symbols)}
        for k, symbol in enumerate(symbols):
            if symbol in index:
                out[on_file, k] = np.isfinite(self.closes[rows[on_file], index[symbol]])
        return out

    def returns_panel(
        self,
        end: date,
        lookback_days: int,
        *,
        symbols: Collection[str] | None = None,
        min_observations: int = 20,
        max_stale_days: int = MAX_STALE_DAYS,
        kind: Literal["simple", "log"] = "simple",
        directions: Mapping[str, str] | None = None,
    ) -> ReturnsPanel:
        """The panel :func:`build_returns_panel` builds from these bars (same parameters)."""
        _check_arguments(lookback_days, min_observations, max_stale_days, kind, directions)
        start = end - timedelta(days=lookback_days)
        lo = int(np.searchsorted(self.dates, np.datetime64(start, "D"), side="right"))
        hi = int(np.searchsorted(self.dates, np.datetime64(end, "D"), side="right"))
        index = {s: j for j, s in enumerate(self.symbols)}
        wanted = self.symbols if symbols is None else sorted(s for s in set(symbols) if s in index)
        cols = np.array([index[s] for s in wanted], dtype=np.int64)
        has = np.isfinite(self.closes[lo:hi][:, cols])
        counts = has.sum(axis=0)

        dropped: dict[str, str] = {}
        if symbols is not None:
            present = {s for s, n in zip(wanted, counts) if n}
            for s in sorted(set(symbols) - present):
                dropped[s] = f"no bars in the window ({start}, {end}]"
        last_row = has.shape[0] - 1 - np.argmax(has[::-1], axis=0) if has.shape[0] else counts
        kept: list[int] = []
        for k, (s, n) in enumerate(zip(wanted, counts)):
            if not n:
                continue
            last = self.dates[lo + last_row[k]].item()
            if (end - last).days > max_stale_days:
                dropped[s] = (
                    f"last bar on {last}, more than {max_stale_days} days before {end} (delisted or halted)"
                )
            elif n - 1 < min_observations:
                dropped[s] = f"{n - 1} returns in the window ({start}, {end}], need {min_observations}"
            else:
                kept.append(k)
        if not kept:
            return ReturnsPanel((), (), np.empty((0, 0)), dropped)

        on_calendar = has[:, kept].any(axis=1)  # the union calendar of the kept symbols
        calendar = self.dates[lo:hi][on_calendar]
        closes = forward_fill(self.closes[lo:hi][:, cols[kept]][on_calendar])
        names = [wanted[k] for k in kept]
        with np.errstate(invalid="ignore"):  # NaN before a listing propagates quietly, by design
            ratio = closes[1:] / closes[:-1]
        values = np.log(ratio) if kind == "log" else ratio - 1.0
        if directions is not None:
            short = np.array([directions.get(s, "LONG") == "SHORT" for s in names])
            values[:, short] = 0.0 - values[:, short]  # not *= -1: a flat day stays 0.0, not -0.0
        return ReturnsPanel(tuple(calendar[1:].tolist()), tuple(names), values, dropped)


def _check_window(window: pl.DataFrame) -> None:
    """Reject rows the maths cannot use, naming the symbol and date."""
    if window["date"].null_count() or window["symbol"].null_count():
        raise ValidationError("bars have rows with a null date or symbol")
    bad = window.filter(~pl.col("close").is_finite() | (pl.col("close") <= 0.0))
    if bad.height:
        d, s, c = bad.sort("symbol", "date").row(0)
        raise ValidationError(
            f"non-positive or non-finite close {c} for {s} on {d} "
            f"({bad.height} such bars, symbols {sorted(set(bad['symbol'].to_list()))[:5]})"
        )
    dup = window.group_by("symbol", "date").len().filter(pl.col("len") > 1)
    if dup.height:
        s, d, n = dup.sort("symbol", "date").row(0)
        raise ValidationError(f"{n} bars for {s} on {d}; expected one row per (symbol, date)")


def forward_fill(x: np.ndarray) -> np.ndarray:
    """Forward-fill NaN down each column; leading NaN stay NaN."""
    rows = np.arange(x.shape[0])[:, None]
    last_valid = np.maximum.accumulate(np.where(np.isfinite(x), rows, -1), axis=0)
    filled = x[np.maximum(last_valid, 0), np.arange(x.shape[1])]
    filled[last_valid < 0] = np.nan
    return filled


def equal_weight_market_returns(panel: ReturnsPanel) -> np.ndarray:
    """Return the equal-weight market return per day, over the symbols available that day.

    Parameters
    ----------
    panel : ReturnsPanel
        Usually built without ``directions``: the market, not the hedged book.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Mean of the non-NaN returns of each row; NaN only on a row where no symbol has a return
        (impossible for a panel from :func:`build_returns_panel` with at least one symbol).
    """
    valid = np.isfinite(panel.values)
    counts = valid.sum(axis=1)
    sums = np.where(valid, panel.values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(counts.shape, np.nan), where=counts > 0)
