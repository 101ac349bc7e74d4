"""Screener indicators against plain-Python references, hand-worked values and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_assets.errors import ValidationError
from quant_assets.sources.screener import indicators as ind

NAN = math.nan


# ---------------------------------------------------------------------------------------------
# Plain-Python references: one instrument, its bars as lists (no gaps), loops as in Pine.
# ---------------------------------------------------------------------------------------------


def ref_smoothed(values: list[float], period: int, alpha: float) -> list[float]:
    """An exponential average seeded with the SMA of the first ``period`` values, where NaN
    means "not available yet" (only a leading run)."""
    out, window, state = [], [], None
    for x in values:
        if math.isnan(x):
            out.append(NAN)
            continue
        if state is None:
            window.append(x)
            if len(window) == period:
                state = sum(window) / period
        else:
            state = alpha * x + (1 - alpha) * state
        out.append(NAN if state is None else state)
    return out


def ref_rma(values: list[float], period: int) -> list[float]:
    """ta.rma: alpha = 1 / period."""
    return ref_smoothed(values, period, 1.0 / period)


def ref_ema(values: list[float], period: int) -> list[float]:
    """ta.ema: alpha = 2 / (period + 1)."""
    return ref_smoothed(values, period, 2.0 / (period + 1))


def ref_true_range(h: list[float], lo: list[float], c: list[float], first_bar_range: bool) -> list[float]:
    out = []
    for i in range(len(c)):
        if i == 0:
            out.append(h[0] - lo[0] if first_bar_range else NAN)
        else:
            out.append(max(h[i], c[i - 1]) - min(lo[i], c[i - 1]))
    return out


def ref_dmi(h: list[float], lo: list[float], c: list[float], period: int) -> tuple[list, list, list]:
    plus_dm, minus_dm = [NAN], [NAN]
    for i in range(1, len(c)):
        up, down = h[i] - h[i - 1], lo[i - 1] - lo[i]
        plus_dm.append(up if up > down and up > 0 else 0.0)
        minus_dm.append(down if down > up and down > 0 else 0.0)
    tr = ref_rma(ref_true_range(h, lo, c, first_bar_range=False), period)
    plus_s, minus_s = ref_rma(plus_dm, period), ref_rma(minus_dm, period)
    plus_di, minus_di, dx = [], [], []
    for t, p, m in zip(tr, plus_s, minus_s):
        if math.isnan(t):
            plus_di.append(NAN), minus_di.append(NAN), dx.append(NAN)
            continue
        pdi, mdi = (100 * p / t, 100 * m / t) if t > 0 else (0.0, 0.0)
        plus_di.append(pdi)
        minus_di.append(mdi)
        dx.append(100 * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi > 0 else 0.0)
    return ref_rma(dx, period), plus_di, minus_di


def ref_rsi(c: list[float], period: int) -> list[float]:
    diffs = [NAN] + [c[i] - c[i - 1] for i in range(1, len(c))]
    gain = ref_rma([NAN if math.isnan(d) else max(d, 0.0) for d in diffs], period)
    loss = ref_rma([NAN if math.isnan(d) else max(-d, 0.0) for d in diffs], period)
    out = []
    for g, lo in zip(gain, loss):
        if math.isnan(g):
            out.append(NAN)
        elif lo == 0:
            out.append(100.0)
        elif g == 0:
            out.append(0.0)
        else:
            out.append(100 - 100 / (1 + g / lo))
    return out


# ---------------------------------------------------------------------------------------------
# Fixtures: random OHLC panels with weekends, late listings and early delistings.
# ---------------------------------------------------------------------------------------------


def random_panel(n_rows: int = 320, n_cols: int = 6, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_rows, n_cols)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, (n_rows, n_cols)))
    high = np.maximum(open_, close) * np.exp(rng.exponential(0.01, (n_rows, n_cols)))
    low = np.minimum(open_, close) * np.exp(-rng.exponential(0.01, (n_rows, n_cols)))
    dates = np.datetime64("2021-01-01") + np.arange(n_rows)
    has_bar = np.ones((n_rows, n_cols), dtype=bool)
    weekday = (dates.astype(np.int64) + 3) % 7 < 5
    has_bar[:, 1] &= weekday  # a stock
    has_bar[:, 2] &= weekday & (np.arange(n_rows) >= 40)  # listed later
    has_bar[:, 3] &= np.arange(n_rows) < 250  # delisted
    has_bar[:, 4] &= rng.random(n_rows) < 0.6  # ragged gaps
    has_bar[:, 5] &= np.arange(n_rows) >= n_rows - 5  # too young for any indicator
    volume = rng.lognormal(8, 1, (n_rows, n_cols))
    panel = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for values in panel.values():
        values[~has_bar] = np.nan
    return {**panel, "dates": dates, "has_bar": has_bar}


def bars_of(x: np.ndarray, has_bar: np.ndarray, col: int) -> list[float]:
    return [float(v) for v in x[has_bar[:, col], col]]


def assert_matches_reference(
    actual: np.ndarray, has_bar: np.ndarray, col: int, expected: list[float]
) -> None:
    np.testing.assert_allclose(actual[has_bar[:, col], col], expected, rtol=1e-10, atol=1e-10, equal_nan=True)
    assert np.isnan(actual[~has_bar[:, col], col]).all(), "rows without a bar must be NaN"


# ---------------------------------------------------------------------------------------------
# Hand-worked values.
# ---------------------------------------------------------------------------------------------

# Five bars; with period 2: +DM = [-, 1, 1, 0, 1.5], -DM = [-, 0, 0, 0.5, 0], TR = [-, 2, 2, 2, 3].
HAND_HIGH = [10.0, 11.0, 12.0, 11.5, 13.0]
HAND_LOW = [8.0, 9.0, 10.0, 9.5, 11.0]
HAND_CLOSE = [9.0, 10.5, 11.0, 10.0, 12.5]


def test_adx_hand_worked_period_2_over_a_gap() -> None:
    # Bars on calendar rows 0, 1, 4, 5, 6: the gap (rows 2-3) must not reset the state.
    rows = [0, 1, 4, 5, 6]
    high, low, close = (np.full((7, 1), np.nan) for _ in range(3))
    high[rows, 0], low[rows, 0], close[rows, 0] = HAND_HIGH, HAND_LOW, HAND_CLOSE
    adx_, plus_di, minus_di = ind.adx(high, low, close, period=2)
    # RMA seeds at bar 2 (mean of bars 1-2): TR 2, +DM 1, -DM 0 -> +DI 50, -DI 0, DX 100.
    # Bar 3: TR 2, +DM 0.5, -DM 0.25 -> +DI 25, -DI 12.5, DX 100/3; ADX seeds at (100 + 100/3)/2.
    # Bar 4: TR 2.5, +DM 1, -DM 0.125 -> +DI 40, -DI 5, DX 700/9; ADX = (200/3 + 700/9)/2 = 650/9.
    np.testing.assert_allclose(plus_di[[4, 5, 6], 0], [50.0, 25.0, 40.0])
    np.testing.assert_allclose(minus_di[[4, 5, 6], 0], [0.0, 12.5, 5.0])
    np.testing.assert_allclose(adx_[[5, 6], 0], [200.0 / 3.0, 650.0 / 9.0])
    assert np.isnan(adx_[[0, 1, 2, 3, 4], 0]).all()
    assert np.isnan(plus_di[[0, 1, 2, 3], 0]).all()


def test_wilder_rma_seeds_with_the_sma_of_the_first_period_values() -> None:
    x = np.array([[NAN], [1.0], [2.0], [NAN], [3.0], [4.0], [NAN]])
    out = ind.wilder_rma(x, 3)
    np.testing.assert_allclose(out[:, 0], [NAN, NAN, NAN, NAN, 2.0, (2.0 * 2 + 4.0) / 3, NAN], equal_nan=True)


def test_true_range_uses_previous_bar_close_and_high_minus_low_on_first_bar() -> None:
    high = np.array([[10.0], [NAN], [NAN], [12.0]])
    low = np.array([[8.0], [NAN], [NAN], [11.0]])
    close = np.array([[9.0], [NAN], [NAN], [11.5]])
    tr = ind.true_range(high, low, close)
    # Row 3: previous bar close is row 0's 9.0 (not the NaN calendar row 2): 12 - 9 = 3.
    np.testing.assert_allclose(tr[:, 0], [2.0, NAN, NAN, 3.0], equal_nan=True)
    volatility = ind.volatility_d(high, low, close)[:, 0]
    np.testing.assert_allclose(volatility, [25.0, NAN, NAN, 300.0 / 11.0], equal_nan=True)
    np.testing.assert_allclose(ind.change(close)[:, 0], [NAN, NAN, NAN, 2.5 / 9.0 * 100], equal_nan=True)


def ref_performance(days_of_bars: list[int], opens: list[float], closes: list[float], days: int) -> list[float]:
    """TradingView's Pine v5 "Screener Performance" script (support/solutions/43000636536), bar by
    bar: ``fastSearchTimeIndex(timenow - days, days)`` with bar times the dates at 00:00 and
    ``timenow`` the close of the bar's day, then ``rr`` and ``rateOfreturn``."""
    out = []
    for bar_index, day in enumerate(days_of_bars):
        x = day + 1 - days

        def time(offset: int) -> int:
            return days_of_bars[bar_index - offset]

        mid, left, right = 0, 0, min(bar_index, days)
        if time(0) >= x:
            for _ in range(10):
                mid = math.ceil((left + right) / 2)
                if left == right:
                    break
                if time(mid) < x:
                    right = mid
                elif time(mid) > x:
                    left = mid
                else:
                    break
        ref = opens[bar_index - mid]
        if mid == 0 or (ref < 0 and closes[bar_index] > 0) or ref == 0:
            out.append(NAN)
        else:
            out.append((closes[bar_index] - ref) * 100 / abs(ref))
    return out


@pytest.mark.parametrize("col", range(6))
def test_performance_matches_tradingviews_script(col: int) -> None:
    p = random_panel()
    has_bar = p["has_bar"][:, col]
    day_numbers = [int(d) for d in p["dates"][has_bar].astype(np.int64)]
    opens, closes = bars_of(p["open"], p["has_bar"], col), bars_of(p["close"], p["has_bar"], col)
    for days in (*ind.PERFORMANCE_DAYS.values(), 1, 3):
        expected = ref_performance(day_numbers, opens, closes, days)
        assert_matches_reference(ind.performance(p["open"], p["close"], p["dates"], days), p["has_bar"], col, expected)


def test_performance_windows_are_tradingviews() -> None:
    assert ind.PERFORMANCE_DAYS == {"Perf.W": 7, "Perf.1M": 30, "Perf.3M": 90, "Perf.6M": 180, "Perf.Y": 365}


def test_performance_with_gaps_and_young_listings() -> None:
    dates = np.datetime64("2024-03-01") + np.arange(10)
    open_ = np.full((10, 2), np.nan)
    close = np.full((10, 2), np.nan)
    bar_rows = [0, 1, 2, 5, 6, 9]
    open_[bar_rows, 0] = [10.0, 11.0, 12.0, 15.0, 16.0, 19.0]
    close[bar_rows, 0] = [10.5, 11.5, 12.5, 15.5, 16.5, 19.5]
    open_[4:, 1] = 100.0  # listed on row 4
    close[4:, 1] = 110.0
    perf = ind.performance(open_, close, dates, days=3)
    # The screen of D is taken at D + 1 00:00; the reference is the open of the last bar dated on
    # or before D + 1 - 3 = D - 2.
    assert perf[9, 0] == pytest.approx((19.5 - 16.0) / 16.0 * 100)  # no bar on row 7: row 6's
    assert perf[6, 0] == pytest.approx((16.5 - 12.0) / 12.0 * 100)  # none on row 4: row 2's
    assert perf[2, 0] == pytest.approx((12.5 - 10.0) / 10.0 * 100)  # row 0's
    # Younger than the window: from the first bar's open; the first bar itself has none.
    assert perf[1, 0] == pytest.approx((11.5 - 10.0) / 10.0 * 100)
    assert np.isnan(perf[0, 0])
    assert np.isnan(perf[[3, 4, 7, 8], 0]).all()  # no bar that day
    assert np.isnan(perf[4, 1])
    np.testing.assert_allclose(perf[5:, 1], 10.0)


def test_performance_of_a_week_for_crypto_and_a_stock() -> None:
    dates = np.datetime64("2024-03-01") + np.arange(21)  # 2024-03-01 is a Friday
    open_ = np.tile(100.0 + np.arange(21.0)[:, None], (1, 2))
    weekend = (dates.astype(np.int64) + 3) % 7 >= 5
    open_[weekend, 1] = np.nan
    close = open_ + 0.5
    perf = ind.performance(open_, close, dates, days=7)
    # Every day: the week is bars D-6..D.
    np.testing.assert_allclose(perf[6:, 0], (close[6:, 0] - open_[:-6, 0]) / open_[:-6, 0] * 100)
    # Thursday 2024-03-14 (row 13): D - 6 is a Friday, a bar. Friday 2024-03-15 (row 14): D - 6
    # is a Saturday, so the time search lands on the Friday before (row 7).
    assert perf[13, 1] == pytest.approx((close[13, 1] - open_[7, 1]) / open_[7, 1] * 100)
    assert perf[14, 1] == pytest.approx((close[14, 1] - open_[7, 1]) / open_[7, 1] * 100)


def test_performance_na_from_a_negative_open_to_a_positive_close() -> None:
    dates = np.datetime64("2020-04-15") + np.arange(3)
    open_ = np.array([[-10.0], [-5.0], [-2.0]])
    close = np.array([[-8.0], [-4.0], [1.0]])
    perf = ind.performance(open_, close, dates, days=1)
    # days = 1: the search never returns the current bar, so the previous bar's open.
    assert perf[1, 0] == pytest.approx((-4.0 - -10.0) / 10.0 * 100)  # |open| below
    assert np.isnan(perf[2, 0])  # rateOfreturn: na from -5 to 1


# ---------------------------------------------------------------------------------------------
# Against the references, column by column, over gaps.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("col", range(6))
def test_indicators_match_plain_loop_references(col: int) -> None:
    p = random_panel()
    has_bar = p["has_bar"]
    h, lo, c = (bars_of(p[name], has_bar, col) for name in ("high", "low", "close"))
    adx_, plus_di, minus_di = ind.adx(p["high"], p["low"], p["close"])
    ref_adx, ref_plus, ref_minus = ref_dmi(h, lo, c, 14)
    assert_matches_reference(adx_, has_bar, col, ref_adx)
    assert_matches_reference(plus_di, has_bar, col, ref_plus)
    assert_matches_reference(minus_di, has_bar, col, ref_minus)
    assert_matches_reference(ind.rsi(p["close"]), has_bar, col, ref_rsi(c, 14))
    ref_atr = ref_rma(ref_true_range(h, lo, c, first_bar_range=True), 14)
    assert_matches_reference(ind.atr(p["high"], p["low"], p["close"]), has_bar, col, ref_atr)


def test_wilder_rma_matches_reference_per_column() -> None:
    p = random_panel()
    out = ind.wilder_rma(p["close"], 5)
    for col in range(6):
        assert_matches_reference(out, p["has_bar"], col, ref_rma(bars_of(p["close"], p["has_bar"], col), 5))


def test_screen_indicators_agree_with_single_functions() -> None:
    p = random_panel()
    screen = ind.screen_indicators(p["open"], p["high"], p["low"], p["close"], p["volume"], p["dates"])
    assert tuple(screen) == ind.INDICATOR_COLUMNS
    adx_, plus_di, minus_di = ind.adx(p["high"], p["low"], p["close"])
    expected = {
        "change": ind.change(p["close"]),
        "Volatility.D": ind.volatility_d(p["high"], p["low"], p["close"]),
        "ADX": adx_,
        "ADX+DI": plus_di,
        "ADX-DI": minus_di,
        "RSI": ind.rsi(p["close"]),
        "ATR": ind.atr(p["high"], p["low"], p["close"]),
        **ind.technical_ratings(p["high"], p["low"], p["close"], p["volume"]),
        **{
            name: ind.performance(p["open"], p["close"], p["dates"], days)
            for name, days in ind.PERFORMANCE_DAYS.items()
        },
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(screen[name], values, err_msg=name)


def test_gap_carries_state_exactly() -> None:
    # The same bars with and without NaN rows between them give identical indicator values.
    p = random_panel()
    col = 4
    bars = p["has_bar"][:, col]
    dense = {name: p[name][bars, col][:, None] for name in ("high", "low", "close")}
    gapped = {name: p[name][:, col][:, None] for name in ("high", "low", "close")}
    for fn in (ind.rsi,):
        np.testing.assert_array_equal(fn(gapped["close"])[bars], fn(dense["close"]))
    for fn in (ind.atr, ind.true_range):
        np.testing.assert_array_equal(fn(**gapped)[bars], fn(**dense))
    np.testing.assert_array_equal(ind.adx(**gapped)[0][bars], ind.adx(**dense)[0])


def test_every_indicator_is_causal() -> None:
    p = random_panel()
    cut = 200
    future = random_panel(seed=99)
    changed = {}
    for name in ("open", "high", "low", "close", "volume"):
        values = p[name].copy()
        values[cut + 1 :] = future[name][cut + 1 :]
        changed[name] = values
    # Keep the bar layout of the original so only prices change; also try a shorter panel.
    for name in changed:
        changed[name][~p["has_bar"]] = np.nan
        changed[name][p["has_bar"] & np.isnan(changed[name])] = 1.0
    columns = ("open", "high", "low", "close", "volume")
    full = ind.screen_indicators(*(p[name] for name in columns), p["dates"])
    alt = ind.screen_indicators(*(changed[name] for name in columns), p["dates"])
    short = ind.screen_indicators(*(p[name][: cut + 1] for name in columns), p["dates"][: cut + 1])
    for name in ind.INDICATOR_COLUMNS:
        np.testing.assert_array_equal(full[name][: cut + 1], alt[name][: cut + 1], err_msg=name)
        np.testing.assert_array_equal(full[name][: cut + 1], short[name], err_msg=name)
        if np.isfinite(full[name][cut + 1 :]).any():
            assert not np.array_equal(full[name][cut + 1 :], alt[name][cut + 1 :], equal_nan=True), name


def test_rows_without_bars_are_nan_and_young_instruments_have_few_indicators() -> None:
    p = random_panel()
    screen = ind.screen_indicators(p["open"], p["high"], p["low"], p["close"], p["volume"], p["dates"])
    for name, values in screen.items():
        assert np.isnan(values[~p["has_bar"]]).all(), name
    young = p["has_bar"][:, 5]  # five bars only
    for name in ("ADX", "RSI", "ATR", "Recommend.All", "Recommend.MA", "Recommend.Other"):
        assert np.isnan(screen[name][:, 5]).all(), name
    # Performance of a young instrument runs from its first bar's open, from its second bar on.
    first = np.argmax(young)
    for name in ind.PERFORMANCE_DAYS:
        assert np.isnan(screen[name][first, 5]) and np.isfinite(screen[name][young, 5][1:]).all(), name
    expected = (p["close"][young, 5][1:] - p["open"][first, 5]) / p["open"][first, 5] * 100
    np.testing.assert_allclose(screen["Perf.Y"][young, 5][1:], expected)


def test_invalid_inputs_raise_validation_error() -> None:
    p = random_panel()
    with pytest.raises(ValidationError, match="'high'"):
        ind.adx(p["high"][:, 0], p["low"], p["close"])
    high = p["high"].copy()
    high[~p["has_bar"]] = 1.0
    with pytest.raises(ValidationError, match="same bars"):
        ind.atr(high, p["low"], p["close"])
    with pytest.raises(ValidationError, match="period"):
        ind.rsi(p["close"], period=0)
    with pytest.raises(ValidationError, match="strictly increasing"):
        ind.performance(p["open"], p["close"], p["dates"][::-1], 7)
