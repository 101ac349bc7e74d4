from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_assets.errors import ValidationError
from quant_assets.lakehouse.contracts import CONTRACTS, contract_problems

DAY = date(2024, 6, 3)


def _weights(**overrides) -> pl.DataFrame:
    columns = {
        "date": [DAY, DAY], "session": [DAY, DAY], "symbol": ["A:X", "B:Y"], "direction": ["LONG", "SHORT"],
        "sleeve": ["core", "aggressor"], "weight": [0.9, 0.1], "cap": [0.95, 0.95],
        "regime": ["NORMAL", "NORMAL"],
    }
    return pl.DataFrame({**columns, **overrides})


def test_contract_holds_for_a_good_partition():
    assert contract_problems("barbell_weights", _weights(), DAY) == []


def test_contract_names_missing_and_mistyped_columns():
    problems = contract_problems("barbell_weights", _weights().drop("cap").with_columns(pl.col("weight").cast(pl.Float32)), DAY)
    assert any("missing columns ['cap']" in p for p in problems)
    assert any("'weight': 'Float32 (expected Float64)'" in p for p in problems)


def test_contract_catches_duplicate_and_null_keys():
    assert any("share a key" in p for p in contract_problems("barbell_weights", _weights(symbol=["A:X", "A:X"]), DAY))
    assert any("null in the key" in p for p in contract_problems("barbell_weights", _weights(symbol=["A:X", None]), DAY))


def test_contract_catches_nan_unknown_labels_and_wrong_date():
    assert any("NaN or infinite values in 'weight'" in p
               for p in contract_problems("barbell_weights", _weights(weight=[float("nan"), 1.0]), DAY))
    assert any("'sleeve' has values ['middle']" in p
               for p in contract_problems("barbell_weights", _weights(sleeve=["core", "middle"]), DAY))
    assert any("not the partition 2024-06-04" in p
               for p in contract_problems("barbell_weights", _weights(), date(2024, 6, 4)))


def test_contract_row_bounds():
    regime = pl.DataFrame({
        "date": [DAY, DAY], "session": [DAY, DAY], "regime": ["NORMAL", None], "vol_short": [0.1, 0.1], "vol_long": [0.1, 0.1],
        "vol_ratio": [1.0, 1.0], "dispersion_ratio": [1.0, None], "n_symbols": [5, 5], "n_days": [300, 300],
    })
    problems = contract_problems("regime", regime, DAY)
    assert "2 rows, expected at most 1" in problems
    assert any("'regime' has values [None" in p for p in problems)  # a null label is not a label
    # An empty answer is an empty partition of the same columns, within every contract.
    assert contract_problems("barbell_weights", _weights().clear(), DAY) == []


def test_contract_rejects_a_session_after_the_partition():
    friday, saturday = date(2024, 6, 7), date(2024, 6, 8)
    weekend = _weights(date=[saturday] * 2, session=[friday] * 2)
    assert contract_problems("barbell_weights", weekend, saturday) == []
    problems = contract_problems("barbell_weights", weekend.with_columns(session=pl.lit(date(2024, 6, 10))), saturday)
    assert problems == ["2 rows with a null session or one after 2024-06-08"]


def test_every_asset_has_a_contract_and_unknown_assets_are_an_error():
    assert set(CONTRACTS) == {"raw_screen", "liquid_universe", "signals", "regime", "covariance",
                              "barbell_weights", "metadata_catalog", "portfolio_returns"}
    with pytest.raises(ValidationError, match="no data contract for asset 'prices'"):
        contract_problems("prices", _weights(), DAY)
