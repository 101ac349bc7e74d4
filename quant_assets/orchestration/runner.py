"""Materialise the seven assets for a range of days in this process.

Consecutive days go into one run (the assets' single-run backfill policy), up to
``max_days_per_run`` days each, so a year costs a handful of runs instead of 365.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Sequence

from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_assets.errors import QuantAssetsError
from quant_assets.orchestration.assets import ASSETS, SCREENER_POOL, daily_partitions

#: The process that runs a run in-process; lets a later runner tell a dead run from a live one.
RUNNER_PID_TAG = "quant_assets/runner_pid"


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Fail the runs of ``quant-assets run`` processes that died holding the screener's pool
    slot (killed outright, out of memory) and free their slots; return their run ids.

    Such a run stays STARTED with its slot claimed, and the next run would wait for the slot
    for ever, silently (the daemon's run monitoring does not watch in-process runs).
    """
    released = []
    for slot in instance.event_log_storage.get_concurrency_info(SCREENER_POOL).claimed_slots:
        run = instance.get_run_by_id(slot.run_id)
        pid = run.tags.get(RUNNER_PID_TAG) if run is not None else None
        if run is None or run.is_finished or pid is None or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the quant-assets process that ran it (pid {pid}) is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def root_cause(error: Any) -> str:
    """The message of what broke under a step failure's error (a ``SerializableErrorInfo``)."""
    # Dagster wraps the user's exception in a step-execution error; its cause says what broke.
    while error.cls_name and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    return error.message.strip()


def _runs(days: Sequence[date], max_days: int) -> list[list[date]]:
    """Split ascending days into runs of consecutive days, at most ``max_days`` each."""
    runs: list[list[date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1 and len(runs[-1]) < max_days:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def materialise_days(
    days: Sequence[date],
    resources: dict[str, Any],
    on_progress: Callable[[Progress], None] | None = None,
    log_level: str = "WARNING",
    max_days_per_run: int = 92,
    selection: Sequence[str] | None = None,
) -> None:
    """Run the whole graph (or the assets named in ``selection``) for every day in ``days``,
    consecutive days in one run each.

    Dagster's console log is kept at ``log_level`` (every event is still stored in the
    instance, so the UI shows the full run). ``on_progress`` is called after each run.

    Raises
    ------
    QuantAssetsError
        A day is outside the partitions, or a run failed; the message names the partitions.
    """
    valid = daily_partitions.start.date()
    for day in days:
        if day < valid:
            raise QuantAssetsError(f"partition {day} is before the first partition {valid}")
    if max_days_per_run < 1:
        raise QuantAssetsError(f"max_days_per_run must be at least 1, got {max_days_per_run}")
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    started, done = time.monotonic(), 0
    ordered = sorted(set(days))
    with _instance() as instance:
        release_dead_runs(instance)
        for run in _runs(ordered, max_days_per_run):
            first, last = run[0].isoformat(), run[-1].isoformat()
            result = materialize(
                ASSETS, resources=resources, instance=instance, run_config=run_config, selection=selection,
                tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last,
                      RUNNER_PID_TAG: str(os.getpid())},
                raise_on_error=False,
            )
            if not result.success:
                failures = [
                    f"{ev.step_key}: {root_cause(ev.event_specific_data.error)}"
                    for ev in result.all_events
                    if ev.is_step_failure and ev.event_specific_data is not None
                ]
                span = first if first == last else f"{first}..{last}"
                raise QuantAssetsError(f"partitions {span} failed: " + " | ".join(failures))
            done += len(run)
            if on_progress is not None:
                on_progress(Progress(run[-1], done, len(ordered), time.monotonic() - started))
