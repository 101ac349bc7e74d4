"""``quant-assets doctor`` names every file readers ignore or cannot trust; ``quant-assets catalog
export`` gives any DuckDB client the same views and macros, tested from another process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest

from quant_assets import cli
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.doctor import examine
from quant_assets.lakehouse.store import PartitionStore
from quant_assets_tests.lakehouse.conftest import DAY, T1, signals, write_book

BOOK = ["EX:A", "EX:B", "EX:C"]


@pytest.fixture
def store(tmp_path) -> PartitionStore:
    store = PartitionStore(tmp_path / "lake")
    for k in range(3):
        write_book(store, DAY + timedelta(days=k), BOOK, T1 + timedelta(days=k))
    write_book(store, DAY + timedelta(days=1), BOOK[:2], T1 + timedelta(days=9))  # a correction
    return store


def test_doctor_is_quiet_on_a_healthy_lakehouse(store, capsys):
    sql.query("SELECT * FROM symbols", store.root)  # the derived cache is no problem
    assert examine(store) == []
    assert cli.main(["doctor", "--lakehouse", str(store.root)]) == 0
    assert "0 problems" in capsys.readouterr().out


def test_doctor_names_stray_corrupt_legacy_and_off_contract_files(store, capsys):
    live = store.path("signals", DAY)
    shutil.copytree(live.parent, live.parent.with_name(f"date={DAY}.bak"))
    shutil.copy(live, live.with_name("part-0.parquet"))
    (store.root / "regime" / "notes.txt").write_text("hand-written")
    truncated = store.path("regime", DAY)
    truncated.write_bytes(truncated.read_bytes()[:50])
    wrong = store.write("signals", DAY + timedelta(days=2), signals(DAY, BOOK).drop("direction"),
                        recorded_at=T1 + timedelta(days=20)).path
    found = {(str(f.path), f.kind) for f in examine(store)}
    assert found == {
        (str(live.parent.with_name(f"date={DAY}.bak")), "stray"),
        (str(live.with_name("part-0.parquet")), "legacy"),
        (str(store.root / "regime" / "notes.txt"), "stray"),
        (str(truncated), "corrupt"),
        (str(wrong), "schema"),
    }
    assert cli.main(["doctor", "--lakehouse", str(store.root)]) == 1
    out = capsys.readouterr().out
    assert "5 problems" in out and str(wrong) in out and "missing columns ['direction']" in out


README_QUERIES = [
    "SELECT date, regime FROM regime ORDER BY date",
    f"SELECT w.symbol, w.sleeve, w.weight, s.tick_size, s.valid_from FROM barbell_weights w "
    f"JOIN symbols_as_of(DATE '{DAY}') s USING (symbol) WHERE w.date = DATE '{DAY}' ORDER BY w.symbol",
    f"SELECT * FROM universe_as_of(DATE '{DAY + timedelta(days=1)}', TIMESTAMPTZ '{(T1 + timedelta(days=2)).isoformat()}') "
    f"ORDER BY symbol",
    f"SELECT * FROM universe_as_of(DATE '{DAY + timedelta(days=1)}') ORDER BY symbol",
    "SELECT symbol, version, tick_size, valid_from, valid_to FROM symbols ORDER BY symbol, version",
    f"SELECT symbol, last_observed, active FROM symbols_as_of(DATE '{DAY + timedelta(days=2)}', "
    f"TIMESTAMP '{(T1 + timedelta(days=3)).strftime('%Y-%m-%d %H:%M:%S')}') ORDER BY symbol",
    f"SELECT count(*) AS n FROM signals_as_of(DATE '{DAY + timedelta(days=1)}', '{(T1 + timedelta(days=2)).isoformat()}')",
]


def test_export_answers_the_readme_queries_in_another_duckdb_process(store, tmp_path, capsys):
    target = tmp_path / "lake.duckdb"
    assert cli.main(["catalog", "export", str(target), "--lakehouse", str(store.root)]) == 0
    assert str(target) in capsys.readouterr().out
    probe = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect()\n"
        "con.execute(\"SET TimeZone = 'Asia/Tokyo'\")\n"  # the macros read times as UTC regardless
        f"con.execute(\"ATTACH '{target}' AS lake (READ_ONLY)\")\n"
        "con.execute('USE lake')\n"
        "out = [con.sql(q).pl().write_csv() for q in json.loads(sys.argv[1])]\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, json.dumps(README_QUERIES)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    theirs = json.loads(result.stdout.splitlines()[-1])
    ours = [sql.query(q, store.root).write_csv() for q in README_QUERIES]
    assert theirs == ours
    assert len(ours[2].splitlines()) == 1 + 3 and len(ours[3].splitlines()) == 1 + 2  # known then vs now
