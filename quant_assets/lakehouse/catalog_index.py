"""The catalog's versions of every symbol, derived from the observations, as known at any time.

Knowledge: a day D is known at time T by its ``metadata_catalog`` version with the latest
``recorded_at`` on or before T (the version is *alive* from its ``recorded_at`` until the next
version of D is recorded, its ``superseded_at``).

Derivation, for what is known at T: per symbol, the observations of the days known, each
tracked attribute carried forward over missing values (a missing field never wipes a known
one); a version is a maximal run of observation days with identical carried attributes,
``valid_to`` the next version's ``valid_from``; its tick size is its ``minmov / pricescale``, so
tick size, pricescale and minmov always agree.

The index holds that derivation for every T at once, bitemporally: each version row carries
the knowledge interval ``[known_from, known_to)`` during which it was part of the derivation
(``known_to`` null: still is). It is built by replaying the catalog's versions in recorded
order, one knowledge event (one ``recorded_at``) at a time: days that extend a symbol's history
past its last observation (every day of a daily run or an in-order backfill) cost only their
own rows; anything else (a correction, a day backfilled before later ones) re-derives the
affected symbols' histories. :func:`update_index` replays only the files recorded since the
index was built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from quant_assets.errors import LakehouseError
from quant_assets.lakehouse.catalog import OBSERVATION_SCHEMA, TRACKED_ATTRIBUTES, tick_size

_ATTRS = list(TRACKED_ATTRIBUTES)
_ATTR_SCHEMA = {a: OBSERVATION_SCHEMA[a] for a in _ATTRS}
_TIME = pl.Datetime("us", "UTC")

#: Tables of an index and their schemas.
FILES_SCHEMA = {"file_id": pl.Int32, "name": pl.String, "date": pl.Date, "recorded_at": _TIME,
                "superseded_at": _TIME}
PRESENCE_SCHEMA = {"symbol_id": pl.Int32, "date": pl.Date, "file_id": pl.Int32}
IDS_SCHEMA = {"symbol_id": pl.Int32, "symbol": pl.String}
VERSIONS_SCHEMA = {"symbol": pl.String, **_ATTR_SCHEMA, "tick_size": pl.Float64, "valid_from": pl.Date,
                   "valid_to": pl.Date, "known_from": _TIME, "known_to": _TIME}
TAILS_SCHEMA = {"symbol": pl.String, "last_date": pl.Date}
SYMBOLS_SCHEMA = {"symbol": pl.String, "version": pl.Int32, **_ATTR_SCHEMA, "tick_size": pl.Float64,
                  "valid_from": pl.Date, "valid_to": pl.Date, "last_seen": pl.Date, "recorded_at": _TIME}
RUNS_SCHEMA = {"symbol": pl.String, "first_observed": pl.Date, "last_observed": pl.Date}


@dataclass(frozen=True)
class CatalogFile:
    """One version file of ``metadata_catalog``."""

    name: str
    date: date
    recorded_at: datetime


@dataclass(frozen=True)
class CatalogIndex:
    """The derived catalog: ``files`` (every catalog file, its day and knowledge interval),
    ``presence`` (which symbols each file observed, by the integer ids of ``ids``: scanning
    millions of integers is what a query "as known at T" costs), bitemporal ``versions`` (every state of
    knowledge at once), ``tails`` (each symbol's last observed day, as known now), and, as known
    now, ``symbols`` (the current versions with ``version`` and ``last_seen``) and ``runs``
    (runs of consecutive observation days)."""

    files: pl.DataFrame
    presence: pl.DataFrame
    ids: pl.DataFrame
    versions: pl.DataFrame
    tails: pl.DataFrame
    symbols: pl.DataFrame
    runs: pl.DataFrame

    TABLES = ("files", "presence", "ids", "versions", "tails", "symbols", "runs")

    def names(self) -> list[str]:
        return self.files["name"].to_list()


#: Reads one catalog file's observations (``OBSERVATION_SCHEMA``).
Reader = Callable[[CatalogFile], pl.DataFrame]


def _first_of_symbol() -> pl.Expr:
    """True on the first row of each symbol, in a frame sorted by symbol."""
    return pl.col("symbol").ne_missing(pl.col("symbol").shift())


def _carried(column: str) -> pl.Expr:
    """``column`` forward-filled within each symbol (sorted by symbol, then date): a missing
    value takes the symbol's last known one. Whole-column operations, no window: an ``over``
    per attribute costs more than everything else here."""
    row = pl.int_range(pl.len())
    last_known = pl.when(pl.col(column).is_not_null()).then(row).forward_fill()
    symbol_start = pl.when(_first_of_symbol()).then(row).forward_fill()
    return pl.when(last_known >= symbol_start).then(pl.col(column).forward_fill()).alias(column)


def derive_versions(observations: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
    """Versions from observations (``symbol``, ``date``, tracked attributes; one row per symbol
    and day): ``symbol``, attributes, ``valid_from``, ``valid_to``, and the ``keep`` columns of
    each version's first day; sorted by symbol and ``valid_from``."""
    carried = observations.select("symbol", "date", *_ATTRS, *keep).sort("symbol", "date").with_columns(
        _carried(a) for a in _ATTRS)
    starts = pl.any_horizontal(_first_of_symbol(), *(pl.col(a).ne_missing(pl.col(a).shift()) for a in _ATTRS))
    runs = (
        carried.with_columns(run=starts.cum_sum())
        .group_by("run", maintain_order=True)
        .agg(pl.col("symbol").first(), pl.col("date").min().alias("valid_from"),
             *(pl.col(c).first() for c in (*_ATTRS, *keep)))
    )
    return runs.select("symbol", *_ATTRS, "valid_from", _next("valid_from").alias("valid_to"), *keep)


def _next(column: str) -> pl.Expr:
    """The next row's ``column`` within the same symbol (null on a symbol's last row)."""
    return pl.when(pl.col("symbol").shift(-1) == pl.col("symbol")).then(pl.col(column).shift(-1))


def _with_tick(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(tick_size=tick_size(pl.col("minmov"), pl.col("pricescale")))


def _known_rows(runs: pl.DataFrame) -> pl.DataFrame:
    """The bitemporal rows of versions that only grew by appended days: ``runs`` (sorted per
    symbol, ``at`` the recorded time of each version's first day) as rows with knowledge
    intervals. A version is open-ended from its first day's recording until the next version's
    first day is recorded, and from then on ends where the next version starts."""
    runs = runs.with_columns(next_at=_next("at"))
    open_ended = runs.select("symbol", *_ATTRS, "valid_from", pl.lit(None, pl.Date).alias("valid_to"),
                             pl.col("at").alias("known_from"), pl.col("next_at").alias("known_to"))
    ended = runs.filter(pl.col("valid_to").is_not_null()).select(
        "symbol", *_ATTRS, "valid_from", "valid_to", pl.col("next_at").alias("known_from"),
        pl.lit(None, _TIME).alias("known_to"))
    rows = pl.concat([open_ended, ended])
    # A version known for no time at all (two of its days recorded at once) was never visible.
    rows = rows.filter(pl.col("known_to").is_null() | (pl.col("known_to") > pl.col("known_from")))
    return _with_tick(rows).select(list(VERSIONS_SCHEMA))


class _Replay:
    """Replays knowledge events into the index (mutable while it runs).

    Additions after a symbol's last observed day are queued and applied in one vectorised step
    (:meth:`extend`) until an event needs a symbol's history re-derived (:meth:`rederive`), which
reads the observations it needs (once) through the reader.
    """

    def __init__(self, index: CatalogIndex | None, read: Reader) -> None:
        versions = index.versions if index is not None else pl.DataFrame(schema=VERSIONS_SCHEMA)
        self.open = versions.filter(pl.col("known_to").is_null())
        self.closed = [versions.filter(pl.col("known_to").is_not_null())]
        self.tails = index.tails if index is not None else pl.DataFrame(schema=TAILS_SCHEMA)
        self.runs = index.runs if index is not None else pl.DataFrame(schema=RUNS_SCHEMA)
        self.files = index.files.to_dicts() if index is not None else []
        self.live = {f["date"]: f["file_id"] for f in self.files if f["superseded_at"] is None}
        self.presence = [index.presence] if index is not None else []
        self.ids = index.ids if index is not None else pl.DataFrame(schema=IDS_SCHEMA)
        self.read = read
        self.observations: dict[int, pl.DataFrame] = {}
        self.queued: list[pl.DataFrame] = []

    def rows_of(self, file_id: int) -> pl.DataFrame:
        """The observations of a file of the index, read once."""
        if file_id not in self.observations:
            f = self.files[file_id]
            self.observations[file_id] = _read(self.read, CatalogFile(f["name"], f["date"], f["recorded_at"]))
        return self.observations[file_id]

    def record(self, file: CatalogFile, at: datetime) -> tuple[int, int | None]:
        """Register ``file`` as the live version of its day; its id and the id it supersedes."""
        old_id = self.live.get(file.date)
        if old_id is not None:
            self.files[old_id]["superseded_at"] = at
        file_id = len(self.files)
        self.files.append({"file_id": file_id, "name": file.name, "date": file.date, "recorded_at": at,
                           "superseded_at": None})
        self.live[file.date] = file_id
        return file_id, old_id

    def observed(self, rows: pl.DataFrame, file_id: int) -> None:
        """Record which symbols file ``file_id`` observed; a symbol seen for the first time gets
        the next id (in symbol order within its file, so every replay numbers them alike)."""
        fresh = rows.select("symbol").join(self.ids, on="symbol", how="anti").sort("symbol")
        if fresh.height:
            first = self.ids.height
            self.ids = pl.concat([self.ids, fresh.select(
                pl.int_range(first, first + fresh.height, dtype=pl.Int32).alias("symbol_id"), "symbol")])
        self.presence.append(rows.select("symbol", "date").join(self.ids, on="symbol").select(
            "symbol_id", "date", pl.lit(file_id, pl.Int32).alias("file_id")).sort("symbol_id"))

    def queue(self, rows: pl.DataFrame) -> None:
        """Additions after their symbols' last observed days (``at``: recorded time)."""
        if rows.height:
            self.queued.append(rows)
            last = rows.group_by("symbol").agg(pl.col("date").max().alias("last_date"))
            self.tails = _replace(self.tails, last)

    def extend(self) -> None:
        """Apply the queued additions: versions grow, runs of observation days grow."""
        if not self.queued:
            return
        new = pl.concat(self.queued)
        self.queued = []
        symbols = new.select("symbol").unique()
        current = self.open.filter(pl.col("valid_to").is_null()).join(symbols, on="symbol")
        seeds = current.select("symbol", pl.col("valid_from").alias("date"), *_ATTRS, pl.col("known_from").alias("at"))
        runs = derive_versions(pl.concat([seeds, new.select(seeds.columns)]), keep=["at"])
        rows = _known_rows(runs)
        # The open-ended versions of these symbols are replaced by what they grew into.
        replaced = pl.col("valid_to").is_null() & pl.col("symbol").is_in(symbols["symbol"].implode())
        self.open = pl.concat([self.open.filter(~replaced), rows.filter(pl.col("known_to").is_null())])
        self.closed.append(rows.filter(pl.col("known_to").is_not_null()))
        self.runs = _grow_runs(self.runs, new.select("symbol", "date"))

    def rederive(self, symbols: list[str], at: datetime) -> None:
        """Every version of ``symbols`` again, from their observations alive now; rows that
        changed are closed at ``at`` and their successors opened."""
        self.extend()
        mine = pl.col("symbol").is_in(symbols)
        alive = pl.concat([self.rows_of(i).filter(mine) for i in sorted(self.live.values())])
        old, new = self.open.filter(mine), derive_versions(alive)
        key = ["symbol", *_ATTRS, "valid_from", "valid_to"]
        gone = old.join(new, on=key, how="anti", nulls_equal=True)
        born = new.join(old, on=key, how="anti", nulls_equal=True)
        self.open = pl.concat([
            self.open.join(gone.select(key), on=key, how="anti", nulls_equal=True),
            _with_tick(born).with_columns(known_from=pl.lit(at, _TIME), known_to=pl.lit(None, _TIME))
            .select(list(VERSIONS_SCHEMA)),
        ])
        # A row opened and closed at the same instant was never visible.
        self.closed.append(gone.filter(pl.col("known_from") < at).with_columns(known_to=pl.lit(at, _TIME)))
        self.tails = _replace(self.tails.filter(~mine),
                              alive.group_by("symbol").agg(pl.col("date").max().alias("last_date")))
        self.runs = pl.concat([self.runs.filter(~mine), observation_runs(alive)])


def _replace(table: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """``table`` with the rows of ``rows``' symbols replaced by ``rows``."""
    return pl.concat([table.join(rows.select("symbol"), on="symbol", how="anti"), rows.select(table.columns)])


def _read(read: Reader, file: CatalogFile) -> pl.DataFrame:
    """A catalog file's observations, checked: the columns and types of a catalog partition,
    one row per symbol, every row dated the file's day."""
    rows = read(file)
    missing = [c for c in OBSERVATION_SCHEMA if c not in rows.columns]
    if missing:
        raise LakehouseError(f"metadata_catalog {file.name} ({file.date}) lacks columns {missing}")
    try:
        rows = rows.select(list(OBSERVATION_SCHEMA)).cast(OBSERVATION_SCHEMA)
    except pl.exceptions.PolarsError as exc:
        raise LakehouseError(f"metadata_catalog {file.name} ({file.date}): a column of the wrong type: {exc}") from exc
    wrong = rows.select((pl.col("date") != file.date).any() | pl.col("symbol").is_null().any()
                        | pl.col("symbol").is_duplicated().any()).item()
    if wrong:
        raise LakehouseError(f"metadata_catalog {file.name}: expected one row per symbol, each dated {file.date}")
    return rows.sort("symbol")


def _deltas(new: pl.DataFrame, old: pl.DataFrame | None) -> tuple[pl.DataFrame, list[str]]:
    """The rows of ``new`` whose symbol ``old`` (the day's previous version) lacked, and the
    symbols whose observation changed or went."""
    if old is None:
        return new, []
    cols = ["symbol", *_ATTRS]
    added = new.join(old, on="symbol", how="anti")
    differ = pl.concat([new.select(cols).join(old.select(cols), on=cols, how="anti", nulls_equal=True),
                        old.select(cols).join(new.select(cols), on=cols, how="anti", nulls_equal=True)])
    touched = differ.select("symbol").unique().join(added, on="symbol", how="anti")
    return added, touched["symbol"].to_list()


def _replay(events: Sequence[CatalogFile], state: _Replay) -> CatalogIndex:
    """Apply ``events`` (recorded after everything in ``state``), one recorded time at a time."""
    ordered = sorted(events, key=lambda f: (f.recorded_at, f.date, f.name))
    for at in sorted({f.recorded_at for f in ordered}):
        slow: set[str] = set()
        appended = []
        for file in (f for f in ordered if f.recorded_at == at):
            file_id, old_id = state.record(file, at)
            new = state.observations[file_id] = _read(state.read, file)
            state.observed(new, file_id)
            added, touched = _deltas(new, None if old_id is None else state.rows_of(old_id))
            slow.update(touched)
            # An addition after the symbol's last observed day extends its history; any other
            # event re-derives it.
            fresh = added.join(state.tails, on="symbol", how="left")
            after = pl.col("last_date").is_null() | (pl.col("last_date") < file.date)
            slow.update(fresh.filter(~after)["symbol"].to_list())
            appended.append(fresh.filter(after).select("symbol", "date", *_ATTRS, pl.lit(at, _TIME).alias("at")))
        state.queue(pl.concat(appended).filter(~pl.col("symbol").is_in(sorted(slow))))
        if slow:
            state.rederive(sorted(slow), at)
    state.extend()
    return _finish(state)


def _finish(state: _Replay) -> CatalogIndex:
    files = pl.DataFrame(state.files, schema=FILES_SCHEMA)
    presence = pl.concat([pl.DataFrame(schema=PRESENCE_SCHEMA), *state.presence])
    versions = pl.concat([*state.closed, state.open]).sort("symbol", "valid_from", "known_from", "valid_to",
                                                             nulls_last=True)
    runs = state.runs.sort("symbol", "first_observed")
    return CatalogIndex(files, presence, state.ids, versions, state.tails.sort("symbol"), symbols_now(versions, runs),
                        runs)


def _grow_runs(runs: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """``runs`` with ``days`` (symbol, date; each after the symbol's last run) added."""
    symbols = days.select("symbol").unique()
    last = runs.join(symbols, on="symbol").sort("symbol", "first_observed").group_by("symbol").last()
    merged = observation_runs(pl.concat([
        last.select("symbol", pl.col("first_observed").alias("first"), pl.col("last_observed").alias("last")),
        days.select("symbol", pl.col("date").alias("first"), pl.col("date").alias("last")),
    ]))
    kept = runs.join(last.select("symbol", "first_observed"), on=["symbol", "first_observed"], how="anti")
    return pl.concat([kept, merged])


def observation_runs(presence: pl.DataFrame) -> pl.DataFrame:
    """Runs of consecutive observation days per symbol: ``symbol``, ``first_observed``,
    ``last_observed``. ``presence`` holds ``symbol`` and ``date``, or intervals ``first`` and
    ``last`` of consecutive days, which merge with neighbours they touch."""
    spans = (presence.select("symbol", pl.col("date").alias("first"), pl.col("date").alias("last"))
             if "date" in presence.columns else presence.select("symbol", "first", "last"))
    spans = spans.unique().sort("symbol", "first")
    reach = pl.col("last").cum_max()  # spans never overlap, so the running max is the previous end
    starts = _first_of_symbol() | ((pl.col("first") - reach.shift()).dt.total_days() > 1)
    return (
        spans.with_columns(run=starts.cum_sum())
        .group_by("run", maintain_order=True)
        .agg(pl.col("symbol").first(), pl.col("first").min().alias("first_observed"),
             pl.col("last").max().alias("last_observed"))
        .select(list(RUNS_SCHEMA))
    )


def symbols_now(versions: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """The versions known now, numbered per symbol, with ``last_seen`` (the last observed day
    inside the version) and ``recorded_at`` (when the version became known as it is)."""
    current = versions.filter(pl.col("known_to").is_null()).sort("symbol", "valid_from")
    current = current.with_columns(version=pl.col("valid_from").rank("ordinal").over("symbol").cast(pl.Int32))
    seen = (
        current.select("symbol", "valid_from", "valid_to").join(runs, on="symbol")
        .filter((pl.col("first_observed") < pl.col("valid_to")) | pl.col("valid_to").is_null())
        .filter(pl.col("last_observed") >= pl.col("valid_from"))
        .group_by("symbol", "valid_from")
        .agg(pl.min_horizontal("last_observed", pl.col("valid_to") - pl.duration(days=1)).max().alias("last_seen"))
    )
    return (
        current.join(seen, on=["symbol", "valid_from"], how="left")
        .with_columns(recorded_at=pl.col("known_from"))
        .select(list(SYMBOLS_SCHEMA)).sort("symbol", "version")
    )


def build_index(files: Sequence[CatalogFile], read: Reader) -> CatalogIndex:
    """The index of ``files`` from scratch."""
    return _replay(files, _Replay(None, read))


def update_index(index: CatalogIndex, files: Sequence[CatalogFile], read: Reader) -> CatalogIndex:
    """``index`` brought up to ``files``: the new files are replayed on top of it when each was
    recorded after the index's last one and none of its files is gone; otherwise the index is
    rebuilt from scratch. A new file that only extends histories costs its own rows; one that
    changes a past day re-derives the symbols it changes, reading their observations."""
    known = set(index.names())
    new = [f for f in files if f.name not in known]
    if known - {f.name for f in files}:
        return build_index(files, read)
    if not new:
        return index
    latest = index.files["recorded_at"].max()
    if latest is not None and min(f.recorded_at for f in new) <= latest:
        return build_index(files, read)
    return _replay(new, _Replay(index, read))
