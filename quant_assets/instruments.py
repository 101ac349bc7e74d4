"""What every layer says about an instrument: the daily-bar schema and normalised metadata.

The ground floor of the package: sources build bars and screens with these shapes, the stages
normalise screen rows with :func:`normalise_metadata`, and the lakehouse stores both.
"""

from __future__ import annotations

import polars as pl

from quant_assets.errors import ValidationError

#: Columns every bars frame has, in this order.
BAR_COLUMNS: tuple[str, ...] = ("date", "symbol", "open", "high", "low", "close", "volume")
#: Their types, wherever bars are built or stored.
BAR_SCHEMA: dict[str, pl.DataType] = {"date": pl.Date, "symbol": pl.String, **{c: pl.Float64 for c in BAR_COLUMNS[2:]}}

#: Columns of the normalised metadata every screened row carries after :func:`normalise_metadata`.
METADATA_COLUMNS: tuple[str, ...] = (
    "symbol", "exchange", "ticker", "base", "quote", "asset_class", "instrument_type",
    "pricescale", "minmov", "tick_size",
)

_ASSET_CLASS_BY_MARKET = {"crypto": "crypto", "futures": "futures", "america": "stock", "forex": "forex"}

_REQUIRED_RAW = ("config", "symbol", "market", "exchange", "name", "type", "currency",
                 "close", "volume", "Value.Traded", "pricescale", "minmov")


def normalise_metadata(raw: pl.DataFrame) -> pl.DataFrame:
    """Add normalised metadata: ticker, base, quote, asset class, instrument type, tick size.

    ``symbol`` stays ``EXCHANGE:TICKER``; ``base`` is the screener's ``base_currency`` when it
    has one, else the ticker without a perpetual's ``.P`` and without the quote suffix;
    ``tick_size`` is ``minmov / pricescale`` (null when either is missing or not positive).

    Raises
    ------
    ValidationError
        ``raw`` lacks a column the metadata is derived from.
    """
    missing = [c for c in _REQUIRED_RAW if c not in raw.columns]
    if missing:
        raise ValidationError(f"raw screen lacks columns {missing}; has {raw.columns}")
    ticker = pl.col("symbol").str.split_exact(":", 1).struct.field("field_1")
    bare = ticker.str.replace(r"\.P$", "")
    quote = pl.col("currency")
    derived_base = (
        pl.when(bare.str.ends_with(quote) & (bare.str.len_chars() > quote.str.len_chars()))
        .then(bare.str.slice(0, bare.str.len_chars() - quote.str.len_chars()))
        .otherwise(bare)
    )
    base = (
        pl.coalesce(pl.col("base_currency"), derived_base)
        if "base_currency" in raw.columns
        else derived_base
    )
    good_scale = (pl.col("pricescale") > 0) & (pl.col("minmov") > 0)
    return raw.with_columns(
        ticker=ticker,
        base=base,
        quote=quote,
        asset_class=pl.col("market").replace_strict(_ASSET_CLASS_BY_MARKET, default="other"),
        instrument_type=pl.col("type"),
        tick_size=pl.when(good_scale).then(pl.col("minmov") / pl.col("pricescale")),
    )
