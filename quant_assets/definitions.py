"""The one Dagster ``Definitions`` object; ``workspace.yaml`` and ``dagster dev`` load it."""

from __future__ import annotations

from dagster import Definitions

from quant_assets.orchestration.alerts import run_failure_alert_sensor
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.freshness import freshness_checks, freshness_sensor
from quant_assets.orchestration.jobs import build_resources, daily_workflow_job, daily_workflow_schedule

defs = Definitions(
    assets=ASSETS,
    asset_checks=freshness_checks,
    jobs=[daily_workflow_job],
    schedules=[daily_workflow_schedule],
    sensors=[freshness_sensor, run_failure_alert_sensor],
    resources=build_resources(),
)
