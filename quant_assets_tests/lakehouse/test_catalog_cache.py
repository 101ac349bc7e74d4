"""The catalog cache is correct by construction: keyed by content and code, the same bytes
from every builder, published whole, rebuilt when damaged or foreign, never required (a
read-only lakehouse derives in memory), and cheap to bring up to date after a new day."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from quant_assets.lakehouse import catalog_cache, sql
from quant_assets.lakehouse.catalog_cache import index_key, load_index
from quant_assets.lakehouse.store import PartitionStore
from quant_assets_tests.lakehouse.conftest import DAY, T1, write_book

BOOK = ["EX:A", "EX:B", "EX:C"]
Q = f"SELECT symbol, version, tick_size, last_observed FROM symbols_as_of(DATE '{DAY + timedelta(days=2)}') ORDER BY symbol"


@pytest.fixture
def store(tmp_path) -> PartitionStore:
    store = PartitionStore(tmp_path / "lake")
    for k in range(3):
        write_book(store, DAY + timedelta(days=k), BOOK, T1 + timedelta(days=k), scales={"EX:B": 10 ** (2 + k % 2)})
    return store


def _state(store: PartitionStore) -> Path:
    folder = Path(str(store.root)) / "_cache" / "catalog"
    return folder / os.readlink(folder / "current")


def _tables(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_concurrent_first_readers_agree_byte_for_byte(store):
    expected = sql.query(Q, store.root)
    built = _tables(_state(store))
    for path in (Path(str(store.root)) / "_cache").iterdir():
        os.system(f"rm -rf '{path}'")
    probe = ("import sys\nfrom quant_assets.lakehouse import sql\n"
             f"print(sql.query(\"{Q}\", sys.argv[1]).write_csv(), end='')")
    procs = [subprocess.Popen([sys.executable, "-c", probe, str(store.root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    assert {out for out, _ in outputs} == {expected.write_csv()}
    assert _tables(_state(store)) == built


def test_a_damaged_or_hand_placed_cache_table_is_rebuilt_not_served(store):
    expected = sql.query(Q, store.root)
    state = _state(store)
    (state / "versions.parquet").write_bytes((state / "versions.parquet").read_bytes()[:64])  # truncated
    assert sql.query(Q, store.root).equals(expected)
    # A well-formed table of another state, placed by hand, is not ours: ignored and replaced.
    bogus = pl.DataFrame({"symbol": ["EX:A"], "tick_size": [123.0]})
    bogus.write_parquet(state / "symbols.parquet")
    assert sql.query(Q, store.root).equals(expected)
    assert load_index(store).symbols["tick_size"].to_list() != [123.0]


def test_the_key_follows_the_code_that_derives_the_index(store, monkeypatch):
    files = catalog_cache.catalog_files(store)
    before = index_key(files)
    monkeypatch.setattr(catalog_cache, "CODE_FINGERPRINT", "an-upgrade")
    assert index_key(files) != before


def test_a_reader_whose_cache_disappears_still_answers(store, monkeypatch):
    expected = sql.query(Q, store.root)
    real = catalog_cache._load

    def vanishing(path, key):  # another process cleans up between our listing and our read
        os.system(f"rm -rf '{path}'")
        return real(path, key)

    monkeypatch.setattr(catalog_cache, "_load", vanishing)
    assert sql.query(Q, store.root).equals(expected)


def test_a_read_only_lakehouse_answers_every_query(store, monkeypatch):
    expected = sql.query(Q, store.root)
    os.system(f"rm -rf '{Path(str(store.root)) / '_cache'}'")
    write_book(store, DAY + timedelta(days=3), BOOK, T1 + timedelta(days=3))

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    for name in ("mkdir", "write_bytes", "symlink_to"):
        monkeypatch.setattr(Path, name, read_only)
    monkeypatch.setattr(os, "rename", read_only)
    monkeypatch.setattr(os, "symlink", read_only)
    assert sql.query(Q, store.root).equals(expected)
    assert sql.query("SELECT count(*) FROM regime", store.root).item() == 4
    assert not (Path(str(store.root)) / "_cache").exists()


def test_a_new_day_updates_the_published_index_instead_of_rebuilding_it(store, monkeypatch):
    sql.query(Q, store.root)
    calls = []
    monkeypatch.setattr(catalog_cache, "build_index", lambda *a: calls.append(a) or pytest.fail("rebuilt"))
    write_book(store, DAY + timedelta(days=3), BOOK, T1 + timedelta(days=3))
    assert sql.query(f"SELECT count(*) FROM symbols_as_of(DATE '{DAY + timedelta(days=3)}')", store.root).item() == 3
    assert calls == []
