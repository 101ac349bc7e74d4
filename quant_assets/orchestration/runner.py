"""Materialise the seven assets for a range of days in this process, one run per partition."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Sequence

from dagster import DagsterInstance, materialize

from quant_assets.errors import QuantAssetsError
from quant_assets.orchestration.assets import ASSETS, daily_partitions


@dataclass(frozen=True)
class Progress:
    """Where a multi-partition run is: partition ``done`` of ``total`` finished."""

    day: date
    done: int
    total: int
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        return self.elapsed_s / self.done * (self.total - self.done)


def _instance() -> DagsterInstance:
    # With DAGSTER_HOME set (as `make` does), runs are recorded where `make ui` shows them.
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return DagsterInstance.ephemeral()
    os.makedirs(home, exist_ok=True)
    return DagsterInstance.get()


def _root_cause(error: Any) -> str:
    # Dagster wraps the user's exception in a step-execution error; its cause says what broke.
    while error.cls_name and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    return error.message.strip()


def materialise_days(
    days: Sequence[date],
    resources: dict[str, Any],
    on_progress: Callable[[Progress], None] | None = None,
    log_level: str = "WARNING",
) -> None:
    """Run the whole graph once per day in ``days`` (ascending).

    Dagster's console log is kept at ``log_level`` (every event is still stored in the
    instance, so the UI shows the full run).

    Raises
    ------
    QuantAssetsError
        A day is outside the partitions, or a run failed; the message names the partition.
    """
    valid = daily_partitions.start.date()
    for day in days:
        if day < valid:
            raise QuantAssetsError(f"partition {day} is before the first partition {valid}")
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    started = time.monotonic()
    with _instance() as instance:
        for done, day in enumerate(sorted(days), start=1):
            result = materialize(
                ASSETS, partition_key=day.isoformat(), resources=resources,
                instance=instance, run_config=run_config, raise_on_error=False,
            )
            if not result.success:
                failures = [
                    f"{ev.step_key}: {_root_cause(ev.event_specific_data.error)}"
                    for ev in result.all_events
                    if ev.is_step_failure and ev.event_specific_data is not None
                ]
                raise QuantAssetsError(f"partition {day} failed: " + " | ".join(failures))
            if on_progress is not None:
                on_progress(Progress(day, done, len(days), time.monotonic() - started))
