"""DuckDB SQL over the lakehouse: read-only, point-in-time, in-memory connections.

Parquet is the system of record; a connection is an in-memory DuckDB database with views and
macros over the partitions' files, so any number of readers run beside the writers.

What a query sees (every name also in the README):

- ``<asset>`` for each asset with data: its live partitions (each day's latest version), with
  ``date`` as a column; ``<asset>_as_of(d)`` / ``<asset>_as_of(d, known_at)``: day ``d`` of the
  asset as known now, or as it was known at ``known_at`` (empty when nothing was recorded by
  then);
- ``symbols``: every version of every symbol (type 2) as known now; ``symbol_versions(known_at
  := NULL)``: the same as known at a past time; ``symbols_as_of(d)`` / ``symbols_as_of(d,
  known_at)``: the version of each symbol in force on day ``d``, with ``last_observed`` and
  ``active`` (false once a symbol has gone unseen for :data:`RETIRE_AFTER_DAYS` days);
  ``catalog_known(known_at := NULL)``: the catalog's observations as known at a time;
- ``universe_as_of(d)`` / ``universe_as_of(d, known_at)``: the signals selected on ``d`` with
  their barbell weight and the catalog's version of the symbol, every part as known then.

Times are UTC: a ``known_at`` without a zone (``TIMESTAMP '2026-11-21 02:00'``, a string, a
DATE) is read as UTC whatever the session's time zone.

What a query may do: one SELECT (or WITH ... SELECT) statement, refused otherwise; the
connection reads only files under the lakehouse root (DuckDB's external access is off but for
that directory) and its configuration is locked, so no query can write, attach, read other
files or change a setting. :func:`export` writes the same views and macros into a DuckDB file
for any DuckDB client.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb
import polars as pl

from quant_assets.errors import LakehouseError, ValidationError
from quant_assets.lakehouse.catalog import TRACKED_ATTRIBUTES
from quant_assets.lakehouse.catalog_cache import CACHE_DIR, CATALOG_DIR, CURRENT, load_index
from quant_assets.lakehouse.contracts import CONTRACTS
from quant_assets.lakehouse.store import VERSION_FILE, PartitionStore, PartitionVersion, is_local

ASSETS: tuple[str, ...] = tuple(CONTRACTS)

#: A symbol not observed for this many days is retired (``active`` false) until seen again.
RETIRE_AFTER_DAYS = 30

#: The derived catalog tables and the index tables behind them.
_CATALOG_TABLES = {"catalog_files": "files", "catalog_presence": "presence", "catalog_symbol_ids": "ids",
                   "catalog_versions": "versions", "catalog_symbols": "symbols", "catalog_runs": "runs"}
#: The catalog's names for queries.
_CATALOG_NAMES = ("symbols", "symbol_versions", "symbols_as_of", "catalog_known", "universe_as_of")
_ATTRS = ", ".join(TRACKED_ATTRIBUTES)

# A timestamp, date or string as an instant; one without a zone is UTC.
_UTC = r"""
CREATE MACRO _utc(x) AS CASE
  WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE' THEN CAST(x AS TIMESTAMPTZ)
  WHEN typeof(x) = 'VARCHAR' AND regexp_matches(CAST(x AS VARCHAR), '(Z|[+-]\d\d(:?\d\d)?)$') THEN CAST(x AS TIMESTAMPTZ)
  ELSE timezone('UTC', CAST(x AS TIMESTAMP)) END
"""
# The highest version-file name recorded by an instant: names sort by their recorded time.
_UPPER_NAME = "'part-' || strftime(timezone('UTC', _utc({t})), '%Y%m%dT%H%M%S%fZ') || '-~'"
_ALIVE = "{f}.recorded_at <= {t} AND ({f}.superseded_at IS NULL OR {f}.superseded_at > {t})"


def _quoted(text: object) -> str:
    return str(text).replace("'", "''")


def _file_list(files: list[str]) -> str:
    return "[" + ", ".join(f"'{_quoted(f)}'" for f in files) + "]"


def _guard(asset: str) -> str:
    """A row condition that raises, naming the file, on a partition without the asset's keys
    (a file of another schema): its rows would otherwise drop out unseen."""
    keys = list(dict.fromkeys(("date", *CONTRACTS[asset].key)))
    present = " AND ".join(f'"{k}" IS NOT NULL' for k in keys)
    message = (f"'{asset}: ' || filename || ' lacks {', '.join(keys)}: not a {asset} partition "
               f"(see quant-assets doctor)'")
    return f"CASE WHEN {present} THEN true ELSE error({message}) END"


def _asset_view(asset: str, root: str, files: list[str] | None) -> str:
    """The live view of one asset. ``files`` lists the live versions (in-process connections);
    without it the view finds them itself (exported files)."""
    if files is not None:
        return (f"CREATE VIEW {asset} AS SELECT * EXCLUDE (filename) FROM read_parquet({_file_list(files)}, "
                f"filename = true, union_by_name = true, hive_partitioning = false) WHERE {_guard(asset)}")
    return f"""CREATE VIEW {asset} AS
WITH v AS (
  SELECT *, regexp_extract(filename, 'date=(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1) AS _day
  FROM read_parquet('{_quoted(root)}/{asset}/date=*/part-*.parquet', filename = true, union_by_name = true,
                    hive_partitioning = false)
  WHERE regexp_full_match(filename, '.*/date=\\d{{4}}-\\d{{2}}-\\d{{2}}/{VERSION_FILE.pattern}')
)
SELECT * EXCLUDE (filename, _day) FROM v WHERE {_guard(asset)} QUALIFY filename = max(filename) OVER (PARTITION BY _day)"""


def _asset_macro(asset: str, root: str) -> str:
    """``<asset>_as_of(d)`` and ``<asset>_as_of(d, known_at)``: the day's version live now, or
    the latest one recorded by ``known_at``, read from the day's folder alone."""
    pattern = VERSION_FILE.pattern
    day_files = f"'{_quoted(root)}/{asset}/date=' || strftime(CAST(d AS DATE), '%Y-%m-%d') || '/part-*.parquet'"

    def as_of(upper: str) -> str:
        return f"""(
WITH v AS (
  SELECT * FROM read_parquet({day_files}, filename = true, union_by_name = true, hive_partitioning = false)
  WHERE regexp_full_match(parse_filename(filename), '{pattern}') AND parse_filename(filename) <= {upper}
)
SELECT * EXCLUDE (filename) FROM v WHERE filename = (SELECT max(filename) FROM v))"""

    now = "'~'"  # sorts after every version name
    return (f"CREATE MACRO {asset}_as_of(d) AS TABLE {as_of(now)}, "
            f"(d, known_at) AS TABLE {as_of(_UPPER_NAME.format(t='known_at'))}")


def _catalog_sql() -> list[str]:
    """Macros and views over the catalog index's tables."""
    known_versions = "cv.known_from <= t.t AND (cv.known_to IS NULL OR cv.known_to > t.t)"
    return [
        "CREATE VIEW symbols AS SELECT * FROM catalog_symbols",
        f"""CREATE MACRO symbol_versions(known_at := NULL) AS TABLE
WITH t AS (SELECT coalesce(_utc(known_at), TIMESTAMPTZ '9999-12-31 00:00:00+00') AS t),
v AS (SELECT cv.*, i.symbol_id FROM catalog_versions cv JOIN catalog_symbol_ids i USING (symbol), t
      WHERE {known_versions}),
p AS (SELECT p.symbol_id, p.date FROM catalog_presence p JOIN catalog_files f USING (file_id), t
      WHERE {_ALIVE.format(f='f', t='t.t')}),
seen AS (SELECT v.symbol, v.valid_from, max(p.date) AS last_seen FROM v JOIN p
         ON p.symbol_id = v.symbol_id AND p.date >= v.valid_from AND (v.valid_to IS NULL OR p.date < v.valid_to)
         GROUP BY ALL)
SELECT v.symbol, CAST(row_number() OVER (PARTITION BY v.symbol ORDER BY v.valid_from) AS INTEGER) AS version,
       {_ATTRS}, v.tick_size, v.valid_from, v.valid_to, seen.last_seen, v.known_from AS recorded_at
FROM v JOIN seen USING (symbol, valid_from)""",
        f"""CREATE MACRO symbols_as_of(d) AS TABLE (
SELECT s.*, o.last_observed, o.last_observed > CAST(d AS DATE) - {RETIRE_AFTER_DAYS} AS active
FROM catalog_symbols s JOIN (
  SELECT symbol, max(least(last_observed, CAST(d AS DATE))) AS last_observed
  FROM catalog_runs WHERE first_observed <= CAST(d AS DATE) GROUP BY symbol) o USING (symbol)
WHERE s.valid_from <= CAST(d AS DATE) AND (s.valid_to IS NULL OR s.valid_to > CAST(d AS DATE))
), (d, known_at) AS TABLE (
WITH t AS (SELECT _utc(known_at) AS t, CAST(d AS DATE) AS d),
v AS (SELECT cv.*, row_number() OVER (PARTITION BY cv.symbol ORDER BY cv.valid_from) AS version
      FROM catalog_versions cv, t WHERE {known_versions}),
vd AS (SELECT v.*, i.symbol_id FROM v JOIN catalog_symbol_ids i USING (symbol), t
       WHERE v.valid_from <= t.d AND (v.valid_to IS NULL OR v.valid_to > t.d)),
p AS (SELECT p.symbol_id, p.date FROM catalog_presence p JOIN catalog_files f USING (file_id), t
      WHERE {_ALIVE.format(f='f', t='t.t')}),
seen AS (SELECT vd.symbol, max(p.date) FILTER (WHERE p.date <= t.d) AS last_observed,
                max(p.date) FILTER (WHERE p.date >= vd.valid_from AND (vd.valid_to IS NULL OR p.date < vd.valid_to))
                  AS last_seen
         FROM vd JOIN p USING (symbol_id), t GROUP BY vd.symbol)
SELECT vd.symbol, CAST(vd.version AS INTEGER) AS version, {_ATTRS}, vd.tick_size, vd.valid_from, vd.valid_to,
       seen.last_seen, vd.known_from AS recorded_at, seen.last_observed,
       seen.last_observed > CAST(d AS DATE) - {RETIRE_AFTER_DAYS} AS active
FROM vd JOIN seen USING (symbol))""",
]


_CATALOG_KNOWN = f"""CREATE MACRO catalog_known(known_at := NULL) AS TABLE
SELECT o.* EXCLUDE (filename), f.recorded_at
FROM metadata_catalog_history o JOIN catalog_files f ON f.name = parse_filename(o.filename) AND f.date = o.date,
     (SELECT _utc(known_at) AS t) t
WHERE CASE WHEN t.t IS NULL THEN f.superseded_at IS NULL ELSE {_ALIVE.format(f='f', t='t.t')} END"""


_UNIVERSE_SELECT = """
SELECT s.date, s.config, s.symbol, s.direction, s.rank, s.alpha_field, s.alpha_value,
       w.sleeve, w.weight, c.tick_size, c.pricescale, c.minmov, c.version AS catalog_version,
       c.valid_from AS catalog_valid_from, c.active AS catalog_active
FROM signals_as_of({args}) AS s
LEFT JOIN barbell_weights_as_of({args}) AS w ON w.symbol = s.symbol
LEFT JOIN symbols_as_of({args}) AS c ON c.symbol = s.symbol
WHERE s.selected
"""
_UNIVERSE = (f"CREATE MACRO universe_as_of(d) AS TABLE ({_UNIVERSE_SELECT.format(args='d')}), "
             f"(d, known_at) AS TABLE ({_UNIVERSE_SELECT.format(args='d, known_at')})")


def _history_view(root: str, files: list[str] | None) -> str:
    """Every version of every catalog partition, with its ``filename``."""
    source = _file_list(files) if files is not None else f"'{_quoted(root)}/metadata_catalog/date=*/part-*.parquet'"
    return (f"CREATE VIEW metadata_catalog_history AS SELECT * FROM read_parquet({source}, filename = true, "
            f"union_by_name = true, hive_partitioning = false)")


def read_only_statement(sql: str) -> str:
    """``sql`` if it is one SELECT (or WITH ... SELECT) statement.

    Raises
    ------
    ValidationError
        Naming what was found instead: no statement, several, or another kind.
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValidationError(f"not valid SQL: {exc}") from exc
    if len(statements) != 1:
        raise ValidationError(f"a query is one SELECT statement; got {len(statements)} statements")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise ValidationError(
            f"a query may only read: one SELECT (or WITH ... SELECT) statement; got {kind.name}")
    return sql


#: Names that list what a connection holds: a query naming one gets every view prepared.
_INTROSPECTION = ("duckdb_views", "duckdb_tables", "information_schema", "show", "describe", "summarize")
_CATALOG_WORDS = frozenset({*_CATALOG_TABLES, *_CATALOG_NAMES})
_HISTORY_WORDS = frozenset({"catalog_known", "metadata_catalog_history"})


class LakehouseConnection:
    """A read-only connection: :meth:`sql` runs one SELECT over the lakehouse's views.

    The ``<asset>_as_of`` macros exist from the start (they read one day's folder when called);
    the live views and the catalog's tables are prepared on first use, for the names a query
    mentions: a query on ``regime`` never lists the catalog, and a part of the lakehouse that
    cannot be read (a corrupt or foreign file) fails only the queries that name it, with a
    message naming the file.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, store: PartitionStore) -> None:
        self._con, self._store = con, store
        self.root = store.root
        self._ready: set[str] = set()
        self._unavailable: dict[str, str] = {}  # name -> why a query may not use it
        self._catalog_versions: list[PartitionVersion] | None = None

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run ``query`` (one SELECT statement).

        Raises
        ------
        ValidationError
            ``query`` is not one SELECT statement.
        LakehouseError
            It names an asset or a catalog table this lakehouse holds no partition of yet, or
            whose files cannot be read (naming the file).
        """
        read_only_statement(query)
        words = set(re.findall(r"[a-z_][a-z0-9_]*", query.lower()))
        everything = bool(words & set(_INTROSPECTION))
        for asset in ASSETS:
            if everything or asset in words:
                self._prepare_view(asset)
        if everything or words & _CATALOG_WORDS:
            self._prepare_catalog()
        if everything or words & _HISTORY_WORDS:
            self._prepare_history()
        for name, why in self._unavailable.items():
            if name in words:
                raise LakehouseError(f"{name}: {why}")
        return self._con.sql(query)

    def _once(self, part: str) -> bool:
        if part in self._ready:
            return False
        self._ready.add(part)
        return True

    def _lacking(self, *names: str, why: str) -> None:
        self._unavailable.update(dict.fromkeys(names, why))

    def _versions(self) -> list[PartitionVersion]:
        """Every catalog version file, listed once per connection."""
        if self._catalog_versions is None:
            self._catalog_versions = [v for vs in self._store.all_versions("metadata_catalog").values() for v in vs]
        return self._catalog_versions

    def _prepare_view(self, asset: str) -> None:
        if not self._once(asset):
            return
        live = self._store.all_versions(asset)
        if not live:
            self._lacking(asset, why=f"the lakehouse at {self.root} holds no {asset} partitions yet")
            return
        try:
            self._con.execute(_asset_view(asset, _root_text(self._store), [str(v[-1].path) for v in live.values()]))
        except duckdb.Error as exc:
            self._lacking(asset, why=f"its partitions cannot be read as {asset} partitions (see quant-assets doctor): "
                                     f"{exc}")

    def _prepare_catalog(self) -> None:
        if not self._once("catalog"):
            return
        names = (*_CATALOG_TABLES, *_CATALOG_NAMES)
        if not self._versions():
            self._lacking(*names, why=f"the lakehouse at {self.root} holds no metadata_catalog partitions yet")
            return
        try:
            index = load_index(self._store, self._versions())
        except LakehouseError as exc:
            self._lacking(*names, why=f"the catalog cannot be derived (see quant-assets doctor): {exc}")
            return
        for table, name in _CATALOG_TABLES.items():
            # Native tables, not scans of the frames: their row groups are skipped by the filters
            # of "as known at T" queries (presence is ordered by file, files by recorded time).
            self._con.register("_frame", getattr(index, name).to_arrow())
            self._con.execute(f"CREATE TABLE {table} AS SELECT * FROM _frame")
            self._con.unregister("_frame")
        for statement in (*_catalog_sql(), _UNIVERSE):
            self._con.execute(statement)

    def _prepare_history(self) -> None:
        if not self._once("history"):
            return
        self._prepare_catalog()
        if "symbols" in self._unavailable:
            self._lacking(*_HISTORY_WORDS, why=self._unavailable["symbols"])
            return
        try:
            self._con.execute(_history_view(_root_text(self._store), [str(v.path) for v in self._versions()]))
        except duckdb.Error as exc:
            self._lacking(*_HISTORY_WORDS, why=f"the catalog's partitions cannot be read (see quant-assets doctor): "
                                                f"{exc}")
            return
        self._con.execute(_CATALOG_KNOWN)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> LakehouseConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _root_text(store: PartitionStore) -> str:
    return str(store.root).rstrip("/")


def connect(root: str | os.PathLike[str] | None = None) -> LakehouseConnection:
    """A read-only, in-memory DuckDB connection over the lakehouse at ``root``.

    Raises
    ------
    LakehouseError
        There is no lakehouse at ``root``.
    """
    store = PartitionStore(root)
    if not store.root.exists():
        raise LakehouseError(
            f"no lakehouse at {store.root}: materialise some partitions first (quant-assets run), "
            f"or point --lakehouse / $QUANT_ASSETS_LAKEHOUSE at one")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(_UTC)
    for asset in ASSETS:
        con.execute(_asset_macro(asset, _root_text(store)))
    if is_local(store.root):
        con.execute(f"SET allowed_directories = ['{_quoted(_root_text(store))}/']")
        con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return LakehouseConnection(con, store)


def query(sql: str, root: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """Run one read-only query over the lakehouse and return a polars frame.

    Raises
    ------
    ValidationError
        ``sql`` is not one SELECT statement.
    LakehouseError
        There is no lakehouse at ``root``, or the query names what it holds no data of yet.
    """
    read_only_statement(sql)
    with connect(root) as con:
        return con.sql(sql).pl()


def export(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Write a DuckDB database at ``path`` holding the views and macros of :func:`connect` over
    the lakehouse's files, for any DuckDB client: ``ATTACH 'path' (READ_ONLY)`` and ``USE`` it.

    The asset views find their partitions' latest versions themselves, so they stay current;
    the catalog's tables are read from the index the last connection published
    (``<root>/_cache/catalog/current/``), refreshed here.

    Raises
    ------
    LakehouseError
        There is no lakehouse at ``root``, it is not on a local disk, or it holds no catalog.
    """
    store = PartitionStore(root)
    if not is_local(store.root) or not store.root.exists():
        raise LakehouseError(f"catalog export needs a lakehouse on a local disk; {store.root} is not one")
    if not store.partitions("metadata_catalog"):
        raise LakehouseError(f"the lakehouse at {store.root} holds no metadata_catalog partitions yet")
    load_index(store)  # publishes the current index
    current = Path(str(store.root)) / CACHE_DIR / CATALOG_DIR / CURRENT
    if not current.exists():
        raise LakehouseError(f"{current} could not be written: is the lakehouse read-only?")
    target = Path(path).expanduser().resolve()
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    root_text = str(store.root).rstrip("/")
    con = duckdb.connect(str(tmp))
    try:
        for statement in _export_sql(store, root_text, current):
            con.execute(statement)
    finally:
        con.close()
    os.replace(tmp, target)
    return target


def _export_sql(store: PartitionStore, root: str, current: Path) -> Iterable[str]:
    yield _UTC
    present = [a for a in ASSETS if store.partitions(a)]
    for asset in ASSETS:
        yield _asset_macro(asset, root)
    for asset in present:
        yield _asset_view(asset, root, None)
    for table, name in _CATALOG_TABLES.items():
        yield f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{_quoted(current / name)}.parquet')"
    yield from _catalog_sql()
    yield _UNIVERSE
    yield _history_view(root, None)
    yield _CATALOG_KNOWN
