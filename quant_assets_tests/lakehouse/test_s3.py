"""The lakehouse on a real S3 protocol (moto's server on 127.0.0.1, signatures checked): the
store, its atomicity, the SQL surface, the catalog and bars caches, and the errors a user sees.
Every lakehouse on S3 is compared with the same partitions on a local disk."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from s3fs import S3FileSystem
from s3fs.core import S3File

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse import catalog_cache, remote_fs, sql, store as store_module
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.lakehouse.catalog_cache import load_index
from quant_assets.lakehouse.doctor import examine
from quant_assets.lakehouse.store import PartitionStore, version_name
from quant_assets_tests.lakehouse.conftest import DAY, T1, T2, write_book
from quant_assets_tests.s3_server import forget_s3_clients, lakehouse_on, s3_server

BOOK = ["EX:A", "EX:B", "EX:C"]
DAYS = [DAY + timedelta(days=k) for k in range(3)]
PART = 5 * 2**20  # S3's smallest part


@pytest.fixture(scope="module")
def server():
    with s3_server() as running:
        yield running


@pytest.fixture
def bucket(server):
    """A fresh bucket; the environment points s3fs at the server for the test's length."""
    url = server.create_bucket()
    with lakehouse_on(server):
        yield url


def _book(store: PartitionStore) -> PartitionStore:
    """Three days of every read-side asset, and a correction of the first day at T2."""
    for k, day in enumerate(DAYS):
        write_book(store, day, BOOK, T1 + timedelta(days=k), scales={"EX:B": 10 ** (2 + k % 2)})
    write_book(store, DAY, ["EX:A", "EX:D"], T2, label="CRISIS", scales={"EX:A": 1000})
    return store


@pytest.fixture
def lakes(bucket, tmp_path) -> tuple[PartitionStore, PartitionStore]:
    """The same partitions, written at the same times, on S3 and on a local disk."""
    return _book(PartitionStore(f"{bucket}/lake")), _book(PartitionStore(tmp_path / "lake"))


def _names(store: PartitionStore, asset: str) -> dict[date, list[str]]:
    return {day: [v.path.name for v in versions] for day, versions in store.all_versions(asset).items()}


def _big_frame() -> pl.DataFrame:
    """About 12 MiB of Parquet (random doubles do not compress): three 5 MiB parts."""
    return pl.DataFrame({"x": np.random.default_rng(0).random(1_550_000)})


class _S3Calls:
    """Counts the S3 operations s3fs sends (from the file system, or from a file opened for
    writing), and fails one of them if asked."""

    def __init__(self, monkeypatch, fail: str | None = None, on: int = 0, error: BaseException | None = None):
        self.counts: dict[str, int] = {}
        on_fs, on_file = S3FileSystem._call_s3, S3File._call_s3

        def count(method: str) -> None:
            self.counts[method] = self.counts.get(method, 0) + 1
            if method == fail and self.counts[method] == on:
                raise error

        async def fs_spy(fs, method, *args, **kwargs):
            count(method)
            return await on_fs(fs, method, *args, **kwargs)

        def file_spy(file, method, *args, **kwargs):
            count(method)
            return on_file(file, method, *args, **kwargs)

        monkeypatch.setattr(S3FileSystem, "_call_s3", fs_spy)
        monkeypatch.setattr(S3File, "_call_s3", file_spy)


# The store --------------------------------------------------------------------------------------

def test_store_on_s3_holds_exactly_what_a_local_store_holds(lakes, server, bucket):
    s3, local = lakes
    for asset in ("signals", "barbell_weights", "regime", "metadata_catalog"):
        assert _names(s3, asset) == _names(local, asset) != {}, asset
        for k, day in enumerate(DAYS):
            assert s3.read(asset, day).equals(local.read(asset, day)), (asset, day)
            first = T1 + timedelta(days=k, hours=1)  # before the correction of DAY
            assert s3.read(asset, day, known_at=first).equals(local.read(asset, day, known_at=first))
        columns = ["date", "regime"] if asset == "regime" else ["date", "symbol"]
        got, want = s3.read_many(asset, DAYS, columns), local.read_many(asset, DAYS, columns)
        assert list(got) == DAYS and all(got[d].equals(want[d]) and got[d].height > 0 for d in DAYS), asset
    # Objects live where the layout says, under the root's prefix.
    keys = server.keys(bucket)
    assert f"lake/signals/date={DAY}/{s3.path('signals', DAY).name}" in keys
    assert all(k.startswith("lake/") for k in keys)


def test_a_version_written_by_another_process_is_seen_at_once(bucket, server):
    """No listing is served from a cache: another writer's version counts at the next call."""
    store = PartitionStore(f"{bucket}/lake")
    store.write("regime", DAY, pl.DataFrame({"date": [DAY], "v": [1]}), recorded_at=T1)
    assert [v.recorded_at for v in store.versions("regime", DAY)] == [T1]
    assert store.partitions("regime") == [DAY]
    newer = pl.DataFrame({"date": [DAY], "v": [2]})
    data = store_module.parquet_bytes(newer)
    name = version_name(T2, hashlib.sha256(data).hexdigest()[:12])
    server.client().put_object(Bucket=bucket.removeprefix("s3://"), Key=f"lake/regime/date={DAY}/{name}", Body=data)
    server.client().put_object(Bucket=bucket.removeprefix("s3://"), Key=f"lake/regime/date={DAYS[1]}/{name}",
                               Body=data)
    assert [v.recorded_at for v in store.versions("regime", DAY)] == [T1, T2]
    assert store.read("regime", DAY).equals(newer)
    assert store.partitions("regime") == DAYS[:2]


def test_doctor_on_s3_sees_what_another_process_wrote_since_its_last_look(lakes, server, bucket):
    """No listing comes from fsspec's listings cache, which would hide the new folder."""
    s3, _ = lakes
    assert examine(s3) == []
    stray = f"lake/signals/date={DAYS[2] + timedelta(days=1)}/part-0.parquet"
    server.client().put_object(Bucket=bucket.removeprefix("s3://"), Key=stray, Body=b"x")
    assert [(f.kind, str(f.path)) for f in examine(s3)] == [("legacy", f"{bucket}/{stray}")]


# Atomicity ------------------------------------------------------------------------------------

def test_a_failure_while_encoding_uploads_nothing(bucket, server, monkeypatch):
    store = PartitionStore(f"{bucket}/lake")
    old = pl.DataFrame({"x": [1.0, 2.0]})
    store.write("covariance", DAY, old)
    before = server.keys(bucket)

    def half_then_fail(frame, target, *args, **kwargs):
        target.write(b"PAR1" + b"\0" * 1000)  # some bytes, then the writer dies
        raise OSError("disk full")

    calls = _S3Calls(monkeypatch)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(pl.DataFrame, "write_parquet", half_then_fail)
        store.write("covariance", DAY, pl.DataFrame({"x": [3.0]}))
    assert "put_object" not in calls.counts and "create_multipart_upload" not in calls.counts
    assert server.keys(bucket) == before
    assert store.read("covariance", DAY).equals(old)


def test_a_large_partition_goes_up_in_parts_and_appears_whole(bucket, server, monkeypatch):
    monkeypatch.setattr(store_module, "MULTIPART_PART_BYTES", PART)
    store = PartitionStore(f"{bucket}/lake")
    big = _big_frame()
    calls = _S3Calls(monkeypatch)
    version = store.write("covariance", DAY, big)
    assert calls.counts.get("create_multipart_upload") == 1 and calls.counts.get("upload_part") == 3
    assert calls.counts.get("complete_multipart_upload") == 1 and "put_object" not in calls.counts
    head = server.client().head_object(Bucket=bucket.removeprefix("s3://"),
                                       Key=f"lake/covariance/date={DAY}/{version.path.name}")
    assert head["ETag"].strip('"').endswith("-3")  # the server assembled it from three parts
    assert head["ContentLength"] > 2 * PART
    assert store.read("covariance", DAY).equals(big)


def test_a_multipart_upload_failing_mid_way_is_aborted_and_leaves_the_previous_version(
        bucket, server, monkeypatch):
    monkeypatch.setattr(store_module, "MULTIPART_PART_BYTES", PART)
    store = PartitionStore(f"{bucket}/lake")
    old = pl.DataFrame({"x": [1.0]})
    store.write("covariance", DAY, old)
    before = server.keys(bucket)
    calls = _S3Calls(monkeypatch, fail="upload_part", on=2, error=ConnectionResetError("connection reset by peer"))
    with pytest.raises(LakehouseError, match=rf"lakehouse {bucket}/lake: cannot write covariance {DAY}.*reset"):
        store.write("covariance", DAY, _big_frame())
    assert calls.counts["upload_part"] >= 2  # a part was stored before the failure
    assert calls.counts.get("abort_multipart_upload") == 1 and "complete_multipart_upload" not in calls.counts
    assert server.keys(bucket) == before
    assert server.client().list_multipart_uploads(Bucket=bucket.removeprefix("s3://")).get("Uploads", []) == []
    assert store.read("covariance", DAY).equals(old)
    assert len(store.versions("covariance", DAY)) == 1


def test_a_writer_killed_before_completing_its_upload_leaves_nothing_visible(bucket, server):
    """A process that dies mid-upload cannot abort: S3 keeps the parts (until a lifecycle rule
    expires them) and shows no object; the store and SQL see the previous version."""
    store = PartitionStore(f"{bucket}/lake")
    old = pl.DataFrame({"date": [DAY], "x": [1.0]})
    store.write("covariance", DAY, old, recorded_at=T1)
    writer = (
        "import os, numpy as np, polars as pl\n"
        "from datetime import datetime, timezone\n"
        "from s3fs import S3FileSystem\n"
        "from quant_assets.lakehouse import store as s\n"
        "s.MULTIPART_PART_BYTES = 5 * 2**20\n"
        "original = S3FileSystem._call_s3\n"
        "async def die(fs, method, *a, **k):\n"
        "    if method == 'complete_multipart_upload':\n"
        "        os._exit(9)\n"
        "    return await original(fs, method, *a, **k)\n"
        "S3FileSystem._call_s3 = die\n"
        f"frame = pl.DataFrame({{'x': np.random.default_rng(0).random(1_550_000)}})\n"
        f"s.PartitionStore('{bucket}/lake').write('covariance', '{DAY}', frame, "
        f"recorded_at=datetime(2024, 3, 20, tzinfo=timezone.utc))\n"
    )
    died = subprocess.run([sys.executable, "-c", writer], env=server.env(), capture_output=True, text=True,
                          timeout=120)
    assert died.returncode == 9, died.stderr
    uploads = server.client().list_multipart_uploads(Bucket=bucket.removeprefix("s3://")).get("Uploads", [])
    assert len(uploads) == 1 and uploads[0]["Key"].startswith(f"lake/covariance/date={DAY}/part-20240320T")
    assert [v.recorded_at for v in store.versions("covariance", DAY)] == [T1]
    assert store.read("covariance", DAY).equals(old)
    assert sql.query(f"SELECT * FROM covariance_as_of(DATE '{DAY}')", store.root).equals(old)


def test_s3fs_file_commits_what_was_written_when_its_block_raises(bucket):
    """Why the store never streams into ``fs.open(path, "wb")``: leaving the block by an
    exception still publishes the partial object."""
    fs = S3FileSystem()
    key = f"{bucket.removeprefix('s3://')}/scratch/partial.parquet"
    with pytest.raises(RuntimeError):
        with fs.open(key, "wb") as fh:
            fh.write(b"half a partition")
            raise RuntimeError("the writer died")
    assert fs.cat_file(key) == b"half a partition"


# SQL ------------------------------------------------------------------------------------------

QUERIES = [
    "SELECT * FROM regime ORDER BY date",
    "SELECT * FROM barbell_weights ORDER BY date, symbol",
    f"SELECT * FROM signals_as_of(DATE '{DAY}') ORDER BY symbol",
    f"SELECT * FROM signals_as_of(DATE '{DAY}', TIMESTAMP '{T1:%Y-%m-%d %H:%M}') ORDER BY symbol",
    f"SELECT * FROM regime_as_of('{DAY}', '{T2 - timedelta(hours=1):%Y-%m-%dT%H:%M}Z')",
    f"SELECT * FROM universe_as_of(DATE '{DAY}') ORDER BY symbol",
    f"SELECT * FROM universe_as_of(DATE '{DAY}', TIMESTAMP '{T1 + timedelta(hours=1):%Y-%m-%d %H:%M}') ORDER BY symbol",
    f"SELECT * FROM symbols_as_of(DATE '{DAYS[2]}') ORDER BY symbol",
    f"SELECT * FROM symbols_as_of(DATE '{DAYS[1]}', TIMESTAMP '{T1 + timedelta(days=1, hours=1):%Y-%m-%d %H:%M}') "
    "ORDER BY symbol",
    "SELECT * FROM symbol_versions() ORDER BY symbol, version",
    f"SELECT * FROM symbol_versions(known_at := TIMESTAMP '{T1 + timedelta(days=2):%Y-%m-%d %H:%M}') "
    "ORDER BY symbol, version",
    "SELECT * EXCLUDE (recorded_at) FROM catalog_known() ORDER BY date, symbol",
]


def test_sql_over_s3_answers_as_over_a_local_disk(lakes):
    s3, local = lakes
    with sql.connect(s3.root) as remote, sql.connect(local.root) as disk:
        for query in QUERIES:
            got, want = remote.sql(query).pl(), disk.sql(query).pl()
            assert got.height > 0, query
            assert got.equals(want), query


def test_an_as_of_query_sees_a_version_written_after_the_connection_opened(lakes):
    s3, _ = lakes
    query = f"SELECT regime FROM regime_as_of(DATE '{DAYS[2]}')"
    with sql.connect(s3.root) as con:
        assert con.sql(query).fetchall() == [("NORMAL",)]
        write_book(s3, DAYS[2], BOOK, T2 + timedelta(days=1), label="QUIET")
        assert con.sql(query).fetchall() == [("QUIET",)]


def test_a_connection_fetches_each_version_file_once(lakes, monkeypatch):
    """Version files never change: a query again on the same connection only lists."""
    s3, local = lakes
    query = f"SELECT * FROM universe_as_of(DATE '{DAY}', TIMESTAMP '{T1:%Y-%m-%d %H:%M}') ORDER BY symbol"
    calls = _S3Calls(monkeypatch)
    with sql.connect(s3.root) as con:
        first = con.sql(query).pl()
        assert calls.counts.get("get_object", 0) >= 2
        calls.counts.clear()
        assert con.sql(query).pl().equals(first)
    assert set(calls.counts) == {"list_objects_v2"}
    assert first.equals(sql.query(query, local.root)) and first.height == len(BOOK)


def test_version_files_too_large_to_keep_are_read_in_ranges(lakes, monkeypatch):
    s3, local = lakes
    monkeypatch.setattr(remote_fs, "MAX_KEPT_FILE_BYTES", 0)
    calls = _S3Calls(monkeypatch)
    for query in QUERIES[:6]:
        assert sql.query(query, s3.root).equals(sql.query(query, local.root)), query
    assert calls.counts.get("get_object", 0) > 0


@pytest.mark.parametrize("reader", [
    "SELECT * FROM read_csv('/etc/hostname')",
    "SELECT * FROM glob('{bucket}/*')",
    "SELECT * FROM read_parquet('{bucket}/outside/x.parquet')",
    "SELECT * FROM read_parquet('{other}/lake/regime/*/*.parquet')",
])
def test_sql_over_s3_reads_nothing_outside_the_root(lakes, server, bucket, reader):
    s3, _ = lakes
    other = server.create_bucket()
    server.client().put_object(Bucket=other.removeprefix("s3://"), Key="lake/regime/date=2024-01-01/x.parquet",
                               Body=store_module.parquet_bytes(pl.DataFrame({"x": [1]})))
    server.client().put_object(Bucket=bucket.removeprefix("s3://"), Key="outside/x.parquet",
                               Body=store_module.parquet_bytes(pl.DataFrame({"x": [1]})))
    with pytest.raises(duckdb.PermissionException):
        sql.query(reader.format(bucket=bucket, other=other), s3.root)


def test_stray_objects_on_s3_are_never_read_as_data(lakes, server, bucket):
    s3, _ = lakes
    live = s3.path("signals", DAY)
    data = s3.root.fs.cat_file(live.path)
    name, prefix = bucket.removeprefix("s3://"), f"lake/signals/date={DAY}"
    for key in (f"{prefix}.bak/{live.name}", f"{prefix}/part-0.parquet", f"{prefix}/part-copy.parquet",
                f"{prefix}/.{live.name}.1234.tmp"):
        server.client().put_object(Bucket=name, Key=key, Body=data)
    counts = sql.query("SELECT date, count(*) AS n FROM signals GROUP BY date ORDER BY date", s3.root)
    assert counts["n"].to_list() == [2, len(BOOK), len(BOOK)]  # the corrected first day holds two
    assert sql.query(f"SELECT count(*) FROM signals_as_of(DATE '{DAY}')", s3.root).item() == 2
    assert s3.partitions("signals") == DAYS


# Caches -----------------------------------------------------------------------------------------

def test_catalog_cache_on_s3_is_published_reused_and_brought_up_to_date(lakes, server, bucket, monkeypatch):
    s3, local = lakes
    query = f"SELECT * FROM symbols_as_of(DATE '{DAYS[2]}') ORDER BY symbol"
    expected = sql.query(query, local.root)
    assert sql.query(query, s3.root).equals(expected)
    keys = server.keys(bucket, "lake/_cache/catalog/")
    current = server.client().get_object(Bucket=bucket.removeprefix("s3://"),
                                          Key="lake/_cache/catalog/current")["Body"].read().decode()
    assert sorted(keys) == sorted([f"lake/_cache/catalog/{current}/{t}.parquet" for t in
                                   catalog_cache.CatalogIndex.TABLES] + ["lake/_cache/catalog/current"])

    nxt = DAYS[2] + timedelta(days=1)
    for store in (s3, local):
        write_book(store, nxt, BOOK, T2 + timedelta(days=2))
    query = f"SELECT * FROM symbols_as_of(DATE '{nxt}') ORDER BY symbol"
    expected = sql.query(query, local.root)
    reads: list[str] = []
    real = catalog_cache.read_version
    monkeypatch.setattr(catalog_cache, "read_version", lambda path, *a: reads.append(str(path)) or real(path, *a))
    assert sql.query(query, s3.root).equals(expected)
    assert reads == [str(s3.path("metadata_catalog", nxt))]  # the new day replayed on top of current
    reads.clear()
    load_index(s3)
    assert reads == []  # served from the published state: no catalog partition read


def test_a_half_published_catalog_state_on_s3_is_rebuilt_not_served(lakes, server, bucket, monkeypatch):
    s3, local = lakes
    query = "SELECT * FROM symbol_versions() ORDER BY symbol, version"
    expected = sql.query(query, local.root)
    sql.query(query, s3.root)
    name = bucket.removeprefix("s3://")
    current = server.client().get_object(Bucket=name, Key="lake/_cache/catalog/current")["Body"].read().decode()
    server.client().delete_object(Bucket=name, Key=f"lake/_cache/catalog/{current}/versions.parquet")
    assert sql.query(query, s3.root).equals(expected)
    assert f"lake/_cache/catalog/{current}/versions.parquet" in server.keys(bucket)  # published again
    # A state over an hour old that is not current is removed at the next publication.
    monkeypatch.setattr(catalog_cache, "MAX_AGE_S", 0.0)
    write_book(s3, DAYS[2] + timedelta(days=1), BOOK, T2 + timedelta(days=2))
    sql.query(query, s3.root)
    newer = server.client().get_object(Bucket=name, Key="lake/_cache/catalog/current")["Body"].read().decode()
    assert newer != current
    assert not [k for k in server.keys(bucket, "lake/_cache/catalog/") if f"/{current}/" in k]


def _bars(symbol: str, start: date, end: date) -> pl.DataFrame:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return pl.DataFrame({"date": days, "symbol": [symbol] * len(days), "open": [1.0] * len(days),
                         "high": [2.0] * len(days), "low": [0.5] * len(days),
                         "close": [float(d.toordinal() % 97) for d in days], "volume": [3.0] * len(days)})


def test_bars_cache_on_s3_fetches_only_what_it_does_not_cover(bucket, server, tmp_path):
    symbols = ["BINANCE:BTCUSDT.P", "NASDAQ:AAPL"]
    asked: list[tuple[tuple[str, ...], date, date]] = []

    def fetch(wanted, start, end):
        asked.append((tuple(wanted), start, end))
        return pl.concat([_bars(s, start, end) for s in wanted])

    remote, local = BarsCache(f"{bucket}/lake"), BarsCache(tmp_path)
    first, last = date(2024, 1, 1), date(2024, 1, 10)
    got = remote.bars(fetch, symbols, first, last)
    assert got.equals(local.bars(fetch, symbols, first, last))
    assert asked[0] == (tuple(symbols), first, last)
    asked.clear()
    later = first + timedelta(days=2)
    assert remote.bars(fetch, symbols, later, last).equals(got.filter(pl.col("date") >= later))
    assert asked == []  # covered: nothing fetched
    remote.bars(fetch, symbols, first, last + timedelta(days=3))
    assert asked == [(tuple(symbols), last + timedelta(days=1), last + timedelta(days=3))]
    assert server.keys(bucket, "lake/_bars/") == ["lake/_bars/BINANCE%3ABTCUSDT%2EP.parquet",
                                                 "lake/_bars/NASDAQ%3AAAPL.parquet"]
    assert remote.coverage("NASDAQ:AAPL") == (first, last + timedelta(days=3))


# Errors -----------------------------------------------------------------------------------------

def test_a_missing_bucket_is_named_with_the_root(server, bucket):
    root = "s3://no-such-bucket-here/lake"
    store = PartitionStore(root)
    with pytest.raises(LakehouseError, match=rf"lakehouse {root}: cannot list {root}/signals: "
                                             "The specified bucket does not exist"):
        store.partitions("signals")
    with pytest.raises(LakehouseError, match=rf"lakehouse {root}: .*bucket does not exist"):
        store.write("signals", DAY, pl.DataFrame({"x": [1]}))
    with pytest.raises(LakehouseError, match=rf"lakehouse {root}: cannot list it: .*bucket does not exist"):
        sql.connect(root)
    assert "no-such-bucket-here" not in str(server.client().list_buckets())  # nor was it created


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_wrong_credentials_are_named_with_the_root_and_not_the_secret(server, bucket, wrong):
    secret = "Wr0ngSecret" + "Q" * 29
    bad = (dataclasses.replace(server, secret_access_key=secret) if wrong == "secret"
           else dataclasses.replace(server, access_key_id="AKIAUNKNOWNKEY000000"))
    root = f"{bucket}/lake"
    with lakehouse_on(bad):
        for attempt in (lambda: PartitionStore(root).partitions("regime"),
                        lambda: PartitionStore(root).write("regime", DAY, pl.DataFrame({"x": [1]})),
                        lambda: sql.connect(root)):
            with pytest.raises(LakehouseError, match=rf"lakehouse {root}: .*access denied") as caught:
                attempt()
            chain, exc = [], caught.value
            while exc is not None:
                chain.append(f"{exc!s} {exc!r}")
                exc = exc.__cause__ or exc.__context__
            assert secret not in " ".join(chain) and bad.secret_access_key not in " ".join(chain)


def test_no_credentials_or_no_server_answering_is_named_with_the_root(server, bucket):
    root = f"{bucket}/lake"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("AWS_ACCESS_KEY_ID")
        env.delenv("AWS_SECRET_ACCESS_KEY")
        forget_s3_clients()
        with pytest.raises(LakehouseError, match=rf"lakehouse {root}: cannot list {root}/regime: "
                                                 "Unable to locate credentials"):
            PartitionStore(root).partitions("regime")
    down = dataclasses.replace(server, endpoint="http://127.0.0.1:9")  # nothing listens on the discard port
    with lakehouse_on(down), pytest.raises(LakehouseError, match=rf"lakehouse {root}: cannot list it: "
                                                                 "Could not connect to the endpoint URL"):
        sql.connect(root)
