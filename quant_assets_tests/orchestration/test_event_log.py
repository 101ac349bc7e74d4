"""The local instance's event log (orchestration/event_log.py): a batch of asset events written
in one transaction leaves exactly the rows Dagster's SQLite storage leaves writing them one by
one, and the local instance gets its batches when DAGSTER_EVENT_BATCH_SIZE is set."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_assets.errors import ConfigError
from quant_assets.orchestration.event_log import BatchingSqliteEventLogStorage

DAYS = DailyPartitionsDefinition(start_date="2024-01-01")
_RANGED = dict(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())


@asset(**_RANGED)
def upstream(context) -> None:
    for i, key in enumerate(context.partition_keys):
        context.add_asset_metadata({"rows": i, "day": key}, partition_key=key)


@asset(deps=[upstream], check_specs=[AssetCheckSpec("sane", asset="downstream")], **_RANGED)
def downstream(context):
    for key in context.partition_keys:
        context.add_asset_metadata({"day": key}, partition_key=key)
    yield MaterializeResult()
    yield AssetCheckResult(check_name="sane", passed=True)


def _ranged_run(instance: DagsterInstance, days: int) -> str:
    last = DAYS.get_partition_keys()[days - 1]
    result = materialize([upstream, downstream], instance=instance, tags={
        ASSET_PARTITION_RANGE_START_TAG: "2024-01-01", ASSET_PARTITION_RANGE_END_TAG: last})
    assert result.success
    return result.run_id


def _tables(directory: Path) -> dict[str, list[tuple]]:
    """Every row of every table of every database in ``directory``, in storage order, without
    the clock: the migrations' table and the columns stamped with the time of the insert."""
    rows = {}
    for db in sorted(directory.glob("*.db")):
        with sqlite3.connect(db) as conn:
            names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in set(names) - {"secondary_indexes"}:
                columns = [c for (c,) in conn.execute(f"SELECT name FROM pragma_table_info('{name}')")]
                kept = ", ".join(f'"{c}"' for c in columns if c != "create_timestamp")
                rows[f"{db.name}:{name}"] = conn.execute(f'SELECT {kept} FROM "{name}" ORDER BY rowid').fetchall()
    return rows


# Batches of 5 mix asset events with others; one batch of the whole log holds every kind.
@pytest.mark.parametrize("size", [5, 1000])
def test_batches_leave_the_rows_one_by_one_writes_leave(tmp_path, size):
    with DagsterInstance.ephemeral() as recorder:
        run_id = _ranged_run(recorder, 6)
        events = list(recorder.all_logs(run_id))
    kinds = {e.dagster_event_type.value for e in events if e.is_dagster_event}
    assert {"ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"} <= kinds

    one_by_one = SqliteEventLogStorage(str(tmp_path / "one"))
    for event in events:
        one_by_one.store_event(event)
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batch"))
    for start in range(0, len(events), size):
        batching.store_event_batch(events[start:start + size])

    expected, got = _tables(tmp_path / "one"), _tables(tmp_path / "batch")
    assert sum(len(rows) for rows in expected.values()) > len(events)
    assert got == expected
    assert batching.get_materialized_partitions(AssetKey("downstream")) == set(DAYS.get_partition_keys()[:6])


def test_local_instance_writes_a_ranged_runs_asset_events_in_batches(local_dagster_home, monkeypatch):
    batches: list[tuple[str, int]] = []
    write = BatchingSqliteEventLogStorage._store_asset_events

    def spy(self, run_id, events):
        batches.append((events[0].dagster_event_type.value, len(events)))
        write(self, run_id, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_asset_events", spy)
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        _ranged_run(instance, 3)
        assert batches == []  # without the variable, Dagster stores one event at a time
        monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "40")
        _ranged_run(instance, 100)
        assert instance.get_materialized_partitions(AssetKey("upstream")) == set(DAYS.get_partition_keys()[:100])
    assert (local_dagster_home / "history" / "runs" / "index.db").exists()
    # 200 planned partitions, then 100 materialisations per asset, in batches of at most 40.
    assert max(n for _, n in batches) == 40
    for kind, total in (("ASSET_MATERIALIZATION_PLANNED", 200), ("ASSET_MATERIALIZATION", 200)):
        assert sum(n for k, n in batches if k == kind) == total


def test_local_instance_without_dagster_home_names_what_to_set(local_dagster_home, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(ConfigError, match="event_log_storage.*base_dir.*DAGSTER_HOME"):
        DagsterInstance.from_config(str(local_dagster_home))
