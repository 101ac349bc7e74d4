"""The one Dagster ``Definitions`` object; ``workspace.yaml`` and ``dagster dev`` load it."""

from __future__ import annotations

from dagster import Definitions

from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources, daily_workflow_job, daily_workflow_schedule

defs = Definitions(
    assets=ASSETS,
    jobs=[daily_workflow_job],
    schedules=[daily_workflow_schedule],
    resources=build_resources(),
)
