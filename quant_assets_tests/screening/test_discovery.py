from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_assets.errors import QuantAssetsError, SourceConnectionError
from quant_assets.screening.config import ScreeningConfig
from quant_assets.screening.discovery import fetch_raw_screen
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

DAY = date(2024, 6, 3)


def _config(name: str, **overrides) -> ScreeningConfig:
    base = dict(name=name, direction="LONG", markets=["crypto"], prefilter_limit=50,
                base_limit=20, limit=5, source_file=f"configs/{name}.yaml")
    base.update(overrides)
    return ScreeningConfig.model_validate(base)


@pytest.fixture(scope="module")
def source() -> SyntheticSource:
    return SyntheticSource(SyntheticMarketConfig(n_instruments=200, seed=3))


def test_raw_screen_one_row_per_config_symbol(source):
    configs = [_config("a"), _config("b", markets=["crypto", "america"], prefilter_limit=80)]
    result = fetch_raw_screen(source, configs, DAY)
    frame = result.frame
    assert result.failures == {}
    assert frame.columns[:4] == ["date", "config", "symbol", "market"]
    assert frame.group_by("config").len().sort("config").rows() == [("a", 50), ("b", 80)]
    assert not frame.select("config", "symbol").is_duplicated().any()
    b = frame.filter(pl.col("config") == "b")
    # Two markets merged, then cut by the config's sort: the 80 most traded of both.
    assert set(b["market"]) == {"crypto", "america"}
    both = pl.concat([source.scan(DAY, q) for q in (
        _config("x", markets=["crypto"], prefilter_limit=80).scan_query(),
        _config("y", markets=["america"], prefilter_limit=80).scan_query())])
    assert b["Value.Traded"].min() == pytest.approx(both["Value.Traded"].sort(descending=True)[79])


def test_failing_config_is_isolated_and_reported(source):
    bad = _config("bad", columns=["SMA10"])
    result = fetch_raw_screen(source, [_config("good"), bad], DAY)
    assert set(result.frame["config"]) == {"good"}
    assert list(result.failures) == ["bad"]
    assert "SMA10" in result.failures["bad"] and "configs/bad.yaml" in result.failures["bad"]


def test_strict_mode_and_all_failed_raise_naming_configs(source):
    bad = _config("bad", columns=["SMA10"])
    with pytest.raises(QuantAssetsError, match=r"1 of 2 configs failed: bad: .*SMA10"):
        fetch_raw_screen(source, [_config("good"), bad], DAY, strict=True)
    with pytest.raises(QuantAssetsError, match="1 of 1 configs failed"):
        fetch_raw_screen(source, [bad], DAY)


def test_config_is_never_half_fetched(source):
    """A config with two markets where one request fails is left out whole."""

    class HalfBroken:
        name = "half"

        def scan_many(self, as_of, queries):
            return [SourceConnectionError("america: connection reset") if q.markets == ("america",)
                    else source.scan(as_of, q) for q in queries]

    configs = [_config("mixed", markets=["crypto", "america"]), _config("crypto_only")]
    result = fetch_raw_screen(HalfBroken(), configs, DAY)
    assert set(result.frame["config"]) == {"crypto_only"}
    assert "connection reset" in result.failures["mixed"]
