from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from quant_assets.errors import ConfigError, ValidationError
from quant_assets.risk.barbell import BARBELL_COLUMNS, BarbellConfig, antifragility_score, build_barbell
from quant_assets.risk.covariance import ledoit_wolf

TOL = 1e-9


def _universe(n_convex: int, n_plain: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Returns of ``n_convex`` right-skewed names (C0..) and ``n_plain`` left-skewed ones (P0..)."""
    rng = np.random.default_rng(seed)
    n_obs = 250
    market = rng.standard_normal((n_obs, 1)) * 0.01
    convex = market + 0.01 * (rng.exponential(1.0, (n_obs, n_convex)) - 1.0) * rng.uniform(0.5, 2.0, n_convex)
    plain = market - 0.01 * (rng.exponential(1.0, (n_obs, n_plain)) - 1.0) * rng.uniform(0.5, 2.0, n_plain)
    returns = np.hstack([convex, plain])
    symbols = [f"X:C{i}" for i in range(n_convex)] + [f"X:P{i}" for i in range(n_plain)]
    return returns, ledoit_wolf(returns)[0], symbols


def _check_book(frame: pl.DataFrame, cap: float) -> None:
    assert frame.columns == list(BARBELL_COLUMNS)
    assert abs(frame["weight"].sum() - 1.0) <= TOL
    assert (frame["weight"] >= 0.0).all() and (frame["weight"] <= cap + TOL).all()
    assert (frame["cap"] == cap).all()


def test_antifragility_score_ranks_right_skew_above_left_skew() -> None:
    rng = np.random.default_rng(1)
    right = rng.exponential(1.0, 2000) - 1.0
    gaussian = rng.standard_normal(2000)
    scores = antifragility_score(np.column_stack([right, gaussian, -right]) * 0.01)
    assert scores[0] > 0.5 > abs(scores[1]) and scores[2] < -0.5
    assert abs(scores[1]) < 0.2  # a Gaussian has no excess convexity


def test_antifragility_score_is_vol_normalised_and_zero_for_flat_columns() -> None:
    rng = np.random.default_rng(2)
    x = rng.exponential(1.0, (500, 1)) * 0.01
    scores = antifragility_score(np.hstack([x, 7.0 * x, np.full((500, 1), 0.003), np.zeros((500, 1))]))
    assert scores[0] == pytest.approx(scores[1])
    assert scores[2] == 0.0 and scores[3] == 0.0


def test_antifragility_score_rejects_nan_and_short_input() -> None:
    with pytest.raises(ValidationError, match="NaN"):
        antifragility_score(np.array([[0.1], [np.nan], [0.2]]))
    with pytest.raises(ValidationError, match="T >= 3"):
        antifragility_score(np.zeros((2, 3)))


@pytest.mark.parametrize("regime", ["QUIET", "NORMAL", "CRISIS"])
@pytest.mark.parametrize("weighting", ["equal", "score"])
def test_build_barbell_splits_by_regime_within_caps(regime: str, weighting: str) -> None:
    returns, cov, symbols = _universe(n_convex=4, n_plain=12)
    config = BarbellConfig(n_aggressors=3, max_weight=0.2, aggressor_weighting=weighting)
    book = build_barbell(returns, cov, symbols, regime, config)

    _check_book(book, 0.2)
    aggressors = book.filter(pl.col("sleeve") == "aggressor")
    assert aggressors.height == 3
    assert set(aggressors["symbol"]) <= {"X:C0", "X:C1", "X:C2", "X:C3"}
    # The aggressors are the three best scores.
    assert aggressors["antifragility"].min() >= book.filter(pl.col("sleeve") == "core")["antifragility"].max()
    assert aggressors["weight"].sum() == pytest.approx(1.0 - config.core_share[regime], abs=TOL)
    if weighting == "equal":
        np.testing.assert_allclose(aggressors["weight"], aggressors["weight"][0], atol=TOL)
    else:
        ratio = aggressors["weight"] / aggressors["antifragility"]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)


def test_build_barbell_is_independent_of_input_order() -> None:
    returns, cov, symbols = _universe(n_convex=3, n_plain=9, seed=4)
    perm = np.random.default_rng(0).permutation(len(symbols))
    a = build_barbell(returns, cov, symbols, "NORMAL").sort("symbol")
    shuffled = [symbols[i] for i in perm]
    b = build_barbell(returns[:, perm], cov[np.ix_(perm, perm)], shuffled, "NORMAL").sort("symbol")
    assert a["sleeve"].to_list() == b["sleeve"].to_list()
    np.testing.assert_allclose(a["weight"], b["weight"], atol=1e-6)


def test_build_barbell_breaks_score_ties_by_symbol() -> None:
    returns, cov, _ = _universe(n_convex=1, n_plain=6, seed=5)
    twin = np.hstack([returns, returns[:, :1]])  # same score as column 0
    cov = ledoit_wolf(twin)[0]
    names = ["X:B", "X:P0", "X:P1", "X:P2", "X:P3", "X:P4", "X:P5", "X:A"]
    book = build_barbell(twin, cov, names, "NORMAL", BarbellConfig(n_aggressors=1))
    assert book.filter(pl.col("sleeve") == "aggressor")["symbol"].to_list() == ["X:A"]


def test_build_barbell_without_aggressors_is_all_core() -> None:
    returns, cov, symbols = _universe(n_convex=3, n_plain=7)
    book = build_barbell(returns, cov, symbols, "QUIET", BarbellConfig(n_aggressors=0))
    _check_book(book, 0.2)
    assert (book["sleeve"] == "core").all()


def test_build_barbell_never_picks_non_positive_scores_as_aggressors() -> None:
    returns, cov, symbols = _universe(n_convex=0, n_plain=8)
    book = build_barbell(returns, cov, symbols, "CRISIS")
    assert (book["sleeve"] == "core").all()
    _check_book(book, 0.2)


def test_build_barbell_all_aggressors_take_the_whole_book() -> None:
    returns, cov, symbols = _universe(n_convex=5, n_plain=0)
    no_core = {"NORMAL": 0.0}
    book = build_barbell(returns, cov, symbols, "NORMAL",
                         BarbellConfig(core_share=no_core, n_aggressors=5, max_weight=0.25))
    assert (book["sleeve"] == "aggressor").all()
    _check_book(book, 0.25)
    # Five names cannot hold the book under 0.1: the cap widens to 1/5 instead of failing.
    book = build_barbell(returns, cov, symbols, "NORMAL",
                         BarbellConfig(core_share=no_core, n_aggressors=5, max_weight=0.1))
    _check_book(book, 0.2)


def test_build_barbell_caps_a_large_aggressor_sleeve_and_moves_the_rest_to_core() -> None:
    returns, cov, symbols = _universe(n_convex=2, n_plain=10)
    config = BarbellConfig(core_share={"NORMAL": 0.5}, n_aggressors=2, max_weight=0.2)
    book = build_barbell(returns, cov, symbols, "NORMAL", config)
    _check_book(book, 0.2)
    aggressors = book.filter(pl.col("sleeve") == "aggressor")
    np.testing.assert_allclose(aggressors["weight"], [0.2, 0.2], atol=TOL)
    assert book.filter(pl.col("sleeve") == "core")["weight"].sum() == pytest.approx(0.6, abs=TOL)


def test_build_barbell_single_name_gets_the_whole_book() -> None:
    returns, cov, symbols = _universe(n_convex=1, n_plain=0)
    for regime in ("QUIET", "NORMAL", "CRISIS"):
        book = build_barbell(returns, cov, symbols, regime)
        assert book["weight"].to_list() == [1.0] and book["cap"].to_list() == [1.0]
        assert book["sleeve"].to_list() == ["core"]


def test_build_barbell_empty_book_is_an_empty_typed_frame() -> None:
    book = build_barbell(np.empty((0, 0)), np.empty((0, 0)), [], "NORMAL")
    assert book.height == 0 and book.columns == list(BARBELL_COLUMNS)
    assert book.schema["weight"] == pl.Float64


@pytest.mark.parametrize("n_names", range(2, 13))
@pytest.mark.parametrize("regime", ["QUIET", "NORMAL", "CRISIS"])
def test_build_barbell_any_book_size_keeps_the_core_share(n_names: int, regime: str) -> None:
    """Every name convex (the hardest case for the core): the book still sums to 1 under the
    cap, and the core holds at least its share whenever the names allow it."""
    returns, cov, symbols = _universe(n_convex=n_names, n_plain=0, seed=n_names)
    config = BarbellConfig()
    book = build_barbell(returns, cov, symbols, regime, config)
    cap = max(config.max_weight, 1.0 / n_names)
    _check_book(book, cap)
    core = book.filter(pl.col("sleeve") == "core")
    assert core["weight"].sum() >= config.core_share[regime] - TOL
    aggressors = book.height - core.height
    assert aggressors == min(config.n_aggressors, n_names - math.ceil(config.core_share[regime] / cap - 1e-9))


def test_build_barbell_small_book_has_fewer_aggressors_not_a_thinner_core() -> None:
    # Eight names, five of them convex, cap 0.2: a 0.9 core needs five names, so three aggressors.
    returns, cov, symbols = _universe(n_convex=5, n_plain=3)
    book = build_barbell(returns, cov, symbols, "NORMAL")
    _check_book(book, 0.2)
    assert (book["sleeve"] == "aggressor").sum() == 3
    assert book.filter(pl.col("sleeve") == "core")["weight"].sum() == pytest.approx(0.9, abs=TOL)
    # In a crisis the core needs 0.95 / 0.2 -> five names too.
    crisis = build_barbell(returns, cov, symbols, "CRISIS")
    assert crisis.filter(pl.col("sleeve") == "core")["weight"].sum() == pytest.approx(0.95, abs=TOL)


def test_build_barbell_rejects_unknown_regime_and_bad_shapes() -> None:
    returns, cov, symbols = _universe(n_convex=2, n_plain=6)
    with pytest.raises(ValidationError, match="unknown regime 'PANIC'"):
        build_barbell(returns, cov, symbols, "PANIC")
    with pytest.raises(ValidationError, match="N = 7"):
        build_barbell(returns, cov, symbols[:-1], "NORMAL")
    with pytest.raises(ValidationError, match="unique"):
        build_barbell(returns, cov, symbols[:-1] + symbols[:1], "NORMAL")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"core_share": {"NORMAL": 1.2}},
        {"n_aggressors": -1},
        {"max_weight": 0.0},
        {"aggressor_weighting": "random"},
    ],
)
def test_barbell_config_rejects_invalid_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BarbellConfig(**kwargs)  # type: ignore[arg-type]


def test_barbell_config_defaults_and_immutability() -> None:
    shares = {"NORMAL": 0.9}
    config = BarbellConfig(core_share=shares)
    shares["NORMAL"] = 0.1
    assert config.core_share["NORMAL"] == 0.9
    assert dict(BarbellConfig().core_share) == {"QUIET": 0.85, "NORMAL": 0.90, "CRISIS": 0.95}
