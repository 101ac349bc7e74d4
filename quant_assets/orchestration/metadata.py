"""Materialisation metadata the Dagster UI shows: row count, column schema, markdown preview."""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema


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


def frame_metadata(frame: pl.DataFrame, preview: pl.DataFrame | None = None) -> dict[str, Any]:
    """Standard metadata for a materialised frame; ``preview`` defaults to its head."""
    schema = TableSchema(columns=[TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": schema,
        "preview": MetadataValue.md(markdown_table(frame if preview is None else preview)),
    }
