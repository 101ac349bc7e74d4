"""Point in time everywhere: every *_as_of(..., known_at) answer uses only what had been
recorded by known_at, catalog versions are consistent rows, and times are UTC."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.catalog import build_observations
from quant_assets.lakehouse.store import PartitionStore
from quant_assets_tests.lakehouse.conftest import DAY, T1, T2, raw_screen, signals, write_book

FIRST = [f"EX:S{i}" for i in range(6)]
CORRECTED = ["EX:S0", "EX:S1"]


@pytest.fixture
def corrected(tmp_path):
    """DAY's book of six names, corrected ten days later to two."""
    store = PartitionStore(tmp_path)
    write_book(store, DAY - timedelta(days=1), FIRST, T1 - timedelta(days=1))
    write_book(store, DAY, FIRST, T1, label="NORMAL")
    write_book(store, DAY, CORRECTED, T2, label="CRISIS")
    return tmp_path


def _at(moment) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def test_universe_as_of_known_at_gives_the_book_known_then(corrected):
    q = "SELECT symbol, weight, tick_size FROM universe_as_of(DATE '{d}'{known}) ORDER BY symbol"
    before = sql.query(q.format(d=DAY, known=f", {_at(T1 + timedelta(days=1))}"), corrected)
    assert before["symbol"].to_list() == FIRST and before["weight"].to_list() == pytest.approx([1 / 6] * 6)
    assert (before["tick_size"] == 0.01).all()
    after = sql.query(q.format(d=DAY, known=f", {_at(T2)}"), corrected)
    assert after["symbol"].to_list() == CORRECTED
    assert sql.query(q.format(d=DAY, known=""), corrected).equals(after)
    # Before anything about the day was recorded, nothing is known of it.
    assert sql.query(q.format(d=DAY, known=f", {_at(T1 - timedelta(seconds=1))}"), corrected).height == 0


@pytest.mark.parametrize("asset, column, first, second", [
    ("regime", "regime", ["NORMAL"], ["CRISIS"]),
    ("signals", "symbol", FIRST, CORRECTED),
    ("barbell_weights", "symbol", FIRST, CORRECTED),
])
def test_every_asset_as_of_known_at_uses_what_was_recorded_by_then(corrected, asset, column, first, second):
    q = f"SELECT {column} FROM {asset}_as_of(DATE '{DAY}'{{known}}) ORDER BY {column}"
    assert sql.query(q.format(known=f", {_at(T2 - timedelta(seconds=1))}"), corrected)[column].to_list() == first
    assert sql.query(q.format(known=f", {_at(T2)}"), corrected)[column].to_list() == second
    assert sql.query(q.format(known=""), corrected)[column].to_list() == second
    # The live view holds the newest version of every day, once.
    live = sql.query(f"SELECT {column} FROM {asset} WHERE date = DATE '{DAY}' ORDER BY {column}", corrected)
    assert live[column].to_list() == second


def test_symbols_as_of_known_at_sees_neither_later_days_nor_later_corrections(corrected):
    q = "SELECT symbol, last_observed FROM symbols_as_of(DATE '{d}', {t}) ORDER BY symbol"
    then = sql.query(q.format(d=DAY, t=_at(T1 + timedelta(hours=1))), corrected)
    assert then["symbol"].to_list() == FIRST and set(then["last_observed"]) == {DAY}
    now = sql.query(q.format(d=DAY, t=_at(T2)), corrected)
    # S2..S5 were not observed on DAY after the correction: last seen the day before.
    assert dict(now.iter_rows()) == {**{s: DAY for s in CORRECTED},
                                     **{s: DAY - timedelta(days=1) for s in FIRST[2:]}}
    assert sql.query(q.format(d=DAY, t=_at(T1 - timedelta(days=2))), corrected).height == 0


def test_versions_keep_tick_size_pricescale_and_minmov_consistent(tmp_path):
    store = PartitionStore(tmp_path)
    write_book(store, DAY, ["EX:A"], T1)
    # The next day pricescale changes to 1000 and minmov is missing: the version must carry
    # minmov forward and derive its tick size, never keep the old tick on its own.
    nxt = DAY + timedelta(days=1)
    raw = raw_screen(nxt, ["EX:A"], {"EX:A": 1000}).with_columns(minmov=None)
    store.write("metadata_catalog", nxt, build_observations(raw, signals(nxt, ["EX:A"]), nxt), recorded_at=T2)
    rows = sql.query("SELECT version, pricescale, minmov, tick_size FROM symbols ORDER BY version", tmp_path)
    assert rows.rows() == [(1, 100, 1, 0.01), (2, 1000, 1, 0.001)]
    for row in sql.query("SELECT pricescale, minmov, tick_size FROM symbol_versions(known_at := "
                         f"{_at(T2)})", tmp_path).iter_rows():
        assert row[2] == row[1] / row[0]


def test_known_at_without_a_zone_is_utc_whatever_the_session_zone(corrected):
    # 20 minutes before the correction in UTC; in Tokyo time this wall clock is 9 hours earlier.
    naive = (T2 - timedelta(minutes=20)).strftime("%Y-%m-%d %H:%M:%S")
    probe = (
        "import json, sys\n"
        "from quant_assets.lakehouse import sql\n"
        f"q = \"SELECT count(*) AS n FROM universe_as_of(DATE '{DAY}', TIMESTAMP '{naive}')\"\n"
        f"s = \"SELECT count(*) AS n FROM universe_as_of(DATE '{DAY}', '{naive}')\"\n"
        f"print(json.dumps([sql.query(q, sys.argv[1]).item(), sql.query(s, sys.argv[1]).item()]))\n"
    )
    counts = {}
    for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        out = subprocess.run([sys.executable, "-c", probe, str(corrected)], capture_output=True, text=True,
                             env={"TZ": zone, "PATH": "/usr/bin:/bin"}, timeout=120, check=True)
        counts[zone] = json.loads(out.stdout.splitlines()[-1])
    assert counts == {zone: [len(FIRST), len(FIRST)] for zone in counts}


def test_a_missing_or_empty_lakehouse_says_so(tmp_path):
    with pytest.raises(LakehouseError, match="no lakehouse at .*nowhere"):
        sql.query("SELECT * FROM symbols", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LakehouseError, match="holds no metadata_catalog partitions yet"):
        sql.query("SELECT * FROM symbols", tmp_path / "empty")
    with pytest.raises(LakehouseError, match="regime: the lakehouse at .* holds no regime partitions yet"):
        sql.query("SELECT * FROM regime", tmp_path / "empty")
