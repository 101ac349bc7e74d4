from __future__ import annotations

import os
import uuid

import polars as pl
import pytest
from dagster import (
    AssetKey,
    DailyPartitionsDefinition,
    PartitionKeyRange,
    build_input_context,
    build_output_context,
)

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.io_manager import ParquetIOManager
from quant_assets.orchestration.resources import LakehouseResource

PARTS = DailyPartitionsDefinition(start_date="2024-01-01")
KEY = AssetKey("signals")


def _manager(root) -> ParquetIOManager:
    return ParquetIOManager(lakehouse=LakehouseResource(root=str(root)))


def _output(first: str, last: str | None = None):
    if last is None:
        return build_output_context(asset_key=KEY, partition_key=first, asset_partitions_def=PARTS)
    return build_output_context(asset_key=KEY, asset_partitions_def=PARTS,
                                asset_partition_key_range=PartitionKeyRange(first, last))


def _input(first: str, last: str | None = None, **metadata):
    return build_input_context(
        asset_key=KEY, asset_partitions_def=PARTS, definition_metadata=metadata,
        asset_partition_key_range=PartitionKeyRange(first, last or first),
    )


def test_round_trip_at_hive_path(tmp_path):
    manager = _manager(tmp_path)
    frame = pl.DataFrame({"symbol": ["A:B", "C:D"], "weight": [0.4, 0.6]})
    manager.handle_output(_output("2024-02-03"), {"2024-02-03": frame})
    path = PartitionStore(tmp_path).path("signals", "2024-02-03")
    assert str(path.parent) == str(tmp_path / "signals" / "date=2024-02-03")
    assert pl.read_parquet(path).equals(frame)
    loaded = manager.load_input(_input("2024-02-03"))
    assert list(loaded) == ["2024-02-03"]  # a dict even for one partition
    assert loaded["2024-02-03"].equals(frame)


def test_range_output_writes_every_partition_and_loads_them_in_order(tmp_path):
    manager = _manager(tmp_path)
    frames = {f"2024-02-0{d}": pl.DataFrame({"x": [d]}) for d in (5, 3, 4)}
    manager.handle_output(_output("2024-02-03", "2024-02-05"), frames)
    assert PartitionStore(tmp_path).partitions("signals")[0].isoformat() == "2024-02-03"
    loaded = manager.load_input(_input("2024-02-03", "2024-02-05"))
    assert list(loaded) == ["2024-02-03", "2024-02-04", "2024-02-05"]
    assert [f["x"][0] for f in loaded.values()] == [3, 4, 5]


def test_output_must_cover_exactly_the_run_partitions(tmp_path):
    manager = _manager(tmp_path)
    with pytest.raises(LakehouseError, match=r"signals: .*one frame per partition.*2024-02-04"):
        manager.handle_output(_output("2024-02-03", "2024-02-04"), {"2024-02-03": pl.DataFrame({"x": [1]})})
    with pytest.raises(LakehouseError, match="got DataFrame"):
        manager.handle_output(_output("2024-02-03"), pl.DataFrame({"x": [1]}))
    assert PartitionStore(tmp_path).partitions("signals") == []  # nothing half-written


def test_missing_partition_names_asset_and_day(tmp_path):
    manager = _manager(tmp_path)
    manager.handle_output(_output("2024-02-04"), {"2024-02-04": pl.DataFrame({"x": [1], "y": [2]})})
    with pytest.raises(LakehouseError, match=r"signals: partition 2024-02-03 is not materialised"):
        manager.load_input(_input("2024-02-03", "2024-02-04"))


def test_input_reads_only_the_columns_it_asks_for(tmp_path):
    manager = _manager(tmp_path)
    manager.handle_output(_output("2024-02-04"), {"2024-02-04": pl.DataFrame({"x": [1], "y": [2]})})
    assert manager.load_input(_input("2024-02-04", columns=["y"]))["2024-02-04"].columns == ["y"]


def test_failed_write_leaves_previous_partition(tmp_path, monkeypatch):
    manager = _manager(tmp_path)
    old = pl.DataFrame({"x": [1, 2]})
    manager.handle_output(_output("2024-02-03"), {"2024-02-03": old})

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt  # as abrupt as it gets inside Python

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(KeyboardInterrupt):
        manager.handle_output(_output("2024-02-03"), {"2024-02-03": pl.DataFrame({"x": [3]})})
    monkeypatch.undo()
    assert os.listdir(tmp_path / "signals" / "date=2024-02-03") == [PartitionStore(tmp_path).path("signals", "2024-02-03").name]
    assert manager.load_input(_input("2024-02-03"))["2024-02-03"].equals(old)


def test_object_storage_root_through_fsspec_memory_filesystem():
    root = f"memory://lake-{uuid.uuid4().hex}"
    manager = _manager(root)
    frames = {"2024-02-03": pl.DataFrame({"x": [1]}), "2024-02-04": pl.DataFrame({"x": [2]})}
    manager.handle_output(_output("2024-02-03", "2024-02-04"), frames)
    store = PartitionStore(root)
    assert str(store.path("signals", "2024-02-04")).startswith("memory://")
    assert [d.isoformat() for d in store.partitions("signals")] == ["2024-02-03", "2024-02-04"]
    assert manager.load_input(_input("2024-02-04"))["2024-02-04"].equals(frames["2024-02-04"])
