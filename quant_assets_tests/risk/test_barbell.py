from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from quant_assets.errors import ConfigError, ValidationError
from quant_assets.risk.barbell import BARBELL_COLUMNS, BarbellConfig, antifragility_score, build_barbell
from quant_assets.risk.covariance import ledoit_wolf

TOL = 1e-9


def _universe(n_convex: int, n_plain: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Returns and market of ``n_convex`` names convex in the market (C0..: long a straddle on
    it, more for each) and ``n_plain`` linear ones (P0..: a beta, a drift and left-skewed noise)."""
    rng = np.random.default_rng(seed)
    n_obs = 250
    market = rng.standard_t(4, n_obs) * 0.01
    straddle = np.abs(market) - 0.01
    strength = np.linspace(1.0, 2.0, n_convex)
    convex = (-0.5 * market[:, None] + strength * straddle[:, None]
              + 0.003 * rng.standard_normal((n_obs, n_convex)))
    plain = (rng.uniform(0.5, 1.5, n_plain) * market[:, None] + 0.0005
             - 0.01 * (rng.exponential(1.0, (n_obs, n_plain)) - 1.0) * rng.uniform(0.5, 2.0, n_plain))
    returns = np.hstack([convex, plain])
    symbols = [f"X:C{i}" for i in range(n_convex)] + [f"X:P{i}" for i in range(n_plain)]
    return returns, market, ledoit_wolf(returns)[0], symbols


def _linear_book(rng: np.random.Generator, n_obs: int, n_names: int) -> tuple[np.ndarray, np.ndarray]:
    """A fat-tailed market and linear names of every kind the old score mistook for convexity:
    symmetric Gaussian and Student-t noise, a strong positive drift, right-skewed jumps."""
    market = rng.standard_t(4, n_obs) * 0.01
    beta = rng.uniform(-0.5, 1.5, n_names)
    noise = np.column_stack([
        rng.standard_normal((n_obs, n_names // 4)) * 0.01,
        rng.standard_t(4, (n_obs, n_names // 4)) * 0.01,
        rng.standard_normal((n_obs, n_names // 4)) * 0.01 + 0.002,
        (rng.random((n_obs, n_names - 3 * (n_names // 4))) < 0.02) * 0.08 - 0.0016,
    ])
    return beta * market[:, None] + noise, market


def _check_book(frame: pl.DataFrame, cap: float) -> None:
    assert frame.columns == list(BARBELL_COLUMNS)
    assert abs(frame["weight"].sum() - 1.0) <= TOL
    assert (frame["weight"] >= 0.0).all() and (frame["weight"] <= cap + TOL).all()
    assert (frame["cap"] == cap).all()


def test_antifragility_score_of_linear_names_is_zero_at_the_bar() -> None:
    """Symmetric, drifting and skewed linear names score zero: on large samples a book of 20 of
    them has any non-zero score about as often as the bar's family error (5 %) allows."""
    rng = np.random.default_rng(1)
    books_with_a_score, nonzero = 0, 0
    for _ in range(200):
        returns, market = _linear_book(rng, n_obs=2000, n_names=20)
        scores = antifragility_score(returns, market)
        books_with_a_score += bool(np.any(scores != 0.0))
        nonzero += int(np.count_nonzero(scores))
    assert books_with_a_score <= 20  # 10 % of 200 books, twice the bar's 5 %
    assert nonzero <= 25


def test_antifragility_score_ranks_convex_names_first() -> None:
    rng = np.random.default_rng(2)
    linear, market = _linear_book(rng, n_obs=180, n_names=16)
    square = (market / 0.01) ** 2 - 2.0
    noise = 0.005 * rng.standard_normal((180, 4))
    convex = np.column_stack([
        -0.5 * market + 0.008 * square,  # long volatility, strongest
        -0.5 * market + 0.003 * square,  # long volatility
        2.0 * np.maximum(0.0, -market - 0.01) - 0.002,  # a tail hedge: convex on the downside only
        0.5 * market - 0.006 * square,  # short volatility: concave
    ]) + noise
    scores = antifragility_score(np.hstack([convex, linear]), market)
    assert np.argsort(-scores)[:3].tolist() == [0, 1, 2]
    assert scores[0] > scores[1] > scores[2] > 0.0
    assert scores[3] < 0.0  # fragile
    # The bar lets a linear name through with a 5 % chance per book (this book has one, weakly).
    assert np.count_nonzero(scores[4:]) <= 1 and scores[4:].max() < scores[2]
    # A SHORT leg of a long-volatility name is short volatility.
    assert antifragility_score(-convex[:, :1], market)[0] < 0.0


def test_antifragility_score_fits_each_name_on_its_own_trading_days() -> None:
    rng = np.random.default_rng(3)
    market = rng.standard_t(4, 300) * 0.01
    name = -0.5 * market + 0.006 * ((market / 0.01) ** 2 - 2.0) + 0.004 * rng.standard_normal(300)
    weekdays = np.arange(300) % 7 < 5
    closed = np.where(weekdays, name, 0.0)  # a weekday name's weekend zeros
    traded = np.column_stack([weekdays, np.ones(300, dtype=bool)])
    scores = antifragility_score(np.column_stack([closed, name]), market, traded=traded)
    alone = antifragility_score(name[weekdays, None], market[weekdays], family_error=0.05 / 2)
    assert scores[0] == pytest.approx(alone[0]) and scores[0] > 0.0
    # A column traded on too few days has no evidence.
    few = np.zeros((300, 1), dtype=bool)
    few[:5] = True
    assert antifragility_score(name[:, None], market, traded=few)[0] == 0.0


def test_antifragility_score_is_vol_normalised_and_zero_for_flat_columns() -> None:
    returns, market, _, _ = _universe(n_convex=1, n_plain=0)
    x = returns[:, :1]
    scores = antifragility_score(np.hstack([x, 7.0 * x, np.full((250, 1), 0.003), np.zeros((250, 1))]), market)
    assert scores[0] == pytest.approx(scores[1]) and scores[0] > 0.0
    assert scores[2] == 0.0 and scores[3] == 0.0
    # A market that does not move shows no curvature.
    assert (antifragility_score(x, np.full(250, 0.001)) == 0.0).all()


def test_antifragility_score_rejects_nan_short_and_misshaped_input() -> None:
    market = np.linspace(-0.01, 0.01, 12)
    with pytest.raises(ValidationError, match="NaN"):
        antifragility_score(np.where(np.arange(12) == 3, np.nan, 0.01)[:, None], market)
    with pytest.raises(ValidationError, match="T >= 10"):
        antifragility_score(np.zeros((9, 3)), market[:9])
    with pytest.raises(ValidationError, match="market must be"):
        antifragility_score(np.zeros((12, 3)), market[:11])
    with pytest.raises(ValidationError, match="family_error"):
        antifragility_score(np.zeros((12, 3)), market, family_error=1.0)


@pytest.mark.parametrize("regime", ["QUIET", "NORMAL", "CRISIS"])
@pytest.mark.parametrize("weighting", ["equal", "score"])
def test_build_barbell_splits_by_regime_within_caps(regime: str, weighting: str) -> None:
    returns, market, cov, symbols = _universe(n_convex=4, n_plain=12)
    config = BarbellConfig(n_aggressors=3, max_weight=0.2, aggressor_weighting=weighting)
    book = build_barbell(returns, market, cov, symbols, regime, config)

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
    returns, market, cov, symbols = _universe(n_convex=3, n_plain=9, seed=4)
    perm = np.random.default_rng(0).permutation(len(symbols))
    a = build_barbell(returns, market, cov, symbols, "NORMAL").sort("symbol")
    shuffled = [symbols[i] for i in perm]
    b = build_barbell(returns[:, perm], market, cov[np.ix_(perm, perm)], shuffled, "NORMAL").sort("symbol")
    assert a["sleeve"].to_list() == b["sleeve"].to_list()
    np.testing.assert_allclose(a["weight"], b["weight"], atol=1e-6)


def test_build_barbell_breaks_score_ties_by_symbol() -> None:
    returns, market, cov, _ = _universe(n_convex=1, n_plain=6, seed=5)
    twin = np.hstack([returns, returns[:, :1]])  # same score as column 0
    cov = ledoit_wolf(twin)[0]
    names = ["X:B", "X:P0", "X:P1", "X:P2", "X:P3", "X:P4", "X:P5", "X:A"]
    book = build_barbell(twin, market, cov, names, "NORMAL", BarbellConfig(n_aggressors=1))
    assert book.filter(pl.col("sleeve") == "aggressor")["symbol"].to_list() == ["X:A"]


def test_build_barbell_without_aggressors_is_all_core() -> None:
    returns, market, cov, symbols = _universe(n_convex=3, n_plain=7)
    book = build_barbell(returns, market, cov, symbols, "QUIET", BarbellConfig(n_aggressors=0))
    _check_book(book, 0.2)
    assert (book["sleeve"] == "core").all()


def test_build_barbell_never_picks_non_positive_scores_as_aggressors() -> None:
    returns, market, cov, symbols = _universe(n_convex=0, n_plain=8)
    book = build_barbell(returns, market, cov, symbols, "CRISIS")
    assert (book["sleeve"] == "core").all()
    _check_book(book, 0.2)


def test_build_barbell_all_aggressors_take_the_whole_book() -> None:
    returns, market, cov, symbols = _universe(n_convex=5, n_plain=0)
    no_core = {"NORMAL": 0.0}
    book = build_barbell(returns, market, cov, symbols, "NORMAL",
                         BarbellConfig(core_share=no_core, n_aggressors=5, max_weight=0.25))
    assert (book["sleeve"] == "aggressor").all()
    _check_book(book, 0.25)
    # Five names cannot hold the book under 0.1: the cap widens to 1/5 instead of failing.
    book = build_barbell(returns, market, cov, symbols, "NORMAL",
                         BarbellConfig(core_share=no_core, n_aggressors=5, max_weight=0.1))
    _check_book(book, 0.2)


def test_build_barbell_caps_a_large_aggressor_sleeve_and_moves_the_rest_to_core() -> None:
    returns, market, cov, symbols = _universe(n_convex=2, n_plain=10)
    config = BarbellConfig(core_share={"NORMAL": 0.5}, n_aggressors=2, max_weight=0.2)
    book = build_barbell(returns, market, cov, symbols, "NORMAL", config)
    _check_book(book, 0.2)
    aggressors = book.filter(pl.col("sleeve") == "aggressor")
    np.testing.assert_allclose(aggressors["weight"], [0.2, 0.2], atol=TOL)
    assert book.filter(pl.col("sleeve") == "core")["weight"].sum() == pytest.approx(0.6, abs=TOL)


def test_build_barbell_single_name_gets_the_whole_book() -> None:
    returns, market, cov, symbols = _universe(n_convex=1, n_plain=0)
    for regime in ("QUIET", "NORMAL", "CRISIS"):
        book = build_barbell(returns, market, cov, symbols, regime)
        assert book["weight"].to_list() == [1.0] and book["cap"].to_list() == [1.0]
        assert book["sleeve"].to_list() == ["core"]


def test_build_barbell_empty_book_is_an_empty_typed_frame() -> None:
    book = build_barbell(np.empty((0, 0)), np.empty(0), np.empty((0, 0)), [], "NORMAL")
    assert book.height == 0 and book.columns == list(BARBELL_COLUMNS)
    assert book.schema["weight"] == pl.Float64


@pytest.mark.parametrize("n_names", range(2, 13))
@pytest.mark.parametrize("regime", ["QUIET", "NORMAL", "CRISIS"])
def test_build_barbell_any_book_size_keeps_the_core_share(n_names: int, regime: str) -> None:
    """Every name convex (the hardest case for the core): the book still sums to 1 under the
    cap, and the core holds at least its share whenever the names allow it."""
    returns, market, cov, symbols = _universe(n_convex=n_names, n_plain=0, seed=n_names)
    config = BarbellConfig()
    book = build_barbell(returns, market, cov, symbols, regime, config)
    cap = max(config.max_weight, 1.0 / n_names)
    _check_book(book, cap)
    core = book.filter(pl.col("sleeve") == "core")
    assert core["weight"].sum() >= config.core_share[regime] - TOL
    aggressors = book.height - core.height
    assert aggressors == min(config.n_aggressors, n_names - math.ceil(config.core_share[regime] / cap - 1e-9))


def test_build_barbell_small_book_has_fewer_aggressors_not_a_thinner_core() -> None:
    # Eight names, five of them convex, cap 0.2: a 0.9 core needs five names, so three
    # aggressors fill three of the five slots of 0.1 / 5, and the core keeps the other two.
    returns, market, cov, symbols = _universe(n_convex=5, n_plain=3)
    book = build_barbell(returns, market, cov, symbols, "NORMAL")
    _check_book(book, 0.2)
    assert (book["sleeve"] == "aggressor").sum() == 3
    assert book.filter(pl.col("sleeve") == "core")["weight"].sum() == pytest.approx(1.0 - 0.1 * 3 / 5, abs=TOL)
    # In a crisis the core needs 0.95 / 0.2 -> five names too.
    crisis = build_barbell(returns, market, cov, symbols, "CRISIS")
    assert crisis.filter(pl.col("sleeve") == "core")["weight"].sum() == pytest.approx(1.0 - 0.05 * 3 / 5, abs=TOL)


def test_build_barbell_gives_unfilled_aggressor_slots_to_the_core() -> None:
    # Two convex names among ten: two of five slots filled, 2 x 0.1 / 5 to the aggressors.
    returns, market, cov, symbols = _universe(n_convex=2, n_plain=8, seed=6)
    book = build_barbell(returns, market, cov, symbols, "NORMAL")
    _check_book(book, 0.2)
    aggressors = book.filter(pl.col("sleeve") == "aggressor")
    assert sorted(aggressors["symbol"]) == ["X:C0", "X:C1"]
    np.testing.assert_allclose(aggressors["weight"], [0.02, 0.02], atol=TOL)


def test_build_barbell_rejects_unknown_regime_and_bad_shapes() -> None:
    returns, market, cov, symbols = _universe(n_convex=2, n_plain=6)
    with pytest.raises(ValidationError, match="unknown regime 'PANIC'"):
        build_barbell(returns, market, cov, symbols, "PANIC")
    with pytest.raises(ValidationError, match="N = 7"):
        build_barbell(returns, market, cov, symbols[:-1], "NORMAL")
    with pytest.raises(ValidationError, match="unique"):
        build_barbell(returns, market, cov, symbols[:-1] + symbols[:1], "NORMAL")


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
