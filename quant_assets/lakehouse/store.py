"""The partition store: one Parquet file per (asset, day), written atomically.

Layout (hive style, so DuckDB, Spark and Trino read it as is)::

    <root>/<asset>/date=YYYY-MM-DD/part-0.parquet

A write goes to a temporary file beside the target and is renamed over it, so a reader sees
the old partition or the new one, never half of either. The root is a local path or any
fsspec URL (``s3://bucket/lake``); on object stores a single PUT is already all-or-nothing.
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path

import polars as pl
from upath import UPath

from quant_assets.errors import LakehouseError

#: Environment variable that sets the lakehouse root when no explicit root is given.
LAKEHOUSE_ENV = "QUANT_ASSETS_LAKEHOUSE"
DEFAULT_ROOT = "data/lakehouse"
PART_FILE = "part-0.parquet"


def resolve_root(root: str | os.PathLike[str] | None = None) -> UPath:
    """The lakehouse root: ``root`` if given, else ``$QUANT_ASSETS_LAKEHOUSE``, else ``data/lakehouse``."""
    chosen = root if root not in (None, "") else os.environ.get(LAKEHOUSE_ENV) or DEFAULT_ROOT
    path = UPath(chosen)
    if path.protocol in ("", "file", "local"):
        return UPath(Path(str(chosen).removeprefix("file://")).expanduser().resolve())
    return path


def partition_dir(root: UPath, asset: str, day: date | str) -> UPath:
    """Directory of one partition: ``<root>/<asset>/date=YYYY-MM-DD``."""
    return root / asset / f"date={_day(day)}"


def _day(day: date | str) -> str:
    text = day.isoformat() if isinstance(day, date) else str(day)
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise LakehouseError(f"partition key {text!r} is not a date (YYYY-MM-DD)") from exc
    return text


def write_parquet_atomic(frame: pl.DataFrame, path: UPath | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``frame`` (with key-value ``metadata``) to ``path`` so that readers never see a
    partial file."""
    path = UPath(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.protocol in ("", "file", "local"):
        tmp = Path(str(path)).with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                frame.write_parquet(fh, compression="zstd", statistics=True, metadata=metadata)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, str(path))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    else:
        with path.open("wb") as fh:
            frame.write_parquet(fh, compression="zstd", statistics=True, metadata=metadata)


class PartitionStore:
    """Reads and writes daily partitions of the lakehouse's assets."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_root(root)

    def path(self, asset: str, day: date | str) -> UPath:
        return partition_dir(self.root, asset, day) / PART_FILE

    def write(self, asset: str, day: date | str, frame: pl.DataFrame) -> UPath:
        """Replace partition ``day`` of ``asset`` with ``frame`` atomically."""
        path = self.path(asset, day)
        write_parquet_atomic(frame, path)
        return path

    def exists(self, asset: str, day: date | str) -> bool:
        return self.path(asset, day).exists()

    def read(self, asset: str, day: date | str, columns: list[str] | None = None) -> pl.DataFrame:
        """Partition ``day`` of ``asset`` (only ``columns``, if given)."""
        path = self.path(asset, day)
        if not path.exists():
            raise LakehouseError(f"{asset}: partition {_day(day)} not found at {path}")
        with path.open("rb") as fh:
            return pl.read_parquet(fh, columns=columns)

    def partitions(self, asset: str) -> list[date]:
        """Days for which ``asset`` has a complete partition, ascending."""
        base = self.root / asset
        if not base.exists():
            return []
        days = []
        for child in base.iterdir():
            if child.name.startswith("date=") and (child / PART_FILE).exists():
                days.append(date.fromisoformat(child.name.removeprefix("date=")))
        return sorted(days)
