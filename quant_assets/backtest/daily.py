"""A run of the backtest: the decisions before each of its days read from the lakehouse, the bars
read once through the bars cache, then each day computed on its own by
:func:`~quant_assets.backtest.books.book_day`.

Partition D reads the ``barbell_weights``, ``signals``, ``regime`` and ``metadata_catalog``
partitions of the two decisions before D (never D's own) and bars up to D's close; a run over
a range reads them once for all its days and gives each day exactly what a run of that day
alone would see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from quant_assets.backtest.books import DailyReturns, Decision, decision_days, target_books
from quant_assets.instruments import BAR_SCHEMA
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.risk.returns import PriceMatrix
from quant_assets.screening.gates import selected_signals
from quant_assets.sources.base import MarketSource

#: What a decision reads of each asset's partition (of ``signals`` the selected rows, of the
#: catalog the rows of the symbols some book holds).
DECISION_COLUMNS: dict[str, list[str]] = {
    "barbell_weights": ["symbol", "direction", "sleeve", "weight"],
    "signals": ["date", "config", "symbol", "direction", "selected"],
    "regime": ["regime"],
    "metadata_catalog": ["symbol", "asset_class", "tick_size"],
}
#: Bars read before the first decision, so that its close (or the last one before it) is known.
_BARS_BEFORE_DAYS = 10


@dataclass(frozen=True)
class RunInputs:
    """What a run of days needs.

    Attributes
    ----------
    schedule : dict of date to (date or None, date or None)
        Each day's decision held over it and the one before that (None: there is none).
    decisions : dict of date to Decision
        Every decision the schedule names.
    market : DailyReturns
        Returns of every instrument of those decisions up to the run's last day.
    """

    schedule: dict[date, tuple[date | None, date | None]]
    decisions: dict[date, Decision]
    market: DailyReturns


def load_run(
    store: PartitionStore, source: MarketSource, cache: BarsCache, days: Sequence[date], core_share: Mapping[str, float]
) -> RunInputs:
    """Read what the run over ``days`` needs (see the module docstring); ``core_share`` is the
    risk stage's core share per regime (the ``fixed_core_90`` benchmark rescales by it).

    Raises
    ------
    LakehouseError
        A decision day's ``signals``, ``regime`` or ``metadata_catalog`` partition is missing
        or unreadable.
    """
    schedule = decision_days(store.partitions("barbell_weights"), days)
    needed = sorted({d for pair in schedule.values() for d in pair if d is not None})
    decisions = _decisions(store, needed, core_share) if needed else {}
    symbols = sorted({s for d in decisions.values() for book in d.books.values() for s in book})
    bars = (cache.bars(source.daily_bars, symbols, needed[0] - timedelta(days=_BARS_BEFORE_DAYS), max(days))
            if symbols else pl.DataFrame(schema=BAR_SCHEMA))
    return RunInputs(schedule, decisions, DailyReturns(PriceMatrix.from_bars(bars)))


def _decisions(store: PartitionStore, days: Sequence[date], core_share: Mapping[str, float]) -> dict[date, Decision]:
    """The decisions of ``days`` (at least one), their partitions read in one scan per asset."""
    weights = store.read_many("barbell_weights", days, DECISION_COLUMNS["barbell_weights"])
    regimes = store.read_many("regime", days, DECISION_COLUMNS["regime"])
    signals = store.read_many("signals", days, DECISION_COLUMNS["signals"], where=pl.col("selected"))
    legs = selected_signals(pl.concat(signals.values())).partition_by("date", as_dict=True)
    labels = {day: regimes[day]["regime"][0] if regimes[day].height else None for day in days}
    books = {
        day: target_books(weights[day], legs.get((day,), signals[day].clear()), 1.0 - core_share.get(labels[day], 1.0))
        for day in days
    }
    held = sorted({s for day_books in books.values() for book in day_books.values() for s in book})
    catalog = store.read_many("metadata_catalog", days, DECISION_COLUMNS["metadata_catalog"],
                              where=pl.col("symbol").is_in(held))
    decisions = {}
    for day in days:
        decisions[day] = Decision(
            day=day,
            regime=labels[day],
            books=books[day],
            instruments={s: (c, t) for s, c, t in catalog[day].iter_rows()},
        )
    return decisions
