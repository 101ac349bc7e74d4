"""The barbell's aggressors against the synthetic market's known payoffs, on days its books hold
volatility products (long volatility and a tail hedge: convex; short volatility: concave)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from quant_assets.risk.daily import allocate_barbell, estimate_signal_covariance, market_returns
from quant_assets.risk.returns import PriceMatrix
from quant_assets.risk.settings import RiskSettings
from quant_assets.screening.config import resolve_configs
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

SETTINGS = RiskSettings()
#: Days the default market's books hold volatility products (found by screening every week).
DAYS = [date(2026, 2, 23), date(2026, 3, 2), date(2026, 4, 27), date(2026, 6, 8), date(2026, 8, 24),
        date(2026, 8, 31)]


def _book(source: SyntheticSource, day: date) -> pl.DataFrame:
    """The day's barbell as the assets build it (the day's universe as the market), NORMAL."""
    configs = resolve_configs()
    universe = select_liquid_universe(fetch_raw_screen(source, configs, day).frame, configs)
    legs = selected_signals(select_signals(universe, configs))
    members = universe.filter(pl.col("in_universe"))["symbol"].to_list()
    bars = source.daily_bars(sorted({*members, *legs["symbol"]}), day - timedelta(days=SETTINGS.lookback_days), day)
    prices = PriceMatrix.from_bars(bars)
    covariance, _ = estimate_signal_covariance(prices, legs, day, SETTINGS)
    market = market_returns(prices, day, SETTINGS, members)
    return allocate_barbell(prices, legs, covariance, "NORMAL", day, SETTINGS, market)


@pytest.fixture(scope="module")
def books() -> pl.DataFrame:
    source = SyntheticSource(SyntheticMarketConfig())
    payoffs = source.market.payoffs.select("symbol", "payoff")
    return pl.concat([_book(source, day) for day in DAYS]).join(payoffs, on="symbol").with_columns(
        convex=((pl.col("direction") == "LONG") & (pl.col("payoff") == "convex"))
        | ((pl.col("direction") == "SHORT") & (pl.col("payoff") == "concave"))
    )


def test_the_aggressors_are_convex_in_the_market(books):
    aggressors = books.filter(pl.col("sleeve") == "aggressor")
    assert aggressors.height >= 3
    # The bar lets a linear book through with a 5 % chance: one false pick in six books at most.
    assert (~aggressors["convex"]).sum() <= 1, aggressors


def test_convex_legs_are_found_and_concave_ones_marked_fragile(books):
    convex = books.filter(pl.col("convex"))
    assert convex.height >= 4
    assert (convex["sleeve"] == "aggressor").mean() >= 0.5
    # Linear names, jumpy ones included, score zero at the bar (a 5 % chance per book allows one).
    linear = books.filter(pl.col("payoff") == "linear")
    assert (linear["antifragility"] != 0.0).sum() <= 1
    concave = books.filter((pl.col("payoff") == "concave") & (pl.col("direction") == "LONG"))
    assert (concave["sleeve"] == "core").all()
