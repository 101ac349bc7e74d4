"""The freshness checks on the newest daily partition: their deadline against the schedule,
what they expect before and after it, and the sensor that runs them, on a real instance with
the clock frozen."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from dagster import AssetMaterialization, DagsterInstance, build_sensor_context
from dagster._core.test_utils import freeze_time

from quant_assets.definitions import defs
from quant_assets.orchestration.assets import daily_partitions
from quant_assets.orchestration.freshness import (
    FRESHNESS_ASSETS,
    freshness_checks,
    freshness_sensor,
)
from quant_assets.orchestration.jobs import DAILY_RUN_HOUR_UTC, daily_workflow_schedule

NAMES = sorted(a.key.to_user_string() for a in FRESHNESS_ASSETS)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def _materialise(instance: DagsterInstance, *days: str, assets: list[str] = NAMES) -> None:
    """Record materialisations of ``assets`` for ``days``, as a run writing them would."""
    for name in assets:
        for day in days:
            instance.report_runless_asset_event(AssetMaterialization(name, partition=day))


def _tick(instance: DagsterInstance, cursor: str | None = None):
    return freshness_sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))


def _run_checks(instance: DagsterInstance, keys) -> dict[str, tuple[bool, str]]:
    """Run the freshness checks ``keys`` as the sensor's run request would: {asset: (passed, description)}."""
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_check_selection=set(keys), asset_selection=set())
    result = job.execute_in_process(instance=instance)
    return {e.asset_key.to_user_string(): (e.passed, e.description) for e in result.get_asset_check_evaluations()}


def test_freshness_deadline_follows_the_daily_schedule():
    # The schedule runs partition D at 01:00 UTC on D+1; the deadline is two hours later, in
    # the same zone as the partitions (the cases below are written for 03:00).
    schedule = defs.resolve_schedule_def(daily_workflow_schedule.name)
    assert DAILY_RUN_HOUR_UTC == 1 and schedule.cron_schedule == "0 1 * * *"
    assert schedule.execution_timezone == "UTC" and daily_partitions.timezone == "UTC"
    (check,) = freshness_checks
    assert sorted(spec.asset_key.to_user_string() for spec in check.check_specs) == NAMES
    for spec in check.check_specs:
        assert spec.metadata["dagster/freshness_params"].value == {"timezone": "UTC", "deadline_cron": "0 3 * * *"}
    # Registered: the checks on the assets and their sensor; not in the daily job, which keeps
    # the assets' own checks.
    assert check.check_keys <= defs.resolve_asset_graph().asset_check_keys
    assert freshness_sensor.name in {s.name for s in defs.sensors}
    daily = defs.resolve_job_def("daily_workflow").asset_layer.asset_graph.asset_check_keys
    assert daily and not daily & check.check_keys


@pytest.mark.parametrize(
    "now, materialised, expected, passed",
    [
        # After the deadline on 06-05: partition 06-04 is due.
        (_utc(2024, 6, 5, 3, 30), ["2024-06-03", "2024-06-04"], "2024-06-04", True),
        (_utc(2024, 6, 5, 3, 30), ["2024-06-03"], "2024-06-04", False),
        (_utc(2024, 6, 5, 3, 0), ["2024-06-03"], "2024-06-04", False),  # the deadline itself
        # Before it, the day before is enough: the day's run may still be going.
        (_utc(2024, 6, 5, 2, 59), ["2024-06-03"], "2024-06-03", True),
        # A later partition does not stand in for the one due.
        (_utc(2024, 6, 5, 3, 30), ["2024-06-03", "2024-06-05"], "2024-06-04", False),
    ],
    ids=["newest-there", "newest-missing", "at-deadline", "before-deadline", "gap"],
)
def test_freshness_check_wants_the_newest_partition_after_the_deadline(now, materialised, expected, passed):
    with DagsterInstance.ephemeral() as instance:
        _materialise(instance, *materialised)
        with freeze_time(now):
            request = _tick(instance).run_requests[0]
            results = _run_checks(instance, request.asset_check_keys)
    assert sorted(results) == NAMES
    for name, (ok, description) in results.items():
        assert ok is passed, (name, description)
        assert expected in description


def test_freshness_check_on_one_stale_asset_fails_that_asset_only():
    with DagsterInstance.ephemeral() as instance:
        _materialise(instance, "2024-06-03", "2024-06-04", assets=["barbell_weights", "metadata_catalog"])
        _materialise(instance, "2024-06-03", assets=["portfolio_returns"])
        with freeze_time(_utc(2024, 6, 5, 4)):
            results = _run_checks(instance, _tick(instance).run_requests[0].asset_check_keys)
    assert {name: ok for name, (ok, _) in results.items()} == {
        "barbell_weights": True, "metadata_catalog": True, "portfolio_returns": False}


def test_freshness_sensor_reruns_a_failed_check_once_the_partition_arrives():
    # Every event at its time on the frozen clock: the sensor compares when a check ran with
    # when its asset was last materialised.
    with DagsterInstance.ephemeral() as instance:
        with freeze_time(_utc(2024, 6, 4, 1, 10)):
            _materialise(instance, "2024-06-03")
        with freeze_time(_utc(2024, 6, 5, 4)):  # 06-04's run never came
            first = _tick(instance)
            assert not any(ok for ok, _ in _run_checks(instance, first.run_requests[0].asset_check_keys).values())
            # Failed, and nothing new since: nothing to run.
            idle = _tick(instance, first.cursor)
            assert not idle.run_requests and "No freshness checks need to be evaluated" in idle.skip_message
        with freeze_time(_utc(2024, 6, 5, 5)):
            _materialise(instance, "2024-06-04")  # the late run lands
        with freeze_time(_utc(2024, 6, 5, 5, 10)):
            again = _tick(instance, idle.cursor)
            assert {k.asset_key.to_user_string() for k in again.run_requests[0].asset_check_keys} == set(NAMES)
            assert all(ok for ok, _ in _run_checks(instance, again.run_requests[0].asset_check_keys).values())
        # Passed: not due again before the next deadline, 03:00 on 06-06.
        with freeze_time(_utc(2024, 6, 6, 2, 59)):
            assert not _tick(instance).run_requests
        with freeze_time(_utc(2024, 6, 6, 3, 1)):
            assert len(_tick(instance).run_requests) == 1
