"""The daily-bars cache: one Parquet file per symbol under ``<root>/_bars/``, append-only by date.

A symbol is outside input (an exchange's ticker), so it becomes a file name only through
:func:`symbol_file_name`: every character but ``A-Z a-z 0-9 _ -`` is percent-encoded (``.``
and ``/`` included), so no symbol can name a directory, climb out of the cache with ``..`` or
collide with another symbol's file. Appending keeps every bar already cached (history is never
rewritten; a date fetched again is ignored), sorts by date and replaces the file atomically
(:func:`~quant_assets.lakehouse.store.write_parquet_atomic`): a reader sees the old file or the
new one. :meth:`BarsCache.fill` fetches only the dates after each symbol's last cached bar.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import date

import polars as pl
from upath import UPath

from quant_assets.errors import LakehouseError, ValidationError
from quant_assets.lakehouse.store import resolve_root, write_parquet_atomic
from quant_assets.sources.base import BAR_SCHEMA

BARS_DIR = "_bars"
#: Longest symbol accepted: its encoded name must fit a file name (255 bytes) on every filesystem.
MAX_SYMBOL_LENGTH = 80
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

#: ``fetch(symbols, n_bars)``: each symbol's last ``n_bars`` daily bars up to the end date.
Fetcher = Callable[[Sequence[str], int], dict[str, pl.DataFrame]]


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


class BarsCache:
    """Daily bars per symbol in the lakehouse, filled incrementally."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.dir: UPath = resolve_root(root) / BARS_DIR

    def path(self, symbol: str) -> UPath:
        return self.dir / symbol_file_name(symbol)

    def read(self, symbol: str, end: date | None = None) -> pl.DataFrame:
        """Cached bars of ``symbol`` up to ``end`` (inclusive), by date; empty when none."""
        path = self.path(symbol)
        if not path.exists():
            return pl.DataFrame(schema=BAR_SCHEMA)
        with path.open("rb") as fh:
            bars = pl.read_parquet(fh)
        return bars if end is None else bars.filter(pl.col("date") <= end)

    def last_date(self, symbol: str) -> date | None:
        bars = self.read(symbol)
        return bars["date"].max() if bars.height else None

    def append(self, symbol: str, bars: pl.DataFrame) -> int:
        """Add the bars of dates not cached yet; return how many were added.

        Raises
        ------
        ValidationError
            If ``bars`` lacks a column, or holds another symbol's rows.
        """
        missing = [c for c in BAR_SCHEMA if c not in bars.columns]
        if missing:
            raise ValidationError(f"bars cache {symbol}: bars lack columns {missing}")
        others = set(bars["symbol"].unique().to_list()) - {symbol}
        if others:
            raise ValidationError(f"bars cache {symbol}: bars of other symbols {sorted(others)[:3]}")
        cached = self.read(symbol)
        new = (bars.select(list(BAR_SCHEMA)).cast(BAR_SCHEMA)
               .unique("date", keep="last", maintain_order=True)
               .join(cached.select("date"), on="date", how="anti"))
        if new.height:
            try:
                write_parquet_atomic(pl.concat([cached, new]).sort("date"), self.path(symbol))
            except OSError as exc:
                raise LakehouseError(f"bars cache {symbol}: could not write {self.path(symbol)}: {exc}") from exc
        return new.height

    def fill(self, fetch: Fetcher, symbols: Sequence[str], end: date, history_days: int) -> dict[str, int]:
        """Bring every symbol's bars up to ``end``: a symbol never cached gets ``history_days``
        of bars, a cached one only the days after its last bar. Returns bars added per symbol.

        Symbols are grouped by how many bars they need, so one fetch serves each group.
        """
        needed: dict[int, list[str]] = {}
        for symbol in symbols:
            last = self.last_date(symbol)
            n_bars = history_days if last is None else (end - last).days
            if n_bars > 0:
                needed.setdefault(n_bars, []).append(symbol)
        added = {symbol: 0 for symbol in symbols}
        for n_bars, group in sorted(needed.items()):
            for symbol, bars in fetch(group, n_bars).items():
                added[symbol] = self.append(symbol, bars.filter(pl.col("date") <= end))
        return added
