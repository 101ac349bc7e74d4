from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.errors import ConfigError, ValidationError
from quant_assets.risk.covariance import ledoit_wolf
from quant_assets.risk.regime import (
    RegimeConfig,
    cross_sectional_dispersion,
    current_regime,
    detect_regimes,
    label_regimes,
    regime_signal,
)


def _dates(n: int) -> list[date]:
    return [date(2022, 1, 3) + timedelta(days=i) for i in range(n)]


def _alternating(magnitudes: list[tuple[float, int]]) -> np.ndarray:
    """Returns +m, -m, +m, ... so every day's |return| is exactly the block's magnitude."""
    r = np.concatenate([np.full(n, m) for m, n in magnitudes])
    return r * np.where(np.arange(r.size) % 2 == 0, 1.0, -1.0)


def test_detect_regimes_follows_quiet_normal_crisis_blocks() -> None:
    # NORMAL 200 days at 1%, CRISIS 40 at 2.5%, NORMAL 60 at 1%, QUIET 80 at 0.6%.
    r = _alternating([(0.01, 200), (0.025, 40), (0.01, 60), (0.006, 80)])
    frame = detect_regimes(r, _dates(r.size))
    labels = np.array(frame["regime"].to_list())

    assert frame.columns == ["date", "regime", "vol_short", "vol_long", "vol_ratio", "warm_up"]
    assert (labels[:200] == "NORMAL").all()
    onset = int(np.argmax(labels[200:] == "CRISIS"))
    assert labels[200 + onset] == "CRISIS" and onset <= 3  # a ×2.5 jump is caught within 3 days
    assert (labels[200 + onset : 240] == "CRISIS").all()
    assert "CRISIS" not in labels[260:300]
    assert (labels[330:] == "QUIET").all()
    # Reported vols are annualised and Gaussian-equivalent: sqrt(pi/2) * E|r| * sqrt(252).
    assert frame["vol_long"][199] == pytest.approx(0.01 * np.sqrt(np.pi / 2.0 * 252.0), rel=1e-9)


def test_detect_regimes_finds_every_simulated_crisis_within_a_few_days() -> None:
    rng = np.random.default_rng(11)
    blocks = [("NORMAL", 200), ("QUIET", 100), ("NORMAL", 80), ("CRISIS", 40), ("NORMAL", 120),
              ("QUIET", 90), ("CRISIS", 30), ("NORMAL", 100)]
    multiplier = {"QUIET": 0.6, "NORMAL": 1.0, "CRISIS": 2.5}
    truth = np.concatenate([[label] * n for label, n in blocks])
    scale = np.array([multiplier[t] for t in truth]) * 0.01
    r = scale * rng.standard_t(5, truth.size) / np.sqrt(5.0 / 3.0)
    labels = np.array(detect_regimes(r, _dates(r.size))["regime"].to_list())

    starts = [i for i in range(1, truth.size) if truth[i] == "CRISIS" and truth[i - 1] != "CRISIS"]
    for start in starts:
        # Median lag over seeds is ~2 days; a crisis straight after a quiet spell can take ~9.
        assert (labels[start : start + 10] == "CRISIS").any(), f"crisis at day {start} missed"
    assert np.mean(labels[truth == "CRISIS"] == "CRISIS") >= 0.75
    assert np.mean(labels[truth != "CRISIS"] == "CRISIS") < 0.1
    assert np.mean(labels[42:] == truth[42:]) > 0.7  # agreement with the hidden path after warm-up


def test_detect_regimes_hysteresis_and_min_stay_stop_flapping() -> None:
    # A stationary fat-tailed market: the short vol keeps crossing both thresholds by chance.
    r = 0.01 * np.random.default_rng(3).standard_t(4, 800) / np.sqrt(2.0)
    config = RegimeConfig()
    frame = detect_regimes(r, _dates(r.size), config)
    labels = np.array(frame["regime"].to_list())
    ratio = frame["vol_ratio"].to_numpy()
    naive_config = RegimeConfig(hysteresis=0.0, min_stay=1, quiet_confirm_days=1)
    naive = np.array(detect_regimes(r, _dates(r.size), naive_config)["regime"].to_list())

    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    assert 0 < changes.size < np.count_nonzero(naive[1:] != naive[:-1]) / 2
    run_starts = np.concatenate([[config.min_history], changes])
    for previous, change in zip(run_starts[:-1], run_starts[1:]):
        before, after = labels[change - 1], labels[change]
        if after != "CRISIS":
            assert change - previous >= config.min_stay  # held long enough before leaving
        if before == "CRISIS":
            assert ratio[change] < config.crisis_above - config.hysteresis  # left only below the band
        if after == "CRISIS":
            assert ratio[change] > config.crisis_above
        confirming = ratio[change - config.quiet_confirm_days + 1 : change + 1]
        if before == "QUIET" and after == "NORMAL":  # entering CRISIS needs no confirmation
            assert (confirming > config.quiet_below + config.hysteresis).all()
        if after == "QUIET":
            assert (confirming < config.quiet_below).all()
    kinds = {(labels[c - 1], labels[c]) for c in changes}
    assert {("NORMAL", "CRISIS"), ("CRISIS", "NORMAL"), ("NORMAL", "QUIET"), ("QUIET", "NORMAL")} <= kinds


def test_detect_regimes_last_row_depends_only_on_the_past() -> None:
    rng = np.random.default_rng(5)
    r = rng.standard_normal(300) * 0.01
    cross = rng.standard_normal((300, 6)) * 0.01
    full = detect_regimes(r, _dates(300), cross_section=cross)
    for end in (120, 250):
        prefix = detect_regimes(r[:end], _dates(end), cross_section=cross[:end])
        assert prefix.equals(full.head(end))


def test_detect_regimes_with_dispersion_last_row_depends_only_on_the_past() -> None:
    rng = np.random.default_rng(6)
    cross = rng.standard_normal((300, 8)) * 0.01
    cross[:50, 5:] = np.nan  # late listings: the dispersion's composition changes over time
    cross[:3, 1:] = np.nan  # one asset only: no dispersion on the first days
    r, spread = np.nanmean(cross, axis=1), cross_sectional_dispersion(cross)
    full = detect_regimes(r, _dates(300), dispersion=spread, cross_section=cross)
    assert full["dispersion_ratio"][:3].is_null().all() and full["dispersion_ratio"][3:].is_not_null().all()
    for end in (120, 250):
        prefix = detect_regimes(r[:end], _dates(end), dispersion=spread[:end], cross_section=cross[:end])
        assert prefix.equals(full.head(end))


def test_cross_sectional_dispersion_is_the_std_of_each_days_returns() -> None:
    x = np.array([[0.01, -0.01, 0.03], [0.02, np.nan, 0.04], [np.nan, 0.05, np.nan], [np.nan] * 3])
    spread = cross_sectional_dispersion(x)
    assert spread[:2] == pytest.approx([np.std([0.01, -0.01, 0.03]), 0.01], rel=1e-12)
    assert np.isnan(spread[2:]).all()  # one return, or none: no dispersion


def test_detect_regimes_labels_follow_the_mean_of_vol_and_dispersion_ratios() -> None:
    # A steady market whose constituents move apart: the market's volatility ratio stays 1 while
    # the dispersion triples for 30 days, then falls to a third.
    r = _alternating([(0.01, 600)])
    spread = np.concatenate([np.full(300, 0.02), np.full(30, 0.06), np.full(270, 0.02 / 3.0)])
    on = detect_regimes(r, _dates(600), dispersion=spread)
    off = detect_regimes(r, _dates(600), RegimeConfig(use_dispersion=False), dispersion=spread)

    signal = regime_signal(on["vol_ratio"].to_numpy(), on["dispersion_ratio"].to_numpy(), RegimeConfig())
    assert signal == pytest.approx((on["vol_ratio"].to_numpy() + on["dispersion_ratio"].to_numpy()) / 2)
    assert on["regime"].to_list() == label_regimes(signal, RegimeConfig())
    labels = np.array(on["regime"].to_list())
    onset = 300 + int(np.argmax(labels[300:] == "CRISIS"))
    assert (labels[:300] == "NORMAL").all() and onset <= 305 and (labels[onset:330] == "CRISIS").all()
    assert (labels[-200:] == "QUIET").all()
    assert (off["regime"] == "NORMAL").all()  # the option off: the market alone, which is calm
    assert off["dispersion_ratio"].equals(on["dispersion_ratio"])  # reported either way


def test_detect_regimes_without_dispersion_follows_the_vol_ratio_alone() -> None:
    # One instrument (or a day with a single return) has no cross-section: the label falls back
    # to the volatility ratio, as with the option off.
    r = 0.01 * np.random.default_rng(4).standard_t(4, 400) / np.sqrt(2.0)
    alone = detect_regimes(r, _dates(400), dispersion=np.full(400, np.nan))
    off = detect_regimes(r, _dates(400), RegimeConfig(use_dispersion=False))
    assert alone["dispersion_ratio"].is_null().all()
    assert alone.drop("dispersion_ratio").equals(off)
    assert detect_regimes(r, _dates(400)).equals(off)


@pytest.mark.parametrize(
    ("dispersion", "message"),
    [(np.zeros(9), r"shape \(10,\)"), (np.full(10, -0.01), "non-negative"), (np.full(10, np.inf), "non-negative")],
)
def test_detect_regimes_rejects_invalid_dispersion(dispersion: np.ndarray, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        detect_regimes(np.zeros(10), _dates(10), dispersion=dispersion)


def test_detect_regimes_warm_up_is_normal_and_flagged() -> None:
    r = _alternating([(0.05, 10), (0.001, 50)])
    frame = detect_regimes(r, _dates(60), RegimeConfig(min_history=20))
    head = frame.head(20)
    assert (head["regime"] == "NORMAL").all() and head["warm_up"].all()
    assert not frame["warm_up"][20:].any()


def test_detect_regimes_zero_returns_give_ratio_one() -> None:
    frame = detect_regimes(np.zeros(50), _dates(50))
    assert (frame["vol_ratio"] == 1.0).all() and (frame["regime"] == "NORMAL").all()


def test_turbulence_matches_mahalanobis_reference_and_flags_outliers() -> None:
    rng = np.random.default_rng(8)
    cross = rng.standard_normal((150, 5)) * 0.01
    cross[140] = [0.05, -0.05, 0.05, -0.05, 0.05]  # a day that breaks the correlation structure
    cross[:30, 4] = np.nan  # a late listing: excluded while its history is incomplete
    config = RegimeConfig(turbulence_window=40)
    turbulence = detect_regimes(cross[:, 0], _dates(150), config, cross_section=cross)["turbulence"]

    assert turbulence[:40].is_null().all()
    window = cross[100:140]
    cov, _ = ledoit_wolf(window)
    deviation = cross[140] - window.mean(axis=0)
    assert turbulence[140] == pytest.approx(deviation @ np.linalg.solve(cov, deviation) / 5, rel=1e-8)
    assert turbulence[140] > 10.0 * float(turbulence[40:140].median())
    assert turbulence[60] is not None  # asset 4 has 30 NaN rows, but 4 assets remain usable


@pytest.mark.parametrize(("n_assets", "window"), [(3, 30), (40, 12)])  # direct and Woodbury paths
def test_turbulence_matches_reference_on_both_solve_paths(n_assets: int, window: int) -> None:
    rng = np.random.default_rng(n_assets)
    cross = rng.standard_normal((60, 1)) * 0.01 + rng.standard_normal((60, n_assets)) * 0.02
    config = RegimeConfig(turbulence_window=window)
    turbulence = detect_regimes(cross.mean(axis=1), _dates(60), config, cross_section=cross)["turbulence"]
    for t in (window, 59):
        history = cross[t - window : t]
        cov, _ = ledoit_wolf(history)
        deviation = cross[t] - history.mean(axis=0)
        reference = deviation @ np.linalg.solve(cov, deviation) / n_assets
        assert turbulence[t] == pytest.approx(reference, rel=1e-8)


def test_current_regime_returns_last_row() -> None:
    frame = detect_regimes(_alternating([(0.01, 100)]), _dates(100))
    latest = current_regime(frame)
    assert latest["date"] == _dates(100)[-1] and latest["regime"] == "NORMAL"
    assert set(latest) == set(frame.columns)
    with pytest.raises(ValidationError, match="empty"):
        current_regime(frame.clear())


@pytest.mark.parametrize(
    ("returns", "dates", "message"),
    [
        (np.array([0.01, np.nan, 0.0]), _dates(3), "NaN"),
        (np.zeros(3), _dates(4), "does not match"),
        (np.zeros(3), [date(2022, 1, 3), date(2022, 1, 3), date(2022, 1, 4)], "strictly increasing"),
    ],
)
def test_detect_regimes_rejects_invalid_input(returns: np.ndarray, dates: list[date], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        detect_regimes(returns, dates)


def test_detect_regimes_rejects_misshaped_cross_section() -> None:
    with pytest.raises(ValidationError, match="cross_section"):
        detect_regimes(np.zeros(10), _dates(10), cross_section=np.zeros((9, 2)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"short_halflife": 300.0},
        {"quiet_below": 2.0},
        {"hysteresis": 0.9},
        {"min_stay": 0},
    ],
)
def test_regime_config_rejects_inconsistent_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RegimeConfig(**kwargs)  # type: ignore[arg-type]


def test_detect_regimes_output_schema() -> None:
    frame = detect_regimes(np.zeros(5), _dates(5), cross_section=np.zeros((5, 2)), dispersion=np.zeros(5))
    assert frame.schema == pl.Schema(
        {"date": pl.Date, "regime": pl.String, "vol_short": pl.Float64, "vol_long": pl.Float64,
         "vol_ratio": pl.Float64, "dispersion_ratio": pl.Float64, "warm_up": pl.Boolean, "turbulence": pl.Float64}
    )
    assert (frame["dispersion_ratio"] == 1.0).all()  # no spread at all, like zero returns
