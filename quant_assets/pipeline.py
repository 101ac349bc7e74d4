"""``QuantitativePipeline``: the spec's entry point, a facade over the Dagster assets.

>>> result = QuantitativePipeline().run_full_pipeline(configs=["configs/crypto_perps_long.yaml"])
>>> result.regime["regime"], result.weights.head()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import polars as pl

from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.runner import Progress, materialise_days


@dataclass(frozen=True)
class PipelineResult:
    """What one business day produced."""

    day: date
    regime: dict[str, Any]
    weights: pl.DataFrame
    signals: pl.DataFrame
    #: What each book earned over the day (``portfolio_returns``): the book held since the day before.
    returns: pl.DataFrame


def last_complete_day() -> date:
    """Yesterday in UTC: the newest day whose partition exists."""
    return datetime.now(timezone.utc).date() - timedelta(days=1)


class QuantitativePipeline:
    """Runs the daily workflow (screen, select, risk, catalog) into a lakehouse.

    Parameters
    ----------
    lakehouse
        Root of the lakehouse; default ``$QUANT_ASSETS_LAKEHOUSE`` or ``data/lakehouse``.
    source
        Market data source; ``synthetic`` runs offline.
    seed, n_instruments
        The synthetic market's seed and size.
    """

    def __init__(
        self,
        lakehouse: str | Path | None = None,
        source: str = "synthetic",
        seed: int = 7,
        n_instruments: int = 1200,
    ) -> None:
        self.store = PartitionStore(lakehouse)
        self._options = dict(
            lakehouse_root=str(self.store.root), source=source, seed=seed, n_instruments=n_instruments
        )

    def run(
        self,
        start: date,
        end: date,
        configs: Sequence[str | Path] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        log_level: str = "WARNING",
    ) -> list[date]:
        """Materialise every asset for each day from ``start`` to ``end`` inclusive."""
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        resources = build_resources(config_paths=[str(c) for c in configs or []], **self._options)
        materialise_days(days, resources, on_progress, log_level)
        return days

    def result(self, day: date) -> PipelineResult:
        """Read back what ``day`` produced from the lakehouse."""
        regime = self.store.read("regime", day)
        return PipelineResult(
            day=day,
            regime=regime.row(0, named=True),
            weights=self.store.read("barbell_weights", day),
            signals=self.store.read("signals", day).filter(pl.col("selected")),
            returns=self.store.read("portfolio_returns", day),
        )

    def run_full_pipeline(
        self, configs: Sequence[str | Path] | None = None, date: date | None = None
    ) -> PipelineResult:
        """Materialise the whole graph for one day (default: yesterday, UTC) and return it."""
        day = date or last_complete_day()
        self.run(day, day, configs)
        return self.result(day)
