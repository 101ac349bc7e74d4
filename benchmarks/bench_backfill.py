"""Backfill of a year: one Dagster run for 365 partitions × every asset vs one run per partition.

Both paths run the same assets on the default synthetic market (1,200 instruments, seed 7, the
four shipped configs) into fresh lakehouses, with an ephemeral Dagster instance. The market's
panel is simulated once beforehand and shared by both (timed separately). One run per
partition is measured on 30 partitions and extrapolated to 365, on a lakehouse holding the
same past (the liquid_universe partitions of the regime's lookback window and the two
decisions the backtest holds over its first day, copied from the single run); the 30 days it wrote are then compared with the same days of the single run, which
must be identical.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from quant_assets.backtest.daily import DECISION_COLUMNS
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.runner import materialise_days
from quant_assets.risk.daily import UNIVERSE_WINDOW_DAYS

YEAR = [date(2023, 1, 1) + timedelta(days=i) for i in range(365)]
SAMPLE = YEAR[150:180]  # one run per partition: 30 days, extrapolated
NAMES = [a.key.to_user_string() for a in ASSETS]


def _differences(a: PartitionStore, b: PartitionStore, days: list[date]) -> list[str]:
    found = []
    for name in NAMES:
        for day in days:
            x, y = a.read(name, day), b.read(name, day)
            if not x.equals(y):
                found.append(f"{name} {day}")
    return found


def main() -> None:
    os.environ.pop("DAGSTER_HOME", None)  # an ephemeral instance: nothing written to data/
    with tempfile.TemporaryDirectory() as tmp:
        single_root, per_root = Path(tmp, "single"), Path(tmp, "per")
        single = build_resources(lakehouse_root=str(single_root))
        per = build_resources(lakehouse_root=str(per_root))

        started = time.perf_counter()
        single["market_data"].get_source().market.screen(YEAR[-1])
        simulate_s = time.perf_counter() - started

        started = time.perf_counter()
        materialise_days(YEAR, single, max_days_per_run=len(YEAR))
        single_s = time.perf_counter() - started

        single_store, per_store = PartitionStore(single_root), PartitionStore(per_root)
        for day in YEAR[YEAR.index(SAMPLE[0]) - UNIVERSE_WINDOW_DAYS + 1 : YEAR.index(SAMPLE[0])]:
            per_store.write("liquid_universe", day, single_store.read("liquid_universe", day))
        for day in YEAR[YEAR.index(SAMPLE[0]) - 2 : YEAR.index(SAMPLE[0])]:  # the backtest's decisions
            for name in DECISION_COLUMNS:
                per_store.write(name, day, single_store.read(name, day))
        started = time.perf_counter()
        materialise_days(SAMPLE, per, max_days_per_run=1)
        per_s = time.perf_counter() - started

        differences = _differences(single_store, per_store, SAMPLE)

    per_partition_single = single_s / len(YEAR)
    per_partition_runs = per_s / len(SAMPLE)
    print(f"backfill: 365 daily partitions x {len(NAMES)} assets, {YEAR[0]}..{YEAR[-1]}, "
          "default synthetic market (1,200 instruments)")
    print(f"  market panel simulated once beforehand        {simulate_s:7.2f} s"
          "   (near 0 when an earlier benchmark of this process already did)")
    print(f"  single run, all 365 partitions                {single_s:7.2f} s   "
          f"{per_partition_single * 1000:6.0f} ms/partition   (target <= 120 s)")
    print(f"  one run per partition, 30 partitions          {per_s:7.2f} s   "
          f"{per_partition_runs * 1000:6.0f} ms/partition")
    print(f"  one run per partition, extrapolated to 365    {per_partition_runs * len(YEAR):7.2f} s")
    print(f"  speed-up per partition                        {per_partition_runs / per_partition_single:7.1f}x"
          "   (target >= 10x)")
    print(f"  30 common partitions identical                {'yes' if not differences else 'NO: ' + ', '.join(differences[:5])}")


if __name__ == "__main__":
    main()
