"""DuckDB SQL over the lakehouse: in-memory connections, views over Parquet.

Parquet is the system of record; DuckDB never owns a database file here, so any number of
readers run beside the writers without lock errors. A connection never changes a partition;
the one thing it may write is the derived catalog cache under ``<root>/_cache/`` (see
:func:`_cached_catalog`). Each connection gets:

- one view per asset with data (``raw_screen``, ``signals``, ...), every partition, with
  ``date`` as a column (``metadata_catalog`` holds every snapshot ever recorded);
- ``catalog_known(known_at := NULL)``: per observation day, the catalog snapshot current at
  ``known_at`` (default: the latest);
- ``symbol_versions(known_at := NULL)``: every version of every symbol (type 2) as known at
  ``known_at`` (default: now), derived from the catalog's daily observations as runs of
  identical attributes; ``valid_to`` is the next version's ``valid_from`` (exclusive) and NULL
  while current; ``symbols`` is the same as known now;
- ``symbols_as_of(d)`` and ``symbols_as_of(d, known_at)``: the version of each symbol in
  force on day ``d``, as known now or at ``known_at`` (a correction recorded later does not
  change an earlier answer), with ``last_observed`` (the last day on or before ``d`` it was
  seen) and ``active``: a symbol unseen for 30 days (:data:`RETIRE_AFTER_DAYS`) is retired on
  ``d`` (it may have been delisted, or only have left every config's screen), and active again
  once seen;
- ``universe_as_of(d)`` and ``universe_as_of(d, known_at)``: the signals selected on ``d`` with
  their barbell weight (NULL if not held) and the catalog's version of the symbol in force.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import duckdb
import polars as pl
from upath import UPath

from quant_assets.lakehouse.catalog import TRACKED_ATTRIBUTES
from quant_assets.lakehouse.store import PART_FILE, resolve_root, write_parquet_atomic

#: Folder under the lakehouse root for derived, disposable tables (never a source of truth).
CACHE_DIR = "_cache"

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

_CATALOG_KNOWN = """
CREATE MACRO catalog_known(known_at := NULL) AS TABLE
SELECT * EXCLUDE (snapshot) FROM (
  SELECT *, max(recorded_at) OVER (PARTITION BY date) AS snapshot
  FROM metadata_catalog
  WHERE known_at IS NULL OR recorded_at <= CAST(known_at AS TIMESTAMPTZ)
) WHERE recorded_at = snapshot
"""

# Runs of consecutive observation days per symbol (gaps and islands), as known now.
_OBSERVATION_RUNS = """
SELECT symbol, min(date) AS first_observed, max(date) AS last_observed
FROM (SELECT symbol, date,
             date - CAST(row_number() OVER (PARTITION BY symbol ORDER BY date) AS INTEGER) AS run
      FROM catalog_known())
GROUP BY symbol, run
"""

#: The tables "as known now" that the as-of macros read: views, or cached Parquet (local roots).
_NOW_TABLES = {"symbols": "SELECT * FROM symbol_versions()", "observation_runs": _OBSERVATION_RUNS}

# Two overloads: as known now, from `symbols` and `observation_runs` (cached tables when the
# lakehouse is local); as known at a past time, derived from the snapshots recorded by then.
_AS_OF_SELECT = f"""
SELECT v.*, o.last_observed, o.last_observed > CAST(d AS DATE) - {RETIRE_AFTER_DAYS} AS active
FROM {{versions}} AS v
JOIN ({{observed}}) AS o USING (symbol)
WHERE v.valid_from <= CAST(d AS DATE) AND (v.valid_to IS NULL OR v.valid_to > CAST(d AS DATE))
"""
_SYMBOLS_AS_OF = (
    "CREATE MACRO symbols_as_of(d) AS TABLE ("
    + _AS_OF_SELECT.format(
        versions="symbols",
        observed="SELECT symbol, max(least(last_observed, CAST(d AS DATE))) AS last_observed "
                 "FROM observation_runs WHERE first_observed <= CAST(d AS DATE) GROUP BY symbol",
    )
    + "), (d, known_at) AS TABLE ("
    + _AS_OF_SELECT.format(
        versions="symbol_versions(known_at := known_at)",
        observed="SELECT symbol, max(date) AS last_observed FROM catalog_known(known_at := known_at) "
                 "WHERE date <= CAST(d AS DATE) GROUP BY symbol",
    )
    + ")"
)

# Reads only day d's signals and weights files: globbing every partition of both assets
# would cost more than the rest of the query.
_UNIVERSE_SELECT = """
SELECT s.date, s.config, s.symbol, s.direction, s.rank, s.alpha_field, s.alpha_value,
       w.sleeve, w.weight, c.tick_size, c.pricescale, c.minmov, c.version AS catalog_version,
       c.valid_from AS catalog_valid_from, c.active AS catalog_active
FROM read_parquet({signals}) AS s
LEFT JOIN read_parquet({weights}) AS w ON w.symbol = s.symbol
LEFT JOIN {catalog} AS c ON c.symbol = s.symbol
WHERE s.selected
"""


def _universe_macro(base: UPath) -> str:
    def day_file(asset: str) -> str:
        prefix = _quoted(base / asset / "date=")
        return f"'{prefix}' || strftime(CAST(d AS DATE), '%Y-%m-%d') || '/{PART_FILE}'"

    files = {"signals": day_file("signals"), "weights": day_file("barbell_weights")}
    now = _UNIVERSE_SELECT.format(catalog="symbols_as_of(d)", **files)
    then = _UNIVERSE_SELECT.format(catalog="symbols_as_of(d, known_at)", **files)
    return f"CREATE MACRO universe_as_of(d) AS TABLE ({now}), (d, known_at) AS TABLE ({then})"


def connect(root: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per asset over the lakehouse at ``root``."""
    base = resolve_root(root)
    con = duckdb.connect(":memory:")
    for asset in ASSETS:
        folder = base / asset
        if not folder.exists() or not any(folder.glob(f"date=*/{PART_FILE}")):
            continue
        glob = _quoted(folder / "date=*" / PART_FILE)
        # Each file carries its own `date` column, so the hive key is not needed.
        con.execute(
            f"CREATE VIEW {asset} AS SELECT * FROM read_parquet('{glob}', "
            "union_by_name = true, hive_partitioning = false)"
        )
    if _has_view(con, "metadata_catalog"):
        con.execute(_CATALOG_KNOWN)
        con.execute(_symbol_versions_sql())
        cached = _cached_catalog(con, base)
        for name, sql_text in _NOW_TABLES.items():
            source = sql_text if cached is None else f"SELECT * FROM read_parquet('{_quoted(cached[name])}')"
            con.execute(f"CREATE VIEW {name} AS {source}")
        con.execute(_SYMBOLS_AS_OF)
        if _has_view(con, "signals") and _has_view(con, "barbell_weights"):
            con.execute(_universe_macro(base))
    return con


def _quoted(path: object) -> str:
    return str(path).replace("'", "''")


def _cached_catalog(con: duckdb.DuckDBPyConnection, base: UPath) -> dict[str, UPath] | None:
    """``symbols`` and ``observation_runs`` as known now, computed once per catalog state.

    The cache is named by a fingerprint of every catalog file (name, inode, size, modification
    time), so a new or rewritten partition (always a new file) gives a new name and a stale
    cache is never read.
    Its content is a function of the files alone: two processes that build it at once write
    the same bytes, and the atomic rename makes the race harmless. Only for local roots.
    """
    if base.protocol not in ("", "file", "local"):
        return None
    files = sorted(Path(str(base / "metadata_catalog")).glob(f"date=*/{PART_FILE}"))
    stats = [(f.parent.name, st.st_ino, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]]
    fingerprint = hashlib.sha256(repr(stats).encode()).hexdigest()[:16]
    cache = base / CACHE_DIR
    paths = {name: cache / f"{name}-{fingerprint}.parquet" for name in _NOW_TABLES}
    for name, path in paths.items():
        if not path.exists():
            write_parquet_atomic(con.sql(_NOW_TABLES[name]).pl(), path)
    _drop_stale(Path(str(cache)), fingerprint)
    return paths


def _drop_stale(cache: Path, fingerprint: str, max_age_s: float = 3600.0) -> None:
    # Old caches go after an hour, not at once: another process may still have a view on one.
    now = time.time()
    for old in cache.glob("*.parquet"):
        if fingerprint not in old.name and now - old.stat().st_mtime > max_age_s:
            old.unlink(missing_ok=True)


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
