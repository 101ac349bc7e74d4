"""A deterministic, offline, simulated multi-asset market: the default data source (DESIGN.md §2).

The market holds crypto spot pairs and perpetuals on several exchanges and quotes, US futures,
US stocks and ETFs, and forex pairs. Daily returns have a factor structure (a global factor
and one per asset class), Student-t tails, occasional jumps, and a volatility and correlation
that follow a hidden regime path (QUIET / NORMAL / CRISIS), so regime detection can be scored
against the truth. The same coin on several exchanges and quotes is an exact clone (identical
returns) or a near clone (the same returns plus a little noise). Instruments list and delist
during the simulated span and some change tick size. A few ETFs are volatility products whose
payoff on the market is convex (long volatility, a tail hedge) or concave (short volatility) by
construction, so antifragility scoring can be checked against the truth
(:attr:`SyntheticMarket.payoffs`).

Screens are computed from the simulated daily bars with
:mod:`quant_assets.sources.screener.indicators`, the definitions the real screener uses.

Determinism: every random draw comes from its own child generator of the config's seed, keyed
by (component, day), so a day's draws do not depend on how many days are simulated or in which
order dates are asked for, and ``perturb_after`` can redraw the future while leaving the past
byte-identical. The panel is simulated lazily up to the end of the calendar year of the latest
date asked and cached; the simulation and the indicators are causal row by row, so extending the
horizon does not change earlier rows.

Modules, each importing only those listed before it: ``config`` (the config, the random keys),
``tables`` (reference data), ``universe`` (the instruments), ``simulation`` (the daily bars),
``market`` (:class:`SyntheticMarket`: screens and bars for any date), ``source`` (the
:class:`~quant_assets.sources.base.MarketSource`). They may import ``instruments``,
``errors`` and ``sources.base`` / ``sources.screener``; nothing of the stages, the lakehouse or
Dagster.
"""

from __future__ import annotations

from quant_assets.sources.synthetic.config import SyntheticMarketConfig
from quant_assets.sources.synthetic.market import SCREEN_COLUMNS, SyntheticMarket, get_market
from quant_assets.sources.synthetic.simulation import REGIMES
from quant_assets.sources.synthetic.source import SyntheticSource
from quant_assets.sources.synthetic.universe import INSTRUMENT_COLUMNS

__all__ = [
    "INSTRUMENT_COLUMNS",
    "REGIMES",
    "SCREEN_COLUMNS",
    "SyntheticMarket",
    "SyntheticMarketConfig",
    "SyntheticSource",
    "get_market",
]
