"""What trading costs, per asset class: a commission and half a bid-ask spread, in basis points
of the amount traded, with the spread never less than half a tick.

The cost of trading an amount ``|Δx|`` (a fraction of the book) of one instrument is

    |Δx| · (commission_bps / 10⁴ + max(half_spread_bps / 10⁴, ½ · tick_size / price))

where ``tick_size`` is the catalog's tick size of the instrument as known on the day of the
trade and ``price`` its close that day: a coarse tick on a cheap instrument costs more than the
quoted half spread. The defaults are deliberately round, public orders of magnitude, not a
venue's fee schedule:

============  ==============  ===============  ==================================================
asset class   commission bps  half spread bps  why
============  ==============  ===============  ==================================================
crypto        10              2                spot taker fee of the large venues (0.10 %)
futures       0.5             0.5              a few dollars a contract on large notionals
stock         1               2                retail-broker commissions, liquid US names
forex         0.5             0.5              spot FX on the majors
other         10              5                anything else: priced conservatively
============  ==============  ===============  ==================================================

Not modelled: market impact (the screens pick the most liquid names, and the book is small),
financing of SHORT legs (borrow fees, funding of perpetuals) and exchange minimum sizes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Asset classes of the catalog (:func:`quant_assets.instruments.normalise_metadata`).
ASSET_CLASSES: tuple[str, ...] = ("crypto", "futures", "stock", "forex", "other")


def _bps(crypto: float, futures: float, stock: float, forex: float, other: float) -> dict[str, float]:
    return dict(zip(ASSET_CLASSES, (crypto, futures, stock, forex, other)))


class CostSettings(BaseModel):
    """The cost model of the backtest, in basis points of the amount traded per asset class."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_bps: dict[str, float] = Field(
        default_factory=lambda: _bps(10.0, 0.5, 1.0, 0.5, 10.0),
        description="Commission and fees per unit traded, by asset class (crypto, futures, stock, forex, other).",
    )
    half_spread_bps: dict[str, float] = Field(
        default_factory=lambda: _bps(2.0, 0.5, 2.0, 0.5, 5.0),
        description="Half the bid-ask spread by asset class; at least half a tick is charged.",
    )

    @field_validator("commission_bps", "half_spread_bps")
    @classmethod
    def _every_class(cls, bps: dict[str, float]) -> dict[str, float]:
        if set(bps) != set(ASSET_CLASSES) or not all(v >= 0.0 for v in bps.values()):
            raise ValueError(f"needs a value >= 0 for each of {', '.join(ASSET_CLASSES)}, got {bps}")
        return bps

    def unit_cost(self, asset_class: str | None, tick_size: float | None, price: float | None) -> float:
        """Cost of trading one unit of the book (a weight of 1) of an instrument; an unknown
        class is priced as ``other``, an unknown tick or price leaves only the quoted spread."""
        known = asset_class if asset_class in self.commission_bps else "other"
        half_spread = self.half_spread_bps[known] / 1e4
        if tick_size and price and tick_size > 0 and price > 0:
            half_spread = max(half_spread, 0.5 * tick_size / price)
        return self.commission_bps[known] / 1e4 + half_spread
