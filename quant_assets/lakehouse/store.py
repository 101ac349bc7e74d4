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

A version is written to a temporary name beside its target and renamed into place, so readers
see it whole or not at all. The root is a local path or any fsspec URL (``s3://bucket/lake``);
on object stores a single PUT is already all-or-nothing.
"""

from __future__ import annotations

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


def resolve_root(root: str | os.PathLike[str] | None = None) -> UPath:
    """The lakehouse root: ``root`` if given, else ``$QUANT_ASSETS_LAKEHOUSE``, else ``data/lakehouse``."""
    chosen = root if root not in (None, "") else os.environ.get(LAKEHOUSE_ENV) or DEFAULT_ROOT
    path = UPath(chosen)
    if path.protocol in _LOCAL:
        return UPath(Path(str(chosen).removeprefix("file://")).expanduser().resolve())
    return path


def is_local(path: UPath | Path) -> bool:
    """Whether ``path`` is on the local file system (a plain path is)."""
    return getattr(path, "protocol", "") in _LOCAL


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
    fsync, rename; one PUT on an object store)."""
    path = UPath(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not is_local(path):
        with path.open("wb") as fh:
            fh.write(data)
        return
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
    return list(folder.iterdir()) if folder.exists() else []


def _listing(folder: UPath) -> list[tuple[UPath, list[str]]]:
    """Each sub-folder of ``folder`` with the names of its files: the partitions of an asset, read
    in one pass (thousands of folders: only names, no path objects, until one is needed)."""
    if not is_local(folder):
        return [(sub, [f.name for f in sub.iterdir()]) for sub in _entries(folder) if sub.is_dir()]
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


class PartitionStore:
    """Reads and writes versioned daily partitions of the lakehouse's assets."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_root(root)

    def partition_dir(self, asset: str, day: date | str) -> UPath:
        """Directory of one partition: ``<root>/<asset>/date=YYYY-MM-DD``."""
        return self.root / asset / f"date={day_of(day).isoformat()}"

    def versions(self, asset: str, day: date | str) -> list[PartitionVersion]:
        """Every version of a partition, oldest first."""
        found = (parse_version(entry) for entry in _entries(self.partition_dir(asset, day)))
        return sorted(v for v in found if v is not None)

    def all_versions(self, asset: str) -> dict[date, list[PartitionVersion]]:
        """Every version of every partition of ``asset``, by day (ascending), oldest first."""
        out: dict[date, list[PartitionVersion]] = {}
        for folder, names in _listing(self.root / asset):
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
        except OSError as exc:
            raise LakehouseError(f"{asset} {day}: could not write {path}: {exc}") from exc
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
        if not is_local(self.root) or not paths:
            return {d: read_version(live[d][-1].path, columns).filter(rows) for d in wanted}
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
    try:
        with path.open("rb") as fh:
            return pl.read_parquet(fh, columns=columns)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LakehouseError(f"cannot read {path}: {exc}") from exc
