"""The catalog index kept on disk, so a connection derives only what changed since the last one.

Layout: ``<root>/_cache/catalog/<key>/<table>.parquet``, one folder per state of the catalog,
where ``key`` is a hash of the derivation code and of every ``metadata_catalog`` file name.
Version file names are content-addressed (recorded time and digest), so a key names one
content exactly, and a new code version never serves an old derivation. ``current`` links to
the newest folder published; DuckDB files made by ``quant-assets catalog export`` read it.

Correct by construction:

- a folder is published whole: written under a temporary name, then renamed into place; when
  another process published the same key first, its folder is kept (the bytes are the same:
  every table is sorted and written the same way);
- loading reads every table into memory (no file stays open, so clean-up never breaks a
  reader) and checks the key each table carries; a missing, unreadable or foreign table is a
  miss, rebuilt and published again;
- a miss is answered by replaying the new catalog files on top of ``current`` when they only
  extend it, else by a build from scratch;
- folders unused for an hour are removed;
- a lakehouse that cannot be written (a read-only mount) still answers: the index is built in
  memory.

On an object store (``s3://...``), which has neither rename nor links, each table is one object
written whole (one upload, :func:`~quant_assets.lakehouse.store.write_bytes_atomic`), so a
folder whose publication was cut short lacks a table and is a miss, as above; ``current`` is
an object holding the newest key; folders whose newest object is over an hour old are removed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from upath import UPath

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse import catalog, catalog_index
from quant_assets.lakehouse.catalog_index import CatalogFile, CatalogIndex, build_index, update_index
from quant_assets.lakehouse.store import (
    PartitionStore,
    PartitionVersion,
    is_local,
    parquet_bytes,
    read_blobs,
    read_version,
    store_errors,
    write_blobs,
    write_bytes_atomic,
)

CACHE_DIR = "_cache"
CATALOG_DIR = "catalog"
CURRENT = "current"
#: Parquet key-value metadata naming the state a table belongs to.
KEY_FIELD = "quant_assets.catalog_key"
MAX_AGE_S = 3600.0

#: Changes with the code that derives the index: part of every key.
CODE_FINGERPRINT = hashlib.sha256(
    Path(catalog_index.__file__).read_bytes() + Path(catalog.__file__).read_bytes()
).hexdigest()[:16]


def catalog_files(store: PartitionStore, versions: list[PartitionVersion] | None = None) -> list[CatalogFile]:
    """Every version file of ``metadata_catalog`` (listed now unless ``versions`` are given)."""
    if versions is None:
        versions = [v for vs in store.all_versions("metadata_catalog").values() for v in vs]
    return [CatalogFile(v.path.name, v.day, v.recorded_at) for v in versions]


_KEY_DIGITS = 16
#: What :func:`index_key` returns; the ``current`` object on a remote root must hold one.
_KEY = re.compile(rf"[0-9a-f]{{{_KEY_DIGITS}}}")


def index_key(files: list[CatalogFile]) -> str:
    names = "\n".join(sorted(f"{f.date}/{f.name}" for f in files))
    return hashlib.sha256(f"{CODE_FINGERPRINT}\n{names}".encode()).hexdigest()[:_KEY_DIGITS]


def cache_folder(store: PartitionStore) -> Path | UPath:
    folder = store.root / CACHE_DIR / CATALOG_DIR
    return Path(str(folder)) if is_local(store.root) else folder


def load_index(store: PartitionStore, versions: list[PartitionVersion] | None = None) -> CatalogIndex:
    """The catalog index of ``store`` as its files stand now (``versions``: its catalog's
    version files, when the caller has just listed them).

    Raises
    ------
    LakehouseError
        A catalog file cannot be read or is not a catalog partition (naming the file).
    """
    files = catalog_files(store, versions)

    def read(file: CatalogFile) -> pl.DataFrame:
        return read_version(store.partition_dir("metadata_catalog", file.date) / file.name)

    folder, key = cache_folder(store), index_key(files)
    index = _load(folder / key, key)
    if index is not None:
        return index
    base_key = _current_key(folder)
    base = _load(folder / base_key, base_key) if base_key else None
    index = update_index(base, files, read) if base is not None else build_index(files, read)
    if isinstance(folder, Path):
        _publish(folder, key, index)
    else:
        _publish_remote(folder, key, index)
    return index


def _load(path: Path | UPath, key: str) -> CatalogIndex | None:
    """The index published at ``path``, or None when any table is missing, unreadable or not
    of state ``key``."""
    tables = {}
    try:
        blobs = read_blobs([path / f"{name}.parquet" for name in CatalogIndex.TABLES], missing_ok=True)
    except LakehouseError:
        return None
    for name, data in zip(CatalogIndex.TABLES, blobs):
        if data is None:
            return None
        try:
            buffer = io.BytesIO(data)
            if (pq.read_metadata(buffer).metadata or {}).get(KEY_FIELD.encode()) != key.encode():
                return None
            buffer.seek(0)
            tables[name] = pl.read_parquet(buffer)
        except (OSError, pl.exceptions.PolarsError, ValueError):
            return None
    return CatalogIndex(**tables)


def _current_key(folder: Path | UPath) -> str | None:
    if isinstance(folder, Path):
        try:
            return os.readlink(folder / CURRENT)
        except OSError:
            return None
    try:
        data = read_blobs([folder / CURRENT], missing_ok=True)[0]
    except LakehouseError:
        return None
    key = (data or b"").decode(errors="replace").strip()
    return key if _KEY.fullmatch(key) else None


def _publish_remote(folder: UPath, key: str, index: CatalogIndex) -> None:
    """:func:`_publish` on an object store: every table, then ``current``; skipped quietly
    where the bucket cannot be written. Writers of one key write the same bytes."""
    try:
        write_blobs([(folder / key / f"{name}.parquet", parquet_bytes(getattr(index, name), {KEY_FIELD: key}))
                     for name in CatalogIndex.TABLES])
        write_bytes_atomic(key.encode(), folder / CURRENT)  # once every table is in place
        _clean_remote(folder, keep={key})
    except store_errors():
        return


def _clean_remote(folder: UPath, keep: set[str]) -> None:
    """Remove the states whose newest object is older than :data:`MAX_AGE_S`."""
    fs = folder.fs
    base = fs._strip_protocol(str(folder)).rstrip("/") + "/"
    newest: dict[str, float] = {}
    objects: dict[str, list[str]] = {}
    for name, info in fs.find(base, detail=True).items():
        state = name.removeprefix(base).split("/")[0]
        if state == CURRENT or state in keep or "/" not in name.removeprefix(base):
            continue
        stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
        stamp = stamp.timestamp() if hasattr(stamp, "timestamp") else stamp
        if not isinstance(stamp, (int, float)):
            stamp = time.time()  # a store that dates nothing: never removed
        newest[state] = max(newest.get(state, 0.0), float(stamp))
        objects.setdefault(state, []).append(name)
    now, current = time.time(), _current_key(folder)
    old = [name for state, names in objects.items() if state != current and now - newest[state] > MAX_AGE_S
           for name in names]
    if old:
        fs.rm(old)


def _publish(folder: Path, key: str, index: CatalogIndex) -> None:
    """Write ``index`` as state ``key``, point ``current`` at it, clean up; skipped quietly
    where the lakehouse cannot be written."""
    tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.mkdir(parents=True)
        for name in CatalogIndex.TABLES:
            (tmp / f"{name}.parquet").write_bytes(parquet_bytes(getattr(index, name), {KEY_FIELD: key}))
        target = folder / key
        try:
            os.rename(tmp, target)
        except OSError:
            if _load(target, key) is not None:  # another process published it first
                shutil.rmtree(tmp, ignore_errors=True)
            else:  # what stands there is damaged: set it aside, put ours in place
                trash = folder / f".{key}.{uuid.uuid4().hex}.trash"
                os.rename(target, trash)
                os.rename(tmp, target)
                shutil.rmtree(trash, ignore_errors=True)
        link = folder / f".{CURRENT}.{uuid.uuid4().hex}"
        os.symlink(key, link)
        os.replace(link, folder / CURRENT)
        _clean(folder, keep={key})
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _clean(folder: Path, keep: set[str]) -> None:
    """Remove states and leftovers unused for :data:`MAX_AGE_S` (a reader may still be loading
    a younger one), and the single-file caches of earlier releases."""
    now = time.time()
    current = _current_key(folder)
    for entry in folder.iterdir():
        if entry.name in keep or entry.name in (current, CURRENT):
            continue
        try:
            if now - entry.lstat().st_mtime > MAX_AGE_S:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError:
            continue
    for old in folder.parent.glob("*.parquet"):
        try:
            if now - old.stat().st_mtime > MAX_AGE_S:
                old.unlink()
        except OSError:
            continue
