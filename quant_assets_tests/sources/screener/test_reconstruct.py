"""Past screens recomputed from bars match the synthetic screener's own screen of that day."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.errors import ValidationError
from quant_assets.sources.screener.indicators import INDICATOR_COLUMNS
from quant_assets.sources.screener.reconstruct import reconstruct_screen
from quant_assets.sources.synthetic import SyntheticMarketConfig, get_market

MARKET = get_market(SyntheticMarketConfig(n_instruments=300, seed=5))
TODAY, PAST = date(2024, 6, 3), date(2024, 2, 15)


@pytest.fixture(scope="module")
def reconstructed() -> tuple[pl.DataFrame, pl.DataFrame]:
    today = MARKET.screen(TODAY)
    bars = MARKET.bars(MARKET.config.start, TODAY, today["symbol"].to_list())  # full history, future included
    return reconstruct_screen(bars, today, PAST), MARKET.screen(PAST)


def test_prices_and_indicators_equal_the_screeners(reconstructed):
    ours, truth = reconstructed
    assert ours["reconstructed"].all() and ours.height > 0
    truth = truth.filter(pl.col("symbol").is_in(ours["symbol"].implode())).sort("symbol")
    assert ours["symbol"].to_list() == truth["symbol"].to_list()
    columns = ["open", "high", "low", "close", "volume", "Value.Traded", *INDICATOR_COLUMNS]
    assert_frame_equal(ours.select(columns), truth.select(columns), rel_tol=1e-9, abs_tol=1e-9)


def test_survivorship_only_instruments_listed_today(reconstructed):
    ours, truth = reconstructed
    delisted = set(truth["symbol"]) - set(MARKET.screen(TODAY)["symbol"])
    assert delisted and not delisted & set(ours["symbol"])  # the limit, stated in the module


def test_bars_after_the_day_are_never_read(reconstructed):
    ours, _ = reconstructed
    today = MARKET.screen(TODAY)
    bars = MARKET.bars(MARKET.config.start, PAST, today["symbol"].to_list())
    assert_frame_equal(reconstruct_screen(bars, today, PAST), ours)


def test_missing_columns_are_named():
    with pytest.raises(ValidationError, match=r"reconstruct screen 2024-02-15: bars lack columns \['close'\]"):
        reconstruct_screen(pl.DataFrame({"date": [], "symbol": []}).with_columns(
            open=pl.lit(1.0), high=pl.lit(1.0), low=pl.lit(1.0), volume=pl.lit(1.0)), MARKET.screen(TODAY), PAST)
