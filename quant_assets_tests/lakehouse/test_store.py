from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse.store import LAKEHOUSE_ENV, VERSION_FILE, PartitionStore, resolve_root

DAY = date(2024, 5, 2)
T0 = datetime(2024, 5, 3, 1, 0, tzinfo=timezone.utc)


def test_write_read_round_trip_and_layout(tmp_path):
    store = PartitionStore(tmp_path)
    frame = pl.DataFrame({"date": [DAY, DAY], "symbol": ["A:X", "B:Y"], "w": [0.25, 0.75]})
    version = store.write("barbell_weights", DAY, frame, recorded_at=T0)
    folder = tmp_path / "barbell_weights" / "date=2024-05-02"
    assert os.listdir(folder) == ["part-20240503T010000000000Z-" + version.digest + ".parquet"]
    assert VERSION_FILE.fullmatch(version.path.name)
    assert version.digest == hashlib.sha256((folder / version.path.name).read_bytes()).hexdigest()[:12]
    assert store.read("barbell_weights", DAY).equals(frame)
    assert store.partitions("barbell_weights") == [DAY]


def test_rewrite_adds_a_version_and_identical_content_adds_none(tmp_path):
    store = PartitionStore(tmp_path)
    store.write("regime", DAY, pl.DataFrame({"x": [1, 2, 3]}), recorded_at=T0)
    store.write("regime", DAY, pl.DataFrame({"x": [1, 2, 3]}), recorded_at=T0 + timedelta(hours=1))
    assert len(store.versions("regime", DAY)) == 1  # a rerun with the same content changes nothing
    store.write("regime", DAY, pl.DataFrame({"x": [9]}), recorded_at=T0 + timedelta(hours=2))
    assert store.read("regime", DAY)["x"].to_list() == [9]
    assert store.read("regime", DAY, known_at=T0 + timedelta(hours=1))["x"].to_list() == [1, 2, 3]
    with pytest.raises(LakehouseError, match="no version known at"):
        store.read("regime", DAY, known_at=T0 - timedelta(seconds=1))
    # Without an explicit time, a clock behind the live version still records after it.
    later = store.write("regime", DAY, pl.DataFrame({"x": [7]}))
    assert later.recorded_at > T0 + timedelta(hours=2)


def test_only_strictly_named_versions_are_partitions(tmp_path):
    store = PartitionStore(tmp_path)
    store.write("signals", DAY, pl.DataFrame({"x": [1]}), recorded_at=T0)
    (tmp_path / "signals" / "date=2024-05-02.bak").mkdir()
    store.partition_dir("signals", DAY).joinpath("part-0.parquet").write_bytes(b"legacy")
    store.partition_dir("signals", DAY).joinpath(".part-x.tmp").write_bytes(b"half")
    (tmp_path / "signals" / "notes.txt").write_text("hello")
    assert store.partitions("signals") == [DAY]
    assert [v.path.name for v in store.versions("signals", DAY)] == [store.path("signals", DAY).name]


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
    assert os.listdir(tmp_path / "covariance" / "date=2024-05-02") == [store.path("covariance", DAY).name]


def test_missing_partition_and_bad_key_name_the_problem(tmp_path):
    store = PartitionStore(tmp_path)
    with pytest.raises(LakehouseError, match="signals: partition 2024-05-02 has no version"):
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


def test_unreadable_version_names_the_file(tmp_path):
    store = PartitionStore(tmp_path)
    path = store.write("regime", DAY, pl.DataFrame({"x": [1]})).path
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(LakehouseError, match=f"cannot read {path}"):
        store.read("regime", DAY)


def test_non_local_filesystem_round_trip():
    store = PartitionStore("memory://lake")
    frame = pl.DataFrame({"date": [DAY], "v": [1.5]})
    store.write("regime", DAY, frame)
    assert store.read("regime", DAY).equals(frame)
    assert store.partitions("regime") == [DAY]
