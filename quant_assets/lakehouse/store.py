"""The partition store: every rewrite of a daily partition is a new, immutable version.

Layout (hive style, so DuckDB, Spark and Trino read it as is)::

    <root>/<asset>/date=YYYY-MM-DD/part-<recorded>-<digest>.parquet

``<recorded>`` is when the version was written (UTC, ``20261130T051706123456Z``: names sort by
it) and ``<digest>`` the first 12 hex digits of the SHA-256 of the file's bytes. Nothing is
ever overwritten: re-materialising a partition with other content adds a version beside the old
ones, so "as known at T" is the version with the latest ``<recorded>`` on or before T, and the
live partition is the latest version. Re-materialising with identical content writes nothing.

Only names of exactly this shape are partitions: ``date=2026-06-12.bak/``, ``part-0.parquet``,
temporary files and anything else are never read as data (``quant-assets doctor`` lists them).

Readers see a version whole or not at all. On a local disk it is written to a temporary name
beside its target and renamed into place. The root may also be any fsspec URL
(``s3://bucket/lake``): an object store has no rename, and needs none, since an object becomes
visible only when its upload completes. A version's bytes are made in memory first and handed
over whole (:func:`write_bytes_atomic`): with s3fs, one PUT below two parts' size
(:data:`MULTIPART_PART_BYTES`), else a multipart upload, which S3 shows only at its
CompleteMultipartUpload and which s3fs aborts when a part fails. A failure before or during
the upload leaves no object and the previous versions as they were.

On such a root every listing is one request to the store (fsspec's listings cache is off:
another process may have written since), and a listing or read that the store refuses (no
bucket, credentials denied) is a :class:`LakehouseError` naming the lakehouse root.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
from fsspec import AbstractFileSystem
from fsspec.asyn import sync
from upath import UPath

from quant_assets.errors import LakehouseError

#: Environment variable that sets the lakehouse root when no explicit root is given.
LAKEHOUSE_ENV = "QUANT_ASSETS_LAKEHOUSE"
DEFAULT_ROOT = "data/lakehouse"

#: A partition folder: ``date=YYYY-MM-DD``.
PARTITION_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
#: A version file: ``part-<recorded UTC>-<12 hex digits of its SHA-256>.parquet``.
VERSION_FILE = re.compile(r"part-(\d{8}T\d{12}Z)-([0-9a-f]{12})\.parquet")
_STAMP = "%Y%m%dT%H%M%S%fZ"  # the recorded time in a version's name
_LOCAL = ("", "file", "local")
#: The part size of multipart uploads to S3; a version under twice this size goes in one PUT.
MULTIPART_PART_BYTES = 50 * 2**20
_S3 = ("s3", "s3a")
#: Requests in flight at once when reading or writing many files on an object store.
_CONCURRENT_REQUESTS = 32


def resolve_root(root: str | os.PathLike[str] | None = None) -> UPath:
    """The lakehouse root: ``root`` if given, else ``$QUANT_ASSETS_LAKEHOUSE``, else ``data/lakehouse``."""
    chosen = root if root not in (None, "") else os.environ.get(LAKEHOUSE_ENV) or DEFAULT_ROOT
    path = UPath(chosen)
    if path.protocol in _LOCAL:
        return UPath(Path(str(chosen).removeprefix("file://")).expanduser().resolve())
    # Listings must be fresh: other processes write partitions, and a cached listing would
    # hide their versions (or show a file's old size and tag, failing its read).
    return UPath(chosen, **{**path.storage_options, "use_listings_cache": False})


def is_local(path: UPath | Path) -> bool:
    """Whether ``path`` is on the local file system (a plain path is)."""
    return getattr(path, "protocol", "") in _LOCAL


def is_s3(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is s3fs, whose own upload and read options this module passes."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in _S3


def whole_read_options(fs: AbstractFileSystem) -> dict[str, int]:
    """Options of ``cat_file`` reading an object in one GET: s3fs, unless told not to split it,
    first asks the object's size (a HEAD) to split a large one into ranged GETs."""
    return {"max_concurrency": 1} if is_s3(fs) else {}


def day_of(day: date | str) -> date:
    """A partition key as a date; raises :class:`LakehouseError` naming a key that is not one."""
    if isinstance(day, datetime):
        raise LakehouseError(f"partition key {day!r} is a datetime, expected a date (YYYY-MM-DD)")
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(str(day))
    except ValueError as exc:
        raise LakehouseError(f"partition key {day!r} is not a date (YYYY-MM-DD)") from exc


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parquet_bytes(frame: pl.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """``frame`` as Parquet bytes: zstd, statistics, the same bytes for the same frame."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True, metadata=metadata)
    return buffer.getvalue()


def write_bytes_atomic(data: bytes, path: UPath | Path) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file (temporary file,
    fsync, rename; on an object store, one upload of the whole bytes)."""
    path = UPath(path)
    if not is_local(path):
        write_blobs([(path, data)])
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path)).with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, str(path))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_blobs(blobs: list[tuple[UPath | Path, bytes]]) -> None:
    """:func:`write_bytes_atomic` for each (path, bytes), all on one file system; on an async
    object store the uploads go concurrently. Each file is whole or absent; if one fails, the
    others may have been written."""
    if not blobs:
        return
    if is_local(blobs[0][0]):
        for path, data in blobs:
            write_bytes_atomic(data, path)
        return
    paths = [UPath(path) for path, _ in blobs]
    fs = paths[0].fs
    # Never ``with fs.open(path, "wb")``: fsspec's file commits on exit even when the block
    # raised, publishing a partial object. ``pipe_file`` gets every byte at once: s3fs sends
    # one PUT, or a multipart upload that it aborts on any error, so the object appears whole
    # (at CompleteMultipartUpload) or not at all. No mkdir: object stores have no folders (and
    # s3fs would create a missing bucket).
    options = {"chunksize": MULTIPART_PART_BYTES} if is_s3(fs) else {}
    if not getattr(fs, "async_impl", False):
        for path, (_, data) in zip(paths, blobs):
            fs.pipe_file(path.path, data, **options)
        return

    async def put_all() -> None:
        limit = asyncio.Semaphore(_CONCURRENT_REQUESTS)

        async def put(path: UPath, data: bytes) -> None:
            async with limit:
                await fs._pipe_file(path.path, data, **options)

        await asyncio.gather(*(put(path, data) for path, (_, data) in zip(paths, blobs)))

    sync(fs.loop, put_all)


def write_parquet_atomic(frame: pl.DataFrame, path: UPath | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``frame`` (with key-value ``metadata``) to ``path`` so that readers never see a
    partial file."""
    write_bytes_atomic(parquet_bytes(frame, metadata), path)


@dataclass(frozen=True, order=True)
class PartitionVersion:
    """One immutable version of a partition: when it was recorded, its digest and its file."""

    recorded_at: datetime
    digest: str
    path: UPath = field(compare=False)

    @property
    def day(self) -> date:
        return date.fromisoformat(self.path.parent.name.removeprefix("date="))


def version_name(recorded_at: datetime, digest: str) -> str:
    """The file name of a version: ``part-<recorded UTC>-<digest>.parquet``."""
    return f"part-{utc(recorded_at).strftime(_STAMP)}-{digest}.parquet"


def parse_version(path: UPath) -> PartitionVersion | None:
    """The version a file name describes, or None when the name is not a version's."""
    match = VERSION_FILE.fullmatch(path.name)
    if match is None:
        return None
    s = match.group(1)  # YYYYMMDDTHHMMSSffffffZ; parsed by hand: strptime costs more than the listing
    try:
        recorded = datetime(int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[9:11]), int(s[11:13]), int(s[13:15]),
                            int(s[15:21]), tzinfo=timezone.utc)
    except ValueError:
        return None
    return PartitionVersion(recorded, match.group(2), path)


def partition_day(folder_name: str) -> date | None:
    """The day a partition folder name stands for, or None when it is not ``date=YYYY-MM-DD``."""
    match = PARTITION_DIR.fullmatch(folder_name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _known(versions: list[PartitionVersion], known_at: datetime | None) -> PartitionVersion | None:
    if known_at is not None:
        moment = utc(known_at)
        versions = [v for v in versions if v.recorded_at <= moment]
    return versions[-1] if versions else None


def _entries(folder: UPath) -> list[UPath]:
    """The entries of ``folder`` (none if it does not exist); one directory read. Local entries
    are plain paths: listing a lakehouse makes thousands, and a UPath costs ten times more."""
    if is_local(folder):
        try:
            with os.scandir(str(folder)) as it:
                return [Path(entry.path) for entry in it]  # type: ignore[misc]
        except (FileNotFoundError, NotADirectoryError):
            return []
    return [folder / name for name in _remote_files(folder).get("", [])]


def _remote_files(folder: UPath) -> dict[str, list[str]]:
    """The objects under ``folder`` on an object store, as {sub-folder name ("" for ``folder``
    itself): names of its files}: one recursive listing (one request per thousand objects on
    S3), where a walk would ask once per folder. A prefix holding nothing is empty; a missing
    bucket or refused credentials raise (``FileNotFoundError``, ``PermissionError``)."""
    fs = folder.fs
    base = fs._strip_protocol(str(folder)).rstrip("/")
    parent, _, name = base.rpartition("/")
    # s3fs asks, after an empty listing, whether the folder is itself a file (two requests
    # more per new partition); a listing by key prefix from the parent does not.
    found = fs.find(parent, prefix=f"{name}/") if is_s3(fs) and parent else fs.find(base)
    base += "/"
    out: dict[str, list[str]] = {}
    for name in found:
        parts = name.removeprefix(base).split("/") if name.startswith(base) else []
        if len(parts) == 1:
            out.setdefault("", []).append(parts[0])
        elif len(parts) == 2:
            out.setdefault(parts[0], []).append(parts[1])
    return out


def _listing(folder: UPath) -> list[tuple[UPath, list[str]]]:
    """Each sub-folder of ``folder`` with the names of its files: the partitions of an asset, read
    in one pass (thousands of folders: only names, no path objects, until one is needed)."""
    if not is_local(folder):
        return [(folder / sub, names) for sub, names in _remote_files(folder).items() if sub]
    out = []
    try:
        with os.scandir(str(folder)) as top:
            subs = [entry.name for entry in top if entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    base = Path(str(folder))
    for name in subs:
        try:
            with os.scandir(os.path.join(str(folder), name)) as inner:
                out.append((base / name, [entry.name for entry in inner]))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return out


@functools.cache
def store_errors() -> tuple[type[Exception], ...]:
    """What a file system raises when its store cannot be reached or refuses a request:
    ``OSError`` (s3fs turns S3's answers into one), and botocore's own errors, which s3fs
    passes on as they are (no endpoint answering, no credentials found)."""
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError)


def storage_error(root: UPath, doing: str, exc: Exception) -> LakehouseError:
    """``exc``, raised while ``doing`` something in the lakehouse at ``root``, as a
    :class:`LakehouseError` that names the root and what to check (never a credential: the
    file system's message names none)."""
    return LakehouseError(f"lakehouse {root}: cannot {doing}: {exc}{_hint(root, exc)}")


def _hint(path: UPath | Path, exc: BaseException) -> str:
    # A missing bucket needs none: s3fs says "The specified bucket does not exist".
    if is_local(path):
        return ""
    if isinstance(exc, PermissionError):
        return (" (access denied: check the credentials the file system finds, for s3 AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, a profile or a role, and the bucket's policy)")
    return ""


def root_holds_data(root: UPath) -> bool:
    """Whether anything is stored under ``root``.

    Raises
    ------
    LakehouseError
        The store refuses to say (no bucket, credentials denied), naming the root.
    """
    if is_local(root):
        return root.exists()
    try:
        try:
            return bool(root.fs.ls(root.path, detail=False))
        except FileNotFoundError:
            # An empty prefix and a missing bucket both read "not found" here; a recursive
            # listing of nothing is cheap, and raises only for the missing bucket.
            return bool(root.fs.find(root.path))
    except store_errors() as exc:
        raise storage_error(root, "list it", exc) from exc


class PartitionStore:
    """Reads and writes versioned daily partitions of the lakehouse's assets."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_root(root)

    def partition_dir(self, asset: str, day: date | str) -> UPath:
        """Directory of one partition: ``<root>/<asset>/date=YYYY-MM-DD``."""
        return self.root / asset / f"date={day_of(day).isoformat()}"

    def versions(self, asset: str, day: date | str) -> list[PartitionVersion]:
        """Every version of a partition, oldest first."""
        folder = self.partition_dir(asset, day)
        try:
            entries = _entries(folder)
        except store_errors() as exc:
            raise storage_error(self.root, f"list {folder}", exc) from exc
        return sorted(v for v in map(parse_version, entries) if v is not None)

    def all_versions(self, asset: str) -> dict[date, list[PartitionVersion]]:
        """Every version of every partition of ``asset``, by day (ascending), oldest first."""
        out: dict[date, list[PartitionVersion]] = {}
        try:
            listing = _listing(self.root / asset)
        except store_errors() as exc:
            raise storage_error(self.root, f"list {self.root / asset}", exc) from exc
        for folder, names in listing:
            day = partition_day(folder.name)
            if day is None:
                continue
            versions = sorted(v for v in (parse_version(folder / n) for n in names if VERSION_FILE.fullmatch(n))
                              if v is not None)
            if versions:
                out[day] = versions
        return dict(sorted(out.items()))

    def version(self, asset: str, day: date | str, known_at: datetime | None = None) -> PartitionVersion | None:
        """The live version of a partition, or the one known at ``known_at``; None if none."""
        return _known(self.versions(asset, day), known_at)

    def path(self, asset: str, day: date | str, known_at: datetime | None = None) -> UPath:
        """The file of the live version (or of the one known at ``known_at``).

        Raises
        ------
        LakehouseError
            If the partition has no such version.
        """
        version = self.version(asset, day, known_at)
        if version is None:
            when = "" if known_at is None else f" known at {utc(known_at).isoformat()}"
            raise LakehouseError(
                f"{asset}: partition {day_of(day)} has no version{when} under {self.partition_dir(asset, day)}"
            )
        return version.path

    def exists(self, asset: str, day: date | str) -> bool:
        return self.version(asset, day) is not None

    def partitions(self, asset: str) -> list[date]:
        """Days for which ``asset`` has a partition, ascending."""
        return list(self.all_versions(asset))

    def write(
        self, asset: str, day: date | str, frame: pl.DataFrame, recorded_at: datetime | None = None
    ) -> PartitionVersion:
        """Record ``frame`` as the new version of partition ``day`` of ``asset``; return the
        live version. Identical content to the live version writes nothing.

        ``recorded_at`` (default: now, UTC) must be after the live version's; without it, a
        clock behind the live version's stamp is moved just past it.

        Raises
        ------
        LakehouseError
            ``recorded_at`` is not after the live version's, or the file could not be written.
        """
        strict = recorded_at is not None
        return self._write(asset, day_of(day), frame, utc(recorded_at) if strict else _now(), strict)

    def write_many(
        self, asset: str, frames: Mapping[date | str, pl.DataFrame], recorded_at: datetime | None = None
    ) -> dict[date, PartitionVersion]:
        """:meth:`write` each partition with one recorded time: a run's outputs are one
        knowledge event (readers never see a state between two of its partitions)."""
        strict = recorded_at is not None
        stamp = utc(recorded_at) if strict else _now()
        return {day: self._write(asset, day, frame, stamp, strict)
                for day, frame in sorted((day_of(key), frame) for key, frame in frames.items())}

    def _write(self, asset: str, day: date, frame: pl.DataFrame, stamp: datetime, strict: bool) -> PartitionVersion:
        data = parquet_bytes(frame)
        digest = hashlib.sha256(data).hexdigest()[:12]
        live = self.version(asset, day)
        if live is not None and live.digest == digest:
            return live
        if live is not None and stamp <= live.recorded_at:
            if strict:
                raise LakehouseError(
                    f"{asset} {day}: a version recorded at {stamp.isoformat()} is not after the live one "
                    f"({live.recorded_at.isoformat()}, {live.path.name})"
                )
            stamp = live.recorded_at + timedelta(microseconds=1)
        path = self.partition_dir(asset, day) / version_name(stamp, digest)
        try:
            write_bytes_atomic(data, path)
        except store_errors() as exc:
            raise storage_error(self.root, f"write {asset} {day} to {path}", exc) from exc
        return PartitionVersion(stamp, digest, path)

    def read(
        self, asset: str, day: date | str, columns: list[str] | None = None, known_at: datetime | None = None
    ) -> pl.DataFrame:
        """Partition ``day`` of ``asset`` (only ``columns``, if given): the live version, or the
        version known at ``known_at``.

        Raises
        ------
        LakehouseError
            The partition has no such version, or its file cannot be read (naming the file).
        """
        return read_version(self.path(asset, day, known_at), columns)

    def read_many(
        self, asset: str, days: Iterable[date], columns: list[str], where: pl.Expr | None = None
    ) -> dict[date, pl.DataFrame]:
        """The live version of partition ``day`` of ``asset`` for each of ``days`` (only
        ``columns``, only the rows ``where`` holds), read in one scan on a local disk: a
        backtest reads years of small files.

        Raises
        ------
        LakehouseError
            A partition has no version, or a file cannot be read (naming it).
        """
        live = self.all_versions(asset)
        wanted = sorted(set(days))
        missing = [d for d in wanted if d not in live]
        if missing:
            raise LakehouseError(f"{asset}: partitions {', '.join(map(str, missing[:5]))} are not materialised "
                                 f"({len(missing)} missing under {self.root / asset})")
        paths = {str(live[d][-1].path): d for d in wanted}
        rows = pl.lit(True) if where is None else where
        if not paths:
            return {}
        if not is_local(self.root):
            blobs = read_blobs([live[d][-1].path for d in wanted])
            return {d: _parquet(blob, live[d][-1].path, columns).filter(rows) for d, blob in zip(wanted, blobs)}
        try:
            frame = pl.scan_parquet(list(paths), include_file_paths="_file").select(*columns, "_file").filter(rows).collect()
        except (OSError, pl.exceptions.PolarsError) as exc:  # name the file that fails
            for path in paths:
                read_version(UPath(path), columns)
            raise LakehouseError(f"cannot read the {asset} partitions under {self.root / asset}: {exc}") from exc
        parts = frame.partition_by("_file", as_dict=True, include_key=False)
        return {day: parts.get((path,), frame.clear().drop("_file")) for path, day in paths.items()}


def read_version(path: UPath, columns: list[str] | None = None) -> pl.DataFrame:
    """One version file as a frame; any failure is a :class:`LakehouseError` naming the file."""
    if not is_local(path):
        return _parquet(read_blobs([path])[0], path, columns)
    try:
        with path.open("rb") as fh:
            return pl.read_parquet(fh, columns=columns)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LakehouseError(f"cannot read {path}: {exc}") from exc


def read_blobs(paths: list[UPath], missing_ok: bool = False) -> list[bytes | None]:
    """The bytes of each of ``paths`` (all on one file system): on an object store one GET each,
    sent together. A missing file is None if ``missing_ok``.

    Raises
    ------
    LakehouseError
        A file cannot be read, naming it.
    """
    if not paths:
        return []
    if is_local(paths[0]):
        out: list[bytes | None] = []
        for path in paths:
            try:
                out.append(Path(str(path)).read_bytes())
            except FileNotFoundError:
                if not missing_ok:
                    raise LakehouseError(f"cannot read {path}: no such file") from None
                out.append(None)
            except OSError as exc:
                raise LakehouseError(f"cannot read {path}: {exc}") from exc
        return out
    fs = paths[0].fs
    got = _fetch(fs, [fs._strip_protocol(str(p)) for p in paths])
    out = []
    for path, blob in zip(paths, got):
        if isinstance(blob, FileNotFoundError) and missing_ok:
            out.append(None)
        elif isinstance(blob, BaseException):
            raise LakehouseError(f"cannot read {path}: {blob}{_hint(path, blob)}") from blob
        else:
            out.append(blob)
    return out


def _fetch(fs: AbstractFileSystem, keys: list[str]) -> list[bytes | BaseException]:
    """The bytes of each key, or the error reading it: one GET each, concurrent on an async
    file system. (``fs.cat(list)`` would first ask whether each key is a folder: two more
    requests per file.)"""
    if not getattr(fs, "async_impl", False):
        out: list[bytes | BaseException] = []
        for key in keys:
            try:
                out.append(fs.cat_file(key))
            except store_errors() as exc:
                out.append(exc)
        return out

    options = whole_read_options(fs)

    async def gather() -> list[bytes | BaseException]:
        limit = asyncio.Semaphore(_CONCURRENT_REQUESTS)

        async def one(key: str) -> bytes | BaseException:
            async with limit:
                try:
                    return await fs._cat_file(key, **options)
                except store_errors() as exc:
                    return exc

        return await asyncio.gather(*(one(key) for key in keys))

    return sync(fs.loop, gather)


def _parquet(data: bytes | None, path: UPath, columns: list[str] | None) -> pl.DataFrame:
    try:
        return pl.read_parquet(io.BytesIO(data or b""), columns=columns)
    except pl.exceptions.PolarsError as exc:
        raise LakehouseError(f"cannot read {path}: {exc}") from exc
