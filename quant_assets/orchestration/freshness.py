"""Is the newest day there? A freshness check on the newest daily partition of the assets people
read, and the sensor that runs it.

The daily schedule (``jobs.py``) runs partition D at 01:00 UTC on D+1. From the deadline,
03:00 UTC on D+1, the check expects partition D of each asset below to be materialised, and
fails until it is; before the deadline it expects D-1. Two hours leave room for a run that
waits in the queue (behind a backfill, under the pool), a screener step retried with
backoff, and a run retried after its pod died. Cron and partitions are both in UTC, so the
deadline does not move with daylight saving time.

The daily job leaves these checks out; their sensor runs them. A run started from the UI on
these assets runs them too, beside the assets (nothing orders them after), so a catch-up run
can fail its freshness check before it writes the partition; the sensor runs the check again
once the asset has been materialised since.

Dagster 1.13 marks these factories as superseded by ``FreshnessPolicy``. We keep them: a
``FreshnessPolicy.cron`` asks whether the asset was materialised recently, and a backfill of
last year would answer yes; this check asks whether the newest partition exists.
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetCheckSeverity,
    AssetChecksDefinition,
    SensorDefinition,
    SupersessionWarning,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

from quant_assets.orchestration.assets import barbell_weights, metadata_catalog, portfolio_returns
from quant_assets.orchestration.jobs import DAILY_RUN_HOUR_UTC

#: Hours the daily run has, from its start, to write yesterday's partition.
FRESHNESS_GRACE_HOURS = 2
FRESHNESS_DEADLINE_CRON = f"0 {DAILY_RUN_HOUR_UTC + FRESHNESS_GRACE_HOURS} * * *"

# The assets people consume: the book, the point-in-time catalog and what the book earned.
# Every other asset is upstream of barbell_weights, so a day missing anywhere shows here too,
# without one failed check per asset for the same missing day.
FRESHNESS_ASSETS = (barbell_weights, metadata_catalog, portfolio_returns)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SupersessionWarning)
    freshness_checks: list[AssetChecksDefinition] = list(build_time_partition_freshness_checks(
        assets=list(FRESHNESS_ASSETS),
        deadline_cron=FRESHNESS_DEADLINE_CRON,
        timezone="UTC",
        # A missing book is an error for whoever trades on it. Not blocking: the check runs in
        # runs of its own, where there is nothing downstream to hold back.
        severity=AssetCheckSeverity.ERROR,
    ))
    # Launches a run of the checks when a passed check can have become overdue (its
    # fresh-until time has passed), and a failed one again once its asset has been
    # materialised since. Stopped until a user starts it, like the schedule.
    freshness_sensor: SensorDefinition = build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        minimum_interval_seconds=600,
        name="freshness_checks_sensor",
    )
