from __future__ import annotations

import os

import polars as pl
import pytest
from dagster import AssetKey, DailyPartitionsDefinition, build_input_context, build_output_context

from quant_assets.orchestration.io_manager import PolarsParquetIOManager

PARTS = DailyPartitionsDefinition(start_date="2024-01-01")


def _output_context(partition: str):
    return build_output_context(asset_key=AssetKey("signals"), partition_key=partition)


def _input_context(partition: str):
    upstream = _output_context(partition)
    return build_input_context(
        asset_key=AssetKey("signals"), partition_key=partition, upstream_output=upstream,
        asset_partitions_def=PARTS,
    )


def test_round_trip_at_hive_path(tmp_path):
    manager = PolarsParquetIOManager(base_path=tmp_path)
    frame = pl.DataFrame({"symbol": ["A:B", "C:D"], "weight": [0.4, 0.6]})
    manager.handle_output(_output_context("2024-02-03"), frame)
    path = tmp_path / "signals" / "date=2024-02-03" / "part-0.parquet"
    assert path.is_file()
    assert pl.read_parquet(path).equals(frame)
    assert manager.load_input(_input_context("2024-02-03")).equals(frame)


def test_failed_write_leaves_previous_partition(tmp_path, monkeypatch):
    manager = PolarsParquetIOManager(base_path=tmp_path)
    old = pl.DataFrame({"x": [1, 2]})
    manager.handle_output(_output_context("2024-02-03"), old)

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt  # as abrupt as it gets inside Python

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(KeyboardInterrupt):
        manager.handle_output(_output_context("2024-02-03"), pl.DataFrame({"x": [3]}))
    monkeypatch.undo()
    folder = tmp_path / "signals" / "date=2024-02-03"
    assert os.listdir(folder) == ["part-0.parquet"]
    assert manager.load_input(_input_context("2024-02-03")).equals(old)
