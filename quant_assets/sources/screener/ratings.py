"""TradingView's technical ratings (``Recommend.MA``, ``Recommend.Other``, ``Recommend.All``) in
bar time.

Sources, in the order they decide a rule:

* **lib** -- TradingView's open-source ``TechnicalRating`` Pine library (v3, 2024-11-29,
  ``calcRatingAll()``) with its ``TradingView/ta`` helpers (``stochFull``, ``stochRsi``, ``ao``,
  ``uo``, ``ichimoku``): the indicators, their lengths and sources, every oscillator rule and which
  vote is left out when its ``src`` is ``na``.
* **v1** -- TradingView's original open-source "Technical Ratings" script (v1.0, Pine v4): the
  Ichimoku rule. The library's Ichimoku rule (span A/B 26 bars back, base > span A, conversion >
  base, close > conversion) votes *sell* on the BINANCE:BTCUSDT daily bar of 2025-12-20, where the
  scanner's recorded ``Recommend.MA`` (-10/15) needs a neutral Ichimoku vote; v1's rule is
  neutral there (quant_assets_tests/sources/screener/test_ratings.py).
* **help** -- the "Technical Ratings" help article (support/solutions/43000614331) for what both
  agree on: a rating is the mean of the votes (+1 buy, -1 sell, 0 neutral) of its group.

Each rating is the mean of the votes available on the bar (a vote whose input is not there yet,
or is undefined such as a Stochastic over a window without range, is left out, as ``array.avg``
leaves out ``na``); ``Recommend.All`` is the mean of the two ratings, or the one available. A
comparison with an undefined value is false (Pine), so such a vote is neutral when its ``src``
(the value the library checks for ``na``) is there.

Float rounding is not a price move: an MA, the VWMA or the Awesome Oscillator within :data:`TIE`
(relative) of the close, or of zero, counts as equal to it, and a CCI window whose mean deviation
is that small has no deviation (Pine's division by zero is ``na``). So a flat market votes neutral
(help: "Neutral -- MA value = price") instead of by the last bits of a moving sum.

All state lives in running sums and short ring buffers of bar rows, so one bar costs the same at
any depth of history. Warm-ups are the same bar rows for every column in bar time; values that
can be undefined per column (VWMA without volume, degenerate windows) are counted per column.
"""

from __future__ import annotations

import numpy as np

from quant_assets.sources.screener.bar_time import Smoother, SmootherStack

#: Moving-average lengths of the MA rating (lib): an SMA and an EMA of the close for each.
MA_LENGTHS: tuple[int, ...] = (10, 20, 30, 50, 100, 200)
#: Rating columns, in the order :meth:`RatingKernel.step` returns them.
RATING_COLUMNS: tuple[str, ...] = ("Recommend.All", "Recommend.MA", "Recommend.Other")

_HULL_LENGTH = 9
_VWMA_LENGTH = 20
_CONVERSION, _BASE, _SPAN_B = 9, 26, 52  # Ichimoku lengths
_STOCH_LENGTH, _STOCH_SMOOTH = 14, 3  # Stochastic (14, 3, 3) and Stochastic RSI (3, 3, 14, 14)
_CCI_LENGTH, _CCI_FACTOR = 20, 0.015
_AO_LENGTHS = (5, 34)
_MOMENTUM_LAG = 10
_MACD_LENGTHS = (12, 26, 9)
_POWER_LENGTH = 13  # Bull Bear Power EMA
_TREND_EMA = 50  # lib's priceAvg: up/down trend filter of Stochastic RSI and Bull Bear Power
_UO_LENGTHS = (7, 14, 28)
#: Relative size below which a difference of two price-valued quantities is float rounding
#: (moving sums carry ~1e-16 of their history), not a difference: the MA of a flat market
#: equals its price, and so on.
TIE = 1e-10


class _Recent:
    """The last ``depth`` rows pushed, as contiguous ``(w, N)`` views (oldest row first).

    Each row is stored twice, ``depth`` rows apart, so the last ``w`` rows are always one slice.
    """

    def __init__(self, depth: int, n_cols: int) -> None:
        self._rows = np.full((2 * depth, n_cols), np.nan)
        self._depth = depth
        self._newest = depth - 1  # index of the newest row in the upper copy
        self.count = 0

    def push(self, row: np.ndarray) -> None:
        slot = (self._newest + 1) % self._depth
        self._rows[slot] = row
        self._rows[slot + self._depth] = row
        self._newest = slot + self._depth
        self.count += 1

    def last(self, w: int) -> np.ndarray:
        """The last ``w`` rows (``w <= depth``), oldest first: a view."""
        return self._rows[self._newest + 1 - w : self._newest + 1]

    def ago(self, lag: int) -> np.ndarray:
        """The row pushed ``lag`` bars ago (``0``: the newest)."""
        return self._rows[self._newest - lag]

    def mean(self, w: int) -> np.ndarray:
        """Mean of the last ``w`` rows (NaN if one is NaN, as ``ta.sma`` over an ``na``)."""
        total = np.add.reduce(self.last(w), axis=0)
        total /= w
        return total


class _RollingMax:
    """Max of the last ``n`` rows pushed, for any ``n <= longest`` (a min is the max of ``-x``).

    A doubling table: level ``p`` (1, 2, 4, ...) holds, for each of its last ``p + 1`` rows, the
    max of the ``p`` rows ending there, one operation per level and row; the window of ``n`` rows
    is the max of two overlapping level-``p`` values, ``p`` the largest power of two ``<= n``.
    Values reaching before the first row are NaN. Rows may be stacks (``shape``) of inputs.
    """

    def __init__(self, shape: tuple[int, ...], longest: int) -> None:
        self._powers = [1 << i for i in range(longest.bit_length())]
        self._levels = [np.full((p + 1, *shape), np.nan) for p in self._powers]
        self.count = 0

    def push(self, row: np.ndarray) -> None:
        k = self.count
        self._levels[0][k % 2] = row
        for p, level, shorter in zip(self._powers[1:], self._levels[1:], self._levels):
            half = p >> 1
            np.maximum(shorter[k % (half + 1)], shorter[(k - half) % (half + 1)], out=level[k % (p + 1)])
        self.count += 1

    def window(self, n: int) -> np.ndarray:
        """The max of the last ``n`` rows (needs ``count >= n``; a new array)."""
        k = self.count - 1
        p = 1 << (n.bit_length() - 1)
        level = self._levels[p.bit_length() - 1]
        return np.maximum(level[k % (p + 1)], level[(k - n + p) % (p + 1)])


class _WindowSums:
    """Sums of the last ``n <= longest`` rows pushed, from cumulative sums kept in a ring.

    Rows may be stacks (``shape``) of inputs. For inputs that are finite on every bar: a NaN
    would stay in the cumulative sum.
    """

    def __init__(self, longest: int, shape: tuple[int, ...]) -> None:
        self._depth = longest + 1
        self._totals = np.zeros((self._depth, *shape))  # row j % depth: sum of pushed rows 0..j
        self.count = 0

    def push(self, row: np.ndarray) -> None:
        j = self.count
        if j:
            np.add(self._totals[(j - 1) % self._depth], row, out=self._totals[j % self._depth])
        else:
            self._totals[0] = row
        self.count += 1

    def window(self, n: int) -> np.ndarray:
        """Sum of the last ``n`` pushed rows (needs ``count >= n``; a new array)."""
        newest = self.count - 1
        total = self._totals[newest % self._depth].copy()
        if self.count > n:
            total -= self._totals[(newest - n) % self._depth]
        return total

    def windows(self, lengths: np.ndarray) -> np.ndarray:
        """Sums over each of ``lengths`` (all ``<= count``) as ``(len(lengths), N)``."""
        newest = self.count - 1
        starts = self._totals[(newest - lengths) % self._depth]
        starts[lengths > newest] = 0.0  # a window from row 0: nothing to subtract
        return self._totals[newest % self._depth] - starts


class _Votes:
    """Sum and count of one rating's votes on one bar, per column."""

    def __init__(self, n_cols: int) -> None:
        self.total = np.zeros(n_cols)
        self.count = np.zeros(n_cols)

    def add(self, bull: np.ndarray, bear: np.ndarray, counted: np.ndarray | None = None) -> None:
        """Vote ``+1`` where ``bull``, ``-1`` where ``bear`` (never both), ``0`` elsewhere, on the
        columns where ``counted`` (all if None). ``bull`` and ``bear`` are consumed."""
        if counted is None:
            self.count += 1.0
        else:
            bull &= counted
            bear &= counted
            self.count += counted
        self.total += bull.view(np.int8)
        self.total -= bear.view(np.int8)

    def add_signs(self, diffs: np.ndarray, scale: np.ndarray, always_finite: bool = False) -> None:
        """Vote ``sign(diff)`` for each row of ``diffs`` (``(m, N)``, consumed), ``0`` within
        :data:`TIE` of ``scale``, leaving out NaN ones unless the caller knows there are none."""
        diffs[np.abs(diffs) <= TIE * np.abs(scale)] = 0.0
        if always_finite:
            self.total += np.add.reduce(np.sign(diffs), axis=0)
            self.count += diffs.shape[0]
            return
        finite = np.isfinite(diffs)
        self.total += np.add.reduce(np.sign(np.where(finite, diffs, 0.0)), axis=0)
        self.count += np.add.reduce(finite, axis=0)

    def mean(self) -> np.ndarray:
        """The mean vote; NaN where no vote was counted."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.total / np.where(self.count > 0, self.count, np.nan)


class RatingKernel:
    """The three ratings for ``N`` instruments, fed one bar row at a time.

    Call :meth:`step` for bar rows ``k = 0, 1, 2, ...`` in order, inside
    ``numpy.errstate(divide="ignore", invalid="ignore")`` (degenerate windows divide by zero).

    Indicators (lib unless marked), each voting as its rule says:

    * MA rating: SMA and EMA (SMA-seeded, as ``ta.ema``) of the close over :data:`MA_LENGTHS`,
      Hull MA 9 (``WMA(2 WMA(c, 4) - WMA(c, 9), 3)``) and VWMA 20 (``sum(c v) / sum(v)``; left
      out while its window holds a NaN volume or only zero volumes): buy when the MA is below the
      close, sell when above. Ichimoku (v1): conversion ``mid(9)``, base ``mid(26)``, span A
      ``(conversion + base) / 2``, span B ``mid(52)``, ``mid(n)`` the midpoint of the highest
      high and lowest low of ``n`` bars, all on the current bar; buy when span A > span B,
      span A < close < base and the close crosses above the conversion line (previous close <
      conversion < close); sell when span B > span A, base < close < span B and the close
      crosses below it; voted from bar 51 (span B).
    * Other rating: RSI 14 (buy < 30 and rising, sell > 70 and falling); Stochastic %K (14, 3)
      and %D 3 (buy when both < 20 and %K > %D, sell when both > 80 and %K < %D); CCI 20 of the
      *close* (``ta.cci(close, 20)``, mean absolute deviation; buy < -100 and rising, sell > 100
      and falling); ADX 14 (buy when ADX > 20 and rising and +DI > -DI, sell likewise with
      +DI < -DI); Awesome Oscillator ``SMA(hl2, 5) - SMA(hl2, 34)`` (buy when it crosses over 0
      -- above 0 now, at or below before, as ``ta.crossover`` -- or on a bullish saucer: AO and
      AO[1] > 0, AO > AO[1] < AO[2]; sell mirrored); Momentum 10 (buy rising, sell falling);
      MACD (12, 26, 9) (buy MACD > signal, sell below); Stochastic RSI (RSI 14, stochastic 14,
      %K 3, %D 3) (buy in a downtrend -- close < EMA 50 -- with %K and %D < 20 and %K > %D, sell
      in an uptrend with both > 80 and %K < %D; neutral while %D is not there yet); Williams %R
      14 (buy < -80 and rising, sell > -20 and falling); Bull Bear Power 13 (bull = high - EMA 13,
      bear = low - EMA 13; buy in an uptrend with bear < 0 and rising, sell in a downtrend with
      bull > 0 and falling); Ultimate Oscillator (7, 14, 28) (buy > 70, sell < 30).

    "Rising" compares with the previous bar's value. The RSI and DMI rows come from the caller,
    which computes them for its own columns anyway.
    """

    def __init__(self, n_cols: int) -> None:
        self._n_cols = n_cols
        self._lengths = np.array(MA_LENGTHS)
        self._emas = SmootherStack(n_cols, MA_LENGTHS, [2.0 / (n + 1) for n in MA_LENGTHS])
        self._trend_row = MA_LENGTHS.index(_TREND_EMA)
        fast, slow, signal = _MACD_LENGTHS
        self._macd_fast = Smoother(n_cols, fast, 2.0 / (fast + 1))
        self._macd_slow = Smoother(n_cols, slow, 2.0 / (slow + 1))
        self._macd_signal = Smoother(n_cols, signal, 2.0 / (signal + 1), lead=self._macd_slow.first)
        self._power_ema = Smoother(n_cols, _POWER_LENGTH, 2.0 / (_POWER_LENGTH + 1))
        self._close_sums = _WindowSums(max(MA_LENGTHS), (n_cols,))
        self._hl2_sums = _WindowSums(_AO_LENGTHS[-1], (n_cols,))
        # VWMA: c * v and v with a missing volume as 0, and the number of missing volumes.
        self._volume_sums = _WindowSums(_VWMA_LENGTH, (3, n_cols))
        self._uo_sums = _WindowSums(_UO_LENGTHS[-1], (2, n_cols))  # buying pressure, true range
        self._uo_lengths = np.array(_UO_LENGTHS)
        self._closes = _Recent(max(_CCI_LENGTH, _MOMENTUM_LAG + 1, _HULL_LENGTH), n_cols)
        self._range = _RollingMax((2, n_cols), _SPAN_B)  # high, -low
        self._rsi_range = _RollingMax((2, n_cols), _STOCH_LENGTH)  # rsi, -rsi
        self._hull_inner = _Recent(3, n_cols)
        self._stoch, self._stoch_k = _Recent(_STOCH_SMOOTH, n_cols), _Recent(_STOCH_SMOOTH, n_cols)
        self._stoch_rsi, self._stoch_rsi_k = _Recent(_STOCH_SMOOTH, n_cols), _Recent(_STOCH_SMOOTH, n_cols)
        self._wma_weights = {n: np.arange(1.0, n + 1) / (n * (n + 1) / 2) for n in (3, 4, _HULL_LENGTH)}
        nan = np.full(n_cols, np.nan)
        # The previous bar's value of each series a rule compares with its last value.
        self._prev = dict.fromkeys(("rsi", "stoch_d", "cci", "adx", "ao", "ao2", "mom", "wpr", "bull", "bear"), nan)

    def step(
        self,
        k: int,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        rsi: np.ndarray | None,
        dmi: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feed bar row ``k``; ``(Recommend.All, Recommend.MA, Recommend.Other)`` rows.

        ``rsi`` is the 14-bar RSI row and ``dmi`` the 14-bar ``(ADX, +DI, -DI)`` rows of bar ``k``
        (None before they start). A NaN volume means none reported. A rating is NaN where none
        of its votes is available yet.
        """
        prev_close = self._closes.ago(0).copy() if k else None
        self._closes.push(close)
        self._range.push(np.stack((high, -low)))
        self._close_sums.push(close)
        self._hl2_sums.push((high + low) * 0.5)
        no_volume = ~np.isfinite(volume)
        traded = np.where(no_volume, 0.0, volume)
        self._volume_sums.push(np.stack((close * traded, traded, no_volume)))
        if prev_close is not None:  # the Ultimate Oscillator's true range needs a previous close
            low_or_close = np.minimum(low, prev_close)
            self._uo_sums.push(np.stack((close - low_or_close, np.maximum(high, prev_close) - low_or_close)))

        ma, other = _Votes(self._n_cols), _Votes(self._n_cols)
        emas = self._emas.step(k, close)
        smas = None
        if len(emas):
            lengths = self._lengths[: len(emas)]
            smas = self._close_sums.windows(lengths) / lengths[:, None]
            ma.add_signs(close - smas, close, always_finite=True)
            ma.add_signs(close - emas, close, always_finite=True)
        self._vote_hull_vwma_ichimoku(k, close, prev_close, ma)
        trend = emas[self._trend_row] if len(emas) > self._trend_row else None
        self._vote_rsi_stochastics(k, close, rsi, trend, other)
        self._vote_momenta(k, high, low, close, smas, trend, dmi, other)
        if self._uo_sums.count >= _UO_LENGTHS[-1]:
            sums = self._uo_sums.windows(self._uo_lengths)
            ratios = sums[:, 0] / sums[:, 1]  # buying pressure / true range over 7, 14, 28
            uo = (4.0 * ratios[0] + 2.0 * ratios[1] + ratios[2]) * (100.0 / 7.0)
            other.add(uo > 70, uo < 30, np.isfinite(uo))

        ma_rating, other_rating = ma.mean(), other.mean()
        total = np.where(np.isnan(ma_rating), other_rating,
                         np.where(np.isnan(other_rating), ma_rating, (ma_rating + other_rating) * 0.5))
        return total, ma_rating, other_rating

    def _midpoint(self, n: int) -> np.ndarray:
        """Midpoint of the highest high and the lowest low of the last ``n`` bars."""
        highest, neg_lowest = self._range.window(n)
        highest -= neg_lowest
        highest *= 0.5
        return highest

    def _vote_hull_vwma_ichimoku(
        self, k: int, close: np.ndarray, prev_close: np.ndarray | None, ma: _Votes
    ) -> None:
        weights = self._wma_weights
        if k >= _HULL_LENGTH - 1:
            inner = weights[4] @ self._closes.last(4)
            inner *= 2.0
            inner -= weights[_HULL_LENGTH] @ self._closes.last(_HULL_LENGTH)
            self._hull_inner.push(inner)
        if self._hull_inner.count >= 3:
            ma.add_signs((close - weights[3] @ self._hull_inner.last(3))[None, :], close, always_finite=True)
        if k >= _VWMA_LENGTH - 1:
            traded_value, traded, missing = self._volume_sums.window(_VWMA_LENGTH)
            vwma = traded_value / traded
            vwma[missing > 0] = np.nan
            ma.add_signs((close - vwma)[None, :], close)
        if k >= _SPAN_B - 1:
            conversion, base, span_b = (self._midpoint(n) for n in (_CONVERSION, _BASE, _SPAN_B))
            span_a = (conversion + base) * 0.5
            bull = (span_a > span_b) & (close > span_a) & (close < base)
            bull &= (prev_close < conversion) & (close > conversion)
            bear = (span_b > span_a) & (close < span_b) & (close > base)
            bear &= (prev_close > conversion) & (close < conversion)
            ma.add(bull, bear)

    def _vote_rsi_stochastics(
        self, k: int, close: np.ndarray, rsi: np.ndarray | None, trend: np.ndarray | None, other: _Votes
    ) -> None:
        """RSI, Stochastic, Williams %R and Stochastic RSI."""
        prev = self._prev
        if rsi is not None:
            other.add((rsi < 30) & (rsi > prev["rsi"]), (rsi > 70) & (rsi < prev["rsi"]), np.isfinite(prev["rsi"]))
            prev["rsi"] = rsi
            self._rsi_range.push(np.stack((rsi, -rsi)))
            if self._rsi_range.count >= _STOCH_LENGTH:
                highest, neg_lowest = self._rsi_range.window(_STOCH_LENGTH)
                self._stoch_rsi.push(100.0 * (rsi + neg_lowest) / (highest + neg_lowest))
                if self._stoch_rsi.count >= _STOCH_SMOOTH:
                    self._stoch_rsi_k.push(self._stoch_rsi.mean(_STOCH_SMOOTH))
        if k >= _STOCH_LENGTH - 1:
            highest, neg_lowest = self._range.window(_STOCH_LENGTH)
            lowest = -neg_lowest
            value_range = highest - lowest
            self._stoch.push(100.0 * (close - lowest) / value_range)
            if self._stoch.count >= _STOCH_SMOOTH:
                self._stoch_k.push(self._stoch.mean(_STOCH_SMOOTH))
            if self._stoch_k.count >= _STOCH_SMOOTH:
                k_line, d_line = self._stoch_k.ago(0), self._stoch_k.mean(_STOCH_SMOOTH)
                other.add((k_line < 20) & (d_line < 20) & (k_line > d_line),
                          (k_line > 80) & (d_line > 80) & (k_line < d_line), np.isfinite(prev["stoch_d"]))
                prev["stoch_d"] = d_line
            wpr = 100.0 * (close - highest) / value_range
            other.add((wpr < -80) & (wpr > prev["wpr"]), (wpr > -20) & (wpr < prev["wpr"]), np.isfinite(prev["wpr"]))
            prev["wpr"] = wpr
        if trend is not None:
            # Voted from the trend EMA on (lib's src); neutral until the Stochastic RSI's %D starts.
            if self._stoch_rsi_k.count >= _STOCH_SMOOTH:
                k_line, d_line = self._stoch_rsi_k.ago(0), self._stoch_rsi_k.mean(_STOCH_SMOOTH)
                other.add((close < trend) & (k_line < 20) & (d_line < 20) & (k_line > d_line),
                          (close > trend) & (k_line > 80) & (d_line > 80) & (k_line < d_line))
            else:
                other.count += 1.0  # a neutral vote

    def _vote_momenta(
        self,
        k: int,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        smas: np.ndarray | None,
        trend: np.ndarray | None,
        dmi: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        other: _Votes,
    ) -> None:
        """CCI, ADX, Awesome Oscillator, Momentum, MACD and Bull Bear Power."""
        prev = self._prev
        if k >= _CCI_LENGTH - 1:
            mean = smas[MA_LENGTHS.index(_CCI_LENGTH)]
            deviation = self._closes.last(_CCI_LENGTH) - mean
            np.abs(deviation, out=deviation)
            deviation = np.add.reduce(deviation, axis=0)
            deviation /= _CCI_LENGTH
            deviation[deviation <= TIE * np.abs(mean)] = np.nan  # a flat window: Pine's x / 0 is na
            cci = (close - mean) / (_CCI_FACTOR * deviation)
            other.add((cci < -100) & (cci > prev["cci"]), (cci > 100) & (cci < prev["cci"]), np.isfinite(prev["cci"]))
            prev["cci"] = cci
        if dmi is not None:
            adx, plus_di, minus_di = dmi
            strong = (adx > 20) & (adx > prev["adx"])
            other.add(strong & (plus_di > minus_di), strong & (plus_di < minus_di))
            prev["adx"] = adx.copy()  # the caller's ADX row is its smoother's state
        fast_n, slow_n = _AO_LENGTHS
        if self._hl2_sums.count >= slow_n:
            ao = self._hl2_sums.window(fast_n) / fast_n - self._hl2_sums.window(slow_n) / slow_n
            ao[np.abs(ao) <= TIE * np.abs(high + low)] = 0.0
            ao1, ao2 = prev["ao"], prev["ao2"]
            bull = ((ao > 0) & (ao1 <= 0)) | ((ao > 0) & (ao1 > 0) & (ao > ao1) & (ao2 > ao1))
            bear = ((ao < 0) & (ao1 >= 0)) | ((ao < 0) & (ao1 < 0) & (ao < ao1) & (ao2 < ao1))
            other.add(bull, bear, np.isfinite(ao1))
            prev["ao"], prev["ao2"] = ao, ao1
        if k >= _MOMENTUM_LAG:
            mom = close - self._closes.ago(_MOMENTUM_LAG)
            other.add(mom > prev["mom"], mom < prev["mom"], np.isfinite(prev["mom"]))
            prev["mom"] = mom
        fast, slow = self._macd_fast.step(k, close), self._macd_slow.step(k, close)
        if slow is not None:
            macd = fast - slow
            signal = self._macd_signal.step(k, macd)
            if signal is not None:
                other.add(macd > signal, macd < signal)
        power_ema = self._power_ema.step(k, close)
        if power_ema is not None:
            bull, bear = high - power_ema, low - power_ema
            if trend is not None:
                other.add((close > trend) & (bear < 0) & (bear > prev["bear"]),
                          (close < trend) & (bull > 0) & (bull < prev["bull"]))
            prev["bull"], prev["bear"] = bull, bear
