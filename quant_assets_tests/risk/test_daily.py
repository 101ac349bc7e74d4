"""Stage 3 for one day, end to end from the source: point in time and weights contract."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.errors import ValidationError
from quant_assets.lakehouse.bars_cache import BarsCache
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.risk.daily import (
    allocate_barbell,
    assess_regime,
    book_warnings,
    check_weights,
    covariance_matrix,
    covariance_problems,
    estimate_signal_covariance,
    load_prices,
    market_regime_history,
    market_returns,
    universe_windows,
)
from quant_assets.risk.regime import detect_regimes
from quant_assets.risk.returns import build_returns_panel, equal_weight_market_returns
from quant_assets.risk.settings import RiskSettings
from quant_assets.screening.config import resolve_configs
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

DAY = date(2024, 6, 3)
SETTINGS = RiskSettings()


def _day_outputs(source: SyntheticSource) -> dict[str, pl.DataFrame]:
    """Every stage's output for DAY, computed the way the assets compute it."""
    configs = resolve_configs()
    raw = fetch_raw_screen(source, configs, DAY).frame
    universe = select_liquid_universe(raw, configs)
    signals = select_signals(universe, configs)
    members = universe.filter(pl.col("in_universe"))["symbol"].unique().sort().to_list()
    market_bars = source.daily_bars(members, DAY - timedelta(days=SETTINGS.regime_lookback_days), DAY)
    regime = assess_regime(market_bars, DAY, SETTINGS)
    legs = selected_signals(signals)
    leg_bars = source.daily_bars(legs["symbol"].to_list(), DAY - timedelta(days=SETTINGS.lookback_days), DAY)
    covariance, _ = estimate_signal_covariance(leg_bars, legs, DAY, SETTINGS)
    market = market_returns(market_bars, DAY, SETTINGS, members)
    weights = allocate_barbell(leg_bars, legs, covariance, regime["regime"][0], DAY, SETTINGS, market)
    return {"raw": raw, "universe": universe, "signals": signals, "regime": regime,
            "market_bars": market_bars, "market": pl.DataFrame({"date": list(market), "return": list(market.values())}),
            "legs": legs, "leg_bars": leg_bars, "covariance": covariance, "weights": weights}


@pytest.fixture(scope="module")
def outputs() -> dict[str, pl.DataFrame]:
    return _day_outputs(SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11)))


def test_no_data_after_the_day_reaches_any_stage(outputs):
    # The same market with every draw after DAY redrawn: DAY's outputs must not move.
    future_changed = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11, perturb_after=DAY))
    again = _day_outputs(future_changed)
    for name, frame in outputs.items():
        assert again[name].equals(frame), name
    # ...while the perturbed market really is different the next day.
    base = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11))
    nxt = DAY + timedelta(days=1)
    assert not base.market.screen(nxt).equals(future_changed.market.screen(nxt))


def test_weights_contract(outputs):
    weights = outputs["weights"]
    assert check_weights(weights) == []
    assert weights["weight"].sum() == pytest.approx(1.0, abs=1e-9)
    # Each aggressor fills one of n_aggressors slots of the sleeve; empty slots stay with the core.
    aggressors = weights.filter(pl.col("sleeve") == "aggressor").height
    sleeve = 1.0 - SETTINGS.core_share[outputs["regime"]["regime"][0]]
    core = weights.filter(pl.col("sleeve") == "core")["weight"].sum()
    assert core == pytest.approx(1.0 - sleeve * aggressors / SETTINGS.n_aggressors, abs=1e-9)


def test_covariance_long_form_round_trips_symmetric(outputs):
    symbols, matrix = covariance_matrix(outputs["covariance"])
    assert symbols == sorted(symbols) and matrix.shape == (len(symbols), len(symbols))
    assert (matrix == matrix.T).all()
    assert set(outputs["weights"]["symbol"]) == set(symbols)


def test_check_weights_reports_each_problem():
    bad = pl.DataFrame({"symbol": ["A", "B", "C"], "weight": [0.7, -0.1, 0.3], "cap": [0.5, 0.5, 0.5]})
    assert check_weights(bad) == [
        "weights sum to 0.900000000000, not 1",
        "negative weights: ['B']",
        "weights above their cap: ['A']",
    ]
    assert check_weights(bad.with_columns(weight=pl.Series([0.5, 0.0, 0.5]))) == []


def test_oas_and_log_returns_are_settings(outputs):
    settings = RiskSettings(covariance_method="oas", returns_kind="log")
    frame, info = estimate_signal_covariance(outputs["leg_bars"], outputs["legs"], DAY, settings)
    _, lw_info = estimate_signal_covariance(outputs["leg_bars"], outputs["legs"], DAY, SETTINGS)
    assert info["method"] == "oas" and lw_info["method"] == "ledoit_wolf"
    assert info["shrinkage"] != lw_info["shrinkage"]
    assert covariance_matrix(frame)[0] == covariance_matrix(outputs["covariance"])[0]


def test_regime_is_the_last_day_of_its_history_with_that_days_turbulence(outputs):
    bars, regime = outputs["market_bars"], outputs["regime"]
    history = market_regime_history(bars, DAY, SETTINGS)
    assert history["date"][-1] == DAY and history.height == regime["n_days"][0]
    assert regime["date"][0] == regime["session"][0] == DAY  # crypto trades on every day
    same = regime.drop("turbulence", "session").columns
    assert regime.select(same).equals(history.tail(1).select(same))
    # The day's turbulence alone equals the last value of the full turbulence series.
    panel = build_returns_panel(bars, DAY, SETTINGS.regime_lookback_days, min_observations=SETTINGS.min_observations)
    full = detect_regimes(equal_weight_market_returns(panel), panel.dates, SETTINGS.regime, cross_section=panel.values)
    assert regime["turbulence"][0] == pytest.approx(full["turbulence"][-1], rel=1e-12)


def _weekday_market(source: SyntheticSource, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bars of 12 weekday-only instruments (stocks, futures) up to ``day``, and them as LONG legs."""
    weekday = source.market.instruments.filter(pl.col("calendar") != "7d")["symbol"].head(12).to_list()
    bars = source.daily_bars(weekday, day - timedelta(days=SETTINGS.regime_lookback_days), day)
    legs = pl.DataFrame({"symbol": weekday, "direction": ["LONG"] * len(weekday)})
    return bars, legs


@pytest.mark.parametrize("weekend_day", [date(2024, 6, 8), date(2024, 6, 9)])
def test_a_weekend_reflects_the_fridays_session_at_every_risk_stage(weekend_day):
    source = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11))
    friday = date(2024, 6, 7)
    bars, legs = _weekday_market(source, weekend_day)
    assert bars["date"].max() == friday  # the markets were closed: no bar on the day

    regime = assess_regime(bars, weekend_day, SETTINGS)
    on_friday = assess_regime(bars, friday, SETTINGS)
    assert regime["date"].to_list() == [weekend_day] and regime["session"].to_list() == [friday]
    assert regime.drop("date").equals(on_friday.drop("date"))

    covariance, info = estimate_signal_covariance(bars, legs, weekend_day, SETTINGS)
    friday_cov, _ = estimate_signal_covariance(bars, legs, friday, SETTINGS)
    assert covariance["session"].unique().to_list() == [friday] and info["window"].endswith(str(friday))
    assert covariance.drop("date").equals(friday_cov.drop("date"))

    market = market_returns(bars, weekend_day, SETTINGS, legs["symbol"].to_list())
    weights = allocate_barbell(bars, legs, covariance, regime["regime"][0], weekend_day, SETTINGS, market)
    assert check_weights(weights) == [] and weights["session"].unique().to_list() == [friday]
    assert (weights["date"] == weekend_day).all() and weights.height == len(legs)


def test_an_empty_universe_and_book_give_typed_empty_frames():
    source = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11))
    bars, legs = _weekday_market(source, DAY)
    regime = assess_regime(bars, DAY, SETTINGS, symbols=[])
    assert regime.is_empty() and regime.schema["session"] == pl.Date and "regime" in regime.columns
    with pytest.raises(ValidationError, match=r"regime 2024-06-03: no symbol of the universe has 60 returns"):
        market_regime_history(bars, DAY, SETTINGS, symbols=[])

    no_legs = legs.clear()
    covariance, info = estimate_signal_covariance(bars, no_legs, DAY, SETTINGS)
    assert covariance.is_empty() and covariance.schema["session"] == pl.Date and info["window"] == "empty"
    assert covariance_problems(covariance) == []
    weights = allocate_barbell(bars, no_legs, covariance, None, DAY, SETTINGS, {})
    assert weights.is_empty() and weights.schema["weight"] == pl.Float64 and check_weights(weights) == []
    assert book_warnings(weights, SETTINGS) == ["empty book: no signal leg has the history to be weighted"]


def test_a_book_too_small_for_the_cap_widens_it_and_says_so():
    source = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11))
    bars, legs = _weekday_market(source, DAY)
    three = legs.head(3)
    covariance, _ = estimate_signal_covariance(bars, three, DAY, SETTINGS)
    weights = allocate_barbell(bars, three, covariance, "CRISIS", DAY, SETTINGS, {})
    assert check_weights(weights) == [] and weights["cap"].to_list() == pytest.approx([1 / 3] * 3)
    assert book_warnings(weights, SETTINGS) == [
        "3 names cannot hold the book under max_weight 0.2: cap widened to 1/3 = 0.333333"]
    with pytest.raises(ValidationError, match="3 legs to allocate to but no regime"):
        allocate_barbell(bars, three, covariance, None, DAY, SETTINGS, {})


def test_covariance_problems_accepts_the_estimate_and_names_each_fault(outputs):
    cov = outputs["covariance"]
    assert covariance_problems(cov) == []
    first = pl.col("symbol_a") == pl.col("symbol_a").min()
    off_diagonal = first & (pl.col("symbol_b") != pl.col("symbol_a"))
    asymmetric = cov.with_columns(pl.when(off_diagonal).then(pl.col("covariance") + 1.0).otherwise(pl.col("covariance")).alias("covariance"))
    assert any("not symmetric" in p for p in covariance_problems(asymmetric))
    diagonal = pl.col("symbol_a") == pl.col("symbol_b")
    indefinite = cov.with_columns(pl.when(diagonal & first).then(-1.0).otherwise(pl.col("covariance")).alias("covariance"))
    assert any("not positive semi-definite" in p for p in covariance_problems(indefinite))
    with_nan = cov.with_columns(pl.when(diagonal & first).then(float("nan")).otherwise(pl.col("covariance")).alias("covariance"))
    assert covariance_problems(with_nan) == ["1 NaN or infinite entries"]
    assert "expected" in covariance_problems(cov.head(3))[0]  # not square


def _universe(*members: str, outside: str = "X:OUT") -> pl.DataFrame:
    return pl.DataFrame({"symbol": [*members, outside], "in_universe": [True] * len(members) + [False]})


def test_universe_windows_join_the_run_with_the_materialised_days_before_it(tmp_path):
    store = PartitionStore(tmp_path)
    first = date(2024, 1, 1)
    store.write("liquid_universe", date(2024, 1, 2), _universe("X:OLD"))
    store.write("liquid_universe", date(2024, 1, 4), _universe("X:B"))
    run = {date(2024, 1, 5): _universe("X:A"), date(2024, 1, 6): _universe("X:A", "X:C")}
    windows = universe_windows(run, store, first, window_days=5)
    assert list(windows) == [date(2024, 1, 5), date(2024, 1, 6)]
    fifth = windows[date(2024, 1, 5)]
    assert fifth.days == tuple(date(2024, 1, d) for d in range(1, 6))
    assert fifth.materialised == (date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 5))
    assert fifth.symbols == ("X:A", "X:B", "X:OLD")  # members only, each once, sorted
    sixth = windows[date(2024, 1, 6)]
    assert sixth.materialised == (date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 5), date(2024, 1, 6))
    assert sixth.symbols == ("X:A", "X:B", "X:C", "X:OLD")
    # A partition before the first one is never read, even if a file is there.
    store.write("liquid_universe", date(2023, 12, 31), _universe("X:EARLY"))
    assert "X:EARLY" not in universe_windows(run, store, first, window_days=7)[date(2024, 1, 5)].symbols


def test_load_prices_fetch_each_symbols_missing_days_once_through_the_cache(tmp_path):
    source = SyntheticSource(SyntheticMarketConfig(n_instruments=400, seed=11))
    symbols = source.market.instruments.filter(pl.col("calendar") == "7d")["symbol"].head(3).to_list()
    asked = []

    class Counting:
        def daily_bars(self, wanted, start, end):
            asked.append((tuple(wanted), start, end))
            return source.daily_bars(wanted, start, end)

    cache = BarsCache(tmp_path)
    days = {DAY: symbols[:2], DAY + timedelta(days=1): symbols[1:]}
    prices = load_prices(Counting(), cache, days, lookback_days=30)
    assert prices.symbols == tuple(sorted(symbols))
    assert str(prices.dates[0]) == str(DAY - timedelta(days=30)) and str(prices.dates[-1]) == str(DAY + timedelta(days=1))
    assert asked == [(tuple(sorted(symbols)), DAY - timedelta(days=30), DAY + timedelta(days=1))]
    again = load_prices(Counting(), cache, days, lookback_days=30)
    assert len(asked) == 1 and np.array_equal(again.closes, prices.closes, equal_nan=True)
