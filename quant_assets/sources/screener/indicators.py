"""The screener's indicator columns, computed from daily bars on (T, N) panels.

Every function takes panels of shape ``(T, N)``: ``T`` calendar days (rows, oldest first) by
``N`` instruments (columns), ``NaN`` where an instrument has no bar that day (a weekend for a
stock, before its listing, after its delisting). An instrument has a bar on a row where its
close is finite; ``open``/``high``/``low``/``close`` passed together must agree on that.

Recursions (Wilder's RMA, EMAs, moving sums) run in *bar time*
(:mod:`~quant_assets.sources.screener.bar_time`): a loop over each instrument's own bars that
carries its state across weekends and other gaps, one row of ``N`` values at a time, which keeps
what it touches in cache (every column of the screen for T = 1100, N = 10,000 takes a few
seconds). Previous-bar and calendar-window quantities
(change, true range, performance) are computed on calendar rows directly. Every value at
row ``t`` depends only on rows ``<= t`` (causal), which lets a daily partition use these
columns without seeing the future.

Definitions follow the TradingView screener (DESIGN.md §3); where TradingView's exact rule is
not public, the docstring says what is computed instead.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from quant_assets.errors import ValidationError
from quant_assets.sources.screener.bar_time import BarTime, Smoother, SmootherStack

#: Calendar-day look-back of each performance column: Perf.X compares today's close with the
#: open of the first bar dated after ``D - days``.
PERFORMANCE_DAYS: dict[str, int] = {
    "Perf.W": 7,
    "Perf.1M": 30,
    "Perf.3M": 91,
    "Perf.6M": 182,
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
    "Recommend.All",
)

#: Period of the screener's ADX, DI, RSI and ATR columns.
SCREEN_PERIOD = 14

#: Moving-average lengths voted on by :func:`recommend_all` (TradingView's MA rating uses these).
RECOMMEND_MA_LENGTHS: tuple[int, ...] = (10, 20, 30, 50, 100, 200)

_MOMENTUM_LAG = 10
_SUM_RING = 256  # rows of running sums kept: more than the longest SMA
_DMI_COLUMNS = ("ADX", "ADX+DI", "ADX-DI")
_BAR_TIME_COLUMNS = frozenset({*_DMI_COLUMNS, "RSI", "ATR", "Recommend.All"})


def _bar_kernels(
    bars: BarTime,
    prices: dict[str, np.ndarray],
    wanted: Collection[str],
    period: int = SCREEN_PERIOD,
) -> dict[str, np.ndarray]:
    """The recursive indicators, one walk over the bar rows.

    ``wanted`` is a subset of ADX, ADX+DI, ADX-DI, RSI, ATR and Recommend.All (the last always
    with the 14-bar RSI and DMI); ``prices`` holds the calendar ``close`` and, for all but RSI,
    ``high`` and ``low``. Returns calendar panels (T, N), NaN before warm-up and off bars.
    """
    n_cols = bars.shape[1]
    outputs = {name: bars.new_output() for name in wanted}
    want_rec = "Recommend.All" in wanted
    want_dmi = want_rec or any(name in wanted for name in _DMI_COLUMNS)
    want_rsi = want_rec or "RSI" in wanted
    want_range = want_dmi or "ATR" in wanted
    alpha = 1.0 / period
    # DM and the DMI's true range need a previous bar: they start at bar 1 (lead=1).
    tr_rma, plus_rma, minus_rma = (Smoother(n_cols, period, alpha, lead=1) for _ in range(3))
    dx_rma = Smoother(n_cols, period, alpha, lead=period)
    gain_rma, loss_rma = Smoother(n_cols, period, alpha, lead=1), Smoother(n_cols, period, alpha, lead=1)
    atr_rma = Smoother(n_cols, period, alpha)
    ma_lengths = np.array(RECOMMEND_MA_LENGTHS)
    emas = SmootherStack(n_cols, RECOMMEND_MA_LENGTHS, [2.0 / (n + 1) for n in RECOMMEND_MA_LENGTHS])
    macd_fast, macd_slow = Smoother(n_cols, 12, 2.0 / 13), Smoother(n_cols, 26, 2.0 / 27)
    macd_signal = Smoother(n_cols, 9, 2.0 / 10, lead=macd_slow.first)
    sums = np.zeros((_SUM_RING, n_cols))  # row k % 256: sum of the closes of bars 0..k
    recent_closes: list[np.ndarray] = []  # closes of the last _MOMENTUM_LAG + 1 bars
    adx_row = plus_di = minus_di = rsi_row = prev_rsi = None
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
                    prev_rsi = rsi_row
                    rsi_row = 100.0 - 100.0 / (1.0 + gain / loss)
                    # ta.rsi: 100 when there were no losses (checked first), 0 when no gains.
                    rsi_row[gain == 0] = 0.0
                    rsi_row[loss == 0] = 100.0
                    emit("RSI", k, rsi_row)
            if want_rec:
                running = sums[(k - 1) % _SUM_RING] + close if k else close.copy()
                sums[k % _SUM_RING] = running
                recent_closes.append(close)
                if len(recent_closes) > _MOMENTUM_LAG + 1:
                    recent_closes.pop(0)
                # Warm-ups are the same rows for every column in bar time, so a rating is a sum
                # of votes over one vote count per row.
                ema_rows = emas.step(k, close)
                lengths = ma_lengths[: len(ema_rows)]
                window_start_sums = sums[(k - lengths) % _SUM_RING]
                window_start_sums[lengths > k] = 0.0  # a window from bar 0: nothing to subtract
                sma_rows = running - window_start_sums
                sma_rows /= lengths[:, None]
                ma_total = np.sign(close - sma_rows).sum(axis=0) + np.sign(close - ema_rows).sum(axis=0)
                ma_votes = 2 * len(ema_rows)
                osc_total = np.zeros(n_cols)
                osc_votes = 0
                if prev_rsi is not None:
                    osc_total += (rsi_row < 30) & (rsi_row > prev_rsi)
                    osc_total -= (rsi_row > 70) & (rsi_row < prev_rsi)
                    osc_votes += 1
                if adx_row is not None:
                    osc_total += np.where(adx_row > 20, np.sign(plus_di - minus_di), 0.0)
                    osc_votes += 1
                if k >= _MOMENTUM_LAG:
                    osc_total += np.sign(close - recent_closes[0])
                    osc_votes += 1
                fast, slow = macd_fast.step(k, close), macd_slow.step(k, close)
                if slow is not None:
                    macd = fast - slow
                    signal = macd_signal.step(k, macd)
                    if signal is not None:
                        osc_total += np.sign(macd - signal)
                        osc_votes += 1
                if ma_votes and osc_votes:
                    emit("Recommend.All", k, (ma_total / ma_votes + osc_total / osc_votes) / 2.0)
                elif ma_votes:
                    emit("Recommend.All", k, ma_total / ma_votes)
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


def _window_start_opens(open_: np.ndarray, has_bar: np.ndarray) -> np.ndarray:
    """Row s: the open of each instrument's first bar on row s or later.

    NaN where the instrument has no bar before row s (a window starting at s would reach
    back before its data) or none from s on.
    """
    n_rows, n_cols = open_.shape
    first_bar_row = np.where(has_bar.any(axis=0), has_bar.argmax(axis=0), n_rows)
    out = np.empty_like(open_)
    upcoming = np.full(n_cols, np.nan)
    for t in range(n_rows - 1, -1, -1):
        np.copyto(upcoming, open_[t], where=has_bar[t])
        row = out[t]
        row[:] = upcoming
        row[first_bar_row >= t] = np.nan
    return out


def _performance(
    start_opens: np.ndarray, close: np.ndarray, day_numbers: np.ndarray, days: int
) -> np.ndarray:
    # Row s0(t) is the first row dated after D - days, so start_opens[s0(t)] is the open of S
    # whenever the instrument has a bar on row t: S is then on or before row t, so this
    # look-ahead never reaches past t.
    starts = np.searchsorted(day_numbers, day_numbers - days, side="right")
    out = np.empty_like(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, s0 in enumerate(starts):  # s0 <= t since D - days is before D
            start_open = start_opens[s0]
            row = out[t]
            np.subtract(close[t], start_open, out=row)
            row /= np.abs(start_open)
            row *= 100.0
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
    """Performance over a calendar window: ``(close_D - open_S) / |open_S| * 100``.

    ``S`` is the instrument's earliest bar dated after ``D - days``, so the window is the last
    ``days`` calendar days, D included. The screener's columns use ``days`` = 7 (Perf.W),
    30 (1M), 91 (3M), 182 (6M) and 365 (Y); see :data:`PERFORMANCE_DAYS`. The value is NaN
    when the instrument has no bar dated on or before ``D - days``: an instrument listed (or
    with data) for less than ``days`` has no Perf over that window, rather than a shorter
    window passed off as a full one.

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
        Percent; NaN where there is no bar on D or no bar old enough.

    Raises
    ------
    ValidationError
        On shape mismatches, unsorted dates or a non-positive ``days``.
    """
    _check_period("days", days)
    prices = _bar_panels(open_=open_, close=close)
    day_numbers = _day_numbers(dates, prices["close"].shape[0])
    start_opens = _window_start_opens(prices["open"], np.isfinite(prices["close"]))
    return _performance(start_opens, prices["close"], day_numbers, int(days))


def recommend_all(high: Any, low: Any, close: Any) -> np.ndarray:
    """An approximation of TradingView's ``Recommend.All`` technical rating, in [-1, 1].

    The mean of two ratings, each the mean of the votes (+1 buy, -1 sell, 0 neutral) that are
    available on that bar (a rating with no vote yet is left out):

    * moving averages: ``sign(close - MA)`` for the SMA and the EMA (SMA-seeded) of 10, 20, 30,
      50, 100 and 200 bars (TradingView also votes Ichimoku, VWMA and Hull MA; not here);
    * oscillators: RSI(14) below 30 and rising = buy, above 70 and falling = sell; ADX(14)
      above 20 votes ``sign(+DI - -DI)``; momentum ``sign(close - close 10 bars ago)``;
      MACD(12, 26) against its 9-bar signal line ``sign(MACD - signal)`` (TradingView also
      votes stochastics, CCI, Williams %R, Ultimate, awesome and bull/bear power; not here).

    Parameters
    ----------
    high, low, close : array_like, shape (T, N)

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Rating in [-1, 1]; NaN where there is no bar or no vote is available yet.
    """
    return _recursive(_bar_panels(high=high, low=low, close=close), ["Recommend.All"])["Recommend.All"]


def screen_indicators(open_: Any, high: Any, low: Any, close: Any, dates: Any) -> dict[str, np.ndarray]:
    """Every indicator column of the screen, in one pass.

    Parameters
    ----------
    open_, high, low, close : array_like, shape (T, N)
        Bar prices, NaN where there is no bar.
    dates : array_like of dates, shape (T,)
        Calendar date of each row, strictly increasing.

    Returns
    -------
    dict of str to numpy.ndarray
        Keys :data:`INDICATOR_COLUMNS` (``change``, ``Perf.*``, ``Volatility.D``, ``ADX``,
        ``ADX+DI``, ``ADX-DI``, ``RSI`` (14), ``ATR`` (14), ``Recommend.All``), each (T, N),
        as defined by the single-indicator functions of this module.
    """
    prices = _bar_panels(open_=open_, high=high, low=low, close=close)
    day_numbers = _day_numbers(dates, prices["close"].shape[0])
    o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
    has_bar = np.isfinite(c)
    out: dict[str, np.ndarray] = {}
    start_opens = _window_start_opens(o, has_bar)
    for column, days in PERFORMANCE_DAYS.items():
        out[column] = _performance(start_opens, c, day_numbers, days)
    del start_opens
    prev_close = _previous_bar(c, has_bar)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["change"] = (c - prev_close) / prev_close * 100.0
        volatility = _true_range_into(prev_close, h, lo)
        volatility *= 100.0
        volatility /= lo
    out["Volatility.D"] = volatility
    out.update(_recursive(prices, _BAR_TIME_COLUMNS))
    return {column: out[column] for column in INDICATOR_COLUMNS}
