"""What determines a synthetic market, and how its randomness is keyed.

Every random draw comes from its own child generator of the config's seed, keyed by
(component, day) as ``numpy.random.SeedSequence(seed).spawn`` would key it: a day's draws do not
depend on how many days are simulated or in which order dates are asked for, and
``perturb_after`` can redraw the future while leaving the past byte-identical.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from quant_assets.errors import ConfigError

#: How far past ``start`` the market may be simulated (memory grows with the span).
MAX_YEARS = 30

MIN_INSTRUMENTS = 50
MAX_INSTRUMENTS = 50_000


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """What determines a synthetic market: equal configs give byte-identical data.

    Attributes
    ----------
    seed : int
        Root of every random draw.
    n_instruments : int
        Instruments in the universe (50..50,000); the asset-class mix scales with it.
    start : datetime.date
        First simulated day; nothing exists before it.
    perturb_after : datetime.date or None
        When set, every random draw for days after this date is redrawn (lookahead audits):
        days up to and including it are byte-identical to the unperturbed market.
    """

    seed: int = 7
    n_instruments: int = 1200
    start: date = date(2021, 1, 1)
    perturb_after: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"SyntheticMarketConfig.seed must be a non-negative int, got {self.seed!r}")
        n = self.n_instruments
        if not isinstance(n, int) or isinstance(n, bool) or not MIN_INSTRUMENTS <= n <= MAX_INSTRUMENTS:
            raise ConfigError(
                f"SyntheticMarketConfig.n_instruments must be an int in "
                f"[{MIN_INSTRUMENTS}, {MAX_INSTRUMENTS}], got {n!r}"
            )
        for name, value in (("start", self.start), ("perturb_after", self.perturb_after or self.start)):
            if not is_date(value):
                raise ConfigError(f"SyntheticMarketConfig.{name} must be a datetime.date, got {value!r}")


def is_date(value: object) -> bool:
    # A datetime is a date too, but mixing them breaks date arithmetic and comparisons.
    return isinstance(value, date) and not isinstance(value, datetime)


class Draw(enum.IntEnum):
    """Child-generator components: spawn key ``(component,)`` for the universe,
    ``(component, day)`` for a day's draws, ``(component, day, PERTURBED)`` for a perturbed day."""

    UNIVERSE = 0
    REGIME = 1
    FACTOR = 2
    IDIO = 3
    JUMP = 4
    BASIS = 5
    GAP = 6
    RANGE = 7
    VOLUME = 8


PERTURBED = 1


def child_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of ``seed``'s child with spawn key ``key``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(map(int, key)))))
