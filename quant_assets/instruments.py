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

#: Stablecoins pegged to the US dollar. USDT, USDC, USDS, USDE, DAI, PYUSD, USD1, USDF, USDG,
#: RLUSD, TUSD and USDD are coins of TradingView's crypto market caps recorded on 2025-12-18
#: (tommy-ca/tradingview-scraper ``market_caps_crypto.json``), some also as quotes of other
#: coins (``GEMINI:BTCRLUSD``); FDUSD (Binance's quote), BUSD, USDP and GUSD are not in that
#: recording but still quoted in earlier data.
USD_STABLECOINS: frozenset[str] = frozenset({
    "USDT", "USDC", "USDS", "USDE", "DAI", "PYUSD", "USD1", "USDF", "USDG", "RLUSD", "TUSD", "USDD",
    "FDUSD", "BUSD", "USDP", "GUSD",
})
#: Every stablecoin: a coin pegged to a currency has no trend to trade (EURC: the euro).
STABLECOINS: frozenset[str] = USD_STABLECOINS | {"EURC"}
#: Quotes worth one US dollar: a price or market cap quoted in them is in dollars.
USD_QUOTES: frozenset[str] = USD_STABLECOINS | {"USD"}

_ASSET_CLASS_BY_MARKET = {"crypto": "crypto", "futures": "futures", "america": "stock", "forex": "forex"}

#: What follows a future's root: a continuous contract's ``1!``, a dated one's month and year.
_CONTRACT_SUFFIX = r"(\d+!|[FGHJKMNQUVXZ]\d{4})$"

_REQUIRED_RAW = ("config", "symbol", "market", "exchange", "name", "type", "currency",
                 "close", "volume", "Value.Traded", "pricescale", "minmov")


def normalise_metadata(raw: pl.DataFrame) -> pl.DataFrame:
    """Add normalised metadata: ticker, base, quote, asset class, instrument type, tick size.

    ``symbol`` stays ``EXCHANGE:TICKER``. ``base`` is what the instrument is on: a future's
    root (``ES`` for ``ES1!``, ``ES2!`` and ``ESH2025``), else the ticker without a perpetual's
    ``.P`` and without the quote suffix (``BTC`` for ``BTCUSDT.P``; TradingView has no base
    field in any market). ``tick_size`` is ``minmov / pricescale`` (null when either is missing
    or not positive).

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
    base = (
        pl.when(pl.col("market") == "futures").then(ticker.str.replace(_CONTRACT_SUFFIX, ""))
        .when(bare.str.ends_with(quote) & (bare.str.len_chars() > quote.str.len_chars()))
        .then(bare.str.slice(0, bare.str.len_chars() - quote.str.len_chars()))
        .otherwise(bare)
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
