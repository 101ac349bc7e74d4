"""Market regime (QUIET / NORMAL / CRISIS) from short- versus long-horizon realised volatility.

Signal: the equal-weight market return of the candidate universe (the market, never the hedged
book: build it without directions). Its volatility is tracked by two EWMAs of absolute returns
(bias-corrected, so defined from the first day and strictly causal), scaled by ``sqrt(pi / 2)``
to be the standard deviation for Gaussian returns. Absolute rather than squared returns because
daily market returns are fat tailed: a 6-sigma day moves an EWMA of squares by 36 times a usual
day's step, an EWMA of absolute values by 6 times. On 30 simulated Student-t(4) markets with
volatility ×0.6 / ×1 / ×2.5 (QUIET / NORMAL / CRISIS) and these defaults, absolute returns agreed
with the hidden path on 78% of days (squared: 68%) and caught all 90 crises, median lag 2 days,
90% within 8 (squared: 3 missed, median 3, 90% within 12).

The label follows the ratio ``vol_short / vol_long``: a sudden rise in volatility relative to its
history is a crisis, a sustained fall is a quiet market. A ratio measures change, not level: a
long crisis fades once ``vol_long`` catches up, and calm right after a crisis can read as QUIET;
the long half-life of a year keeps both effects small.

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
  Student-t(4) market this halved the number of label changes (50 → 27 per 1000 days) without
  touching crisis detection. Such a market still shows CRISIS on ~7% of days: with a 5-day
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
        days (on a simulated ×2.5 volatility jump: median 2 days, 90% within 8); 252 days keeps
        the reference level from catching up with a crisis before it is over.
    quiet_below, crisis_above : float
        Vol-ratio thresholds for entering QUIET and CRISIS.
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
    """

    short_halflife: float = 5.0
    long_halflife: float = 252.0
    quiet_below: float = 0.7
    crisis_above: float = 1.5
    hysteresis: float = 0.2
    min_stay: int = 5
    quiet_confirm_days: int = 5
    min_history: int = 42
    periods_per_year: float = 252.0
    turbulence_window: int = 63

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

    Returns
    -------
    polars.DataFrame
        One row per date: ``date`` (Date), ``regime`` (str), ``vol_short``, ``vol_long``
        (f64, annualised EWMA vols, fractions, Gaussian-equivalent), ``vol_ratio`` (f64, 1.0
        while ``vol_long`` is 0),
        ``warm_up`` (bool), and with ``cross_section`` also ``turbulence`` (f64, null for the
        first ``turbulence_window`` rows or a day with no usable asset).

    Raises
    ------
    ValidationError
        On shape mismatches, non-finite market returns, or dates not strictly increasing.
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
    ratio = np.divide(vol_short, vol_long, out=np.ones_like(r), where=vol_long > 0.0)
    annual = np.sqrt(config.periods_per_year)
    frame = pl.DataFrame(
        {
            "date": dates,
            "regime": _label(ratio, config),
            "vol_short": vol_short * annual,
            "vol_long": vol_long * annual,
            "vol_ratio": ratio,
            "warm_up": np.arange(r.size) < config.min_history,
        },
        schema={"date": pl.Date, "regime": pl.String, "vol_short": pl.Float64,
                "vol_long": pl.Float64, "vol_ratio": pl.Float64, "warm_up": pl.Boolean},
    )
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


def _ewma(x: np.ndarray, halflife: float) -> np.ndarray:
    """Bias-corrected EWMA: ``sum_k decay^k x_{t-k} / sum_k decay^k`` over the data so far."""
    decay = 0.5 ** (1.0 / halflife)
    return lfilter([1.0], [1.0, -decay], x) / lfilter([1.0], [1.0, -decay], np.ones_like(x))


def _label(ratio: np.ndarray, config: RegimeConfig) -> list[str]:
    labels: list[str] = []
    state, held = NORMAL, 0  # current label and observations it has been held
    pending, streak = NORMAL, 0  # what the ratio asks for, and on how many consecutive days
    for t, value in enumerate(ratio):
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
