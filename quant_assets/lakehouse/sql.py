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
  their barbell weight and the catalog's version of the symbol, every part as known then;
- ``portfolio_legs``: the legs of ``portfolio_returns`` (nested there), a row per book, day and
  instrument; ``portfolio_equity``: each book's ``date``, ``regime``, ``net_return``, ``nav`` (from a starting
  capital of 1 on its first day) and ``drawdown`` (``nav`` over its running maximum, the starting
  capital included, minus 1) and ``rolling_sharpe`` (63 days) over the whole history of
  ``portfolio_returns``;
  ``performance(start, end)`` / ``performance_by_regime(start, end)``: one row of statistics per
  book (per book and regime) over the days from ``start`` to ``end`` (DATE or 'YYYY-MM-DD', NULL
  unbounded; ``performance()`` takes every day), the columns, rows and values of
  :mod:`quant_assets.backtest.performance`, which defines them.

Times are UTC: a ``known_at`` without a zone (``TIMESTAMP '2026-11-21 02:00'``, a string, a
DATE) is read as UTC whatever the session's time zone.

What a query may do: one SELECT (or WITH ... SELECT) statement, refused otherwise; the
connection reads only files under the lakehouse root (DuckDB's external access is off but for
that directory) and its configuration is locked, so no query can write, attach, read other
files or change a setting. A root on an object store (``s3://bucket/lake``) is read through
the lakehouse's own fsspec file system, registered with DuckDB (no extension, no download, the
credentials the file system finds), under the same limits. :func:`export` writes the same views
and macros into a DuckDB file for any DuckDB client.
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
from quant_assets.lakehouse.contracts import BOOKS, CONTRACTS, PERIODS_PER_YEAR, REGIMES, SHARPE_WINDOW
from quant_assets.lakehouse.remote_fs import VersionFileSystem
from quant_assets.lakehouse.store import VERSION_FILE, PartitionStore, PartitionVersion, is_local, root_holds_data

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


#: What the performance names need of ``portfolio_returns``. A connection reads it into a table on
#: first use (one read of every partition, not one per query); an exported file keeps it a view.
_PORTFOLIO_DAYS = "SELECT book, date, regime, net_return, gross_return, turnover FROM portfolio_returns"
_PORTFOLIO_NAMES = ("portfolio_legs", "portfolio_equity", "performance", "performance_by_regime")
#: The legs of every book and day, one row each (a partition holds them nested, in ``legs``).
_LEGS = "CREATE VIEW portfolio_legs AS SELECT date, book, unnest(legs, recursive := true) FROM portfolio_returns"

_EQUITY = f"""CREATE VIEW portfolio_equity AS
SELECT date, book, regime, net_return, nav,
       nav / greatest(1, max(nav) OVER (PARTITION BY book ORDER BY date ROWS UNBOUNDED PRECEDING)) - 1 AS drawdown,
       CASE WHEN count(*) OVER w = {SHARPE_WINDOW} AND max(net_return) OVER w > min(net_return) OVER w
            THEN avg(net_return) OVER w / stddev_samp(net_return) OVER w * sqrt({PERIODS_PER_YEAR}) END AS rolling_sharpe
FROM (SELECT *, product(1 + net_return) OVER (PARTITION BY book ORDER BY date ROWS UNBOUNDED PRECEDING) AS nav
      FROM _portfolio_days)
WINDOW w AS (PARTITION BY book ORDER BY date ROWS BETWEEN {SHARPE_WINDOW - 1} PRECEDING AND CURRENT ROW)"""

# The drawdown walk over one series, a day at a time in date order: ``n`` the nav; ``m`` the
# high-water mark ``h`` (the starting capital 1 first) and the last day ``d`` at it; ``w`` the
# worst drawdown so far: the lowest nav / mark ``q``, its trough ``t``, its peak day ``p`` and mark
# ``pn``, and the recovery ``r``. A window product multiplies in another order, and the dates
# hang on exact ties (a flat day repeats a nav), so the walk multiplies in date order as the
# Python does: the same bits, the same dates.
_WALK = """list_reduce(days, lambda a, e: {
  'n': a.n * e.x,
  'm': CASE WHEN a.n * e.x >= a.m.h THEN {'h': a.n * e.x, 'd': e.d} ELSE a.m END,
  'w': CASE WHEN a.n * e.x / a.m.h < a.w.q THEN {'q': a.n * e.x / a.m.h, 't': e.d, 'p': a.m.d, 'pn': a.m.h, 'r': NULL}
            WHEN a.w.r IS NULL AND a.n * e.x >= a.w.pn THEN struct_update(a.w, r := e.d)
            ELSE a.w END},
  {'n': 1.0::DOUBLE, 'm': {'h': 1.0::DOUBLE, 'd': NULL::DATE},
   'w': {'q': 1.0::DOUBLE, 't': NULL::DATE, 'p': NULL::DATE, 'pn': NULL::DOUBLE, 'r': NULL::DATE}})"""


def _order(column: str, values: tuple[str, ...]) -> str:
    """ORDER BY terms: ``values`` in their order, then any other value alphabetically."""
    cases = " ".join(f"WHEN '{v}' THEN {k}" for k, v in enumerate(values))
    return f"CASE {column} {cases} ELSE {len(values)} END, {column}"


def _performance_macro(name: str, keys: tuple[str, ...]) -> str:
    """``name(start, end)`` (and ``name()``, every day): :mod:`quant_assets.backtest.performance`'s
    statistics per ``keys``, in its column order and row order."""
    by = ", ".join(keys)
    year = f"{PERIODS_PER_YEAR}::DOUBLE"
    orders = {"book": BOOKS, "regime": REGIMES}

    def body(first: str, last: str) -> str:
        return f"""(
WITH d AS (
  SELECT * FROM _portfolio_days
  WHERE ({first} IS NULL OR date >= CAST({first} AS DATE)) AND ({last} IS NULL OR date <= CAST({last} AS DATE)){
    " AND regime IS NOT NULL" if "regime" in keys else ""}
),
g AS (
  SELECT {by}, min(date) AS first_day, max(date) AS last_day, count(*) AS n, avg(net_return) AS mean,
         CASE WHEN min(net_return) = max(net_return) THEN 0 ELSE stddev_samp(net_return) END AS sd,
         sqrt(avg(least(net_return, 0) ** 2)) AS downside, product(1 + gross_return) AS gross_nav,
         avg(turnover) AS turnover, count(*) FILTER (WHERE net_return > 0) AS gains,
         count(*) FILTER (WHERE net_return <> 0) AS moves,
         list({{'x': 1 + net_return, 'd': date}} ORDER BY date) AS days
  FROM d GROUP BY {by}
),
walked AS (SELECT * EXCLUDE (days), {_WALK} AS walk FROM g),
annualised AS (
  SELECT *, CASE WHEN walk.n >= 0 THEN pow(walk.n, {year} / n) - 1 END AS annual,
         CASE WHEN gross_nav >= 0 THEN pow(gross_nav, {year} / n) - 1 END AS annual_gross
  FROM walked
)
SELECT {by}, first_day AS "start", last_day AS "end", n AS days, walk.n - 1 AS cumulative_return,
       annual AS annual_return,
       CASE WHEN n >= 2 THEN sd * sqrt({year}) END AS annual_volatility,
       CASE WHEN n >= 2 AND sd > 0 THEN mean / sd * sqrt({year}) END AS sharpe,
       CASE WHEN n >= 2 AND downside > 0 THEN mean / downside * sqrt({year}) END AS sortino,
       walk.w.q - 1 AS max_drawdown,
       CASE WHEN walk.w.t IS NOT NULL THEN coalesce(walk.w.p, first_day - 1) END AS max_drawdown_peak,
       walk.w.t AS max_drawdown_trough, walk.w.r AS max_drawdown_recovery,
       CASE WHEN walk.w.t IS NOT NULL THEN annual / abs(walk.w.q - 1) END AS calmar,
       turnover * {year} AS annual_turnover, annual_gross - annual AS cost_drag,
       CASE WHEN moves > 0 THEN CAST(gains AS DOUBLE) / moves END AS hit_rate
FROM annualised
ORDER BY {", ".join(_order(k, orders[k]) for k in keys)})"""

    first, last = '"start"', '"end"'
    return f"CREATE MACRO {name}() AS TABLE {body('NULL', 'NULL')}, ({first}, {last}) AS TABLE {body(first, last)}"


def _portfolio_sql() -> list[str]:
    """The views and macros of :data:`_PORTFOLIO_NAMES`: the legs over ``portfolio_returns``, the
    rest over ``_portfolio_days``."""
    return [_LEGS, _EQUITY, _performance_macro("performance", ("book",)),
            _performance_macro("performance_by_regime", ("book", "regime"))]


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
_PORTFOLIO_WORDS = frozenset(_PORTFOLIO_NAMES)


class LakehouseConnection:
    """A read-only connection: :meth:`sql` runs one SELECT over the lakehouse's views.

    The ``<asset>_as_of`` macros exist from the start (they read one day's folder when called);
    the live views, the catalog's tables and the portfolio's (``portfolio_returns`` read once
    into a table, so that ``performance`` does not reread a file a day) are prepared on first
    use, for the names a query mentions: a query on ``regime`` never lists the catalog, and a
    part of the lakehouse that cannot be read (a corrupt or foreign file) fails only the queries
    that name it, with a message naming the file.
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
        if everything or words & _PORTFOLIO_WORDS:
            self._prepare_portfolio()
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

    def _prepare_portfolio(self) -> None:
        if not self._once("portfolio"):
            return
        self._prepare_view("portfolio_returns")
        if "portfolio_returns" in self._unavailable:
            self._lacking(*_PORTFOLIO_NAMES, why=self._unavailable["portfolio_returns"])
            return
        try:
            self._con.execute(f"CREATE TABLE _portfolio_days AS {_PORTFOLIO_DAYS}")
        except duckdb.Error as exc:
            self._lacking(*_PORTFOLIO_NAMES, why=f"portfolio_returns cannot be read (see quant-assets doctor): {exc}")
            return
        for statement in _portfolio_sql():
            self._con.execute(statement)

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
        There is no lakehouse at ``root``, or its store refuses to list it (no bucket,
        credentials denied), naming the root.
    """
    store = PartitionStore(root)
    if not root_holds_data(store.root):
        raise LakehouseError(
            f"no lakehouse at {store.root}: materialise some partitions first (quant-assets run), "
            f"or point --lakehouse / $QUANT_ASSETS_LAKEHOUSE at one")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # Never download an extension: an object store is read through its fsspec file system
    # (s3fs, with the credentials it finds), registered below, not through DuckDB's httpfs.
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(_UTC)
    for asset in ASSETS:
        con.execute(_asset_macro(asset, _root_text(store)))
    if not is_local(store.root):
        con.register_filesystem(VersionFileSystem(store.root.fs))
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
    if "portfolio_returns" in present:
        yield f"CREATE VIEW _portfolio_days AS {_PORTFOLIO_DAYS}"
        yield from _portfolio_sql()
    for table, name in _CATALOG_TABLES.items():
        yield f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{_quoted(current / name)}.parquet')"
    yield from _catalog_sql()
    yield _UNIVERSE
    yield _history_view(root, None)
    yield _CATALOG_KNOWN
