"""What the Dagster UI shows: materialisation metadata (row count, column schema, markdown
preview, a link to the Parquet file, pictures) and check results over a run's partitions."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Sequence

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue, TableColumn, TableSchema
from matplotlib.figure import Figure
from upath import UPath

from quant_assets.lakehouse.store import PartitionStore, is_local
from quant_assets.reporting.charts import markdown_image, render_png

#: Partitions listed by name in a failed check's metadata; the rest are counted.
_LISTED_FAILURES = 20


def markdown_table(frame: pl.DataFrame, max_rows: int = 10) -> str:
    """A GitHub-flavoured markdown table of the first ``max_rows`` rows."""
    head = frame.head(max_rows)

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if frame.height > max_rows:
        lines.append(f"\n_{frame.height - max_rows} more rows_")
    return "\n".join(lines)


def parquet_link(path: UPath) -> MetadataValue:
    """A local path as a path the UI can copy; an object-store path as a URL."""
    if is_local(path):
        return MetadataValue.path(str(path))
    return MetadataValue.url(str(path))


def frame_metadata(
    frame: pl.DataFrame, store: PartitionStore, asset: str, day: date, preview: pl.DataFrame | None = None
) -> dict[str, Any]:
    """Standard metadata for partition ``day`` of ``asset``: its folder in ``store`` (whose
    newest ``part-*.parquet`` is the live version) and a query reading it; ``preview``
    defaults to the frame's head."""
    schema = TableSchema(columns=[TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": schema,
        "preview": MetadataValue.md(markdown_table(frame if preview is None else preview)),
        "parquet": parquet_link(store.partition_dir(asset, day)),
        "duckdb": MetadataValue.md(
            f"```sh\nquant-assets sql \"SELECT * FROM {asset}_as_of(DATE '{day}')\"\n```"),
    }


def picture(figure: Figure, alt: str) -> MetadataValue:
    """A drawn chart, shown inline (as a PNG) in the asset's metadata."""
    return MetadataValue.md(markdown_image(render_png(figure), alt))


def check_result(
    name: str,
    problems: Mapping[str, Sequence[str]],
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
) -> AssetCheckResult:
    """One check's result over the run's partitions: passed when no partition has a problem.

    ``problems`` maps each partition key checked to what is wrong with it (empty: fine).
    """
    failed = {key: found for key, found in sorted(problems.items()) if found}
    listed = [f"- **{key}**: {'; '.join(found)}" for key, found in list(failed.items())[:_LISTED_FAILURES]]
    if len(failed) > _LISTED_FAILURES:
        listed.append(f"- _and {len(failed) - _LISTED_FAILURES} more partitions_")
    return AssetCheckResult(
        check_name=name,
        passed=not failed,
        severity=severity,
        metadata={
            "partitions_checked": len(problems),
            "partitions_failed": len(failed),
            "problems": MetadataValue.md("\n".join(listed) if listed else "none"),
        },
    )
