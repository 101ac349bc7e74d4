"""Performance statistics of the books' daily returns: rows of ``portfolio_returns`` in, one row
of statistics per book (or per book and regime) out.

Definitions, for one book over its ``n`` days in date order (for :func:`performance_by_regime`,
over the days of one regime label, concatenated in date order). The SQL macros
``performance(start, end)`` and ``performance_by_regime(start, end)`` of
:mod:`quant_assets.lakehouse.sql` compute the same numbers.

- ``r`` is ``net_return`` (a fraction); ``nav_t = prod_{s<=t} (1 + r_s)``, multiplied in date
  order from a starting capital of 1.
- ``cumulative_return = nav_n - 1``; ``annual_return = (1 + cumulative_return) ** (365 / n) - 1``
  (days are calendar days: crypto trades every day, so a year has 365 of them).
- ``annual_volatility = std(r, ddof=1) * sqrt(365)``; ``sharpe = mean(r) / std(r, ddof=1) *
  sqrt(365)`` (risk-free rate 0); ``sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(365)``.
- ``max_drawdown = min_t nav_t / max(1, max_{s<=t} nav_s) - 1``: the starting capital counts as a
  peak, so a loss on the first day is a drawdown. ``max_drawdown_trough`` is the first day it is
  reached; ``max_drawdown_peak`` the last day before it on which ``nav`` stood at its high-water
  mark (the day before the first day when the mark is the starting capital);
  ``max_drawdown_recovery`` the first day after the trough with ``nav`` back at or above that
  mark (null if not yet).
- ``calmar = annual_return / |max_drawdown|``.
- ``annual_turnover = mean(turnover) * 365``; ``cost_drag`` is the annual return of
  ``gross_return`` minus that of ``net_return`` (the same formula).
- ``hit_rate = count(r > 0) / count(r != 0)``.

An undefined statistic is null, never NaN or infinite: volatility, Sharpe and Sortino over
fewer than 2 days; Sharpe when every day returned the same (std 0: volatility is then 0);
Sortino without a losing day; Calmar and the drawdown's dates without a drawdown (``max_drawdown``
is then 0); the annual returns (and so Calmar and the cost drag) when a ``nav`` ends below 0; the
hit rate without a day that moved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.lakehouse.contracts import BOOKS, PERIODS_PER_YEAR, REGIMES, SHARPE_WINDOW


#: The statistics' columns, after ``book`` (and ``regime``).
STATISTICS_SCHEMA: dict[str, pl.DataType] = {
    "start": pl.Date(), "end": pl.Date(), "days": pl.Int64(), "cumulative_return": pl.Float64(),
    "annual_return": pl.Float64(), "annual_volatility": pl.Float64(), "sharpe": pl.Float64(),
    "sortino": pl.Float64(), "max_drawdown": pl.Float64(), "max_drawdown_peak": pl.Date(),
    "max_drawdown_trough": pl.Date(), "max_drawdown_recovery": pl.Date(), "calmar": pl.Float64(),
    "annual_turnover": pl.Float64(), "cost_drag": pl.Float64(), "hit_rate": pl.Float64(),
}
_STATISTICS_INPUT = ("date", "book", "net_return", "gross_return", "turnover")
_LABELS: dict[str, pl.DataType] = {"date": pl.Date(), "book": pl.String(), "regime": pl.String()}


def performance(daily: pl.DataFrame, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    """The performance statistics of each book over the days from ``start`` to ``end``.

    Parameters
    ----------
    daily : polars.DataFrame
        Rows of ``portfolio_returns``: at least ``date``, ``book``, ``net_return``,
        ``gross_return`` and ``turnover`` (fractions of the book, not percent), one row per book
        and day; days need not be sorted.
    start, end : datetime.date, optional
        The first and last day counted (inclusive); None leaves that side unbounded.

    Returns
    -------
    polars.DataFrame
        One row per book with rows in range (``barbell``, ``equal_weight``, ``core_only``,
        ``fixed_core_90``, then any other book alphabetically): ``book`` then the columns of
        :data:`STATISTICS_SCHEMA`, as the module's docstring defines them. Empty (with these
        columns) when no row is in range.

    Raises
    ------
    ValidationError
        A column is missing or of the wrong type, a book has two rows for one day, or a return
        or turnover is null or not finite (naming the book and day).
    """
    return _performance(_validated(daily, _STATISTICS_INPUT), start, end, ("book",))


def performance_by_regime(daily: pl.DataFrame, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    """The statistics of :func:`performance` per book and regime label, each over the days of that
    regime (the label of the day the book was decided), concatenated in date order.

    Parameters
    ----------
    daily : polars.DataFrame
        As for :func:`performance`, with a ``regime`` column as well; rows whose regime is null
        are left out.
    start, end : datetime.date, optional
        The first and last day counted (inclusive); None leaves that side unbounded.

    Returns
    -------
    polars.DataFrame
        One row per book and regime with rows in range: ``book``, ``regime`` (``QUIET``,
        ``NORMAL``, ``CRISIS``, then any other alphabetically, within each book) then the
        columns of :data:`STATISTICS_SCHEMA`.

    Raises
    ------
    ValidationError
        As for :func:`performance`.
    """
    frame = _validated(daily, (*_STATISTICS_INPUT, "regime")).filter(pl.col("regime").is_not_null())
    return _performance(frame, start, end, ("book", "regime"))


def equity_curves(daily: pl.DataFrame) -> pl.DataFrame:
    """Each book's ``nav``, ``drawdown`` and rolling Sharpe ratio day by day over its whole
    history (the SQL view ``portfolio_equity``, and the tearsheet's curves).

    Parameters
    ----------
    daily : polars.DataFrame
        Rows of ``portfolio_returns``: at least ``date``, ``book``, ``regime`` and
        ``net_return``, one row per book and day.

    Returns
    -------
    polars.DataFrame
        ``date``, ``book``, ``regime``, ``net_return``, ``nav`` (the product of ``1 + net_return``
        from the book's first day, starting capital 1) and ``drawdown`` (``nav`` over its running
        maximum, the starting capital included, minus 1: 0 or negative) and ``rolling_sharpe``
        (``mean / std(ddof=1) * sqrt(365)`` of the last ``SHARPE_WINDOW`` (63) days' returns; null
        before the book has that many days, or when they are all equal), sorted by book (in the
        order of :func:`performance`) and date.

    Raises
    ------
    ValidationError
        As for :func:`performance`.
    """
    frame = _validated(daily, ("date", "book", "regime", "net_return"))
    r = pl.col("net_return")
    nav = (1.0 + r).cum_prod().over("book")
    # All equal is "no volatility" exactly; a rolling std can come out at 1e-19 from rounding.
    flat = r.rolling_max(SHARPE_WINDOW).over("book") == r.rolling_min(SHARPE_WINDOW).over("book")
    sharpe = r.rolling_mean(SHARPE_WINDOW).over("book") / r.rolling_std(SHARPE_WINDOW).over("book")
    return (
        frame.sort(_rank("book", BOOKS), "book", "date")
        .select("date", "book", "regime", "net_return", nav.alias("nav"),
                pl.when(~flat).then(sharpe * math.sqrt(PERIODS_PER_YEAR)).alias("rolling_sharpe"))
        .with_columns(drawdown=pl.col("nav") / pl.max_horizontal(pl.lit(1.0), pl.col("nav").cum_max().over("book"))
                      - 1.0)
        .select("date", "book", "regime", "net_return", "nav", "drawdown", "rolling_sharpe")
    )


def _validated(daily: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """``daily``'s ``columns``, checked: present and typed, one row per book and day, numbers finite."""
    missing = [c for c in columns if c not in daily.columns]
    if missing:
        raise ValidationError(f"portfolio returns lack columns {missing}; expected at least {list(columns)}")
    frame = daily.select(columns)
    numbers = [c for c in columns if c not in _LABELS]
    wrong = {c: str(frame.schema[c]) for c in columns
             if (frame.schema[c] != _LABELS[c] if c in _LABELS else not frame.schema[c].is_numeric())}
    if wrong:
        raise ValidationError(f"portfolio returns have columns of the wrong type {wrong}; expected date Date, "
                              f"book and regime String, {numbers} numbers")
    if frame.select(pl.any_horizontal(pl.col("date", "book").is_null()).any()).item():
        raise ValidationError("portfolio returns have rows with a null date or book")
    repeated = frame.filter(pl.struct("book", "date").is_duplicated())
    if repeated.height:
        first = repeated.sort("book", "date").row(0, named=True)
        raise ValidationError(f"portfolio returns have several rows for book {first['book']!r} on {first['date']} "
                              f"({repeated.height} rows share a book and day); expected one row per book and day")
    bad = frame.filter(pl.any_horizontal(pl.col(c).is_null() | ~pl.col(c).is_finite() for c in numbers))
    if bad.height:
        first = bad.sort("book", "date").row(0, named=True)
        which = [c for c in numbers if first[c] is None or not math.isfinite(first[c])]
        raise ValidationError(f"portfolio returns of book {first['book']!r} on {first['date']}: {which} null or "
                              f"not finite ({bad.height} such rows)")
    return frame


def _rank(column: str, order: Sequence[str]) -> pl.Expr:
    """Sort key: the position of ``column``'s value in ``order``, after it for any other value."""
    return pl.col(column).replace_strict(list(order), list(range(len(order))), default=len(order),
                                         return_dtype=pl.Int64)


def _performance(frame: pl.DataFrame, start: date | None, end: date | None, by: tuple[str, ...]) -> pl.DataFrame:
    if start is not None:
        frame = frame.filter(pl.col("date") >= start)
    if end is not None:
        frame = frame.filter(pl.col("date") <= end)
    schema = {**dict.fromkeys(by, pl.String()), **STATISTICS_SCHEMA}
    rows = [
        {**dict(zip(by, key, strict=True)),
         **_statistics(group["date"], group["net_return"].to_numpy(), group["gross_return"].to_numpy(),
                       group["turnover"].to_numpy())}
        for key, group in frame.sort("date").partition_by(by, as_dict=True, maintain_order=True).items()
    ]
    # Books and regimes in their contract's order; any other value follows, alphabetically.
    orders = {"book": BOOKS, "regime": REGIMES}
    return pl.DataFrame(rows, schema=schema).sort(
        [key for column in by for key in (_rank(column, orders[column]), pl.col(column))])


def _annualised(growth: float, days: int) -> float | None:
    """The annual return of a growth factor over ``days`` days; None below 0 (no real root)."""
    return growth ** (PERIODS_PER_YEAR / days) - 1.0 if growth >= 0 else None


def _statistics(dates: pl.Series, net: np.ndarray, gross: np.ndarray, turnover: np.ndarray) -> dict[str, object]:
    """The statistics of one series of days (dates ascending; arrays of shape (n,), n >= 1)."""
    n = net.size
    root_year = math.sqrt(PERIODS_PER_YEAR)
    nav = np.cumprod(1.0 + net)
    high = np.maximum.accumulate(np.maximum(nav, 1.0))  # the high-water mark, starting capital included
    ratio = nav / high
    trough = int(np.argmin(ratio))  # the first day of the lowest ratio
    drawn = bool(ratio[trough] < 1.0)
    peak = recovery = None
    if drawn:
        highs = np.flatnonzero(nav[:trough] == high[:trough])
        peak = dates[int(highs[-1])] if highs.size else dates[0] - timedelta(days=1)
        back = np.flatnonzero(nav[trough + 1:] >= high[trough])
        recovery = dates[trough + 1 + int(back[0])] if back.size else None

    mean = float(np.mean(net))
    # Equal returns have std 0 exactly (a computed mean may miss them by a rounding).
    std = (0.0 if net.min() == net.max() else float(np.std(net, ddof=1))) if n >= 2 else None
    downside = math.sqrt(float(np.mean(np.minimum(net, 0.0) ** 2)))
    annual = _annualised(float(nav[-1]), n)
    annual_gross = _annualised(float(np.prod(1.0 + gross)), n)
    moved = int(np.count_nonzero(net))
    max_drawdown = float(ratio[trough]) - 1.0 if drawn else 0.0
    return {
        "start": dates[0], "end": dates[-1], "days": n,
        "cumulative_return": float(nav[-1]) - 1.0,
        "annual_return": annual,
        "annual_volatility": std * root_year if std is not None else None,
        "sharpe": mean / std * root_year if std else None,
        "sortino": mean / downside * root_year if n >= 2 and downside > 0 else None,
        "max_drawdown": max_drawdown,
        "max_drawdown_peak": peak, "max_drawdown_trough": dates[trough] if drawn else None,
        "max_drawdown_recovery": recovery,
        "calmar": annual / abs(max_drawdown) if drawn and annual is not None else None,
        "annual_turnover": float(np.mean(turnover)) * PERIODS_PER_YEAR,
        "cost_drag": annual_gross - annual if annual is not None and annual_gross is not None else None,
        "hit_rate": int(np.count_nonzero(net > 0)) / moved if moved else None,
    }
