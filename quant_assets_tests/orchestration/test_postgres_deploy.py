"""`dagster dev` (webserver + daemon) on deploy/postgres/dagster.yaml against a real PostgreSQL
on 127.0.0.1: what the UI launches runs, and the run history, event log, schedule state, daemon
heartbeats and the screener pool's slots are rows in Postgres. Checked with SQL, not through
Dagster, so a storage that silently fell back to SQLite would fail here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg2
import pytest
from dagster import deserialize_value
from dagster._core.scheduler.instigation import InstigatorState
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as RANGE_END
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG as RANGE_START

from quant_assets.orchestration.assets import ASSETS, SCREENER_POOL
from quant_assets_tests.orchestration.conftest import wait
from quant_assets_tests.servers import (
    BACKFILL,
    LAUNCH_BACKFILL,
    LAUNCH_RUN,
    POSTGRES_INSTANCE,
    DagsterDev,
    PostgresDatabase,
    PostgresServer,
    dagster_dev_server,
)

# A small market: these tests are about where the instance keeps things, not about the data.
SMALL = {"resources": {"market_data": {"config": {"n_instruments": 300}}}}

START_SCHEDULE = """
mutation($s: ScheduleSelector!) {
  startSchedule(scheduleSelector: $s) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on PythonError { message }
  }
}"""

STOP_SCHEDULE = """
mutation($id: String!) {
  stopRunningSchedule(id: $id) { __typename ... on PythonError { message } }
}"""

GRAPH = "{ assetNodes { assetKey { path } } }"


@dataclass(frozen=True)
class OnPostgres:
    dev: DagsterDev
    db: PostgresDatabase


@pytest.fixture(scope="module")
def on_postgres(postgres_cluster: PostgresServer, tmp_path_factory) -> Iterator[OnPostgres]:
    """One `dagster dev` on a database of its own for this module's tests (its start-up takes
    a while); each test looks only at the runs it launched."""
    db = postgres_cluster.create_database()
    with dagster_dev_server(tmp_path_factory.mktemp("dev_on_postgres"), POSTGRES_INSTANCE, db.env) as dev:
        yield OnPostgres(dev, db)


@dataclass
class SlotClaims:
    """What a poll of the pool's slots in Postgres saw while runs went on."""

    claims: set[tuple[str, str]] = field(default_factory=set)  # (run id, step key)
    most_at_once: int = 0
    errors: list[str] = field(default_factory=list)


@contextmanager
def watching_slots(db: PostgresDatabase, pool: str) -> Iterator[SlotClaims]:
    """Poll ``concurrency_slots`` every 0.2 s for claimed slots of ``pool`` until the block ends."""
    seen, stop = SlotClaims(), threading.Event()

    def poll() -> None:
        connection = db.connect()
        try:
            with connection.cursor() as cursor:
                while not stop.wait(0.2):
                    cursor.execute("SELECT run_id, step_key FROM concurrency_slots "
                                   "WHERE concurrency_key = %s AND run_id IS NOT NULL AND NOT deleted", (pool,))
                    rows = cursor.fetchall()
                    seen.claims.update(rows)
                    seen.most_at_once = max(seen.most_at_once, len(rows))
        except psycopg2.Error as exc:  # reported by the test, not lost with the thread
            seen.errors.append(repr(exc))
        finally:
            connection.close()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(10)


def _graph_assets(dev: DagsterDev) -> set[str]:
    return {"/".join(node["assetKey"]["path"]) for node in dev.graphql(GRAPH)["assetNodes"]}


def _pool_rows(db: PostgresDatabase) -> tuple[list[tuple], list[tuple]]:
    limits = db.query('SELECT "limit", using_default_limit FROM concurrency_limits WHERE concurrency_key = %s',
                      (SCREENER_POOL,))
    slots = db.query("SELECT run_id, step_key FROM concurrency_slots WHERE concurrency_key = %s AND NOT deleted",
                     (SCREENER_POOL,))
    return limits, slots


def test_backfill_on_postgres_leaves_runs_events_schedule_and_pool_claims_in_postgres(on_postgres):
    dev, db = on_postgres.dev, on_postgres.db
    days = [(date(2024, 6, 3) + timedelta(days=i)).isoformat() for i in range(3)]
    graph = _graph_assets(dev)
    assert {a.key.to_user_string() for a in ASSETS} == graph  # every asset, and nothing we did not write

    selector = {"repositoryLocationName": on_postgres.dev.location, "repositoryName": "__repository__",
                "scheduleName": "daily_workflow_schedule"}
    started = dev.graphql(START_SCHEDULE, {"s": selector})["startSchedule"]
    assert started["__typename"] == "ScheduleStateResult", started
    try:
        params = {"assetSelection": [{"path": [name]} for name in sorted(graph)], "partitionNames": days,
                  "title": "on postgres", "runConfigData": SMALL}
        with watching_slots(db, SCREENER_POOL) as slots:
            launched = dev.graphql(LAUNCH_BACKFILL, {"p": params})["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_id = launched["backfillId"]

            def finished() -> dict | None:
                backfill = dev.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
                return backfill if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

            backfill = wait("the backfill to finish", finished, 600)
        assert backfill["status"] == "COMPLETED_SUCCESS", (backfill, dev.log_tail())

        # The backfill and its run, in Postgres.
        assert db.query("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id,)) == [("COMPLETED_SUCCESS",)]
        runs = db.query("SELECT run_id, status FROM runs WHERE backfill_id = %s", (backfill_id,))
        assert [status for _, status in runs] == ["SUCCESS"]  # single-run backfill policy: one run
        run_ids = [run_id for run_id, _ in runs]
        assert sorted(run_ids) == sorted(run["runId"] for run in backfill["runs"])
        tags = db.query("SELECT key, value FROM run_tags WHERE run_id = %s AND key IN (%s, %s)",
                        (run_ids[0], RANGE_START, RANGE_END))
        assert sorted(tags) == sorted([(RANGE_END, days[-1]), (RANGE_START, days[0])])

        # One materialisation per asset and partition, each in the event log.
        materialised = db.query("SELECT asset_key, partition FROM event_logs WHERE run_id = ANY(%s) "
                                "AND dagster_event_type = 'ASSET_MATERIALIZATION'", (run_ids,))
        expected = [(json.dumps([name]), day) for name in graph for day in days]
        assert sorted(materialised) == sorted(expected)
        for (event,) in db.query("SELECT event FROM event_logs WHERE run_id = ANY(%s) AND "
                                 "dagster_event_type = 'ASSET_MATERIALIZATION' LIMIT 3", (run_ids,)):
            assert json.loads(event)["dagster_event"]["event_type_value"] == "ASSET_MATERIALIZATION"

        # The screener pool: its limit from dagster.yaml's default, the one slot claimed by the
        # run's raw_screen step and by nothing else, and given back.
        limits, free = _pool_rows(db)
        assert limits == [(1, True)]
        assert free == [(None, None)]
        assert not slots.errors, slots.errors
        assert slots.claims == {(run_ids[0], "raw_screen")}

        # The schedule is stored running, and the daemon's scheduler has been through it: it
        # records each pass over a running schedule in the schedule's state (the row's body,
        # decoded with Dagster's own serialiser).
        def schedule_state() -> tuple | None:
            rows = db.query("SELECT status, instigator_body FROM instigators WHERE instigator_type = 'SCHEDULE'")
            states = [(status, deserialize_value(body, InstigatorState)) for status, body in rows]
            return next((s for s in states if s[1].instigator_data.last_iteration_timestamp), None)

        status, state = wait("the scheduler to record a pass over the schedule", schedule_state, 120)
        assert status == "RUNNING" and state.instigator_name == "daily_workflow_schedule"
        assert state.instigator_data.cron_schedule == "0 1 * * *"
        # Dagster also keeps each instigator in its older `jobs` table.
        assert db.query("SELECT status FROM jobs WHERE job_type = 'SCHEDULE'") == [("RUNNING",)]
        beats = {daemon for (daemon,) in db.query("SELECT daemon_type FROM daemon_heartbeats")}
        assert {"SCHEDULER", "BACKFILL", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= beats, beats
    finally:
        # Off again, so it cannot fire at 01:00 UTC into the next test's runs.
        stopped = dev.graphql(STOP_SCHEDULE, {"id": started["scheduleState"]["id"]})["stopRunningSchedule"]
        assert stopped["__typename"] == "ScheduleStateResult", stopped


def _launch_range(on_postgres: OnPostgres, first: str, last: str) -> str:
    """A run of the daily job over ``first``..``last``, queued (not a backfill: no
    dagster/backfill tag, so the one-backfill-at-a-time limit does not apply)."""
    params = {"selector": {"repositoryLocationName": on_postgres.dev.location, "repositoryName": "__repository__",
                           "jobName": "daily_workflow"},
              "runConfigData": SMALL,
              "executionMetadata": {"tags": [{"key": RANGE_START, "value": first},
                                             {"key": RANGE_END, "value": last}]}}
    launched = on_postgres.dev.graphql(LAUNCH_RUN, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_two_runs_overlap_on_postgres_while_the_pool_screens_one_at_a_time(on_postgres):
    dev, db = on_postgres.dev, on_postgres.db
    with watching_slots(db, SCREENER_POOL) as slots:
        runs = [_launch_range(on_postgres, "2024-07-01", "2024-07-02"),
                _launch_range(on_postgres, "2024-08-01", "2024-08-02")]

        def finished() -> dict | None:
            statuses = dict(db.query("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (runs,)))
            done = all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in statuses.values())
            return statuses if done and len(statuses) == 2 else None

        statuses = wait("both runs to finish", finished, 600, transient=(OSError, psycopg2.Error))
    assert statuses == {run: "SUCCESS" for run in runs}, dev.log_tail()

    rows = db.query(
        "SELECT run_id, step_key, dagster_event_type, timestamp FROM event_logs WHERE run_id = ANY(%s) AND "
        "(dagster_event_type IN ('PIPELINE_ENQUEUED', 'PIPELINE_STARTING', 'PIPELINE_START', 'PIPELINE_SUCCESS') OR "
        " (step_key = 'raw_screen' AND dagster_event_type IN ('STEP_START', 'STEP_SUCCESS')))", (runs,))
    at: dict[tuple[str, str], datetime] = {(run, kind): ts for run, _, kind, ts in rows}
    run_span = {run: (at[run, "PIPELINE_START"], at[run, "PIPELINE_SUCCESS"]) for run in runs}
    screen = {run: (at[run, "STEP_START"], at[run, "STEP_SUCCESS"]) for run in runs}
    first, second = sorted(runs, key=lambda run: screen[run][0])
    timeline = {run: {"enqueued": at.get((run, "PIPELINE_ENQUEUED")), "launched": at.get((run, "PIPELINE_STARTING")),
                      "run": run_span[run], "raw_screen": screen[run]} for run in runs}

    # Two runs at once, both through the queue (the QueuedRunCoordinator)...
    assert all(timeline[run]["enqueued"] and timeline[run]["launched"] for run in runs), timeline
    assert max(start for start, _ in run_span.values()) < min(end for _, end in run_span.values()), timeline
    # ...whose screens took turns: the second screen started after the first had finished,
    assert screen[first][1] <= screen[second][0], timeline
    # while the first run was still going: the pool held the step, not the run.
    assert screen[second][0] < run_span[first][1], timeline
    # And the pool is why. It holds a screen back at one of two gates: the queue keeps the
    # run until the slot is free, or (when the run got past the queue, as on a pool's first
    # use) the step waits in its run, logging that it is blocked.
    (blocked,) = db.query("SELECT count(*) FROM event_logs WHERE run_id = %s AND step_key = 'raw_screen' "
                          "AND dagster_event_type = 'ENGINE_EVENT' AND event LIKE %s",
                          (second, f"%Step blocked by limit for pool {SCREENER_POOL}%"))
    assert blocked[0] > 0 or timeline[second]["launched"] >= screen[first][1], timeline

    # Both claims went through the pool's one slot in Postgres; it is free again.
    assert not slots.errors, slots.errors
    assert slots.claims == {(run, "raw_screen") for run in runs}
    assert slots.most_at_once == 1
    limits, free = _pool_rows(db)
    assert limits == [(1, True)] and free == [(None, None)]
