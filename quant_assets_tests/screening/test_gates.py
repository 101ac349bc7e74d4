from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_assets.screening.config import ScreeningConfig
from quant_assets.screening.gates import select_liquid_universe, select_signals, selected_signals

DAY = date(2024, 3, 1)


def _row(symbol: str, **overrides) -> dict:
    exchange, ticker = symbol.split(":")
    row = {
        "date": DAY, "config": "demo", "symbol": symbol, "market": "crypto",
        "name": ticker, "exchange": exchange, "type": "spot", "currency": "USDT",
        "close": 10.0, "volume": 1e6, "Value.Traded": 1e7,
        "market_cap_calc": 1e9, "Volatility.D": 3.0, "ADX": 25.0, "Perf.W": 2.0,
        "Perf.1M": 5.0, "Perf.3M": 10.0, "Recommend.All": 0.3, "pricescale": 100, "minmov": 1,
    }
    row.update(overrides)
    return row


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None)


def _config(**overrides) -> ScreeningConfig:
    base = dict(name="demo", direction="LONG", markets=["crypto"], base_limit=50, limit=10)
    base.update(overrides)
    return ScreeningConfig.model_validate(base)


def test_hygiene_gates_record_the_first_failed_gate():
    cfg = _config(hygiene={"exchanges": ["BINANCE"], "quotes": ["USDT"], "allow_perps": False,
                           "exclude": ["DOGE"]})
    raw = _frame([
        _row("BINANCE:BTCUSDT"),
        _row("KRAKEN:ETHUSDT"),
        _row("BINANCE:ETHEUR", currency="EUR"),
        _row("BINANCE:SOLUSDT.P", type="swap"),
        _row("BINANCE:USDCUSDT"),
        _row("BINANCE:DOGEUSDT"),
        _row("BINANCE:XRPUSDT", close=None),
    ])
    out = select_liquid_universe(raw, [cfg])
    why = dict(zip(out["symbol"], out["rejected_by"]))
    assert why == {
        "BINANCE:BTCUSDT": None,
        "KRAKEN:ETHUSDT": "hygiene.exchange",
        "BINANCE:ETHEUR": "hygiene.quote",
        "BINANCE:SOLUSDT.P": "hygiene.perpetual",
        "BINANCE:USDCUSDT": "hygiene.stable_base",
        "BINANCE:DOGEUSDT": "hygiene.exclude",
        "BINANCE:XRPUSDT": "hygiene.missing_data",
    }
    assert out.filter(pl.col("in_universe"))["symbol"].to_list() == ["BINANCE:BTCUSDT"]


def test_market_cap_volatility_and_liquidity_gates():
    cfg = _config(market_cap={"min": 5e8, "max_rank": 2}, volatility={"min": 1, "max": 10},
                  liquidity={"min_value_traded": 5e6, "min_volume": 1e5})
    raw = _frame([
        _row("BINANCE:AAAUSDT", market_cap_calc=4e9),
        _row("BINANCE:BBBUSDT", market_cap_calc=3e9),
        _row("BINANCE:CCCUSDT", market_cap_calc=2e9),
        _row("BINANCE:DDDUSDT", market_cap_calc=1e8),
        _row("BINANCE:EEEUSDT", market_cap_calc=None),
        _row("BINANCE:FFFUSDT", market_cap_calc=5e9, **{"Volatility.D": 20.0}),
        _row("BINANCE:GGGUSDT", market_cap_calc=6e9, **{"Value.Traded": 1e6}),
    ])
    why = dict(zip(*select_liquid_universe(raw, [cfg]).select("symbol", "rejected_by")))
    # Rank is taken among survivors of the cap floor: G(6e9), F(5e9) rank 1-2, A 3rd.
    assert why["BINANCE:DDDUSDT"] == "market_cap.min"
    assert why["BINANCE:EEEUSDT"] == "market_cap.min"
    assert why["BINANCE:AAAUSDT"] == "market_cap.rank"
    assert why["BINANCE:FFFUSDT"] == "volatility"
    assert why["BINANCE:GGGUSDT"] == "liquidity.value_traded"


def test_deduplication_is_order_independent_and_picks_most_liquid():
    cfg = _config()
    rows = [
        _row("BINANCE:BTCUSDT", **{"Value.Traded": 5e8}),
        _row("BYBIT:BTCUSDT", **{"Value.Traded": 5e8}),
        _row("OKX:BTCUSDT", **{"Value.Traded": 1e8}),
        _row("BINANCE:ETHUSDT", **{"Value.Traded": 2e8}),
    ]
    results = []
    for seed in range(5):
        raw = _frame(rows).sample(fraction=1.0, shuffle=True, seed=seed)
        out = select_liquid_universe(raw, [cfg])
        results.append(out.select("symbol", "rejected_by"))
    for other in results[1:]:
        assert other.equals(results[0])
    why = dict(zip(*results[0]))
    # Tie on Value.Traded between BINANCE and BYBIT: the alphabetically first symbol wins.
    assert why["BINANCE:BTCUSDT"] is None
    assert why["BYBIT:BTCUSDT"] == "duplicate_base"
    assert why["OKX:BTCUSDT"] == "duplicate_base"


def test_base_limit_keeps_most_liquid():
    cfg = _config(base_limit=2, limit=2)
    raw = _frame([_row(f"BINANCE:C{i}USDT", **{"Value.Traded": 1e7 * (i + 1)}) for i in range(4)])
    out = select_liquid_universe(raw, [cfg])
    assert sorted(out.filter(pl.col("in_universe"))["symbol"]) == ["BINANCE:C2USDT", "BINANCE:C3USDT"]
    assert set(out.filter(~pl.col("in_universe"))["rejected_by"]) == {"base_limit"}


def test_signals_long_and_short_follow_declared_direction():
    long_cfg = _config(name="up", trend={"adx_min": 20, "momentum": ["Perf.1M"]}, limit=2)
    short_cfg = _config(name="down", direction="SHORT", trend={"momentum": ["Perf.1M"]},
                        alpha_field="Perf.1M", limit=5)
    rows = []
    for cfg_name in ("up", "down"):
        rows += [
            _row("BINANCE:AUSDT", config=cfg_name, **{"Perf.1M": 9.0, "Perf.3M": 30.0}),
            _row("BINANCE:BUSDT", config=cfg_name, **{"Perf.1M": 5.0, "Perf.3M": 50.0}),
            _row("BINANCE:CUSDT", config=cfg_name, **{"Perf.1M": 4.0, "Perf.3M": 40.0}),
            _row("BINANCE:DUSDT", config=cfg_name, ADX=10.0),
            _row("BINANCE:EUSDT", config=cfg_name, **{"Perf.1M": -8.0}),
            _row("BINANCE:FUSDT", config=cfg_name, **{"Perf.1M": -3.0}),
        ]
    universe = select_liquid_universe(_frame(rows), [long_cfg, short_cfg])
    out = select_signals(universe, [long_cfg, short_cfg])
    up = out.filter(pl.col("config") == "up")
    assert dict(zip(*up.select("symbol", "rejected_by"))) == {
        "BINANCE:AUSDT": "rank_cut", "BINANCE:BUSDT": None, "BINANCE:CUSDT": None,
        "BINANCE:DUSDT": "trend.adx", "BINANCE:EUSDT": "trend.momentum",
        "BINANCE:FUSDT": "trend.momentum",
    }
    assert dict(zip(*up.filter(pl.col("selected")).select("symbol", "rank"))) == {
        "BINANCE:BUSDT": 1, "BINANCE:CUSDT": 2}
    down = out.filter((pl.col("config") == "down") & pl.col("selected")).sort("rank")
    assert down["symbol"].to_list() == ["BINANCE:EUSDT", "BINANCE:FUSDT"]
    assert set(down["direction"]) == {"SHORT"}
    assert set(up["direction"]) == {"LONG"}


def test_selected_signals_drops_conflicting_directions():
    signals = pl.DataFrame({
        "symbol": ["X:A", "X:A", "X:B", "X:B", "X:C"],
        "config": ["c1", "c2", "c1", "c2", "c1"],
        "direction": ["LONG", "LONG", "LONG", "SHORT", "SHORT"],
        "selected": [True, True, True, True, True],
    })
    legs = selected_signals(signals)
    assert dict(zip(*legs.select("symbol", "direction"))) == {"X:A": "LONG", "X:C": "SHORT"}


def test_unknown_config_in_raw_screen_is_an_error():
    from quant_assets.errors import ValidationError

    with pytest.raises(ValidationError, match="unknown configs"):
        select_liquid_universe(_frame([_row("BINANCE:AUSDT", config="ghost")]), [_config()])
