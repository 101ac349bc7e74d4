"""DuckDB SQL over the lakehouse: read-only, in-memory connections, views over Parquet.

Parquet is the system of record; DuckDB never owns a database file here, so any number of
readers run beside the writers without lock errors. Each connection gets:

- one view per asset with data (``raw_screen``, ``signals``, ...), every partition, with
  ``date`` as a column (``metadata_catalog`` holds every snapshot ever recorded);
- ``symbol_versions(known_at := NULL)``: every version of every symbol (type 2) as known at
  ``known_at`` (default: now), derived from the catalog's daily observations as runs of
  identical attributes; ``valid_to`` is the next version's ``valid_from`` (exclusive) and NULL
  while current; ``symbols`` is the same as known now;
- ``symbols_as_of(d, known_at := NULL, retire_after_days := 30)``: the version of each symbol
  in force on day ``d``, as known at ``known_at`` (a correction recorded later does not change
  an earlier answer), with ``last_observed`` (the last day on or before ``d`` it was seen) and
  ``active``: a symbol unseen for ``retire_after_days`` is retired on ``d`` (it may have been
  delisted, or only have left every config's screen), and active again once seen;
- ``universe_as_of(d, known_at := NULL)``: the signals selected on ``d`` with their barbell
  weight (NULL if not held) and the catalog's version of the symbol in force on ``d``.
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


def _symbol_versions_sql() -> str:
    attrs = ", ".join(TRACKED_ATTRIBUTES)
    # A missing field never wipes a known one: carry the last known value forward first.
    carried = ",\n        ".join(
        f"last_value({a} IGNORE NULLS) OVER w AS {a}" for a in TRACKED_ATTRIBUTES
    )
    changed = " OR ".join(f"{a} IS DISTINCT FROM lag({a}) OVER s" for a in TRACKED_ATTRIBUTES)
    return f"""
    CREATE MACRO symbol_versions(known_at := NULL) AS TABLE
    WITH known AS (
      SELECT * FROM catalog_known(known_at := known_at)
    ), carried AS (
      SELECT symbol, date, recorded_at,
        {carried}
      FROM known
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
        min(date) AS valid_from, max(date) AS last_seen, max(recorded_at) AS recorded_at
      FROM numbered GROUP BY symbol, version, {attrs}
    )
    SELECT symbol, version::INTEGER AS version, {attrs}, valid_from,
      lead(valid_from) OVER (PARTITION BY symbol ORDER BY valid_from) AS valid_to,
      last_seen, recorded_at
    FROM versions
    """


#: A symbol not observed for this many days is retired (``active`` false) until seen again.
RETIRE_AFTER_DAYS = 30

_CATALOG_MACROS = (
    # Per observation day, the latest snapshot recorded by known_at (default: now).
    """CREATE MACRO catalog_known(known_at := NULL) AS TABLE
       SELECT * EXCLUDE (snapshot) FROM (
         SELECT *, max(recorded_at) OVER (PARTITION BY date) AS snapshot
         FROM metadata_catalog
         WHERE known_at IS NULL OR recorded_at <= CAST(known_at AS TIMESTAMPTZ)
       ) WHERE recorded_at = snapshot""",
    _symbol_versions_sql(),
    "CREATE VIEW symbols AS SELECT * FROM symbol_versions()",
    f"""CREATE MACRO symbols_as_of(d, known_at := NULL, retire_after_days := {RETIRE_AFTER_DAYS}) AS TABLE
       SELECT v.*, o.last_observed,
              o.last_observed > CAST(d AS DATE) - CAST(retire_after_days AS INTEGER) AS active
       FROM symbol_versions(known_at := known_at) AS v
       JOIN (SELECT symbol, max(date) AS last_observed
             FROM catalog_known(known_at := known_at)
             WHERE date <= CAST(d AS DATE) GROUP BY symbol) AS o USING (symbol)
       WHERE v.valid_from <= CAST(d AS DATE)
         AND (v.valid_to IS NULL OR v.valid_to > CAST(d AS DATE))""",
)

_UNIVERSE_MACRO = """
CREATE MACRO universe_as_of(d, known_at := NULL) AS TABLE
SELECT s.date, s.config, s.symbol, s.direction, s.rank, s.alpha_field, s.alpha_value,
       w.sleeve, w.weight, c.tick_size, c.pricescale, c.minmov, c.version AS catalog_version,
       c.valid_from AS catalog_valid_from
FROM signals AS s
LEFT JOIN barbell_weights AS w ON w.date = s.date AND w.symbol = s.symbol
LEFT JOIN symbols_as_of(d, known_at := known_at) AS c ON c.symbol = s.symbol
WHERE s.date = CAST(d AS DATE) AND s.selected
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
        for statement in _CATALOG_MACROS:
            con.execute(statement)
        if _has_view(con, "signals") and _has_view(con, "barbell_weights"):
            con.execute(_UNIVERSE_MACRO)
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
