"""``quant-assets doctor``: every file of the lakehouse that is not what its place promises.

Readers see only partition versions named exactly ``<asset>/date=YYYY-MM-DD/part-<recorded>-
<digest>.parquet``; everything else is ignored, and this lists it, so nothing is ignored
silently. Each version file is read whole and held to its asset's data contract.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from datetime import date

import polars as pl
from upath import UPath

from quant_assets.lakehouse.bars_cache import BARS_DIR
from quant_assets.lakehouse.catalog_cache import CACHE_DIR
from quant_assets.lakehouse.contracts import CONTRACTS, contract_problems
from quant_assets.lakehouse.store import PartitionStore, parse_version, partition_day, root_holds_data

#: A temporary file this old is an interrupted write, not one in progress.
STALE_TEMP_S = 3600.0


@dataclass(frozen=True)
class Finding:
    """One file or folder and what is wrong with it."""

    path: UPath
    kind: str  # stray | corrupt | schema | legacy
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:8} {self.path}: {self.detail}"


def examine(store: PartitionStore) -> list[Finding]:
    """Every stray, corrupt, legacy or off-contract file of the lakehouse, sorted by path.

    Raises
    ------
    LakehouseError
        The lakehouse's store refuses to list it (no bucket, credentials denied), naming it.
    """
    findings: list[Finding] = []
    if not root_holds_data(store.root):  # raises, naming the root, if the store refuses to say
        return [Finding(store.root, "stray", "no lakehouse here")]
    for entry in store.root.iterdir():
        if entry.name in CONTRACTS:
            findings += _asset(entry.name, entry)
        elif entry.name not in (BARS_DIR, CACHE_DIR):
            findings.append(Finding(entry, "stray", "not an asset, the bars cache or the derived cache"))
    return sorted(findings, key=lambda f: str(f.path))


def _asset(asset: str, folder: UPath) -> list[Finding]:
    findings = []
    for entry in folder.iterdir():
        day = partition_day(entry.name)
        if day is None or not entry.is_dir():
            findings.append(Finding(entry, "stray", "not a partition folder date=YYYY-MM-DD; never read"))
            continue
        for file in entry.iterdir():
            version = parse_version(file)
            if version is not None:
                findings += _version(asset, day, file, version.digest)
            elif file.name == "part-0.parquet":
                findings.append(Finding(file, "legacy", "written by an earlier release; never read: "
                                                         "re-materialise the partition"))
            elif file.name.endswith(".tmp") and time.time() - file.stat().st_mtime < STALE_TEMP_S:
                continue  # a write in progress
            else:
                findings.append(Finding(file, "stray", "not a partition version part-<recorded>-<digest>.parquet; "
                                                       "never read"))
    return findings


def _version(asset: str, day: date, file: UPath, digest: str) -> list[Finding]:
    data = file.read_bytes()
    if hashlib.sha256(data).hexdigest()[:12] != digest:
        return [Finding(file, "corrupt", "its bytes do not match the digest in its name (changed after writing)")]
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except pl.exceptions.PolarsError as exc:
        return [Finding(file, "corrupt", f"not readable as Parquet: {exc}")]
    problems = contract_problems(asset, frame, day)
    return [Finding(file, "schema", "; ".join(problems))] if problems else []
