"""A screen that answers no rows flows through all seven assets as empty partitions of the
usual columns, each saying why, with a warning and no failure."""

from __future__ import annotations

from datetime import date

from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, materialize

from quant_assets.lakehouse.contracts import CONTRACTS
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources

DAY = date(2024, 6, 8)
NOTHING = """\
name: nothing
direction: LONG
markets: [crypto, america]
filters:
  - {left: close, operation: greater, right: 1.0e15}   # YAML 1.2: a number, not a field name
"""


def test_an_empty_screen_is_an_empty_partition_of_every_asset(tmp_path):
    config = tmp_path / "nothing.yaml"
    config.write_text(NOTHING)
    resources = build_resources(lakehouse_root=str(tmp_path / "lake"), config_paths=[str(config)], n_instruments=300)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(ASSETS, resources=resources, instance=instance, partition_key=DAY.isoformat())
        assert result.success
        store = PartitionStore(tmp_path / "lake")
        for asset in CONTRACTS:
            frame = store.read(asset, DAY)
            assert frame.is_empty(), asset
            assert set(CONTRACTS[asset].columns) <= set(frame.columns), asset
            assert all(frame.schema[c] == t for c, t in CONTRACTS[asset].columns.items()), asset
            materialization = instance.get_latest_materialization_event(AssetKey(asset)).asset_materialization
            assert materialization.metadata["dagster/row_count"].value == 0
            assert materialization.metadata["empty"].value, asset  # and why
        checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
        for asset in CONTRACTS:
            assert checks[(asset, "contract")].passed, asset
            has_rows = checks[(asset, "has_rows")]
            assert not has_rows.passed and has_rows.severity == AssetCheckSeverity.WARN, asset
        assert "no symbol of the universe" in instance.get_latest_materialization_event(
            AssetKey("regime")).asset_materialization.metadata["empty"].value
