"""Crash safety and concurrent writers, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import polars as pl

from quant_assets.lakehouse import sql
from quant_assets.lakehouse.store import VERSION_FILE, PartitionStore

DAY = date(2024, 6, 3)

WRITER = """
import sys
import numpy as np, polars as pl
from quant_assets.lakehouse.store import VERSION_FILE, PartitionStore
store = PartitionStore(sys.argv[1])
rng = np.random.default_rng(0)
frame = pl.DataFrame({"date": [None] * 400_000, "symbol_a": "A", "symbol_b": "B",
                      "covariance": rng.standard_normal(400_000)}).with_columns(
    pl.lit(sys.argv[2]).str.to_date().alias("date"))
print("writing", flush=True)
for i in range(10_000):
    store.write("covariance", sys.argv[2], frame.with_columns(pl.lit(i).alias("generation")))
"""


def test_writer_killed_mid_write_leaves_previous_partition_readable(tmp_path):
    store = PartitionStore(tmp_path)
    old = pl.DataFrame({"date": [DAY], "symbol_a": ["A"], "symbol_b": ["B"], "covariance": [1.0], "generation": [-1]})
    store.write("covariance", DAY, old)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), DAY.isoformat()],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(1.0)  # several writes in, most likely in the middle of one
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    folder = tmp_path / "covariance" / f"date={DAY}"
    visible = [p for p in folder.iterdir() if not p.name.startswith(".")]
    # Every visible file is a whole version: the old one and complete new ones, nothing half-written.
    assert visible and all(VERSION_FILE.fullmatch(p.name) for p in visible)
    assert all(pl.read_parquet(p)["generation"].n_unique() == 1 for p in visible)
    frame = store.read("covariance", DAY)  # the newest whole version
    assert frame.height in (1, 400_000)
    assert frame["generation"].n_unique() == 1
    assert sql.query("SELECT count(*) AS n FROM covariance", tmp_path).item() == frame.height


def test_two_processes_materialise_different_days_into_one_lakehouse(tmp_path):
    days = ["2024-06-03", "2024-06-04"]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "quant_assets.cli", "run", "--start", d, "--end", d,
             "--lakehouse", str(tmp_path), "--instruments", "300", "--seed", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for d in days
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    store = PartitionStore(tmp_path)
    for asset in ("raw_screen", "signals", "barbell_weights", "metadata_catalog"):
        assert [d.isoformat() for d in store.partitions(asset)] == days, asset
    versions = sql.query("SELECT count(*) AS n, count(DISTINCT symbol) AS s FROM symbols", tmp_path)
    assert versions["n"].item() >= versions["s"].item() > 0
    universe = sql.query(f"SELECT * FROM universe_as_of(DATE '{days[1]}')", tmp_path)
    assert universe.height > 0 and (universe["tick_size"] > 0).all()
