from __future__ import annotations

import os
from datetime import date

import polars as pl
import pytest

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse.store import LAKEHOUSE_ENV, PartitionStore, resolve_root

DAY = date(2024, 5, 2)


def test_write_read_round_trip_and_layout(tmp_path):
    store = PartitionStore(tmp_path)
    frame = pl.DataFrame({"date": [DAY, DAY], "symbol": ["A:X", "B:Y"], "w": [0.25, 0.75]})
    path = store.write("barbell_weights", DAY, frame)
    assert str(path) == str(tmp_path / "barbell_weights" / "date=2024-05-02" / "part-0.parquet")
    assert store.read("barbell_weights", DAY).equals(frame)
    assert store.partitions("barbell_weights") == [DAY]
    assert os.listdir(tmp_path / "barbell_weights" / "date=2024-05-02") == ["part-0.parquet"]


def test_rewrite_replaces_partition_whole(tmp_path):
    store = PartitionStore(tmp_path)
    store.write("regime", DAY, pl.DataFrame({"x": [1, 2, 3]}))
    store.write("regime", DAY, pl.DataFrame({"x": [9]}))
    assert store.read("regime", DAY)["x"].to_list() == [9]


def test_failed_write_keeps_previous_partition_and_leaves_no_temp(tmp_path, monkeypatch):
    store = PartitionStore(tmp_path)
    old = pl.DataFrame({"x": [1.0, 2.0]})
    store.write("covariance", DAY, old)

    def explode(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", explode)
    with pytest.raises(OSError, match="disk full"):
        store.write("covariance", DAY, pl.DataFrame({"x": [3.0]}))
    monkeypatch.undo()
    assert store.read("covariance", DAY).equals(old)
    assert os.listdir(tmp_path / "covariance" / "date=2024-05-02") == ["part-0.parquet"]


def test_missing_partition_and_bad_key_name_the_problem(tmp_path):
    store = PartitionStore(tmp_path)
    with pytest.raises(LakehouseError, match="signals: partition 2024-05-02 not found"):
        store.read("signals", DAY)
    with pytest.raises(LakehouseError, match="not a date"):
        store.path("signals", "yesterday")


def test_root_from_argument_environment_and_default(tmp_path, monkeypatch):
    assert str(resolve_root(tmp_path)) == str(tmp_path)
    monkeypatch.setenv(LAKEHOUSE_ENV, str(tmp_path / "env"))
    assert str(resolve_root()) == str(tmp_path / "env")
    monkeypatch.delenv(LAKEHOUSE_ENV)
    monkeypatch.chdir(tmp_path)
    assert str(resolve_root()) == str(tmp_path / "data" / "lakehouse")


def test_non_local_filesystem_round_trip():
    store = PartitionStore("memory://lake")
    frame = pl.DataFrame({"date": [DAY], "v": [1.5]})
    store.write("regime", DAY, frame)
    assert store.read("regime", DAY).equals(frame)
    assert store.partitions("regime") == [DAY]
