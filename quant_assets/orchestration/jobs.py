"""The daily job over all seven assets, its schedule, and the resources they run with."""

from __future__ import annotations

from typing import Any

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.io_manager import ParquetIOManager
from quant_assets.orchestration.resources import (
    CostsResource,
    LakehouseResource,
    MarketDataResource,
    RiskResource,
    ScreeningResource,
)

daily_workflow_job = define_asset_job(
    "daily_workflow",
    # Every asset with its own checks. Not the freshness checks (freshness.py): they judge the
    # newest day whenever they run, not the run's partition, and their sensor runs them.
    selection=AssetSelection.all().without_checks()
    | AssetSelection.checks(*(key for assets_def in ASSETS for key in assets_def.check_keys)),
    description="Screen, select, assess risk, allocate, catalog and account for one day.",
)

#: Hour (UTC) the schedule runs each partition after its day closes; freshness.py's deadline follows.
DAILY_RUN_HOUR_UTC = 1

# Stopped until a user starts it.
daily_workflow_schedule = build_schedule_from_partitioned_job(daily_workflow_job, hour_of_day=DAILY_RUN_HOUR_UTC)


def build_resources(
    *,
    lakehouse_root: str = "",
    source: str = "synthetic",
    seed: int = 7,
    n_instruments: int = 1200,
    config_paths: list[str] | None = None,
) -> dict[str, Any]:
    """The resources every asset needs, configured from plain values."""
    lakehouse = LakehouseResource(root=lakehouse_root)
    return {
        "market_data": MarketDataResource(source=source, seed=seed, n_instruments=n_instruments),
        "screening": ScreeningResource(config_paths=list(config_paths or [])),
        "risk": RiskResource(),
        "costs": CostsResource(),
        "lakehouse": lakehouse,
        "parquet_io_manager": ParquetIOManager(lakehouse=lakehouse),
    }
