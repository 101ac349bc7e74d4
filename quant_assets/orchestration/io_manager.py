"""A Parquet IO manager of our own: polars frames to ``<root>/<asset>/date=D/part-0.parquet``."""

from __future__ import annotations

import polars as pl
from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext, UPathIOManager
from upath import UPath

from quant_assets.lakehouse.store import PART_FILE, write_parquet_atomic
from quant_assets.orchestration.resources import LakehouseResource


class PolarsParquetIOManager(UPathIOManager):
    """Stores each daily partition as one Parquet file, written atomically (temp, then rename)."""

    extension = ".parquet"

    def get_path_for_partition(self, context: InputContext | OutputContext, path: UPath, partition: str) -> UPath:
        # The extension is added by the base class: part-0 -> part-0.parquet.
        return path / f"date={partition}" / PART_FILE.removesuffix(self.extension)

    def dump_to_path(self, context: OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        write_parquet_atomic(obj, path)

    def load_from_path(self, context: InputContext, path: UPath) -> pl.DataFrame:
        with path.open("rb") as fh:
            return pl.read_parquet(fh)


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Parquet IO manager rooted at the lakehouse resource's root."""

    lakehouse: LakehouseResource

    def create_io_manager(self, context) -> PolarsParquetIOManager:
        return PolarsParquetIOManager(base_path=self.lakehouse.store().root)
