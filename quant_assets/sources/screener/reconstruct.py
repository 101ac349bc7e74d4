"""Point-in-time screens for past dates, recomputed from daily bars.

The live scanner only answers "now". For a past date D, :func:`reconstruct_screen` recomputes
every price and indicator column of the screen from the bars up to D, with the indicator code
the synthetic market uses (:func:`~quant_assets.sources.screener.indicators.screen_indicators`), and
takes what bars cannot tell from today's screen of the same instruments:

* descriptive fields (name, exchange, type, currency, ...), ``pricescale`` and ``minmov`` as they
  are today (a tick size that changed since D shows today's; the catalog records when);
* ``Value.Traded`` = volume × close × point value, the point value implied by today's row;
* ``market_cap_calc`` = today's market cap × close(D) / close(today), i.e. supply as of today.

Survivorship: only instruments in today's screen can be reconstructed, so a past screen lacks
everything delisted since. Rows carry ``reconstructed = true``. Recursive indicators (ADX, RSI,
ATR) depend on where the bars start: the longer the cached history, the closer to the screener.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.instruments import BAR_COLUMNS
from quant_assets.sources.screener.indicators import INDICATOR_COLUMNS, screen_indicators

#: Columns taken from today's screen as they are.
DESCRIPTIVE_COLUMNS: tuple[str, ...] = ("symbol", "name", "description", "exchange", "type", "subtype",
                                        "currency", "market", "pricescale", "minmov")
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def reconstruct_screen(bars: pl.DataFrame, today: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The screen at the close of ``as_of``, one row per instrument of ``today`` with a bar on or
    before ``as_of``; bars after ``as_of`` are never read.

    Parameters
    ----------
    bars : polars.DataFrame
        Daily bars (:data:`~quant_assets.instruments.BAR_COLUMNS`) of the instruments.
    today : polars.DataFrame
        Today's screen rows of the same instruments: :data:`DESCRIPTIVE_COLUMNS`, ``close``,
        ``volume``, ``Value.Traded``, ``market_cap_calc``.

    Returns
    -------
    polars.DataFrame
        :data:`DESCRIPTIVE_COLUMNS`, prices, ``Value.Traded``, ``market_cap_calc``, the
        indicator columns and ``reconstructed``; sorted by symbol.

    Raises
    ------
    ValidationError
        On missing columns in either frame.
    """
    for what, frame, needed in (("bars", bars, BAR_COLUMNS),
                                ("today's screen", today, (*DESCRIPTIVE_COLUMNS, "close", "volume",
                                                           "Value.Traded", "market_cap_calc"))):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValidationError(f"reconstruct screen {as_of}: {what} lack columns {missing}")
    past = bars.filter((pl.col("date") <= as_of) & pl.col("symbol").is_in(today["symbol"].implode()))
    if past.height == 0:
        return _empty()
    # Every calendar day from the first bar: the calendar the screener's indicators run on.
    first = past["date"].min()
    calendar = pl.DataFrame({"date": pl.date_range(first, as_of, "1d", eager=True)})
    symbols = sorted(past["symbol"].unique().to_list())
    panels = {
        column: calendar.join(past.pivot(on="symbol", index="date", values=column), on="date", how="left")
        .select(symbols).to_numpy().astype(np.float64)
        for column in _PRICE_COLUMNS
    }
    indicators = screen_indicators(panels["open"], panels["high"], panels["low"], panels["close"],
                                   panels["volume"], calendar["date"].to_numpy())
    has_bar = np.isfinite(panels["close"])
    last = has_bar.shape[0] - 1 - np.argmax(has_bar[::-1], axis=0)  # every symbol has a bar
    cols = np.arange(len(symbols))
    values = {name: panel[last, cols] for name, panel in {**panels, **indicators}.items()}
    frame = pl.DataFrame({"symbol": symbols, **{k: pl.Series(v, nan_to_null=True) for k, v in values.items()}})
    ref = today.select(*DESCRIPTIVE_COLUMNS,
                       (pl.col("Value.Traded") / (pl.col("volume") * pl.col("close"))).alias("_pointvalue"),
                       (pl.col("market_cap_calc") / pl.col("close")).alias("_supply"))
    return (
        frame.join(ref, on="symbol", how="inner")
        .with_columns(
            (pl.col("volume") * pl.col("close") * pl.col("_pointvalue")).alias("Value.Traded"),
            (pl.col("_supply") * pl.col("close")).alias("market_cap_calc"),
            pl.lit(True).alias("reconstructed"),
        )
        .select(*DESCRIPTIVE_COLUMNS, *_PRICE_COLUMNS, "Value.Traded", "market_cap_calc",
                *INDICATOR_COLUMNS, "reconstructed")
        .sort("symbol")
    )


def _empty() -> pl.DataFrame:
    schema = {c: pl.String for c in DESCRIPTIVE_COLUMNS} | {"pricescale": pl.Int64, "minmov": pl.Int64}
    schema |= {c: pl.Float64 for c in (*_PRICE_COLUMNS, "Value.Traded", "market_cap_calc", *INDICATOR_COLUMNS)}
    return pl.DataFrame(schema={**schema, "reconstructed": pl.Boolean})
