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


def ref_recommend(h: list[float], lo: list[float], c: list[float]) -> list[float]:
    n = len(c)
    ma_lines = []
    for length in ind.RECOMMEND_MA_LENGTHS:
        sma = [sum(c[i - length + 1 : i + 1]) / length if i >= length - 1 else NAN for i in range(n)]
        ma_lines.append(sma)
        ma_lines.append(ref_ema(c, length))
    rsi_line = ref_rsi(c, 14)
    adx_line, plus_line, minus_line = ref_dmi(h, lo, c, 14)
    fast, slow = ref_ema(c, 12), ref_ema(c, 26)
    macd = [f - s for f, s in zip(fast, slow)]
    signal = ref_ema(macd, 9)

    def sign(x: float) -> float:
        return float((x > 0) - (x < 0))

    out = []
    for i in range(n):
        ma_votes = [sign(c[i] - line[i]) for line in ma_lines if not math.isnan(line[i])]
        osc_votes = []
        if i >= 1 and not math.isnan(rsi_line[i - 1]):
            r, r_prev = rsi_line[i], rsi_line[i - 1]
            osc_votes.append(1.0 if r < 30 and r > r_prev else -1.0 if r > 70 and r < r_prev else 0.0)
        if not math.isnan(adx_line[i]):
            osc_votes.append(sign(plus_line[i] - minus_line[i]) if adx_line[i] > 20 else 0.0)
        if i >= 10:
            osc_votes.append(sign(c[i] - c[i - 10]))
        if not math.isnan(signal[i]):
            osc_votes.append(sign(macd[i] - signal[i]))
        ratings = [sum(v) / len(v) for v in (ma_votes, osc_votes) if v]
        out.append(sum(ratings) / len(ratings) if ratings else NAN)
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
    panel = {"open": open_, "high": high, "low": low, "close": close}
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
    # Row 9: window (D-3, D] = rows 7..9; first bar in it is row 9 itself.
    assert perf[9, 0] == pytest.approx((19.5 - 19.0) / 19.0 * 100)
    # Row 6: window rows 4..6, first bar row 5 (open 15).
    assert perf[6, 0] == pytest.approx((16.5 - 15.0) / 15.0 * 100)
    # Row 2: D - 3 is before the first bar: no performance.
    assert np.isnan(perf[2, 0])
    assert np.isnan(perf[[3, 4, 7, 8], 0]).all()  # no bar that day
    # Column 1 listed on row 4: at row 6, D - 3 = row 3 precedes its first bar -> NaN;
    # at row 7, D - 3 = row 4 is its first bar -> S = row 5.
    assert np.isnan(perf[6, 1])
    assert perf[7, 1] == pytest.approx(10.0)


def test_performance_uses_absolute_open_for_negative_prices() -> None:
    dates = np.datetime64("2020-04-15") + np.arange(3)
    open_ = np.array([[-10.0], [-5.0], [-2.0]])
    close = np.array([[-8.0], [-4.0], [1.0]])
    perf = ind.performance(open_, close, dates, days=1)
    assert perf[2, 0] == pytest.approx((1.0 - -2.0) / 2.0 * 100)


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
    rating = ind.recommend_all(p["high"], p["low"], p["close"])
    assert_matches_reference(rating, has_bar, col, ref_recommend(h, lo, c))


def test_wilder_rma_matches_reference_per_column() -> None:
    p = random_panel()
    out = ind.wilder_rma(p["close"], 5)
    for col in range(6):
        assert_matches_reference(out, p["has_bar"], col, ref_rma(bars_of(p["close"], p["has_bar"], col), 5))


def test_screen_indicators_agree_with_single_functions() -> None:
    p = random_panel()
    screen = ind.screen_indicators(p["open"], p["high"], p["low"], p["close"], p["dates"])
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
        "Recommend.All": ind.recommend_all(p["high"], p["low"], p["close"]),
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
    for fn in (ind.atr, ind.recommend_all, ind.true_range):
        np.testing.assert_array_equal(fn(**gapped)[bars], fn(**dense))
    np.testing.assert_array_equal(ind.adx(**gapped)[0][bars], ind.adx(**dense)[0])


def test_recommend_all_is_bounded_and_follows_the_trend() -> None:
    n = 260
    up = 100 * 1.01 ** np.arange(n)
    down = up[::-1].copy()
    close = np.column_stack([up, down])
    rating = ind.recommend_all(close * 1.005, close * 0.995, close)
    assert np.nanmax(np.abs(rating)) <= 1.0
    assert rating[-1, 0] > 0.5 and rating[-1, 1] < -0.5
    p = random_panel()
    rating = ind.recommend_all(p["high"], p["low"], p["close"])
    assert np.nanmin(rating) >= -1.0 and np.nanmax(rating) <= 1.0


def test_every_indicator_is_causal() -> None:
    p = random_panel()
    cut = 200
    future = random_panel(seed=99)
    changed = {}
    for name in ("open", "high", "low", "close"):
        values = p[name].copy()
        values[cut + 1 :] = future[name][cut + 1 :]
        changed[name] = values
    # Keep the bar layout of the original so only prices change; also try a shorter panel.
    for name in changed:
        changed[name][~p["has_bar"]] = np.nan
        changed[name][p["has_bar"] & np.isnan(changed[name])] = 1.0
    full = ind.screen_indicators(p["open"], p["high"], p["low"], p["close"], p["dates"])
    alt = ind.screen_indicators(*(changed[name] for name in ("open", "high", "low", "close")), p["dates"])
    short = ind.screen_indicators(
        *(p[name][: cut + 1] for name in ("open", "high", "low", "close")), p["dates"][: cut + 1]
    )
    for name in ind.INDICATOR_COLUMNS:
        np.testing.assert_array_equal(full[name][: cut + 1], alt[name][: cut + 1], err_msg=name)
        np.testing.assert_array_equal(full[name][: cut + 1], short[name], err_msg=name)
        if np.isfinite(full[name][cut + 1 :]).any():
            assert not np.array_equal(full[name][cut + 1 :], alt[name][cut + 1 :], equal_nan=True), name


def test_rows_without_bars_are_nan_and_young_instruments_have_no_indicators() -> None:
    p = random_panel()
    screen = ind.screen_indicators(p["open"], p["high"], p["low"], p["close"], p["dates"])
    for name, values in screen.items():
        assert np.isnan(values[~p["has_bar"]]).all(), name
    for name in ("ADX", "RSI", "ATR", "Perf.W"):
        assert np.isnan(screen[name][:, 5]).all(), name  # five bars only
    # 320 days of data: no instrument has a bar a year back; half a year back only from row 182.
    assert np.isnan(screen["Perf.Y"]).all()
    assert np.isnan(screen["Perf.6M"][181, 0]) and np.isfinite(screen["Perf.6M"][182, 0])


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
