"""The simulation: daily bars of every instrument under a hidden regime path.

Daily returns have a factor structure (a global factor and one per asset class), Student-t tails
and occasional jumps; volatility and correlation follow a hidden regime path (QUIET / NORMAL /
CRISIS). The simulation and the indicators are causal row by row, so extending the horizon does
not change earlier rows.

Volatility products (long volatility, a tail hedge, short volatility) add a payoff on the market
move (:func:`market_payoff`): they are convex or concave in the market by construction, the
ground truth the antifragility score is checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from quant_assets.sources.screener import indicators
from quant_assets.sources.synthetic.config import PERTURBED, Draw, SyntheticMarketConfig, child_rng
from quant_assets.sources.synthetic.universe import ASSET_CLASSES, Universe

#: Hidden regimes, in the order of their integer codes.
REGIMES: tuple[str, ...] = ("QUIET", "NORMAL", "CRISIS")

# Regime transition probabilities per calendar day (rows: from, columns: to QUIET/NORMAL/CRISIS):
# crises last about a month (1/0.034 days) and start about once a year from NORMAL.
_TRANSITIONS = np.array(
    [
        [0.985, 0.014, 0.001],
        [0.008, 0.987, 0.005],
        [0.004, 0.030, 0.966],
    ]
)
_INITIAL_REGIME = 1  # NORMAL on the day before `start`
# Volatility multipliers: factors move more than idiosyncratic noise in a crisis, which raises
# correlations; the drift of the global and crypto factors turns negative.
_FACTOR_SCALE = np.array([0.6, 1.0, 3.0])
_IDIO_SCALE = np.array([0.6, 1.0, 2.0])
_GLOBAL_DRIFT = np.array([0.0005, 0.0003, -0.003])
_CLASS_DRIFT = np.array(
    [
        [0.0005, 0.0, -0.003],  # crypto
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ]
)
_GLOBAL_VOL = 0.009
_CLASS_VOL = np.array([0.015, 0.007, 0.006, 0.002])
_T_DF = 4.0
_T_CLIP = 12.0  # about 8.5 standard deviations: no single-day move beyond that
_T_STD = math.sqrt(_T_DF / (_T_DF - 2.0))
_CRISIS_VOLUME = 1.5
#: The volatility products' payoff per unit of convexity or tail hedge (log return), and the
#: market fall, in NORMAL-regime sigmas, beyond which the tail hedge pays.
_PAYOFF_UNIT = 0.003
_TAIL_STRIKE = 2.0


def _long_run_regime_shares() -> np.ndarray:
    """The share of days each regime holds in the long run (the chain's stationary law)."""
    values, vectors = np.linalg.eig(_TRANSITIONS.T)
    share = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return share / share.sum()


def _gaussian_put(scale: float, strike: float) -> float:
    """E[max(0, -z - strike)] for z ~ N(0, scale²)."""
    k = strike / scale
    density = math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    return scale * density - strike * 0.5 * math.erfc(k / math.sqrt(2.0))


# The premiums the products pay for their payoffs: the long-run means of z² and of the put
# (Gaussian approximation), so neither payoff earns anything on average by construction.
_Z2_PREMIUM = float(_long_run_regime_shares() @ _FACTOR_SCALE**2)
_PUT_PREMIUM = float(_long_run_regime_shares() @ [_gaussian_put(s, _TAIL_STRIKE) for s in _FACTOR_SCALE])


def market_payoff(
    z: float, market_vol: float, market_beta: np.ndarray, convexity: np.ndarray, tail_hedge: np.ndarray
) -> np.ndarray:
    """The log return volatility products make on a day the market moved ``z`` of its
    NORMAL-regime sigmas (``market_vol``):

    ``market_beta * z * market_vol + unit * (convexity * (z² - E z²) + tail_hedge * (max(0, -z - 2) - E put))``

    Long volatility (convexity > 0, a negative beta) gains in large moves either way and pays
    for it in calm markets; a tail hedge gains only in a fall beyond two sigmas; convexity < 0 is
    short volatility.
    """
    straddle = z * z - _Z2_PREMIUM
    put = max(0.0, -z - _TAIL_STRIKE) - _PUT_PREMIUM
    return market_beta * (z * market_vol) + _PAYOFF_UNIT * (convexity * straddle + tail_hedge * put)


@dataclass(frozen=True)
class Panel:
    """The simulated market from ``start`` through ``end``: T days by N instruments."""

    end: date
    dates: np.ndarray  # (T,) datetime64[D]
    regime: np.ndarray  # (T,) int8 codes into REGIMES
    prices: dict[str, np.ndarray]  # open/high/low/close/volume, (T, N), NaN where no bar
    last_bar_row: np.ndarray  # (T, N) int32: row of the last bar on or before each row, -1 if none
    fields: dict[str, np.ndarray]  # indicator columns, (T, N)


def simulate(universe: Universe, config: SyntheticMarketConfig, n_days: int) -> Panel:
    """Simulate days ``0..n_days-1`` after ``config.start``, one day (row) at a time.

    Each day draws from its own child generators, so a day's numbers do not depend on the
    horizon; the state carried from day to day (log prices, the regime) only flows forward.
    """
    a = universe.arrays
    n = len(a["sigma"])
    dates = np.datetime64(config.start, "D") + np.arange(n_days)
    weekdays = (dates.astype(np.int64) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    first_perturbed = n_days
    if config.perturb_after is not None:
        first_perturbed = max(0, (config.perturb_after - config.start).days + 1)
    prices = {name: np.empty((n_days, n)) for name in ("open", "high", "low", "close", "volume")}
    last_bar_row = np.empty((n_days, n), dtype=np.int32)
    regime = np.empty(n_days, dtype=np.int8)
    cumulative_transitions = np.cumsum(_TRANSITIONS, axis=1)
    weekday_only = ~a["seven_day"]
    source = a["ohlc_source"]  # exact clones reuse their driver's intraday draws
    own_log_price = a["log_price"].copy()
    prev_log_price: np.ndarray | None = None
    last_row = np.full(n, -1, dtype=np.int32)
    state = _INITIAL_REGIME
    # The market the volatility products pay on: the global factor plus each class factor in
    # proportion to the class's share of the instruments, like an equal-weight index.
    class_weight = np.bincount(a["class"], minlength=len(ASSET_CLASSES)) / n
    market_vol = math.sqrt(_GLOBAL_VOL**2 + float(class_weight**2 @ _CLASS_VOL**2))
    products = np.flatnonzero((a["convexity"] != 0.0) | (a["tail_hedge"] != 0.0) | (a["market_beta"] != 0.0))

    def draws(component: int, d: int) -> np.random.Generator:
        return child_rng(config.seed, component, d, *((PERTURBED,) if d >= first_perturbed else ()))

    for d in range(n_days):
        u = draws(Draw.REGIME, d).random()
        state = min(2, int(np.searchsorted(cumulative_transitions[state], u, side="right")))
        regime[d] = state
        factor_scale, idio_scale = _FACTOR_SCALE[state], _IDIO_SCALE[state]

        shocks = draws(Draw.FACTOR, d).standard_t(_T_DF, size=1 + len(ASSET_CLASSES))
        shocks = np.clip(shocks, -_T_CLIP, _T_CLIP) / _T_STD
        global_move = _GLOBAL_DRIFT[state] + _GLOBAL_VOL * factor_scale * shocks[0]
        class_move = _CLASS_DRIFT[:, state] + _CLASS_VOL * factor_scale * shocks[1:]
        log_return = np.clip(draws(Draw.IDIO, d).standard_t(_T_DF, size=n), -_T_CLIP, _T_CLIP)
        log_return *= a["sigma"] * (idio_scale / _T_STD)
        log_return += a["drift"] + a["beta_global"] * global_move + a["beta_class"] * class_move[a["class"]]
        if products.size:
            z = float(global_move + class_weight @ class_move) / market_vol
            log_return[products] += market_payoff(
                z, market_vol, a["market_beta"][products], a["convexity"][products], a["tail_hedge"][products]
            )
        jumpers = a["jumpers"]
        if len(jumpers):
            jump_draws = draws(Draw.JUMP, d)
            hit = jump_draws.random(len(jumpers)) < a["jump_prob"]
            log_return[jumpers] += hit * a["jump_scale"] * jump_draws.standard_exponential(len(jumpers))
        if not weekdays[d]:
            log_return[weekday_only] = 0.0  # the market is closed: no move
        own_log_price += log_return

        # Derived instruments follow their driver's price; none cumulates noise of its own.
        log_price = own_log_price.copy()
        noise = draws(Draw.BASIS, d).standard_normal(n)
        stable, near, cross = a["stable"], a["near"], a["cross"]
        log_price[stable] = a["log_price"][stable] + a["stable_basis"] * noise[stable]
        log_price[a["exact"]] = log_price[a["exact_driver"]]
        log_price[near] = log_price[a["near_driver"]] + a["near_conv"] + a["near_basis"] * noise[near]
        log_price[cross] = (
            log_price[a["cross_base"]] - log_price[a["cross_quote"]] + a["cross_basis"] * noise[cross]
        )
        if prev_log_price is None:
            prev_log_price = log_price

        gap = a["gap_scale"] * idio_scale * draws(Draw.GAP, d).standard_normal(n)[source]
        open_ = np.exp(prev_log_price + gap)
        close = np.exp(log_price)
        ranges = draws(Draw.RANGE, d).standard_exponential(2 * n)
        high = np.maximum(open_, close) * np.exp(a["range_scale"] * idio_scale * ranges[:n][source])
        low = np.minimum(open_, close) * np.exp(-a["range_scale"] * idio_scale * ranges[n:][source])
        # Value traded: lognormal around the instrument's level, higher on big moves and in a crisis.
        move = np.abs(log_price - prev_log_price) / a["sigma"]
        value = a["liquidity"] * np.exp(0.6 * draws(Draw.VOLUME, d).standard_normal(n) - 0.18)
        value *= 1.0 + 1.5 * move
        if state == 2:
            value *= _CRISIS_VOLUME
        volume = value / (close * a["pointvalue"])
        np.rint(volume, out=volume, where=a["round_volume"])  # shares and contracts are whole

        has_bar = (a["listed_day"] <= d) & (d < a["delisted_day"]) & (a["seven_day"] | weekdays[d])
        no_bar = ~has_bar
        rows = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
        for name, row in rows.items():
            row[no_bar] = np.nan
            prices[name][d] = row
        last_row[has_bar] = d
        last_bar_row[d] = last_row
        prev_log_price = log_price

    fields = indicators.screen_indicators(
        prices["open"], prices["high"], prices["low"], prices["close"], prices["volume"], dates
    )
    end = config.start + timedelta(days=n_days - 1)
    return Panel(end, dates, regime, prices, last_bar_row, fields)
