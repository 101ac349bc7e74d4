"""The daily-bars cache: one Parquet file per symbol under ``<root>/_bars/``, append-only by date.

A symbol is outside input (an exchange's ticker), so it becomes a file name only through
:func:`symbol_file_name`: every character but ``A-Z a-z 0-9 _ -`` is percent-encoded (``.``
and ``/`` included), so no symbol can name a directory, climb out of the cache with ``..`` or
collide with another symbol's file.

Each file records, in its Parquet metadata, the span of days it **covers**: every day from
``covered_from`` to ``covered_to`` has been asked of the source, so a day in that span with no
bar had no trading. :meth:`BarsCache.bars` fetches only the days outside a symbol's coverage
(before it, after it, or all of them for a new symbol), appends the bars of dates not cached
yet (history is never rewritten), and replaces the file atomically: a reader sees the old file
or the new one (on an object store the new object is one upload of the whole file, see
:func:`~quant_assets.lakehouse.store.write_bytes_atomic`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import polars as pl
import pyarrow.parquet as pq
from upath import UPath

from quant_assets.errors import LakehouseError, ValidationError
from quant_assets.instruments import BAR_SCHEMA
from quant_assets.lakehouse.store import parquet_bytes, read_blobs, resolve_root, store_errors, write_blobs

BARS_DIR = "_bars"
#: Longest symbol accepted: its encoded name must fit a file name (255 bytes) on every filesystem.
MAX_SYMBOL_LENGTH = 80
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_FROM, _TO = b"covered_from", b"covered_to"

#: ``fetch(symbols, start, end)``: daily bars of ``symbols`` with ``start <= date <= end``, one
#: long frame (a market source's ``daily_bars``).
Fetcher = Callable[[Sequence[str], date, date], pl.DataFrame]


def symbol_file_name(symbol: str) -> str:
    """``BINANCE:BTCUSDT.P`` -> ``BINANCE%3ABTCUSDT%2EP.parquet``; reversible, never a path.

    Raises
    ------
    ValidationError
        On an empty symbol or one longer than :data:`MAX_SYMBOL_LENGTH` characters.
    """
    if not isinstance(symbol, str) or not symbol or len(symbol) > MAX_SYMBOL_LENGTH:
        raise ValidationError(
            f"bars cache: symbol {symbol!r} must be a non-empty string of at most {MAX_SYMBOL_LENGTH} characters"
        )
    encoded = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in symbol)
    return f"{encoded}.parquet"


def _parse(data: bytes | None) -> tuple[pl.DataFrame, tuple[date, date] | None]:
    if data is None:
        return pl.DataFrame(schema=BAR_SCHEMA), None
    buffer = io.BytesIO(data)
    meta = pq.read_metadata(buffer).metadata or {}
    buffer.seek(0)
    bars = pl.read_parquet(buffer)
    return bars, (date.fromisoformat(meta[_FROM].decode()), date.fromisoformat(meta[_TO].decode()))


class BarsCache:
    """Daily bars per symbol in the lakehouse, fetched only where not covered yet."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.dir: UPath = resolve_root(root) / BARS_DIR

    def path(self, symbol: str) -> UPath:
        return self.dir / symbol_file_name(symbol)

    def load(self, symbol: str) -> tuple[pl.DataFrame, tuple[date, date] | None]:
        """Every cached bar of ``symbol`` (by date) and the days the cache has asked the source
        for; an empty frame and None for a symbol never fetched."""
        return self.load_many([symbol])[symbol]

    def load_many(self, symbols: Sequence[str]) -> dict[str, tuple[pl.DataFrame, tuple[date, date] | None]]:
        """:meth:`load` for each of ``symbols``, the files read together (one batch of GETs on
        an object store, not a round trip per symbol)."""
        unique = list(dict.fromkeys(symbols))
        blobs = read_blobs([self.path(symbol) for symbol in unique], missing_ok=True)
        return {symbol: _parse(blob) for symbol, blob in zip(unique, blobs)}

    def coverage(self, symbol: str) -> tuple[date, date] | None:
        return self.load(symbol)[1]

    def read(self, symbol: str) -> pl.DataFrame:
        return self.load(symbol)[0]

    def append(
        self,
        symbol: str,
        bars: pl.DataFrame,
        covered: tuple[date, date],
        loaded: tuple[pl.DataFrame, tuple[date, date] | None] | None = None,
    ) -> tuple[pl.DataFrame, tuple[date, date]]:
        """Add the bars of dates not cached yet and extend the coverage by ``covered`` (a span
        adjacent to or overlapping the current one); return what :meth:`load` would now return.
        ``loaded`` is what :meth:`load` returned just before, if the caller has it.

        Raises
        ------
        ValidationError
            If ``bars`` lacks a column, holds another symbol's rows or dates outside ``covered``.
        """
        combined, span, changed = self._merge(symbol, bars, covered, loaded)
        if changed:
            self._write({symbol: (combined, span)})
        return combined, span

    def _merge(
        self,
        symbol: str,
        bars: pl.DataFrame,
        covered: tuple[date, date],
        loaded: tuple[pl.DataFrame, tuple[date, date] | None] | None,
    ) -> tuple[pl.DataFrame, tuple[date, date], bool]:
        """What :meth:`append` would leave, and whether that differs from the file."""
        missing = [c for c in BAR_SCHEMA if c not in bars.columns]
        if missing:
            raise ValidationError(f"bars cache {symbol}: bars lack columns {missing}")
        if bars.height and (bars["symbol"] != symbol).any():
            others = sorted(set(bars["symbol"].to_list()) - {symbol})
            raise ValidationError(f"bars cache {symbol}: bars of other symbols {others[:3]}")
        if bars.height and (bars["date"].min() < covered[0] or bars["date"].max() > covered[1]):
            raise ValidationError(f"bars cache {symbol}: bars outside the span fetched {covered}")
        cached, current = loaded if loaded is not None else self.load(symbol)
        span = covered if current is None else (min(current[0], covered[0]), max(current[1], covered[1]))
        new = bars.select(list(BAR_SCHEMA)).cast(BAR_SCHEMA)
        if cached.height:  # history is never rewritten: a date cached keeps its bar
            new = new.filter(~pl.col("date").is_in(cached["date"].implode()))
        if new.height == 0 and span == current:
            return cached, span, False
        return pl.concat([cached, new.unique("date", keep="last")]).sort("date"), span, True

    def _write(self, files: dict[str, tuple[pl.DataFrame, tuple[date, date]]]) -> None:
        """Replace the files of these symbols, each atomically (together: on an object store
        the uploads go concurrently)."""
        blobs = [(self.path(symbol), parquet_bytes(frame, {_FROM.decode(): span[0].isoformat(),
                                                           _TO.decode(): span[1].isoformat()}))
                 for symbol, (frame, span) in files.items()]
        try:
            write_blobs(blobs)
        except store_errors() as exc:
            raise LakehouseError(f"bars cache: could not write under {self.dir}: {exc}") from exc

    def bars(self, fetch: Fetcher, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Daily bars of ``symbols`` with ``start <= date <= end``, sorted by (symbol, date),
        fetching only the days the cache does not cover; symbols that need the same span share
        one fetch."""
        loaded = self.load_many(symbols)
        gaps: dict[tuple[date, date], list[str]] = {}
        for symbol, (_, covered) in loaded.items():
            if covered is None:
                spans = [(start, end)]
            else:
                spans = [(start, covered[0] - timedelta(days=1)), (covered[1] + timedelta(days=1), end)]
            for span in spans:
                if span[0] <= span[1]:
                    gaps.setdefault(span, []).append(symbol)
        changed: dict[str, tuple[pl.DataFrame, tuple[date, date]]] = {}
        for span, group in sorted(gaps.items()):
            fetched = fetch(group, *span)
            by_symbol = fetched.partition_by("symbol", as_dict=True) if fetched.height else {}
            for symbol in group:
                got = by_symbol.get((symbol,), pl.DataFrame(schema=BAR_SCHEMA))
                frame, covered, differs = self._merge(symbol, got, span, loaded[symbol])
                loaded[symbol] = frame, covered
                if differs:
                    changed[symbol] = frame, covered
        if changed:  # one write per symbol, however many spans it was missing
            self._write(changed)
        if not loaded:
            return pl.DataFrame(schema=BAR_SCHEMA)
        bars = pl.concat(frame for frame, _ in loaded.values())
        return bars.filter(pl.col("date").is_between(start, end)).sort("symbol", "date")
