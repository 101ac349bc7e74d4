"""The executor runs `dagster dev` gives the daily job: Definitions names none, so Dagster's
default applies (multiprocess: one process per step, independent steps at once, as many as
cores), while `quant-assets run` executes in-process. Both must write the same lakehouse."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
from dagster import DagsterEventType, DagsterInstance, execute_job, reconstructable

from quant_assets.definitions import defs
from quant_assets.lakehouse.store import LAKEHOUSE_ENV, PartitionStore
from quant_assets.orchestration.assets import ASSETS

DAYS = [date(2024, 6, 3) + timedelta(days=i) for i in range(3)]
NAMES = [a.key.to_user_string() for a in ASSETS]
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0].isoformat(),
              "dagster/asset_partition_range_end": DAYS[-1].isoformat()}
# Independent of each other once their inputs exist: the multiprocess executor may run them at once.
INDEPENDENT = [("signals", "regime"), ("covariance", "metadata_catalog"), ("covariance", "regime"),
               ("metadata_catalog", "regime")]


def daily_workflow():
    """The job `dagster dev` launches, rebuilt by each step's process from this module."""
    return defs.resolve_job_def("daily_workflow")


def _run(instance: DagsterInstance, executor: str, lake: Path, monkeypatch) -> str:
    # The lakehouse resource reads its root from the environment, in every step process.
    monkeypatch.setenv(LAKEHOUSE_ENV, str(lake))
    run_config = {"execution": {"config": {executor: {}}},
                  "resources": {"market_data": {"config": {"n_instruments": 300}}},
                  "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with execute_job(reconstructable(daily_workflow), instance, run_config=run_config, tags=RANGE_TAGS) as result:
        assert result.success, executor
        return result.run_id


def _steps(instance: DagsterInstance, run_id: str) -> dict[str, tuple[float, float, int]]:
    """Each step's (start, end, pid): from its worker's launch (the step's own process under
    the multiprocess executor) or its start, to its success."""
    steps: dict[str, dict] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        step = steps.setdefault(event.step_key, {})
        if event.event_type in (DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_START):
            step.setdefault("start", record.timestamp)
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            step["end"] = record.timestamp
        if event.event_type == DagsterEventType.STEP_START:
            step["pid"] = event.pid
    return {key: (s["start"], s["end"], s["pid"]) for key, s in steps.items()}


def _run_pid(instance: DagsterInstance, run_id: str) -> int:
    (start,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    return start.dagster_event.pid


def test_multiprocess_executor_runs_steps_at_once_and_writes_what_in_process_writes(
        tmp_path, monkeypatch, local_dagster_home):
    lakes = {executor: tmp_path / executor for executor in ("multiprocess", "in_process")}
    with DagsterInstance.from_config(str(local_dagster_home)) as instance:
        runs = {executor: _run(instance, executor, lake, monkeypatch) for executor, lake in lakes.items()}
        parallel, serial = _steps(instance, runs["multiprocess"]), _steps(instance, runs["in_process"])
        parallel_pid, serial_pid = _run_pid(instance, runs["multiprocess"]), _run_pid(instance, runs["in_process"])

    # Every asset is a step of both runs; one process per step, or all in the run's process.
    assert set(NAMES) <= set(parallel) and set(parallel) == set(serial)
    assert len({pid for _, _, pid in parallel.values()} | {parallel_pid}) == len(parallel) + 1
    assert {pid for _, _, pid in serial.values()} == {serial_pid}
    # In the serial run no two steps overlap; in the multiprocess one, independent ones do.
    ordered = sorted(serial.values())
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(ordered, ordered[1:]))
    overlapping = [(a, b) for a, b in INDEPENDENT
                   if max(parallel[a][0], parallel[b][0]) < min(parallel[a][1], parallel[b][1])]
    assert overlapping, {key: parallel[key][:2] for key in NAMES}

    # Same files (assets' partitions and the bars cache), same contents.
    files = {executor: sorted(lake.rglob("*.parquet")) for executor, lake in lakes.items()}
    folders = {executor: [path.relative_to(lakes[executor]).parent for path in paths]
               for executor, paths in files.items()}
    assert folders["multiprocess"] == folders["in_process"]
    assert set(NAMES) <= {folder.parts[0] for folder in folders["in_process"]}
    for multiprocess, in_process in zip(files["multiprocess"], files["in_process"]):
        assert pl.read_parquet(multiprocess).equals(pl.read_parquet(in_process)), in_process
    # And through the store, as the next asset reads them.
    stores = {executor: PartitionStore(lake) for executor, lake in lakes.items()}
    for name in NAMES:
        assert stores["multiprocess"].partitions(name) == DAYS == stores["in_process"].partitions(name), name
        for day in DAYS:
            assert stores["multiprocess"].read(name, day).equals(stores["in_process"].read(name, day)), (name, day)
