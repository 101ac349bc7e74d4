"""Market regime (QUIET / NORMAL / CRISIS) from short- versus long-horizon volatility of the
market and of its cross-section.

Signal: the equal-weight market return of the candidate universe (the market, never the hedged
book: build it without directions). Its volatility is tracked by two EWMAs of absolute returns
(bias-corrected, so defined from the first day and strictly causal), scaled by ``sqrt(pi / 2)``
to be the standard deviation for Gaussian returns. Absolute rather than squared returns because
daily market returns are fat tailed: a 6-sigma day moves an EWMA of squares by 36 times a usual
day's step, an EWMA of absolute values by 6 times. On 30 simulated Student-t(4) markets with
volatility ×0.6 / ×1 / ×2.5 (QUIET / NORMAL / CRISIS), with this ratio alone and the earlier
thresholds (1.5 / 0.7 / 0.2), absolute returns agreed with the hidden path on 78% of days
(squared: 68%) and caught all 90 crises, median lag 2 days, 90% within 8 (squared: 3 missed,
median 3, 90% within 12).

Cross-sectional view (``use_dispersion``, on by default): the standard deviation of each day's
returns across the universe (:func:`cross_sectional_dispersion`), tracked by the same two EWMAs
(days without two returns skipped). The market return averages the names' own moves away and is
one draw a day; the spread of several hundred names is a far steadier daily reading of how
violently prices move. The labels follow the mean of ``vol_ratio`` and ``dispersion_ratio``
(:func:`regime_signal`); without a cross-section (one instrument, or before two names have
returns) they follow ``vol_ratio`` alone.

The label follows the ratio: a sudden rise in volatility relative to its history is a crisis, a
sustained fall is a quiet market. A ratio measures change, not level or direction: a long crisis
fades once the long EWMA catches up, calm right after a crisis can read as QUIET, a one-day rally
counts like a crash, and in a calm year ordinary shocks stand out; the long half-life of a year
keeps the first two effects small.

Measured by ``benchmarks/bench_regime.py``: day by day as the ``regime`` asset runs (the
point-in-time universe of each day's 30-day window, the 730-day lookback, the last label), on
three synthetic markets (seeds 7, 8, 9), thresholds chosen on 2022-2024 of all three pooled and
scored on 2025-01-01..2026-11-29 held out. Held out, pooled over the seeds (7 CRISIS onsets, 9 in
training: the evidence on onsets is thin):

================================  ========  ===========  ===========  ======  ==============
detector (crisis/quiet/band)      bal. acc  CRISIS prec  CRISIS rec.  missed  spurious / mo.
================================  ========  ===========  ===========  ======  ==============
vol ratio, 1.5 / 0.7 / 0.2        0.775     0.48         0.91         1 of 7  0.66
vol ratio, 1.6 / 0.8 / 0.1        0.766     0.60         0.84         1 of 7  0.63
vol ratio, 1.4 / 0.8 / 0.1        0.769     0.44         0.92         0 of 7  0.89
with dispersion, 1.5 / 0.7 / 0.2  0.781     0.64         0.86         1 of 7  0.27
with dispersion, 1.4 / 0.8 / 0.1  0.829     0.61         0.90         0 of 7  0.37
================================  ========  ===========  ===========  ======  ==============

The first row is the detector before the cross-sectional view, the second and last rows the
thresholds training chose for each signal; the last is now the default. It raised balanced
accuracy on every seed (0.797 -> 0.864, 0.752 -> 0.821, 0.818 -> 0.819: the third a tie), with
fewer spurious changes on two seeds of three, median delay to a crisis 1 day (max 6) against
0.5 (6). The dispersion needs its own thresholds: with the old ones it was worse on two seeds.
For the vol ratio alone the training choice did not carry over (better on one seed of three),
and the new thresholds, tuned for the steadier combined signal, alarm more on it (third row):
without a cross-section, e.g. on one instrument, the detector is noisier than before. On real
BTCUSDT 2017-2025 (``quant_assets_tests/risk/test_regime_real.py``) that meant CRISIS on 15% of
days instead of 12%, but LUNA caught on 2022-05-09 instead of 05-11 and the liquidation cascade
of 2025-10-10 in 2 days instead of never; on stationary Student-t(4) returns, CRISIS on 12% of
days instead of 8%. The synthetic market scales every name's own volatility with the regime
(×0.6 / ×1 / ×2), which makes its dispersion informative by construction; real crises raise
correlations, and dispersion may rise less than the market's volatility. The turbulence index
was not tried as an input: computed for every day of every window it costs about 0.3 s a window,
some 9 minutes a seed in the benchmark.

Labelling runs sequentially over the whole window, so the label of a day depends only on returns
up to that day (re-running on a longer window never changes earlier labels):

* Hysteresis: enter CRISIS when the ratio rises above ``crisis_above``, leave only once it falls
  below ``crisis_above - hysteresis``; enter QUIET below ``quiet_below``, leave only above
  ``quiet_below + hysteresis``. Noise around a threshold therefore cannot flip the label daily.
* Minimum stay: a label is held for at least ``min_stay`` observations before it may change,
  except that entering CRISIS is never delayed (an alarm that waits is no alarm).
* Confirmation: a switch between QUIET and NORMAL also needs the ratio to ask for it on
  ``quiet_confirm_days`` consecutive observations. Quiet markets change slowly and little rides on
  a day's delay, while a fat-tailed series crosses the QUIET threshold often; on a stationary
  Student-t(4) market this cuts the label changes from 93 to 55 per 1000 days (from 54 to 31
  with the earlier thresholds) without touching crisis detection. The price: a market leaves QUIET
  five days after the ratio says so, unless straight into CRISIS (BTC stayed QUIET through a
  fall of 7.9% on 2022-05-05). Such a market still shows CRISIS on ~12% of days: with a 5-day
  half-life, chance volatility bursts are indistinguishable from the start of a crisis.
* Warm-up: the first ``min_history`` observations are labelled NORMAL (the neutral prior) and
  flagged ``warm_up``; the EWMAs still run through them.

Optionally a turbulence index (Kritzman & Li): the Mahalanobis distance of each day's
cross-section of returns from the mean of a trailing window under that window's Ledoit-Wolf
covariance, divided by the number of assets (about 1 in calm markets). It is reported next to
the label, not used by it, and computed with a Cholesky solve, never an explicit inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from scipy.linalg import cho_factor, cho_solve
from scipy.signal import lfilter

from quant_assets.errors import ConfigError, ValidationError
from quant_assets.lakehouse.contracts import REGIMES

#: Regime labels in order of rising volatility (the data contracts hold them).
QUIET, NORMAL, CRISIS = REGIMES
#: E|r| = sigma * sqrt(2 / pi) for Gaussian r.
_GAUSSIAN_ABS_TO_STD = float(np.sqrt(np.pi / 2.0))


@dataclass(frozen=True)
class RegimeConfig:
    """Parameters of :func:`detect_regimes`; the defaults suit daily data.

    Attributes
    ----------
    short_halflife, long_halflife : float
        EWMA half-lives in observations (days). 5 days reacts to a volatility jump within a few
        days (on a simulated ×2.5 volatility jump, with the vol ratio alone and the earlier
        thresholds: median 2 days, 90% within 8); 252 days keeps the reference level from
        catching up with a crisis before it is over.
    quiet_below, crisis_above : float
        Thresholds of the ratio the labels follow (:func:`regime_signal`) for entering QUIET and
        CRISIS. The defaults (and ``hysteresis``) were chosen for the ratio with dispersion on
        the benchmark's training years (module docstring); for ``vol_ratio`` alone 0.7 and 1.5
        with a band of 0.2 alarm less.
    hysteresis : float
        Width of the band a ratio must cross back through to leave QUIET or CRISIS.
    min_stay : int
        Minimum number of observations a label is held (entering CRISIS is exempt).
    quiet_confirm_days : int
        Consecutive observations the ratio must ask for a QUIET <-> NORMAL switch.
    min_history : int
        Warm-up observations labelled NORMAL before the detector speaks.
    periods_per_year : float
        Annualisation of the reported vols (252 weekdays; 365 for a calendar-day panel). The
        ratio and the labels do not depend on it.
    turbulence_window : int
        Trailing observations for the turbulence covariance.
    use_dispersion : bool
        Label on the mean of ``vol_ratio`` and ``dispersion_ratio`` (:func:`regime_signal`)
        when :func:`detect_regimes` is given the cross-sectional dispersion; on ``vol_ratio``
        alone otherwise, and on days before the dispersion is defined.
    """

    short_halflife: float = 5.0
    long_halflife: float = 252.0
    quiet_below: float = 0.8
    crisis_above: float = 1.4
    hysteresis: float = 0.1
    min_stay: int = 5
    quiet_confirm_days: int = 5
    min_history: int = 42
    periods_per_year: float = 252.0
    turbulence_window: int = 63
    use_dispersion: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.short_halflife < self.long_halflife:
            raise ConfigError(
                f"need 0 < short_halflife < long_halflife, got {self.short_halflife}, {self.long_halflife}"
            )
        if not 0.0 < self.quiet_below < self.crisis_above:
            raise ConfigError(
                f"need 0 < quiet_below < crisis_above, got {self.quiet_below}, {self.crisis_above}"
            )
        if not 0.0 <= self.hysteresis < self.crisis_above - self.quiet_below:
            raise ConfigError(
                f"hysteresis must be in [0, crisis_above - quiet_below) = "
                f"[0, {self.crisis_above - self.quiet_below:g}), got {self.hysteresis}"
            )
        if (
            self.min_stay < 1
            or self.quiet_confirm_days < 1
            or self.min_history < 0
            or self.periods_per_year <= 0
            or self.turbulence_window < 2
        ):
            raise ConfigError(
                "need min_stay >= 1, quiet_confirm_days >= 1, min_history >= 0, periods_per_year > 0, "
                f"turbulence_window >= 2; got {self.min_stay}, {self.quiet_confirm_days}, "
                f"{self.min_history}, {self.periods_per_year}, {self.turbulence_window}"
            )


def detect_regimes(
    market_returns: np.ndarray,
    dates: Sequence[date],
    config: RegimeConfig | None = None,
    *,
    cross_section: np.ndarray | None = None,
    dispersion: np.ndarray | None = None,
) -> pl.DataFrame:
    """Label every date QUIET / NORMAL / CRISIS (rules in the module docstring).

    Parameters
    ----------
    market_returns : numpy.ndarray, shape (T,)
        Daily market returns (fractions), finite; e.g. :func:`equal_weight_market_returns`.
    dates : sequence of datetime.date, length T
        Strictly increasing.
    config : RegimeConfig, optional
        Defaults to ``RegimeConfig()``.
    cross_section : numpy.ndarray, shape (T, N), optional
        Daily returns of the individual assets (NaN allowed where an asset has no data); adds a
        ``turbulence`` column.
    dispersion : numpy.ndarray, shape (T,), optional
        The cross-sectional dispersion of each day's returns (fractions, e.g.
        :func:`cross_sectional_dispersion`), NaN on a day it is undefined; adds a
        ``dispersion_ratio`` column, which the labels follow with ``config.use_dispersion``.

    Returns
    -------
    polars.DataFrame
        One row per date: ``date`` (Date), ``regime`` (str), ``vol_short``, ``vol_long``
        (f64, annualised EWMA vols, fractions, Gaussian-equivalent), ``vol_ratio`` (f64, 1.0
        while ``vol_long`` is 0), with ``dispersion`` also ``dispersion_ratio`` (f64, the same
        two EWMAs of the dispersion, days without one skipped; null before the first such day,
        1.0 while the long one is 0), ``warm_up`` (bool), and with ``cross_section`` also
        ``turbulence`` (f64, null for the first ``turbulence_window`` rows or a day with no
        usable asset).

    Raises
    ------
    ValidationError
        On shape mismatches, non-finite market returns, a negative or infinite dispersion, or
        dates not strictly increasing.
    """
    config = config or RegimeConfig()
    r = np.asarray(market_returns, dtype=np.float64)
    dates = list(dates)
    if r.ndim != 1 or r.size != len(dates):
        raise ValidationError(f"market_returns shape {r.shape} does not match {len(dates)} dates")
    if not np.isfinite(r).all():
        bad = np.flatnonzero(~np.isfinite(r))
        raise ValidationError(f"market_returns has NaN/inf on {bad.size} dates, first {dates[bad[0]]}")
    if any(b <= a for a, b in zip(dates, dates[1:])):
        raise ValidationError("dates must be strictly increasing")

    vol_short = _GAUSSIAN_ABS_TO_STD * _ewma(np.abs(r), config.short_halflife)
    vol_long = _GAUSSIAN_ABS_TO_STD * _ewma(np.abs(r), config.long_halflife)
    ratio = _ratio(vol_short, vol_long)
    columns: dict[str, Any] = {"vol_ratio": ratio}
    dispersion_ratio = None
    if dispersion is not None:
        spread = np.asarray(dispersion, dtype=np.float64)
        if spread.shape != r.shape:
            raise ValidationError(f"dispersion must have shape ({r.size},), got {spread.shape}")
        if np.isinf(spread).any() or (spread < 0.0).any():
            raise ValidationError("dispersion must be non-negative and finite (NaN where undefined)")
        dispersion_ratio = _ratio(_ewma(spread, config.short_halflife), _ewma(spread, config.long_halflife))
        columns["dispersion_ratio"] = dispersion_ratio
    annual = np.sqrt(config.periods_per_year)
    frame = pl.DataFrame(
        {
            "date": dates,
            "regime": label_regimes(regime_signal(ratio, dispersion_ratio, config), config),
            "vol_short": vol_short * annual,
            "vol_long": vol_long * annual,
            **columns,
            "warm_up": np.arange(r.size) < config.min_history,
        },
        schema={"date": pl.Date, "regime": pl.String, "vol_short": pl.Float64, "vol_long": pl.Float64,
                **{name: pl.Float64 for name in columns}, "warm_up": pl.Boolean},
    ).with_columns(pl.col(*columns).fill_nan(None))
    if cross_section is not None:
        x = np.asarray(cross_section, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != r.size:
            raise ValidationError(f"cross_section must be ({r.size}, N), got shape {x.shape}")
        frame = frame.with_columns(
            pl.Series("turbulence", _turbulence(x, config.turbulence_window), dtype=pl.Float64)
            .fill_nan(None)
        )
    return frame


def current_regime(frame: pl.DataFrame) -> dict[str, Any]:
    """Return the last row of a :func:`detect_regimes` frame as a dict (column → value).

    Raises
    ------
    ValidationError
        If the frame is empty.
    """
    if frame.height == 0:
        raise ValidationError("regime frame is empty; no current regime")
    return frame.row(-1, named=True)


def cross_sectional_dispersion(returns: np.ndarray) -> np.ndarray:
    """Standard deviation of each day's returns across assets.

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Daily asset returns (fractions), NaN where an asset has no return.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Population standard deviation (fractions) over the assets with a return that day; NaN
        on a day with fewer than two.
    """
    x = np.asarray(returns, dtype=np.float64)
    valid = np.isfinite(x)
    count = valid.sum(axis=1)
    filled = np.where(valid, x, 0.0)
    mean = np.divide(filled.sum(axis=1), count, out=np.zeros(x.shape[0]), where=count > 0)
    squares = np.where(valid, (filled - mean[:, None]) ** 2, 0.0).sum(axis=1)
    return np.sqrt(np.divide(squares, count, out=np.full(x.shape[0], np.nan), where=count >= 2))


def regime_signal(vol_ratio: np.ndarray, dispersion_ratio: np.ndarray | None, config: RegimeConfig) -> np.ndarray:
    """The series the labels follow: ``vol_ratio``, or with ``config.use_dispersion`` the mean
    of ``vol_ratio`` and ``dispersion_ratio`` on the days the latter is defined (not NaN)."""
    if dispersion_ratio is None or not config.use_dispersion:
        return vol_ratio
    return np.where(np.isfinite(dispersion_ratio), 0.5 * (vol_ratio + dispersion_ratio), vol_ratio)


def _ewma(x: np.ndarray, halflife: float) -> np.ndarray:
    """Bias-corrected EWMA: ``sum_k decay^k x_{t-k} / sum_k decay^k`` over the data so far,
    NaN days skipped (NaN until the first value)."""
    decay = 0.5 ** (1.0 / halflife)
    seen = np.isfinite(x)
    weights = lfilter([1.0], [1.0, -decay], seen.astype(np.float64))
    total = lfilter([1.0], [1.0, -decay], np.where(seen, x, 0.0))
    return np.divide(total, weights, out=np.full(x.shape, np.nan), where=weights > 0.0)


def _ratio(short: np.ndarray, long: np.ndarray) -> np.ndarray:
    """``short / long`` of two EWMAs: 1.0 while the long one is 0, NaN before its first value."""
    ratio = np.divide(short, long, out=np.ones_like(short), where=long > 0.0)
    ratio[np.isnan(long)] = np.nan
    return ratio


def label_regimes(signal: np.ndarray, config: RegimeConfig) -> list[str]:
    """The label of every observation of ``signal`` (a ratio like ``vol_ratio``, finite), by
    the thresholds, hysteresis, minimum stay, confirmation and warm-up of the module docstring.
    Sequential: a label depends only on the signal up to its observation."""
    labels: list[str] = []
    state, held = NORMAL, 0  # current label and observations it has been held
    pending, streak = NORMAL, 0  # what the ratio asks for, and on how many consecutive days
    for t, value in enumerate(signal):
        if t >= config.min_history:
            proposed = _proposal(state, value, config)
            streak = streak + 1 if proposed == pending else 1
            pending = proposed
            if proposed != state and _may_switch(state, proposed, held, streak, config):
                state, held = proposed, 0
            held += 1
        labels.append(state)
    return labels


def _may_switch(state: str, proposed: str, held: int, streak: int, config: RegimeConfig) -> bool:
    """The minimum-stay and confirmation rules of the module docstring."""
    if proposed == CRISIS:
        return True
    if held < config.min_stay:
        return False
    return state == CRISIS or streak >= config.quiet_confirm_days


def _proposal(state: str, ratio: float, config: RegimeConfig) -> str:
    """The label the ratio asks for, given the current one (the hysteresis rule)."""
    if state == CRISIS and ratio >= config.crisis_above - config.hysteresis:
        return CRISIS
    if state == QUIET and ratio <= config.quiet_below + config.hysteresis:
        return QUIET
    if ratio > config.crisis_above:
        return CRISIS
    if ratio < config.quiet_below:
        return QUIET
    return NORMAL


def _turbulence(x: np.ndarray, window: int) -> np.ndarray:
    """Per-day Mahalanobis distance / N of ``x[t]`` from the trailing ``window`` rows."""
    out = np.full(x.shape[0], np.nan)
    for t in range(window, x.shape[0]):
        out[t] = turbulence_at(x, t, window)
    return out


def turbulence_at(x: np.ndarray, t: int, window: int) -> float:
    """Turbulence of day ``t``: Mahalanobis distance / N of ``x[t]`` from rows ``t - window .. t - 1``.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, N)
        Daily asset returns, NaN where an asset has no data.
    t : int
        Row to score; NaN when ``t < window`` or no asset is usable.
    window : int
        Trailing rows the Ledoit-Wolf covariance is estimated on.
    """
    if t < window:
        return float("nan")
    history = x[t - window : t]
    # Assets with a full trailing history, a value today, and some movement: a flat column
    # carries no information and would make the covariance singular.
    usable = np.isfinite(history).all(axis=0) & np.isfinite(x[t]) & (np.ptp(history, axis=0) > 0.0)
    if not usable.any():
        return float("nan")
    return _lw_mahalanobis(history[:, usable], x[t, usable]) / usable.sum()


def _lw_mahalanobis(history: np.ndarray, today: np.ndarray) -> float:
    """``d' Sigma^-1 d`` with ``Sigma`` the Ledoit-Wolf covariance of ``history`` (W, N).

    The estimator is sklearn's (:func:`quant_assets.risk.covariance.ledoit_wolf`), rewritten on
    the (W, W) Gram matrix, so a day costs O(W^2 N) instead of an (N, N) estimate and
    factorisation: 730 days of 300 assets with a 63-day window took 11.7 s, now 0.3 s.
    """
    n_obs, n_assets = history.shape
    centred = history - history.mean(axis=0)
    deviation = today - history.mean(axis=0)
    gram = centred @ centred.T
    trace = np.trace(gram) / n_obs  # trace of the sample covariance S = X'X / W
    mu = trace / n_assets
    delta_ = np.sum(gram**2) / n_obs**2  # ||S||_F^2
    beta = (np.sum(np.diag(gram) ** 2) / n_obs - delta_) / (n_assets * n_obs)
    delta = (delta_ - mu * trace) / n_assets  # ||S - mu I||_F^2 / N
    beta = min(beta, delta)
    shrinkage = 0.0 if beta <= 0.0 else beta / delta
    # Sigma = a I + b X'X. The tiny ridge keeps a > 0 (so Sigma is invertible) when the
    # shrinkage comes out as 0; mu > 0 because flat columns were excluded.
    a = (shrinkage + 1e-12) * mu
    b = (1.0 - shrinkage) / n_obs
    if n_assets <= n_obs:
        sigma = b * (centred.T @ centred)
        sigma[np.diag_indices_from(sigma)] += a
        return float(deviation @ cho_solve(cho_factor(sigma), deviation))
    # Woodbury: Sigma^-1 = (I - b X' (a I + b X X')^-1 X) / a, a (W, W) solve.
    projected = centred @ deviation
    inner = b * gram
    inner[np.diag_indices_from(inner)] += a
    correction = b * projected @ cho_solve(cho_factor(inner), projected)
    return float((deviation @ deviation - correction) / a)
