"""DuckDB SQL over the lakehouse: read-only, in-memory connections, views over Parquet.

Parquet is the system of record; DuckDB never owns a database file here, so any number of
readers run beside the writers without lock errors. Each connection gets:

- one view per asset with data (``raw_screen``, ``signals``, ...), every partition, with
  ``date`` as a column;
- ``symbols``: every version of every symbol (type 2), derived from the catalog's daily
  observations as runs of identical attributes; ``valid_to`` is the next version's
  ``valid_from`` (exclusive) and NULL while current;
- the table macro ``symbols_as_of(d)``: the version of each symbol in force on day ``d``.
"""

from __future__ import annotations

import os

import duckdb
import polars as pl

from quant_assets.lakehouse.catalog import TRACKED_ATTRIBUTES
from quant_assets.lakehouse.store import PART_FILE, resolve_root

ASSETS: tuple[str, ...] = (
    "raw_screen", "liquid_universe", "signals", "regime", "covariance", "barbell_weights",
    "metadata_catalog",
)


def _symbols_sql() -> str:
    attrs = ", ".join(TRACKED_ATTRIBUTES)
    # A missing field never wipes a known one: carry the last known value forward first.
    carried = ",\n        ".join(
        f"last_value({a} IGNORE NULLS) OVER w AS {a}" for a in TRACKED_ATTRIBUTES
    )
    changed = " OR ".join(f"{a} IS DISTINCT FROM lag({a}) OVER s" for a in TRACKED_ATTRIBUTES)
    return f"""
    CREATE VIEW symbols AS
    WITH carried AS (
      SELECT symbol, date, recorded_at,
        {carried}
      FROM metadata_catalog
      WINDOW w AS (PARTITION BY symbol ORDER BY date
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ), flagged AS (
      SELECT *, CASE WHEN {changed} THEN 1 ELSE 0 END AS starts_version
      FROM carried WINDOW s AS (PARTITION BY symbol ORDER BY date)
    ), numbered AS (
      SELECT *, sum(starts_version) OVER (PARTITION BY symbol ORDER BY date) AS version
      FROM flagged
    ), versions AS (
      SELECT symbol, version, {attrs},
        min(date) AS valid_from, max(date) AS last_seen, min(recorded_at) AS recorded_at
      FROM numbered GROUP BY symbol, version, {attrs}
    )
    SELECT symbol, version::INTEGER AS version, {attrs}, valid_from,
      lead(valid_from) OVER (PARTITION BY symbol ORDER BY valid_from) AS valid_to,
      last_seen, recorded_at
    FROM versions
    """


def connect(root: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per asset over the lakehouse at ``root``."""
    base = resolve_root(root)
    con = duckdb.connect(":memory:")
    for asset in ASSETS:
        folder = base / asset
        if not folder.exists() or not any(folder.glob(f"date=*/{PART_FILE}")):
            continue
        glob = str(folder / "date=*" / PART_FILE).replace("'", "''")
        # Each file carries its own `date` column, so the hive key is not needed.
        con.execute(
            f"CREATE VIEW {asset} AS SELECT * FROM read_parquet('{glob}', "
            "union_by_name = true, hive_partitioning = false)"
        )
    if _has_view(con, "metadata_catalog"):
        con.execute(_symbols_sql())
        con.execute(
            """CREATE MACRO symbols_as_of(d) AS TABLE
               SELECT * FROM symbols
               WHERE valid_from <= CAST(d AS DATE)
                 AND (valid_to IS NULL OR valid_to > CAST(d AS DATE))"""
        )
    return con


def _has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]
    ).fetchall()
    return rows[0][0] > 0


def query(sql: str, root: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """Run one read-only SQL query over the lakehouse and return a polars frame."""
    con = connect(root)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()
