"""The SQL surface reads and only reads: one SELECT per call, nothing outside the lakehouse,
no setting changed, nothing written; a bad file fails only the queries that need it, naming
it; stray files are never data."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import polars as pl
import pytest

from quant_assets import cli
from quant_assets.errors import LakehouseError, ValidationError
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.store import PartitionStore
from quant_assets_tests.lakehouse.conftest import DAY, T1, signals, write_book

BOOK = ["EX:A", "EX:B", "EX:C"]


@pytest.fixture
def lake(tmp_path):
    store = PartitionStore(tmp_path / "lake")
    for k in range(3):
        write_book(store, DAY + timedelta(days=k), BOOK, T1 + timedelta(days=k))
    return store


def _files(root) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "_cache" not in p.parts}


@pytest.mark.parametrize("statement, refused", [
    ("COPY (SELECT 1 AS x) TO '{part}'", "COPY"),
    ("COPY (SELECT * FROM regime) TO '{root}/regime' (FORMAT parquet, PARTITION_BY (date), OVERWRITE)", "COPY"),
    ("ATTACH '{root}/regime/new.db'", "ATTACH"),
    ("SET enable_external_access = true", "SET"),
    ("SELECT 1; DROP VIEW regime", "2 statements"),
    ("SELECT 1; COPY (SELECT 1) TO '{part}'", "2 statements"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("", "0 statements"),
])
def test_only_one_select_statement_runs(lake, statement, refused):
    before = _files(lake.root)
    text = statement.format(root=lake.root, part=lake.path("regime", DAY))
    with pytest.raises(ValidationError, match=refused):
        sql.query(text, lake.root)
    with sql.connect(lake.root) as con, pytest.raises(ValidationError, match=refused):
        con.sql(text)
    assert _files(lake.root) == before
    assert not (lake.root / "regime" / "new.db").exists()


@pytest.mark.parametrize("reader", [
    "SELECT * FROM read_csv('/etc/hostname')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('{root}/../outside.parquet')",
])
def test_a_query_reads_nothing_outside_the_lakehouse(lake, reader):
    pl.DataFrame({"x": [1]}).write_parquet(lake.root.parent / "outside.parquet")
    with pytest.raises(duckdb.PermissionException):
        sql.query(reader.format(root=lake.root), lake.root)


def test_the_cli_refuses_a_write_with_a_clear_message(lake, capsys):
    assert cli.main(["sql", f"COPY regime TO '{lake.root}/x.csv'", "--lakehouse", str(lake.root)]) == 1
    err = capsys.readouterr().err
    assert "a query may only read: one SELECT" in err and "COPY" in err
    assert not (lake.root / "x.csv").exists()


def test_stray_folders_and_files_are_never_read_as_data(lake):
    live = lake.path("signals", DAY)
    # A copied folder, a legacy file, a hand-placed copy and a temporary file: none is data.
    shutil.copytree(live.parent, live.parent.with_name(f"date={DAY}.bak"))
    shutil.copy(live, live.with_name("part-0.parquet"))
    shutil.copy(live, live.with_name("part-copy.parquet"))
    shutil.copy(live, live.with_name(f".{live.name}.1234.tmp"))
    counts = sql.query("SELECT date, count(*) AS n FROM signals GROUP BY date ORDER BY date", lake.root)
    assert counts["n"].to_list() == [len(BOOK)] * 3
    assert sql.query(f"SELECT count(*) FROM signals_as_of(DATE '{DAY}')", lake.root).item() == len(BOOK)


def test_a_truncated_catalog_file_fails_only_the_catalog_queries_naming_it(lake):
    bad = lake.path("metadata_catalog", DAY + timedelta(days=1))
    bad.write_bytes(bad.read_bytes()[:100])
    assert sql.query("SELECT count(*) FROM regime", lake.root).item() == 3
    assert sql.query("SELECT count(*) FROM signals", lake.root).item() == 3 * len(BOOK)
    for catalog_query in ("SELECT * FROM symbols", f"SELECT * FROM symbols_as_of(DATE '{DAY}')",
                          f"SELECT * FROM universe_as_of(DATE '{DAY}')"):
        with pytest.raises(LakehouseError, match=bad.name):
            sql.query(catalog_query, lake.root)


def test_a_partition_of_another_schema_fails_the_queries_on_its_asset_naming_it(lake):
    day = DAY + timedelta(days=1)
    wrong = signals(day, BOOK).rename({"symbol": "ticker", "config": "screen"})
    path = lake.write("signals", day, wrong, recorded_at=T1 + timedelta(days=30)).path
    with pytest.raises(duckdb.Error, match=f"signals: {path}.* lacks date, config, symbol"):
        sql.query("SELECT date, count(*) FROM signals GROUP BY date", lake.root)
    assert sql.query("SELECT count(*) FROM regime", lake.root).item() == 3


def test_run_names_the_file_it_could_not_read(lake):
    bad = lake.path("regime", DAY)
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(LakehouseError, match=f"cannot read {bad}"):
        lake.read("regime", DAY)
