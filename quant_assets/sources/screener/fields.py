"""The screener's fields: which market has which, and the type of each value.

TradingView answers a request naming a field its market does not have with HTTP 400
(``Unknown field "x"``), which fails the whole config. Which fields a market has is recorded
in three public lists, none complete (``Value.Traded`` is missing from TradingView's own
metainfo, for one), so a field counts as available in a market when any of them lists it:

* ``m``: TradingView's ``/<market>/metainfo`` (as saved by shner-elmo/TradingView-Screener,
  branch docs @ f6075c29, ``data/metainfo/<market>.json``);
* ``t``: the field modules of deepentropy/tvscreener @ 66d486df (``tvscreener/field/<market>.py``);
* ``u``: the columns TradingView's own web screener requests (shner-elmo/TradingView-Screener,
  branch docs @ 125d131c, ``data/screeners/main_screeners.json``).

Their union per market is packaged as ``tradingview_fields.json.gz`` (field → the letters of the
lists that vouch for it), built from ``field_catalogs.json`` of the recordings by
``python -m quant_assets.sources.screener.fields FIELD_CATALOGS_JSON``.
"""

from __future__ import annotations

import functools
import gzip
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

#: The packaged union of the recorded field lists.
CATALOG_PATH = Path(__file__).with_name("tradingview_fields.json.gz")
#: What each source letter in the catalog stands for.
SOURCES = {"m": "TradingView metainfo", "t": "tvscreener field list", "u": "TradingView web screener request"}

#: Fields whose values are text (``metainfo`` type ``text``).
TEXT_FIELDS = frozenset({
    "name", "description", "exchange", "type", "subtype", "currency", "fundamental_currency_code",
    "sector", "industry", "country", "base_currency_logoid", "currency_logoid", "logoid", "fractional",
})
#: Fields whose values are whole numbers.
INTEGER_FIELDS = frozenset({"pricescale", "minmov", "minmove2"})
#: Fields whose values are lists of text (``metainfo`` type ``set``).
SET_FIELDS = frozenset({"typespecs"})
#: The numeric fields the pipeline reads (``metainfo`` types number, price, percent).
NUMBER_FIELDS = frozenset({
    "close", "open", "high", "low", "volume", "Value.Traded", "market_cap_calc", "market_cap_basic",
    "change", "Perf.W", "Perf.1M", "Perf.3M", "Perf.6M", "Perf.Y", "Volatility.D", "ADX", "ADX+DI",
    "ADX-DI", "RSI", "ATR", "Recommend.All", "Recommend.MA", "Recommend.Other",
})


def field_dtype(field: str) -> pl.DataType | None:
    """The polars type of ``field``'s values, so that even an answer without rows is typed;
    None for a field we hold no type for (read as the scanner answers it)."""
    if field in TEXT_FIELDS or field == "symbol":
        return pl.String
    if field in INTEGER_FIELDS:
        return pl.Int64
    if field in SET_FIELDS:
        return pl.List(pl.String)
    if field in NUMBER_FIELDS:
        return pl.Float64
    return None


@functools.cache
def market_fields() -> dict[str, dict[str, str]]:
    """``{market: {field: source letters}}`` from the packaged catalog."""
    with gzip.open(CATALOG_PATH, "rt", encoding="utf-8") as handle:
        return json.load(handle)["markets"]


def vouched_by(market: str, field: str) -> list[str]:
    """The recorded lists that show ``field`` in ``market`` (empty: none does)."""
    return [SOURCES[letter] for letter in market_fields().get(market, {}).get(field, "")]


def has_field(market: str, field: str) -> bool:
    """Whether any recorded list shows ``field`` in ``market``; a market we hold no list for
    has every field (we cannot tell)."""
    fields = market_fields().get(market)
    return fields is None or field in fields


def fields_in(market: str, columns: Iterable[str]) -> list[str]:
    """``columns`` to ask ``market`` for, in order: those it has, and those no recorded list
    shows in any market (a misspelling, or a field newer than the lists: the scanner judges,
    and its refusal names the field). Left out: a field recorded only for other markets."""
    known = _known_fields()
    return [c for c in columns if has_field(market, c) or c not in known]


@functools.cache
def _known_fields() -> frozenset[str]:
    return frozenset().union(*market_fields().values())


def markets_lacking(markets: Sequence[str], field: str) -> list[str]:
    """The ``markets`` that do not have ``field``."""
    return [m for m in markets if not has_field(m, field)]


def build_catalog(field_catalogs: Path, markets: Sequence[str] = ("crypto", "futures", "america", "forex")) -> dict:
    """The packaged catalog from the recordings' ``field_catalogs.json``."""
    raw = json.loads(field_catalogs.read_text())
    letters = {"metainfo": "m", "tvscreener": "t", "ui_columns": "u"}
    catalog: dict[str, dict[str, str]] = {}
    for market in markets:
        flags: dict[str, str] = {}
        for source, letter in letters.items():
            for field in raw["markets"][market].get(source, []):
                flags[field] = flags.get(field, "") + letter
        catalog[market] = dict(sorted(flags.items()))
    return {"provenance": {letters[k]: v for k, v in raw["_provenance"].items()}, "markets": catalog}


if __name__ == "__main__":  # pragma: no cover - run by hand when the recordings change
    with gzip.open(CATALOG_PATH, "wt", encoding="utf-8") as out:
        json.dump(build_catalog(Path(sys.argv[1])), out, separators=(",", ":"), sort_keys=True)
