"""The shipped regime detector on real BTCUSDT daily closes (TradingView's chart feed).

Each day is labelled the way the ``regime`` asset labels it (``assess_regime`` with the shipped
settings, a 730-day lookback ending at the day), with BTC alone as the universe. One instrument
has no cross-section: ``dispersion_ratio`` is null and the label follows the volatility ratio
alone, so these tests check that path and the shipped thresholds, not the dispersion.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from quant_assets.risk.daily import assess_regime
from quant_assets.risk.returns import PriceMatrix
from quant_assets.risk.settings import RiskSettings

CLOSES = Path(__file__).parents[1] / "data" / "real_tradingview" / "tommy-ca__BINANCE_BTCUSDT_1d__closes.csv"
SETTINGS = RiskSettings()


@pytest.fixture(scope="module")
def prices() -> PriceMatrix:
    bars = pl.read_csv(CLOSES, try_parse_dates=True).with_columns(symbol=pl.lit("BINANCE:BTCUSDT"))
    return PriceMatrix.from_bars(bars)


def _labels(prices: PriceMatrix, start: date, end: date) -> pl.DataFrame:
    days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    return pl.concat([assess_regime(prices, day, SETTINGS) for day in days])


# The first close of each sell-off (close-to-close fall): COVID (-39%), the May 2021 crash
# (-12%), LUNA (-12%), Celsius and 3AC (-15%), FTX (-10%, then -14%), the October 2025
# liquidation cascade (-7%). Measured delays: 0, 0, 0, 0, 1 and 2 days.
@pytest.mark.parametrize(
    "onset",
    [date(2020, 3, 12), date(2021, 5, 12), date(2022, 5, 9), date(2022, 6, 13), date(2022, 11, 8), date(2025, 10, 10)],
)
def test_shipped_detector_catches_real_btc_crashes_within_three_days(prices: PriceMatrix, onset: date) -> None:
    frame = _labels(prices, onset - timedelta(days=1), onset + timedelta(days=3))
    labels = frame["regime"].to_list()
    assert labels[0] != "CRISIS", f"already CRISIS the day before {onset}: not an onset it detects"
    assert "CRISIS" in labels[1:], f"{onset}: {labels[1:]}"
    assert frame["dispersion_ratio"].is_null().all()  # one instrument: no cross-section


def test_shipped_detector_is_calm_in_a_calm_year(prices: PriceMatrix) -> None:
    # 2023: BTC's realised volatility 44% a year (2017-2022: 64% to 110%), at record lows over
    # the summer. Measured: 22 CRISIS days of 365 (the March banking crisis, the one-day rally of
    # 10% on 2023-10-23, the swings around the Binance settlement of 2023-11-21), none from April
    # to September. The ratio reads change, not direction: a rally counts like a crash.
    frame = _labels(prices, date(2023, 1, 1), date(2023, 12, 31))
    crisis = frame.filter(pl.col("regime") == "CRISIS")["date"]
    assert crisis.len() <= 0.1 * frame.height
    assert not crisis.is_between(date(2023, 4, 1), date(2023, 9, 30)).any()
