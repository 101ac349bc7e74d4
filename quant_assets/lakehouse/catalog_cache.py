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
  memory. Object stores (``s3://...``) are served the same way, without a cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from quant_assets.lakehouse import catalog, catalog_index
from quant_assets.lakehouse.catalog_index import CatalogFile, CatalogIndex, build_index, update_index
from quant_assets.lakehouse.store import PartitionStore, PartitionVersion, is_local, parquet_bytes, read_version

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


def index_key(files: list[CatalogFile]) -> str:
    names = "\n".join(sorted(f"{f.date}/{f.name}" for f in files))
    return hashlib.sha256(f"{CODE_FINGERPRINT}\n{names}".encode()).hexdigest()[:16]


def cache_folder(store: PartitionStore) -> Path:
    return Path(str(store.root / CACHE_DIR / CATALOG_DIR))


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

    if not is_local(store.root):
        return build_index(files, read)
    folder, key = cache_folder(store), index_key(files)
    index = _load(folder / key, key)
    if index is not None:
        return index
    base_key = _current_key(folder)
    base = _load(folder / base_key, base_key) if base_key else None
    index = update_index(base, files, read) if base is not None else build_index(files, read)
    _publish(folder, key, index)
    return index


def _load(path: Path, key: str) -> CatalogIndex | None:
    """The index published at ``path``, or None when any table is missing, unreadable or not
    of state ``key``."""
    tables = {}
    for name in CatalogIndex.TABLES:
        try:
            data = (path / f"{name}.parquet").read_bytes()
            buffer = io.BytesIO(data)
            if (pq.read_metadata(buffer).metadata or {}).get(KEY_FIELD.encode()) != key.encode():
                return None
            buffer.seek(0)
            tables[name] = pl.read_parquet(buffer)
        except (OSError, pl.exceptions.PolarsError, ValueError):
            return None
    return CatalogIndex(**tables)


def _current_key(folder: Path) -> str | None:
    try:
        return os.readlink(folder / CURRENT)
    except OSError:
        return None


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
