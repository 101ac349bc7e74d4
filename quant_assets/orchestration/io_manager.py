"""A Parquet IO manager of our own over the versioned partition store
(``<root>/<asset>/date=D/part-<recorded>-<digest>.parquet``, :mod:`quant_assets.lakehouse.store`).

One convention in both directions, whatever the run covers (one partition, or a range in a
single-run backfill):

* an asset returns ``{partition_key: frame}`` for the partitions of its run; every partition
  is written atomically on its own, all with one recorded time (a run's outputs are one
  knowledge event), and a partition whose content did not change gets no new version;
* an input arrives as ``{partition_key: frame}``, ascending, even when one partition maps
  (Dagster's stock managers hand over a bare frame then, which breaks lookback code on the
  first day of a range).

Input metadata ``columns`` (a list) reads only those columns.
"""

from __future__ import annotations

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
        for key, frame in obj.items():
            if not isinstance(frame, pl.DataFrame):
                raise LakehouseError(f"{asset} {key}: expected a polars DataFrame, got {type(frame).__name__}")
        self._store().write_many(asset, obj)

    def load_input(self, context: InputContext) -> dict[str, pl.DataFrame]:
        asset = _asset_name(context)
        columns = (context.definition_metadata or {}).get("columns")
        store = self._store()
        frames = {}
        for key in sorted(context.asset_partition_keys):
            if not store.exists(asset, key):
                raise LakehouseError(
                    f"{asset}: partition {key} is not materialised (no version under "
                    f"{store.partition_dir(asset, key)}); materialise it first"
                )
            frames[key] = store.read(asset, key, columns=columns)
        return frames
