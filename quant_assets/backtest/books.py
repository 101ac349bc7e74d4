"""The daily backtest: what each book earned on day D, point in time.

Timing
------
Partition D of ``barbell_weights`` is the book decided at the close of D. The book held over D
is therefore that of the **last ``barbell_weights`` partition before D** (``decided_on``; the
day before D when every day is materialised), never D's own. It is bought at the close of
``decided_on`` and earns the instruments' close-to-close returns of D. Nothing stamped after D
is read: bars up to D's close, partitions of the asset up to ``decided_on``.

Accounting (per book, all in fractions of the book's value)
-----------------------------------------------------------
* A leg's signed exposure is ``x = +weight`` for LONG, ``-weight`` for SHORT, so a SHORT leg
  earns minus its instrument's return; the book's gross return over D is ``Σ x·r``.
* Between rebalances the exposures drift with prices: after a day with returns ``r`` they are
  ``x·(1 + r) / (1 + Σ x·r)``. The book held over D is the one decided on ``decided_on``,
  drifted over the days after it and before D (none when it was decided the day before).
* A day an instrument's market is closed (a weekend for stocks and futures, a holiday, no bar)
  its return is 0: its legs earn nothing, and the next session's return spans the gap.
* The rebalance at the close of ``decided_on`` trades from the previous book, drifted up to that
  close, to the new targets: ``trade = x_target - x_drifted`` per instrument (an instrument that
  left the book is sold in full). It is charged on the first day the new book is held
  (``decided_on`` + 1 day, where ``rebalanced`` is true): ``turnover = Σ |trade|`` (two-sided)
  and ``cost = Σ |trade| · unit cost`` (:mod:`quant_assets.backtest.costs`, with the catalog's
  tick size and the close of the trade's day). The costs are paid out of the book before it
  earns: ``net_return = (1 - cost)·(1 + gross_return) - 1``.

Books
-----
``barbell``
    The product: ``barbell_weights`` as decided.
``equal_weight``
    Every selected signal leg of the decision day (one per symbol, as the risk stage takes
    them) at the same weight, with its direction: "does the barbell help?"
``core_only``
    The barbell's maximum-diversification core alone, scaled to the whole book (no aggressors).
``fixed_core_90``
    The same two sleeves with the aggressors' share set as if every day were a 90 % core day
    (the default core share in NORMAL, so it holds the barbell's targets when they were decided
    in NORMAL): the aggressors get ``10 % x`` the share of their full sleeve they hold in the
    barbell (slots left empty stay with the core), the core the rest: "does the regime shift
    help?"

``core_only`` and ``fixed_core_90`` scale the barbell's own sleeves rather than re-optimising
them, so each differs from the book in exactly one decision; scaled sleeves are not held to
``max_weight``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from quant_assets.backtest.costs import CostSettings
from quant_assets.errors import ValidationError
from quant_assets.lakehouse.contracts import BOOKS, CONTRACTS
from quant_assets.risk.returns import PriceMatrix, forward_fill

#: The core share of the ``fixed_core_90`` benchmark.
FIXED_CORE_SHARE = 0.9

#: The columns of a ``portfolio_returns`` partition.
RETURNS_SCHEMA: dict[str, pl.DataType] = dict(CONTRACTS["portfolio_returns"].columns)

#: A book as decided: each instrument's signed exposure (a fraction of the book, negative for a
#: SHORT leg), every one non-zero, their absolute values summing to 1; empty: the book is in cash.
Book = dict[str, float]

def _scaled(book: Book, total: float) -> Book:
    """``book`` rescaled so that its absolute exposures sum to ``total`` (cash stays cash)."""
    held = sum(abs(x) for x in book.values())
    return {s: x * total / held for s, x in book.items()} if held > 0.0 else {}


def target_books(weights: pl.DataFrame, legs: pl.DataFrame, full_sleeve: float) -> dict[str, Book]:
    """The four books decided on one day (see the module docstring), from its
    ``barbell_weights`` partition (``symbol``, ``direction``, ``sleeve``, ``weight``), its
    selected signal legs (``symbol``, ``direction``: :func:`~quant_assets.screening.gates.
    selected_signals`) and the aggressor sleeve's full share in the day's regime
    (``1 - core_share[regime]``); a name at weight 0 is not held."""
    sleeves: dict[str, Book] = {"core": {}, "aggressor": {}}
    for symbol, direction, sleeve, weight in weights.select("symbol", "direction", "sleeve", "weight").iter_rows():
        if weight > 0.0:
            sleeves[sleeve][symbol] = -weight if direction == "SHORT" else weight
    core, aggressors = _scaled(sleeves["core"], 1.0), _scaled(sleeves["aggressor"], 1.0)
    barbell = _scaled(sleeves["core"] | sleeves["aggressor"], 1.0)
    fixed = barbell  # one sleeve alone, or a regime without a sleeve
    if core and aggressors and full_sleeve > 0.0:
        filled = sum(abs(x) for x in sleeves["aggressor"].values()) / full_sleeve
        share = (1.0 - FIXED_CORE_SHARE) * min(filled, 1.0)
        fixed = _scaled(core, 1.0 - share) | _scaled(aggressors, share)
    equal = {s: -1.0 if d == "SHORT" else 1.0 for s, d in legs.select("symbol", "direction").iter_rows()}
    return {"barbell": barbell, "equal_weight": _scaled(equal, 1.0),
            "core_only": core, "fixed_core_90": fixed}


@dataclass(frozen=True)
class Decision:
    """The books decided at the close of one day.

    Attributes
    ----------
    day : datetime.date
        The ``barbell_weights`` partition they come from.
    regime : str or None
        The regime that day (None: it had no regime).
    books : mapping of book to Book
        :func:`target_books`.
    instruments : mapping of symbol to (asset class, tick size)
        The day's catalog of the books' symbols (for the costs; either may be None).
    """

    day: date
    regime: str | None
    books: Mapping[str, Book]
    instruments: Mapping[str, tuple[str | None, float | None]]


class DailyReturns:
    """Close-to-close returns of every symbol of a :class:`PriceMatrix`, 0 on a day it did not
    trade; the calendar days between two bars carry no return. Built once for a run, cut per day:
    the returns of a day read no bar after it."""

    def __init__(self, prices: PriceMatrix) -> None:
        self.dates = prices.dates
        self._column = {symbol: j for j, symbol in enumerate(prices.symbols)}
        self._filled = forward_fill(prices.closes)
        self._returns = np.zeros_like(prices.closes)
        if len(self.dates) > 1:
            traded = np.isfinite(prices.closes[1:]) & np.isfinite(self._filled[:-1])
            with np.errstate(invalid="ignore", divide="ignore"):
                self._returns[1:] = np.where(traded, prices.closes[1:] / self._filled[:-1] - 1.0, 0.0)

    def _columns(self, symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        cols = np.array([self._column.get(s, -1) for s in symbols], dtype=np.int64)
        return cols >= 0, np.maximum(cols, 0)

    def _row(self, day: date) -> int:
        """The number of dates on or before ``day``."""
        return int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="right"))

    def between(self, after: date, through: date, symbols: Sequence[str]) -> np.ndarray:
        """Returns of ``symbols`` on each day with a bar in ``(after, through]``: (days, N)."""
        known, cols = self._columns(symbols)
        return np.where(known, self._returns[self._row(after):self._row(through)][:, cols], 0.0)

    def on(self, day: date, symbols: Sequence[str]) -> np.ndarray:
        """Returns of ``symbols`` over ``day`` (0 where it did not trade): (N,)."""
        returns = self.between(day - timedelta(days=1), day, symbols)
        return returns[0] if returns.shape[0] else np.zeros(len(symbols))

    def close(self, day: date, symbols: Sequence[str]) -> np.ndarray:
        """Last close of ``symbols`` on or before ``day`` (NaN where there is none): (N,)."""
        known, cols = self._columns(symbols)
        row = self._row(day) - 1
        if row < 0:
            return np.full(len(symbols), np.nan)
        return np.where(known, self._filled[row, cols], np.nan)


def drift(exposures: np.ndarray, returns: np.ndarray, book: str = "book") -> np.ndarray:
    """Exposures after the rows of ``returns`` (days, N), each day ``x·(1 + r) / (1 + Σ x·r)``.

    Raises
    ------
    ValidationError
        If the book loses everything on a day (its value would be zero or negative).
    """
    x = exposures
    for r in returns:
        growth = 1.0 + float(x @ r)
        if growth <= 0.0:
            raise ValidationError(f"{book}: the book lost all its value in one day (return {growth - 1.0:.4f})")
        x = x * (1.0 + r) / growth
    return x


def book_day(day: date, held: Decision, before: Decision | None, market: DailyReturns,
             costs: CostSettings) -> pl.DataFrame:
    """What each book earned over ``day``: its ``portfolio_returns`` rows, one per book in
    :data:`BOOKS` order, each with its ``legs`` (every instrument held or traded).

    ``held`` is the last decision before ``day``, ``before`` the one before it (None: the books
    start from cash). ``market`` must hold the bars up to ``day`` at least.

    Raises
    ------
    ValidationError
        ``held`` is not before ``day``, or ``before`` not before ``held``.
    """
    if held.day >= day or (before is not None and before.day >= held.day):
        raise ValidationError(f"portfolio_returns {day}: decisions must precede it, got {held.day} after "
                              f"{before.day if before else 'none'}")
    rebalanced = held.day == day - timedelta(days=1)
    # Every instrument any book holds or trades today, and the market's figures for them once.
    symbols = sorted(set().union(*held.books.values(), *(before.books.values() if before is not None else ())))
    since_decision = market.between(held.day, day - timedelta(days=1), symbols)
    held_over = market.between(before.day, held.day, symbols) if rebalanced and before is not None else None
    returns = market.on(day, symbols)
    # The catalog as of the trade: the held decision's day, else (a name sold) the one before.
    instruments = {**(before.instruments if before is not None else {}), **held.instruments}
    unit = _unit_costs(symbols, instruments, market.close(held.day, symbols), costs)
    rows = []
    for book in BOOKS:
        target = np.array([held.books[book].get(s, 0.0) for s in symbols])
        trade = np.zeros(len(symbols))
        if rebalanced:
            previous = np.array([before.books[book].get(s, 0.0) for s in symbols]) if before is not None else trade
            trade = target - (drift(previous, held_over, book) if held_over is not None else previous)
        start = drift(target, since_decision, book)
        leg_costs = np.abs(trade) * unit
        gross, cost = float(start @ returns), float(leg_costs.sum())
        legs = [
            {"symbol": s, "direction": "SHORT" if start[k] < 0.0 or (start[k] == 0.0 and trade[k] > 0.0) else "LONG",
             "weight": abs(float(start[k])), "asset_return": float(returns[k]),
             "contribution": float(start[k] * returns[k]), "trade": float(trade[k]), "cost": float(leg_costs[k])}
            for k, s in enumerate(symbols) if start[k] != 0.0 or trade[k] != 0.0
        ]
        rows.append({
            "date": day, "book": book, "decided_on": held.day, "regime": held.regime,
            "n_legs": int(np.count_nonzero(start)), "gross_exposure": float(np.abs(start).sum()),
            "gross_return": gross, "turnover": float(np.abs(trade).sum()), "cost": cost,
            "net_return": gross - cost * (1.0 + gross), "rebalanced": rebalanced, "legs": legs,
        })
    return pl.DataFrame(rows, schema=RETURNS_SCHEMA)


def _unit_costs(symbols: Sequence[str], instruments: Mapping[str, tuple[str | None, float | None]],
                prices: np.ndarray, costs: CostSettings) -> np.ndarray:
    """Each symbol's cost of trading a unit of the book (its catalog entry, its price)."""
    return np.array([costs.unit_cost(*instruments.get(s, (None, None)), float(p) if np.isfinite(p) else None)
                     for s, p in zip(symbols, prices)])


def empty_day() -> pl.DataFrame:
    """The partition of a day with no decision before it: nothing held yet."""
    return pl.DataFrame(schema=RETURNS_SCHEMA)


def decision_days(barbell_days: Iterable[date], days: Iterable[date]) -> dict[date, tuple[date | None, date | None]]:
    """For each of ``days``: the last ``barbell_weights`` partition before it and the one before
    that (None where there is none)."""
    known = np.array(sorted(barbell_days), dtype="datetime64[D]")
    out = {}
    for day in days:
        k = int(np.searchsorted(known, np.datetime64(day, "D"), side="left"))
        out[day] = (known[k - 1].item() if k >= 1 else None, known[k - 2].item() if k >= 2 else None)
    return out


def ledger_problems(returns: pl.DataFrame, tol: float = 1e-12) -> dict[date, list[str]]:
    """Ways each day's books do not add up: the legs' contributions to ``gross_return``, their
    costs to ``cost``, their absolute trades to ``turnover``; a book missing. By day (one
    vectorised pass over any number of ``portfolio_returns`` partitions); a day that adds up
    has an empty list."""
    def total(field: str, absolute: bool = False) -> pl.Expr:
        element = pl.element().struct.field(field)
        return pl.col("legs").list.eval(element.abs() if absolute else element).list.sum()

    sums = returns.select("date", "book", "gross_return", "cost", "turnover", legs_gross_return=total("contribution"),
                          legs_cost=total("cost"), legs_turnover=total("trade", absolute=True))
    problems: dict[date, list[str]] = {day: [] for day in returns["date"].unique().to_list()}
    for column in ("gross_return", "cost", "turnover"):
        off = sums.filter((pl.col(column) - pl.col(f"legs_{column}")).abs() > tol * (1.0 + pl.col(column).abs()))
        for row in off.iter_rows(named=True):
            problems[row["date"]].append(
                f"{row['book']}: {column} {row[column]:.12g} but its legs sum to {row[f'legs_{column}']:.12g}")
    for day, books in returns.group_by("date", maintain_order=True).agg("book").iter_rows():
        if books != list(BOOKS):
            problems[day].append(f"books {books}, expected {list(BOOKS)}")
    return problems
