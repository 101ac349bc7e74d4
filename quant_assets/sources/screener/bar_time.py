"""Bar time: recursions that run over each instrument's own bars, across calendar gaps.

A calendar panel (T days by N instruments, NaN where an instrument has no bar) is walked in
*bar time*: row ``k`` of an instrument is its ``k``-th bar, so a recursion (Wilder's RMA, an
EMA, a running sum) is a loop over rows with no gaps that starts at every instrument's own first
bar and carries its state across weekends and other gaps. :class:`BarTime` moves rows between
the two clocks; :class:`Smoother` and :class:`SmootherStack` are the exponential smoothers the
indicators run in it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np


class BarTime:
    """Row-by-row moves between calendar rows and bar time.

    In bar time, row ``k`` of column ``n`` is the instrument's ``k``-th bar (0-based). A kernel
    walks the bar rows in order, reading row ``k`` of its inputs with :meth:`gather` and
    writing its outputs back to their calendar rows with :meth:`scatter`. Past a column's last
    bar, :meth:`gather` returns leftovers and :meth:`scatter` writes to a spare row: the kernels
    are causal, so leftovers never reach a real bar. Working a row at a time keeps memory
    traffic small; whole-panel copies (allocating and paging in ~90 MB each at N = 10,000)
    would cost more than the arithmetic.

    Parameters
    ----------
    has_bar : numpy.ndarray of bool, shape (T, N)
        True where the instrument has a bar on that calendar row.
    """

    def __init__(self, has_bar: np.ndarray) -> None:
        n_rows, n_cols = has_bar.shape
        cols = np.arange(n_cols)
        bar_count = has_bar.sum(axis=0)
        # A stable sort of the "no bar" flags lists each column's bar rows first, in order.
        index = np.argsort(~has_bar, axis=0, kind="stable")
        index *= n_cols
        index += cols
        # Rows past a column's bar count point at the spare row T of an output.
        np.copyto(index, n_rows * n_cols + cols, where=np.arange(n_rows)[:, None] >= bar_count)
        self._index = index
        self.shape = (n_rows, n_cols)
        #: Bar rows worth walking: the largest bar count.
        self.n_rows = int(bar_count.max(initial=0))

    def gather(self, x: np.ndarray, k: int) -> np.ndarray:
        """Bar row ``k`` of a calendar panel ``x`` (T, N)."""
        return np.take(x.ravel(), self._index[k], mode="clip")

    def new_output(self) -> np.ndarray:
        """A NaN calendar panel with the spare row: (T + 1, N); callers keep ``[:T]``."""
        return np.full((self.shape[0] + 1, self.shape[1]), np.nan)

    def scatter(self, out: np.ndarray, k: int, row: np.ndarray) -> None:
        """Write bar row ``k`` to its calendar rows of ``out`` (from :meth:`new_output`)."""
        out.ravel()[self._index[k]] = row


class Smoother:
    """Exponential smoothing down bar rows, seeded with an SMA.

    Rows before ``lead`` are skipped; the seed, the first output (row ``lead + period - 1``),
    is the mean of the ``period`` rows from ``lead``; afterwards
    ``y = alpha * x + (1 - alpha) * y``: Wilder's RMA is ``alpha = 1/period`` (TradingView
    ``ta.rma``), an EMA ``alpha = 2/(period + 1)``.
    """

    def __init__(self, n_cols: int, period: int, alpha: float, lead: int = 0) -> None:
        self.lead = lead
        self.first = lead + period - 1
        self._period = period
        self._alpha = alpha
        self._keep = 1.0 - alpha
        self._value = np.zeros(n_cols)

    def step(self, k: int, x: np.ndarray) -> np.ndarray | None:
        """Feed bar row ``k`` (rows in order); the smoothed row, or None before the seed.

        The returned array is the smoother's state: read it, do not modify it.
        """
        if k < self.lead:
            return None
        if k < self.first:
            self._value += x
            return None
        if k == self.first:
            self._value += x
            self._value /= self._period
        else:
            self._value *= self._keep
            self._value += self._alpha * x
        return self._value


class SmootherStack:
    """:class:`Smoother` for several periods (ascending, no lead) of one input, as (m, N) rows.

    With ascending periods the seeded smoothers are always the first rows, so a row of votes
    against them is one operation on a prefix of the stack.
    """

    def __init__(self, n_cols: int, periods: Sequence[int], alphas: Sequence[float]) -> None:
        self._firsts = [p - 1 for p in periods]
        self._periods = np.array(periods, dtype=np.float64)[:, None]
        self._alphas = np.array(alphas)[:, None]
        self._keeps = 1.0 - self._alphas
        self._values = np.zeros((len(periods), n_cols))

    def step(self, k: int, x: np.ndarray) -> np.ndarray:
        """Feed bar row ``k``; the rows of the smoothers seeded by now (read only)."""
        running = bisect.bisect_left(self._firsts, k)  # seeded before row k
        seeded = bisect.bisect_right(self._firsts, k)
        values = self._values
        if running:
            values[:running] *= self._keeps[:running]
            values[:running] += self._alphas[:running] * x
        values[running:] += x
        if seeded > running:
            values[running:seeded] /= self._periods[running:seeded]
        return values[:seeded]
