from __future__ import annotations

from pathlib import Path

import pytest

from quant_assets.errors import ConfigError
from quant_assets.screening.config import default_config_paths, load_config, load_configs
from quant_assets.sources.screener.fields import has_field

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"

MINIMAL = "name: demo\ndirection: LONG\nmarkets: [crypto]\n"


def _write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repository_configs_load_with_declared_directions():
    configs = load_configs(default_config_paths(REPO_CONFIGS))
    assert len(configs) >= 4
    directions = {c.name: c.direction for c in configs}
    assert directions["crypto_spot_short"] == "SHORT"
    assert directions["crypto_perps_long"] == "LONG"


def test_load_config_defaults():
    cfg = load_config(REPO_CONFIGS / "us_futures_trend.yaml")
    assert cfg.prefilter_limit == 100
    assert cfg.trend.adx_min == 15
    assert cfg.source_file.endswith("us_futures_trend.yaml")


def test_direction_comes_from_the_file_not_its_name(tmp_path):
    path = _write(tmp_path, MINIMAL, name="my_short_book.yaml")
    assert load_config(path).direction == "LONG"


def test_unknown_key_names_file_and_key_path(tmp_path):
    path = _write(tmp_path, MINIMAL + "trend:\n  adx_minimum: 20\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "trend.adx_minimum" in str(err.value)


def test_wrong_type_names_key_and_value(tmp_path):
    path = _write(tmp_path, MINIMAL + "prefilter_limit: lots\n")
    with pytest.raises(ConfigError, match=r"prefilter_limit.*'lots'"):
        load_config(path)


def test_impossible_values_rejected(tmp_path):
    path = _write(tmp_path, MINIMAL + "volatility: {min: 5, max: 1}\n")
    with pytest.raises(ConfigError, match="volatility"):
        load_config(path)
    path = _write(tmp_path, MINIMAL + "limit: 50\nbase_limit: 10\n")
    with pytest.raises(ConfigError, match="limit"):
        load_config(path)


def test_missing_direction_is_an_error(tmp_path):
    path = _write(tmp_path, "name: demo\nmarkets: [crypto]\n")
    with pytest.raises(ConfigError, match="direction"):
        load_config(path)


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_duplicate_names_rejected(tmp_path):
    a = _write(tmp_path, MINIMAL, "a.yaml")
    b = _write(tmp_path, MINIMAL, "b.yaml")
    with pytest.raises(ConfigError, match="also used by"):
        load_configs([a, b])


def test_scan_query_sends_exchange_whitelist_and_needed_columns(tmp_path):
    path = _write(tmp_path, MINIMAL + "hygiene: {exchanges: [BINANCE]}\nalpha_field: Perf.6M\n")
    query = load_config(path).scan_query()
    assert any(f.left == "exchange" and f.right == ["BINANCE"] for f in query.filters)
    assert "Perf.6M" in query.columns and "Value.Traded" in query.columns
    assert query.limit == 300 and query.label == str(path)


def test_base_preset_merges_mappings_and_replaces_values(tmp_path):
    (tmp_path / "presets").mkdir()
    _write(tmp_path / "presets", "markets: [crypto]\nprefilter_limit: 200\n"
           "hygiene: {quotes: [USDT, USDC], allow_perps: false}\ntrend: {adx_min: 25}\n", "crypto.yaml")
    path = _write(tmp_path, "base_preset: presets/crypto\nname: child\ndirection: SHORT\n"
                  "hygiene: {quotes: [USDT]}\n")
    cfg = load_config(path)
    assert cfg.prefilter_limit == 200 and cfg.markets == ["crypto"]
    assert cfg.hygiene.quotes == ["USDT"] and cfg.hygiene.allow_perps is False
    assert cfg.trend.adx_min == 25 and cfg.direction == "SHORT"


def test_base_preset_errors_name_files(tmp_path):
    a = _write(tmp_path, "base_preset: b.yaml\nname: a\n", "a.yaml")
    _write(tmp_path, "base_preset: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(a)
    missing = _write(tmp_path, MINIMAL + "base_preset: nowhere.yaml\n", "m.yaml")
    with pytest.raises(ConfigError, match="nowhere.yaml: cannot read"):
        load_config(missing)
    _write(tmp_path, "prefilter_limit: -3\n", "bad_preset.yaml")
    child = _write(tmp_path, MINIMAL + "base_preset: bad_preset.yaml\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"child.yaml: invalid screening config \(with presets .*bad_preset.yaml\).*prefilter_limit"):
        load_config(child)


def test_numbers_in_yaml_1_2_notation_are_numbers(tmp_path):
    # PyYAML reads 1.0e15 and 1e6 as strings (YAML 1.1); the scanner would take them for fields.
    path = _write(tmp_path, MINIMAL + "filters:\n  - {left: market_cap_calc, operation: less, right: 1.0e15}\n"
                  "liquidity: {min_value_traded: 5e6}\n")
    cfg = load_config(path)
    assert cfg.filters[0].right == 1e15 and isinstance(cfg.filters[0].right, float)
    assert cfg.liquidity.min_value_traded == 5e6
    assert cfg.scan_query().filters[0].right == 1e15


def test_fields_are_checked_against_each_markets_recorded_field_list(tmp_path):
    futures = "name: demo\ndirection: LONG\nmarkets: [futures]\n"
    with pytest.raises(ConfigError, match=r"config: key 'filters\[0\]\.left': field 'market_cap_calc' is not available in market futures"):
        load_config(_write(tmp_path, futures + "filters:\n  - {left: market_cap_calc, operation: greater, right: 1}\n"))
    with pytest.raises(ConfigError, match=r"field 'Perf.2W' is not available in market futures"):
        load_config(_write(tmp_path, futures + "alpha_field: Perf.2W\n"))
    with pytest.raises(ConfigError, match=r"key 'columns\[0\]': field 'base_currency' is not available in any"):
        load_config(_write(tmp_path, futures + "columns: [base_currency]\n"))
    # A column only some markets have is asked of those markets; the others answer null.
    mixed = load_config(_write(tmp_path, "name: demo\ndirection: LONG\nmarkets: [futures, america]\n"
                               "columns: [market_cap_basic]\n"))
    assert "market_cap_basic" in mixed.scan_query().columns


def test_shipped_configs_ask_each_market_only_for_fields_it_has():
    from quant_assets.sources.tradingview.wire import build_scan_body
    for cfg in load_configs(default_config_paths(REPO_CONFIGS)):
        query = cfg.scan_query()
        for market in cfg.markets:
            body = build_scan_body(query, market, 0, 50)
            unknown = [f for f in [*body["columns"], body["sort"]["sortBy"], *(f["left"] for f in body["filter"])]
                       if not has_field(market, f)]
            assert unknown == [], (cfg.name, market)
            assert "base_currency" not in body["columns"]
        assert ("market_cap_calc" in build_scan_body(query, cfg.markets[0], 0, 50)["columns"]) == (
            cfg.markets[0] in ("crypto", "america"))
