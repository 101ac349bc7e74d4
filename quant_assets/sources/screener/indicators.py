"""The screener's indicator columns, computed from daily bars on (T, N) panels.

Every function takes panels of shape ``(T, N)``: ``T`` calendar days (rows, oldest first) by
``N`` instruments (columns), ``NaN`` where an instrument has no bar that day (a weekend for a
stock, before its listing, after its delisting). An instrument has a bar on a row where its
close is finite; ``open``/``high``/``low``/``close`` passed together must agree on that.

Recursions (Wilder's RMA, EMAs, moving sums and windows, the technical ratings of
:mod:`~quant_assets.sources.screener.ratings`) run in *bar time*
(:mod:`~quant_assets.sources.screener.bar_time`): a loop over each instrument's own bars that
carries its state across weekends and other gaps, one row of ``N`` values at a time, which keeps
what it touches in cache (every column of the screen for T = 1100, N = 10,000 takes a few
seconds). Previous-bar and calendar-window quantities
(change, true range, performance) are computed on calendar rows directly. Every value at
row ``t`` depends only on rows ``<= t`` (causal), which lets a daily partition use these
columns without seeing the future.

Definitions follow TradingView's published ones (DESIGN.md §3); each docstring names its source,
and says what is computed instead where a rule is not public.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from quant_assets.errors import ValidationError
from quant_assets.sources.screener.bar_time import BarTime, Smoother
from quant_assets.sources.screener.ratings import RATING_COLUMNS, RatingKernel

#: Calendar days of each performance column (TradingView's "How is Performance calculated in the
#: Screener?", support/solutions/43000636536): Perf.X compares the close with the open of the
#: bar ``days`` calendar days back (see :func:`performance`).
PERFORMANCE_DAYS: dict[str, int] = {
    "Perf.W": 7,
    "Perf.1M": 30,
    "Perf.3M": 90,
    "Perf.6M": 180,
    "Perf.Y": 365,
}

#: Screener columns :func:`screen_indicators` returns, in this order.
INDICATOR_COLUMNS: tuple[str, ...] = (
    "change",
    *PERFORMANCE_DAYS,
    "Volatility.D",
    "ADX",
    "ADX+DI",
    "ADX-DI",
    "RSI",
    "ATR",
    *RATING_COLUMNS,
)

#: Period of the screener's ADX, DI, RSI and ATR columns.
SCREEN_PERIOD = 14

_DMI_COLUMNS = ("ADX", "ADX+DI", "ADX-DI")
_BAR_TIME_COLUMNS = frozenset({*_DMI_COLUMNS, "RSI", "ATR", *RATING_COLUMNS})


def _bar_kernels(
    bars: BarTime,
    prices: dict[str, np.ndarray],
    wanted: Collection[str],
    period: int = SCREEN_PERIOD,
) -> dict[str, np.ndarray]:
    """The recursive indicators, one walk over the bar rows.

    ``wanted`` is a subset of ADX, ADX+DI, ADX-DI, RSI, ATR and the rating columns (these always
    with the 14-bar RSI and DMI); ``prices`` holds the calendar ``close`` and, for all but RSI,
    ``high`` and ``low``, and ``volume`` for the ratings. Returns calendar panels (T, N), NaN
    before warm-up and off bars.
    """
    n_cols = bars.shape[1]
    outputs = {name: bars.new_output() for name in wanted}
    ratings = RatingKernel(n_cols) if any(name in wanted for name in RATING_COLUMNS) else None
    want_dmi = ratings is not None or any(name in wanted for name in _DMI_COLUMNS)
    want_rsi = ratings is not None or "RSI" in wanted
    want_range = want_dmi or "ATR" in wanted
    alpha = 1.0 / period
    # DM and the DMI's true range need a previous bar: they start at bar 1 (lead=1).
    tr_rma, plus_rma, minus_rma = (Smoother(n_cols, period, alpha, lead=1) for _ in range(3))
    dx_rma = Smoother(n_cols, period, alpha, lead=period)
    gain_rma, loss_rma = Smoother(n_cols, period, alpha, lead=1), Smoother(n_cols, period, alpha, lead=1)
    atr_rma = Smoother(n_cols, period, alpha)
    adx_row = plus_di = minus_di = rsi_row = None
    high = low = prev_high = prev_low = prev_close = None

    def emit(name: str, k: int, row: np.ndarray | None) -> None:
        if name in outputs and row is not None:
            bars.scatter(outputs[name], k, row)

    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(bars.n_rows):
            close = bars.gather(prices["close"], k)
            if want_range:
                high, low = bars.gather(prices["high"], k), bars.gather(prices["low"], k)
                # The DMI's true range is undefined on the first bar (TradingView's ta.tr);
                # the ATR's is high - low there (ta.tr(true)).
                tr_moved = np.maximum(high, prev_close) - np.minimum(low, prev_close) if k else None
            if "ATR" in wanted:
                emit("ATR", k, atr_rma.step(k, tr_moved if k else high - low))
            if want_dmi and k:
                up = high - prev_high
                down = prev_low - low
                tr_s = tr_rma.step(k, tr_moved)
                plus_s = plus_rma.step(k, np.where((up > down) & (up > 0), up, 0.0))
                minus_s = minus_rma.step(k, np.where((down > up) & (down > 0), down, 0.0))
                if tr_s is not None:
                    plus_di = 100.0 * plus_s / tr_s
                    minus_di = 100.0 * minus_s / tr_s
                    # A window without any range (a frozen price) has no direction.
                    frozen = tr_s == 0
                    plus_di[frozen] = 0.0
                    minus_di[frozen] = 0.0
                    di_sum = plus_di + minus_di
                    dx = 100.0 * np.abs(plus_di - minus_di) / di_sum
                    dx[di_sum == 0] = 0.0
                    adx_row = dx_rma.step(k, dx)
                    emit("ADX", k, adx_row)
                    emit("ADX+DI", k, plus_di)
                    emit("ADX-DI", k, minus_di)
            if want_rsi and k:
                diff = close - prev_close
                gain = gain_rma.step(k, np.maximum(diff, 0.0))
                loss = loss_rma.step(k, np.maximum(-diff, 0.0))
                if gain is not None:
                    rsi_row = 100.0 - 100.0 / (1.0 + gain / loss)
                    # ta.rsi: 100 when there were no losses (checked first), 0 when no gains.
                    rsi_row[gain == 0] = 0.0
                    rsi_row[loss == 0] = 100.0
                    emit("RSI", k, rsi_row)
            if ratings is not None:
                dmi = None if adx_row is None else (adx_row, plus_di, minus_di)
                volume = bars.gather(prices["volume"], k)
                for name, row in zip(RATING_COLUMNS, ratings.step(k, high, low, close, volume, rsi_row, dmi)):
                    emit(name, k, row)
            prev_close, prev_high, prev_low = close, high, low
    return {name: out[:-1] for name, out in outputs.items()}


def _previous_bar(x: np.ndarray, has_bar: np.ndarray) -> np.ndarray:
    """On every row, the value of the instrument's last bar on an earlier row (NaN if none)."""
    out = np.empty_like(x)
    last = np.full(x.shape[1], np.nan)
    for t in range(x.shape[0]):
        out[t] = last
        np.copyto(last, x[t], where=has_bar[t])
    return out


def _true_range_into(tr: np.ndarray, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Turn ``tr``, holding the previous bar's close, into the true range (in place)."""
    # fmax/fmin skip a NaN previous close (first bar: high - low); high - low is NaN off bars.
    for t in range(tr.shape[0]):
        prev_close = tr[t]
        spread = np.fmax(high[t], prev_close)
        spread -= np.fmin(low[t], prev_close)
        spread += 0.0 * high[t]  # NaN where there is no bar
        tr[t] = spread
    return tr


def _latest_opens(open_: np.ndarray, has_bar: np.ndarray) -> np.ndarray:
    """Row s: the open of each instrument's latest bar on row s or earlier (NaN before its first)."""
    out = np.empty_like(open_)
    latest = np.full(open_.shape[1], np.nan)
    for t in range(open_.shape[0]):
        np.copyto(latest, open_[t], where=has_bar[t])
        out[t] = latest
    return out


def _performance(
    latest_opens: np.ndarray, has_bar: np.ndarray, close: np.ndarray, day_numbers: np.ndarray, days: int
) -> np.ndarray:
    n_rows, n_cols = close.shape
    first_row = np.where(has_bar.any(axis=0), has_bar.argmax(axis=0), n_rows)
    first_open = latest_opens[np.minimum(first_row, n_rows - 1), np.arange(n_cols)]
    # Bar times are dates at 00:00 and the screen is taken at the close of D, i.e. at D + 1:
    # TradingView's time search lands on the last bar dated on or before D + 1 - days (never
    # the current bar itself), so s is the last row with such a date, and before row t.
    ref_rows = np.searchsorted(day_numbers, day_numbers + 1 - days, side="right") - 1
    ref_rows = np.minimum(ref_rows, np.arange(n_rows) - 1)
    out = np.empty_like(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, s in enumerate(ref_rows):
            ref = first_open.copy() if s < 0 else latest_opens[s].copy()
            # No bar on or before s: the instrument is younger than the window (bb = bar_index).
            np.copyto(ref, first_open, where=np.isnan(ref))
            ref[first_row >= t] = np.nan  # the current bar is the first: bb == 0
            ref[ref == 0] = np.nan  # Pine's division by zero is na
            row = out[t]
            np.subtract(close[t], ref, out=row)
            row *= 100.0
            row /= np.abs(ref)
            row[(ref < 0) & (close[t] > 0)] = np.nan  # rateOfreturn: na from a negative open
    return out


def _recursive(
    prices: dict[str, np.ndarray], wanted: Collection[str], period: int = SCREEN_PERIOD
) -> dict[str, np.ndarray]:
    return _bar_kernels(BarTime(np.isfinite(prices["close"])), prices, wanted, period)


# ---------------------------------------------------------------------------------------------
# Validation at the entry points.
# ---------------------------------------------------------------------------------------------


def _bar_panels(**panels: Any) -> dict[str, np.ndarray]:
    """Validate panels that describe the same bars (the last one is the reference)."""
    arrays = {name: np.ascontiguousarray(x, dtype=np.float64) for name, x in panels.items()}
    ref_name = list(arrays)[-1]
    ref = arrays[ref_name]
    has_bar = np.isfinite(ref)
    for name, arr in arrays.items():
        if arr.ndim != 2:
            raise ValidationError(f"indicator input {name!r} must be a (T, N) array, got shape {arr.shape}")
        if arr.shape != ref.shape:
            raise ValidationError(
                f"indicator input {name!r} has shape {arr.shape}, {ref_name!r} has {ref.shape}"
            )
        if not np.array_equal(np.isfinite(arr), has_bar):
            raise ValidationError(
                f"indicator input {name!r} is missing or non-finite where {ref_name!r} has a bar "
                f"(or the reverse); every price panel must mark the same bars"
            )
    return {name.rstrip("_"): arr for name, arr in arrays.items()}


def _volume_panel(volume: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a volume panel: the prices' shape; NaN allowed (no volume reported)."""
    arr = np.ascontiguousarray(volume, dtype=np.float64)
    if arr.shape != shape:
        raise ValidationError(f"indicator input 'volume' has shape {arr.shape}, the prices have {shape}")
    return arr


def _check_period(name: str, period: int) -> None:
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
        raise ValidationError(f"indicator {name} must be a positive integer, got {period!r}")


def _day_numbers(dates: Any, n_rows: int) -> np.ndarray:
    days = np.asarray(dates, dtype="datetime64[D]")
    if days.shape != (n_rows,):
        raise ValidationError(
            f"dates must be a 1-D array of {n_rows} dates (one per row), got shape {days.shape}"
        )
    numbers = days.astype(np.int64)
    steps = np.diff(numbers)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 1
        raise ValidationError(
            f"dates must be strictly increasing; row {bad} is {days[bad]} after {days[bad - 1]}"
        )
    return numbers


# ---------------------------------------------------------------------------------------------
# Public indicators (calendar panels in, calendar panels out).
# ---------------------------------------------------------------------------------------------


def wilder_rma(x: Any, period: int) -> np.ndarray:
    """Wilder's running moving average (TradingView ``ta.rma``), per instrument.

    Seeded with the simple mean of the instrument's first ``period`` finite values, then
    ``rma = (rma_prev * (period - 1) + x) / period`` (computed as ``alpha * x + (1 - alpha) *
    rma_prev`` with ``alpha = 1/period``, as Pine does) over its finite values only, so NaN
    rows (gaps) carry the state over.

    Parameters
    ----------
    x : array_like, shape (T, N)
        Values, NaN where the instrument has no observation.
    period : int
        Smoothing length (>= 1).

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Same units as ``x``; NaN on rows where ``x`` is NaN and before the seed.

    Raises
    ------
    ValidationError
        If ``x`` is not 2-D or ``period`` is not a positive integer.
    """
    _check_period("period", period)
    values = _bar_panels(x=x)["x"]
    bars = BarTime(np.isfinite(values))
    rma = Smoother(values.shape[1], period, 1.0 / period)
    out = bars.new_output()
    for k in range(bars.n_rows):
        row = rma.step(k, bars.gather(values, k))
        if row is not None:
            bars.scatter(out, k, row)
    return out[:-1]


def true_range(high: Any, low: Any, close: Any) -> np.ndarray:
    """True range: ``max(high, prev_close) - min(low, prev_close)``.

    ``prev_close`` is the close of the instrument's previous *bar* (not the previous calendar
    row); on its first bar the true range is ``high - low``.

    Parameters
    ----------
    high, low, close : array_like, shape (T, N)
        Bar prices, NaN where there is no bar.

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Price units; NaN where there is no bar.
    """
    prices = _bar_panels(high=high, low=low, close=close)
    prev_close = _previous_bar(prices["close"], np.isfinite(prices["close"]))
    return _true_range_into(prev_close, prices["high"], prices["low"])


def adx(
    high: Any, low: Any, close: Any, period: int = SCREEN_PERIOD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's directional movement index: ``(ADX, +DI, -DI)``.

    With ``up = high - prev_high`` and ``down = prev_low - low`` (previous *bar*):
    ``+DM = up if up > down and up > 0 else 0``, ``-DM`` symmetric; ``+DI = 100 * RMA(+DM) /
    RMA(TR)``, ``-DI`` likewise; ``DX = 100 * |+DI - -DI| / (+DI + -DI)`` (0 when the sum is 0);
    ``ADX = RMA(DX)``. The first bar has no previous bar, so DM and TR are smoothed from the
    second bar (as TradingView's DMI, whose ``ta.tr`` is NaN there): DI starts at bar ``period``
    (0-based), ADX at bar ``2 * period - 1``. When ``RMA(TR)`` is 0 (a frozen price) both DI
    are 0.

    Parameters
    ----------
    high, low, close : array_like, shape (T, N)
        Bar prices, NaN where there is no bar.
    period : int, default 14
        Smoothing length of every RMA.

    Returns
    -------
    tuple of numpy.ndarray, each shape (T, N)
        ADX, +DI, -DI in points (0..100); NaN where there is no bar or not yet seeded.
    """
    _check_period("period", period)
    out = _recursive(_bar_panels(high=high, low=low, close=close), _DMI_COLUMNS, period)
    return out["ADX"], out["ADX+DI"], out["ADX-DI"]


def rsi(close: Any, period: int = SCREEN_PERIOD) -> np.ndarray:
    """Wilder's relative strength index (TradingView ``ta.rsi``).

    ``gain = RMA(max(change, 0))``, ``loss = RMA(max(-change, 0))`` over bar-to-bar changes of
    the close (so seeded over bars 1..period); ``RSI = 100 - 100 / (1 + gain / loss)``, 100
    when ``loss`` is 0 and 0 when only ``gain`` is 0.

    Parameters
    ----------
    close : array_like, shape (T, N)
        Closes, NaN where there is no bar.
    period : int, default 14

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Points (0..100); NaN before bar ``period`` and where there is no bar.
    """
    _check_period("period", period)
    return _recursive(_bar_panels(close=close), ["RSI"], period)["RSI"]


def atr(high: Any, low: Any, close: Any, period: int = SCREEN_PERIOD) -> np.ndarray:
    """Average true range: ``RMA(true_range, period)`` (TradingView ``ta.atr``).

    The first bar's true range is ``high - low``, so ATR starts at bar ``period - 1``.

    Parameters
    ----------
    high, low, close : array_like, shape (T, N)
    period : int, default 14

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Price units; NaN before the seed and where there is no bar.
    """
    _check_period("period", period)
    return _recursive(_bar_panels(high=high, low=low, close=close), ["ATR"], period)["ATR"]


def volatility_d(high: Any, low: Any, close: Any) -> np.ndarray:
    """Daily volatility as the screener reports it: ``true_range * 100 / low``.

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Percent (5.2 means 5.2 %); NaN where there is no bar.
    """
    prices = _bar_panels(high=high, low=low, close=close)
    prev_close = _previous_bar(prices["close"], np.isfinite(prices["close"]))
    tr = _true_range_into(prev_close, prices["high"], prices["low"])
    with np.errstate(divide="ignore", invalid="ignore"):
        tr *= 100.0
        tr /= prices["low"]
    return tr


def change(close: Any) -> np.ndarray:
    """Percent change of the close against the previous *bar*'s close.

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Percent; NaN on an instrument's first bar and where there is no bar.
    """
    c = _bar_panels(close=close)["close"]
    prev_close = _previous_bar(c, np.isfinite(c))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (c - prev_close) / prev_close * 100.0


def performance(open_: Any, close: Any, dates: Any, days: int) -> np.ndarray:
    """Performance over ``days`` calendar days, as TradingView's screener computes it.

    TradingView's "How is Performance calculated in the Screener?" (support/solutions/
    43000636536, the Pine v5 script) takes ``ref = open[bb]``, ``bb`` the bar found by a binary
    search of bar times for ``now - days`` (the last bar at or before that time; ``bb`` =
    ``bar_index``, the first bar, when every bar is later), and reports
    ``(close - ref) * 100 / |ref|``, or ``na`` when ``bb == 0`` or ``ref < 0 < close``. Here bar
    times are the dates at 00:00 and the screen of D is taken at its close, D + 1 00:00: the
    reference is the open of the instrument's last bar dated on or before ``D + 1 - days`` -- for
    a market open every day, the first bar of the last ``days`` days -- and never bar D itself.
    An instrument younger than the window is measured from its first bar's open; its first bar
    has no performance. The screener's columns use ``days`` = 7 (Perf.W), 30 (1M), 90 (3M),
    180 (6M) and 365 (Y); see :data:`PERFORMANCE_DAYS`.

    Parameters
    ----------
    open_, close : array_like, shape (T, N)
        Bar prices, NaN where there is no bar.
    dates : array_like of dates, shape (T,)
        The calendar date of each row, strictly increasing (gaps allowed).
    days : int
        Window length in calendar days (>= 1).

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Percent; NaN where there is no bar on D, on an instrument's first bar, where the
        reference open is 0, or where it is negative and the close positive.

    Raises
    ------
    ValidationError
        On shape mismatches, unsorted dates or a non-positive ``days``.
    """
    _check_period("days", days)
    prices = _bar_panels(open_=open_, close=close)
    day_numbers = _day_numbers(dates, prices["close"].shape[0])
    has_bar = np.isfinite(prices["close"])
    latest_opens = _latest_opens(prices["open"], has_bar)
    return _performance(latest_opens, has_bar, prices["close"], day_numbers, int(days))


def technical_ratings(high: Any, low: Any, close: Any, volume: Any) -> dict[str, np.ndarray]:
    """TradingView's technical ratings ``Recommend.All``, ``Recommend.MA`` and ``Recommend.Other``.

    Each of ``Recommend.MA`` (15 moving averages and filters) and ``Recommend.Other`` (11
    oscillators) is the mean of its indicators' votes (+1 buy, -1 sell, 0 neutral) available on
    the bar; ``Recommend.All`` is the mean of the two, or the one available. The indicators and
    the rule of each, with its source, are listed in
    :class:`~quant_assets.sources.screener.ratings.RatingKernel`; all of them run in bar time.

    Parameters
    ----------
    high, low, close : array_like, shape (T, N)
        Bar prices, NaN where there is no bar.
    volume : array_like, shape (T, N)
        Bar volumes (for the VWMA); NaN on a bar means no volume reported, which leaves the
        VWMA out of the MA rating while its 20-bar window holds that bar.

    Returns
    -------
    dict of str to numpy.ndarray
        The three columns, each (T, N) in [-1, 1]; NaN where there is no bar or no vote yet.
    """
    prices = _bar_panels(high=high, low=low, close=close)
    prices["volume"] = _volume_panel(volume, prices["close"].shape)
    return _recursive(prices, RATING_COLUMNS)


def screen_indicators(
    open_: Any, high: Any, low: Any, close: Any, volume: Any, dates: Any
) -> dict[str, np.ndarray]:
    """Every indicator column of the screen, in one pass.

    Parameters
    ----------
    open_, high, low, close : array_like, shape (T, N)
        Bar prices, NaN where there is no bar.
    volume : array_like, shape (T, N)
        Bar volumes, as for :func:`technical_ratings`.
    dates : array_like of dates, shape (T,)
        Calendar date of each row, strictly increasing.

    Returns
    -------
    dict of str to numpy.ndarray
        Keys :data:`INDICATOR_COLUMNS` (``change``, ``Perf.*``, ``Volatility.D``, ``ADX``,
        ``ADX+DI``, ``ADX-DI``, ``RSI`` (14), ``ATR`` (14), ``Recommend.All``, ``Recommend.MA``,
        ``Recommend.Other``), each (T, N), as defined by the single-indicator functions of this
        module.
    """
    prices = _bar_panels(open_=open_, high=high, low=low, close=close)
    prices["volume"] = _volume_panel(volume, prices["close"].shape)
    day_numbers = _day_numbers(dates, prices["close"].shape[0])
    o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
    has_bar = np.isfinite(c)
    out: dict[str, np.ndarray] = {}
    latest_opens = _latest_opens(o, has_bar)
    for column, days in PERFORMANCE_DAYS.items():
        out[column] = _performance(latest_opens, has_bar, c, day_numbers, days)
    del latest_opens
    prev_close = _previous_bar(c, has_bar)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["change"] = (c - prev_close) / prev_close * 100.0
        volatility = _true_range_into(prev_close, h, lo)
        volatility *= 100.0
        volatility /= lo
    out["Volatility.D"] = volatility
    out.update(_recursive(prices, _BAR_TIME_COLUMNS))
    return {column: out[column] for column in INDICATOR_COLUMNS}
