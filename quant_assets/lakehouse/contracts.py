"""Data contracts: the columns, keys and row counts each asset's daily partition promises.

The asset checks hold every materialised partition to its contract; readers (DuckDB views,
backtests) rely on it. A contract lists the columns a reader may depend on: a partition may
carry more (``raw_screen`` keeps whatever columns its configs asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from quant_assets.errors import ValidationError

_STR, _F64, _I64, _BOOL, _DATE = pl.String, pl.Float64, pl.Int64, pl.Boolean, pl.Date

#: The books ``portfolio_returns`` follows, the product first: the barbell itself and three
#: benchmarks run the same way (see :mod:`quant_assets.backtest.books`).
BOOKS: tuple[str, ...] = ("barbell", "equal_weight", "core_only", "fixed_core_90")
#: One leg of a book over a day (``portfolio_returns.legs``): the instrument, its weight held
#: (a fraction of the book, drifted since the decision), its return, its contribution to the
#: book's return (signed: a SHORT leg earns minus the return), the signed change of exposure
#: traded into the day's book, and that trade's cost.
LEG_FIELDS: dict[str, pl.DataType] = {
    "symbol": _STR, "direction": _STR, "weight": _F64, "asset_return": _F64, "contribution": _F64,
    "trade": _F64, "cost": _F64,
}
#: The regime labels, calm to stressed (:mod:`quant_assets.risk.regime` assigns them).
REGIMES: tuple[str, ...] = ("QUIET", "NORMAL", "CRISIS")
#: The backtest's partitions are calendar days (crypto trades every day): 365 a year.
PERIODS_PER_YEAR = 365
#: Days in the backtest's rolling Sharpe ratio (``portfolio_equity``, the tearsheet): a quarter.
SHARPE_WINDOW = 63


@dataclass(frozen=True)
class Contract:
    """What one asset's partition must look like.

    Attributes
    ----------
    columns : dict of str to polars dtype
        Required columns and their exact types.
    key : tuple of str
        Columns that identify a row: never null, never repeated.
    finite : tuple of str
        Float columns that must hold no NaN or infinity (nulls are allowed unless in ``key``).
    min_rows, max_rows : int
        Bounds on the partition's row count (``max_rows`` 0 means no bound). Every asset may be
        empty: a screen can answer no rows, and an empty answer flows through every stage as
        an empty partition of the same columns (the assets' ``has_rows`` checks warn).
    """

    columns: dict[str, pl.DataType]
    key: tuple[str, ...]
    finite: tuple[str, ...] = ()
    min_rows: int = 0
    max_rows: int = 0
    # Categorical columns with their allowed values (null is never allowed).
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)


CONTRACTS: dict[str, Contract] = {
    "raw_screen": Contract(
        columns={"date": _DATE, "config": _STR, "symbol": _STR, "market": _STR, "close": _F64,
                 "Value.Traded": _F64},
        key=("config", "symbol"),
        finite=("close", "Value.Traded"),
    ),
    "liquid_universe": Contract(
        columns={"date": _DATE, "config": _STR, "symbol": _STR, "in_universe": _BOOL,
                 "rejected_by": _STR, "tick_size": _F64},
        key=("config", "symbol"),
        finite=("tick_size",),
    ),
    "signals": Contract(
        columns={"date": _DATE, "config": _STR, "symbol": _STR, "direction": _STR,
                 "selected": _BOOL, "rank": _I64, "alpha_value": _F64, "tick_size": _F64},
        key=("config", "symbol"),
        finite=("alpha_value", "tick_size"),
        allowed={"direction": frozenset({"LONG", "SHORT"})},
    ),
    "regime": Contract(
        columns={"date": _DATE, "session": _DATE, "regime": _STR, "vol_short": _F64, "vol_long": _F64,
                 "vol_ratio": _F64, "dispersion_ratio": _F64, "n_symbols": _I64, "n_days": _I64},
        key=("date",),
        finite=("vol_short", "vol_long", "vol_ratio", "dispersion_ratio"),
        max_rows=1,
        allowed={"regime": frozenset(REGIMES)},
    ),
    "covariance": Contract(
        columns={"date": _DATE, "session": _DATE, "symbol_a": _STR, "symbol_b": _STR, "covariance": _F64},
        key=("symbol_a", "symbol_b"),
        finite=("covariance",),
    ),
    "barbell_weights": Contract(
        columns={"date": _DATE, "session": _DATE, "symbol": _STR, "direction": _STR, "sleeve": _STR,
                 "weight": _F64, "cap": _F64, "regime": _STR},
        key=("symbol",),
        finite=("weight", "cap"),
        allowed={"sleeve": frozenset({"core", "aggressor"}),
                 "direction": frozenset({"LONG", "SHORT"}),
                 "regime": frozenset(REGIMES)},
    ),
    "portfolio_returns": Contract(
        columns={"date": _DATE, "book": _STR, "decided_on": _DATE, "regime": _STR, "n_legs": _I64,
                 "gross_exposure": _F64, "gross_return": _F64, "turnover": _F64, "cost": _F64,
                 "net_return": _F64, "rebalanced": _BOOL, "legs": pl.List(pl.Struct(LEG_FIELDS))},
        key=("book",),
        finite=("gross_exposure", "gross_return", "turnover", "cost", "net_return"),
        allowed={"book": frozenset(BOOKS)},
    ),
    "metadata_catalog": Contract(
        columns={"date": _DATE, "symbol": _STR, "tick_size": _F64, "pricescale": _I64,
                 "minmov": _I64, "in_signals": _BOOL},
        key=("symbol",),
        finite=("tick_size",),
    ),
}


def contract_problems(asset: str, frame: pl.DataFrame, day: date) -> list[str]:
    """Every way ``frame`` breaks ``asset``'s contract for partition ``day`` (empty: it holds).

    Raises
    ------
    ValidationError
        If ``asset`` has no contract.
    """
    if asset not in CONTRACTS:
        raise ValidationError(f"no data contract for asset {asset!r}; known: {sorted(CONTRACTS)}")
    contract = CONTRACTS[asset]
    problems = []
    missing = [c for c in contract.columns if c not in frame.columns]
    if missing:
        problems.append(f"missing columns {missing}")
    wrong = {c: f"{frame.schema[c]} (expected {t})" for c, t in contract.columns.items()
             if c in frame.columns and frame.schema[c] != t}
    if wrong:
        problems.append(f"wrong column types {wrong}")
    if frame.height < contract.min_rows:
        problems.append(f"{frame.height} rows, expected at least {contract.min_rows}")
    if contract.max_rows and frame.height > contract.max_rows:
        problems.append(f"{frame.height} rows, expected at most {contract.max_rows}")
    if missing or wrong or frame.height == 0:
        return problems

    key = list(contract.key)
    # Every count in one pass over the frame.
    session = "session" in contract.columns
    counts = frame.select(
        other_dates=(pl.col("date") != day).sum(),
        # A partition reflects the last session on or before its day, never a later one.
        bad_sessions=(pl.col("session").is_null() | (pl.col("session") > day)).sum() if session else pl.lit(0),
        null_keys=pl.any_horizontal(pl.col(key).is_null()).sum(),
        duplicated=pl.struct(key).is_duplicated().sum(),
        **{f"bad_{c}": (pl.col(c).is_nan() | pl.col(c).is_infinite()).sum() for c in contract.finite},
        **{f"values_{c}": pl.col(c).unique().implode() for c in contract.allowed},
    ).row(0, named=True)
    if counts["other_dates"]:
        problems.append(f"dates {sorted(set(frame['date'].to_list()))[:3]} are not the partition {day}")
    if counts["bad_sessions"]:
        problems.append(f"{counts['bad_sessions']} rows with a null session or one after {day}")
    if counts["null_keys"]:
        problems.append(f"{counts['null_keys']} rows with a null in the key {key}")
    if counts["duplicated"]:
        problems.append(f"{counts['duplicated']} rows share a key {key} with another row")
    for column in contract.finite:
        if counts[f"bad_{column}"]:
            problems.append(f"{counts[f'bad_{column}']} NaN or infinite values in {column!r}")
    for column, allowed in contract.allowed.items():
        unknown = sorted(set(counts[f"values_{column}"]) - allowed, key=str)
        if unknown:
            problems.append(f"{column!r} has values {unknown} outside {sorted(allowed)}")
    return problems
