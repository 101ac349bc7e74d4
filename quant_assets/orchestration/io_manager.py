"""A Parquet IO manager of our own: each daily partition is ``<root>/<asset>/date=D/part-0.parquet``.

One convention in both directions, whatever the run covers (one partition, or a range in a
single-run backfill):

* an asset returns ``{partition_key: frame}`` for the partitions of its run, and every
  partition is written atomically (temp file, then rename) on its own;
* an input arrives as ``{partition_key: frame}``, ascending, even when one partition maps
  (Dagster's stock managers hand over a bare frame then, which breaks lookback code on the
  first day of a range).

Input metadata: ``columns`` (list) reads only those columns; ``allow_missing_partitions``
(bool) skips partitions not materialised yet instead of failing, so a lookback window near the
start of the history, or ahead of a backfill, loads what exists.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.resources import LakehouseResource


def _asset_name(context: InputContext | OutputContext) -> str:
    return "/".join(context.asset_key.path)


class ParquetIOManager(ConfigurableIOManager):
    """Reads and writes daily partitions of polars frames in the lakehouse."""

    lakehouse: LakehouseResource

    def _store(self) -> PartitionStore:
        return self.lakehouse.store()

    def handle_output(self, context: OutputContext, obj: dict[str, pl.DataFrame]) -> None:
        asset = _asset_name(context)
        expected = set(context.asset_partition_keys)
        if not isinstance(obj, dict) or set(obj) != expected:
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise LakehouseError(
                f"{asset}: the asset must return one frame per partition of its run "
                f"{sorted(expected)}, got {got}"
            )
        store = self._store()
        for key in sorted(obj):
            if not isinstance(obj[key], pl.DataFrame):
                raise LakehouseError(f"{asset} {key}: expected a polars DataFrame, got {type(obj[key]).__name__}")
            store.write(asset, key, obj[key])

    def load_input(self, context: InputContext) -> dict[str, pl.DataFrame]:
        asset = _asset_name(context)
        metadata: dict[str, Any] = dict(context.definition_metadata or {})
        columns = metadata.get("columns")
        allow_missing = bool(metadata.get("allow_missing_partitions", False))
        store = self._store()
        frames = {}
        for key in sorted(context.asset_partition_keys):
            path = store.path(asset, key)
            if not path.exists():
                if allow_missing:
                    continue
                raise LakehouseError(f"{asset}: partition {key} is not materialised (no {path}); materialise it first")
            with path.open("rb") as fh:
                frames[key] = pl.read_parquet(fh, columns=columns)
        return frames
