from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.errors import ValidationError
from quant_assets.risk.returns import ReturnsPanel, build_returns_panel, equal_weight_market_returns

CRYPTO = "BINANCE:BTCUSDT"
STOCK = "NASDAQ:AAPL"
FRI, SAT, SUN, MON = date(2024, 1, 5), date(2024, 1, 6), date(2024, 1, 7), date(2024, 1, 8)


def _bars(rows: list[tuple[date, str, float]]) -> pl.DataFrame:
    schema = {"date": pl.Date, "symbol": pl.String, "close": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(
        open=pl.col("close"), high=pl.col("close"), low=pl.col("close"), volume=pl.lit(1.0)
    ).select("date", "symbol", "open", "high", "low", "close", "volume")


def _weekend_bars() -> pl.DataFrame:
    """Crypto every day Thu..Tue, stock on weekdays only."""
    days = [date(2024, 1, 4) + timedelta(days=i) for i in range(6)]  # Thu..Tue
    crypto = [(d, CRYPTO, 100.0 + i) for i, d in enumerate(days)]
    stock = {date(2024, 1, 4): 50.0, FRI: 51.0, MON: 53.04, date(2024, 1, 9): 53.04}
    return _bars(crypto + [(d, STOCK, c) for d, c in stock.items()])


def test_build_returns_panel_keeps_weekends_and_carries_friday_to_monday() -> None:
    panel = build_returns_panel(_weekend_bars(), date(2024, 1, 9), 10, min_observations=3)

    assert panel.symbols == (CRYPTO, STOCK)  # sorted
    assert panel.dates == (FRI, SAT, SUN, MON, date(2024, 1, 9))  # no day erased
    stock = panel.values[:, panel.symbols.index(STOCK)]
    crypto = panel.values[:, panel.symbols.index(CRYPTO)]
    assert stock[1] == 0.0 and stock[2] == 0.0  # Saturday, Sunday: the stock did not move
    assert stock[3] == pytest.approx(53.04 / 51.0 - 1.0)  # Monday carries Friday -> Monday
    assert crypto[1] == pytest.approx(102.0 / 101.0 - 1.0)  # the crypto weekend is real
    # Compounding over the union calendar equals the stock's own-calendar return.
    assert np.prod(1.0 + stock) == pytest.approx(53.04 / 50.0)


def test_build_returns_panel_never_reads_after_end() -> None:
    bars = _weekend_bars().filter(pl.col("date") <= MON)
    base = build_returns_panel(bars, MON, 10, min_observations=2)
    # A crazy close and an invalid one after `end`: reading either would change or fail the panel.
    poisoned = pl.concat([bars, _bars([(date(2024, 1, 9), STOCK, 1e12), (date(2024, 2, 1), CRYPTO, -5.0)])])
    after = build_returns_panel(poisoned, MON, 10, min_observations=2)

    assert after.dates == base.dates and after.dates[-1] == MON
    np.testing.assert_array_equal(after.values, base.values)


def test_build_returns_panel_window_start_is_exclusive() -> None:
    bars = _bars([(date(2024, 1, d), CRYPTO, 100.0 * d) for d in range(1, 11)])
    panel = build_returns_panel(bars, date(2024, 1, 10), 5, min_observations=1)

    # Window (Jan 5, Jan 10]: first close Jan 6, so the first return is Jan 7.
    assert panel.dates == tuple(date(2024, 1, d) for d in range(7, 11))
    assert panel.values[0, 0] == pytest.approx(700.0 / 600.0 - 1.0)


def test_build_returns_panel_flips_short_columns_only() -> None:
    bars = _weekend_bars()
    plain = build_returns_panel(bars, date(2024, 1, 9), 10, min_observations=3)
    hedged = build_returns_panel(bars, date(2024, 1, 9), 10, min_observations=3, directions={STOCK: "SHORT"})

    s, c = plain.symbols.index(STOCK), plain.symbols.index(CRYPTO)
    np.testing.assert_array_equal(hedged.values[:, s], -plain.values[:, s])
    np.testing.assert_array_equal(hedged.values[:, c], plain.values[:, c])
    assert not np.signbit(hedged.values[1, s])  # a flat day stays +0.0


def test_build_returns_panel_log_returns() -> None:
    panel = build_returns_panel(_weekend_bars(), date(2024, 1, 9), 10, min_observations=3, kind="log")
    crypto = panel.values[:, panel.symbols.index(CRYPTO)]
    assert crypto[0] == pytest.approx(np.log(101.0 / 100.0))


def test_build_returns_panel_nan_before_listing_not_zero() -> None:
    rows = [(date(2024, 1, d), CRYPTO, 100.0 + d) for d in range(1, 11)]
    rows += [(date(2024, 1, d), "BINANCE:NEWUSDT", 10.0 + d) for d in range(5, 11)]
    panel = build_returns_panel(_bars(rows), date(2024, 1, 10), 30, min_observations=3)

    new = panel.values[:, panel.symbols.index("BINANCE:NEWUSDT")]
    # Dates Jan 2..10; listed Jan 5, first return Jan 6 (index 4).
    assert np.isnan(new[:4]).all() and np.isfinite(new[4:]).all()


def test_build_returns_panel_records_dropped_reasons() -> None:
    rows = [(date(2024, 1, d), CRYPTO, 100.0 + d) for d in range(1, 21)]
    rows += [(date(2024, 1, d), "BINANCE:THINUSDT", 1.0 + d) for d in range(17, 21)]  # 3 returns
    rows += [(date(2024, 1, d), "NYSE:GONE", 1.0 + d) for d in range(1, 11)]  # delisted Jan 10
    panel = build_returns_panel(
        _bars(rows), date(2024, 1, 20), 30, min_observations=5,
        symbols=[CRYPTO, "BINANCE:THINUSDT", "NYSE:GONE", "NYSE:MISSING"],
    )

    assert panel.symbols == (CRYPTO,)
    assert "3 returns" in panel.dropped["BINANCE:THINUSDT"] and "need 5" in panel.dropped["BINANCE:THINUSDT"]
    assert "2024-01-10" in panel.dropped["NYSE:GONE"] and "delisted" in panel.dropped["NYSE:GONE"]
    assert "no bars" in panel.dropped["NYSE:MISSING"]


def test_build_returns_panel_is_independent_of_row_order() -> None:
    bars = _weekend_bars()
    a = build_returns_panel(bars, date(2024, 1, 9), 10, min_observations=3)
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=7)
    b = build_returns_panel(shuffled, date(2024, 1, 9), 10, min_observations=3)
    assert a.symbols == b.symbols and a.dates == b.dates
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"date": [FRI], "symbol": [STOCK]}), "close"),
        (_bars([(FRI, STOCK, 1.0), (MON, STOCK, 0.0)]), STOCK),
        (_bars([(FRI, STOCK, 1.0), (MON, STOCK, -2.0)]), "-2.0"),
        (_bars([(FRI, STOCK, 1.0), (FRI, STOCK, 2.0)]), "one row per"),
    ],
)
def test_build_returns_panel_rejects_bad_input(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build_returns_panel(frame, MON, 10, min_observations=1)


def test_build_returns_panel_rejects_unknown_direction() -> None:
    with pytest.raises(ValidationError, match="LONG or SHORT"):
        build_returns_panel(_weekend_bars(), MON, 10, directions={STOCK: "short"})


def test_complete_drops_late_listings_then_trims_to_no_nan() -> None:
    rows = [(date(2024, 1, d), CRYPTO, 100.0 + d) for d in range(1, 21)]
    rows += [(date(2024, 1, d), "BINANCE:ETHUSDT", 50.0 + d % 3) for d in range(3, 21)]  # starts late-ish
    rows += [(date(2024, 1, d), "BINANCE:NEWUSDT", 10.0 + d) for d in range(14, 21)]  # starts very late
    panel = build_returns_panel(_bars(rows), date(2024, 1, 20), 30, min_observations=5)

    full = panel.complete(min_coverage=0.8)

    assert full.symbols == ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT")
    assert "below min_coverage" in full.dropped["BINANCE:NEWUSDT"]
    assert np.isfinite(full.values).all()
    assert full.dates[0] == date(2024, 1, 4) and full.dates[-1] == date(2024, 1, 20)


def test_returns_panel_values_are_read_only_and_to_frame_is_long() -> None:
    panel = ReturnsPanel((FRI, MON), ("A:X", "B:Y"), np.array([[0.01, np.nan], [0.02, -0.01]]), {})
    with pytest.raises(ValueError):
        panel.values[0, 0] = 1.0
    frame = panel.to_frame()
    assert frame.columns == ["date", "symbol", "return"]
    assert frame.height == 3  # the NaN cell is left out
    assert frame.filter(pl.col("symbol") == "B:Y")["return"].to_list() == [-0.01]


def test_returns_panel_rejects_shape_mismatch() -> None:
    with pytest.raises(ValidationError, match="shape"):
        ReturnsPanel((FRI,), ("A:X",), np.zeros((2, 1)), {})


def test_equal_weight_market_returns_averages_available_symbols() -> None:
    panel = ReturnsPanel((FRI, MON), ("A:X", "B:Y"), np.array([[0.01, np.nan], [0.02, -0.04]]), {})
    np.testing.assert_allclose(equal_weight_market_returns(panel), [0.01, -0.01])
