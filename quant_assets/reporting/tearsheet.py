"""The book's tearsheet: what the barbell earned against its benchmarks, in one picture.

:func:`draw_tearsheet` draws each book's curves (value, drawdown, rolling Sharpe ratio: those
of :func:`quant_assets.backtest.performance.equity_curves`) in three panels over a shared time
axis, on a background shaded by regime, and :func:`~quant_assets.reporting.charts.render_png`
turns the figure into PNG bytes. Conventions (fixed layout in inches, plain-text labels, legends
outside the axes, regime colours) are those of :mod:`quant_assets.reporting.charts`.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, MaxNLocator, NullLocator

from quant_assets.errors import ValidationError
from quant_assets.reporting.charts import (
    _PAD,
    REGIME_COLOURS,
    _figure,
    _legend,
    _percent,
    _require_date,
    _require_dates,
    _require_frame,
    _require_labels,
    _require_numeric,
    _title,
    regime_spans,
    shade_regimes,
)

#: The portfolio first, then its benchmarks: the legend's order.
BOOK_LABELS = {
    "barbell": "Barbell (the book)",
    "equal_weight": "Equal weight of the signals",
    "core_only": "Max-diversification core alone",
    "fixed_core_90": "Barbell, fixed 90 % core",
}
BOOK_COLOURS = {"barbell": "#202020", "equal_weight": "#e08a2c", "core_only": "#3b6ea8", "fixed_core_90": "#8e5bb5"}
#: The book is drawn prominent, the benchmarks thin.
BOOK_LINEWIDTHS = {"barbell": 1.8, "equal_weight": 0.9, "core_only": 0.9, "fixed_core_90": 0.9}
TEARSHEET_SIZE = (10.0, 7.0)

_SERIES_COLUMNS = ("date", "book", "nav", "drawdown", "rolling_sharpe")
_REGIME_COLUMNS = ("date", "regime")
#: Log-axis tick mantissas, coarse to fine: the coarsest giving :data:`_MIN_TICKS` ticks is used.
_MANTISSAS = (
    (1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
)
_MIN_TICKS, _MAX_TICKS = 4, 8


def draw_tearsheet(series: pl.DataFrame, regimes: pl.DataFrame, sharpe_window: int) -> Figure:
    """Value (log scale), drawdown and rolling Sharpe ratio of the book and its benchmarks.

    Parameters
    ----------
    series : polars.DataFrame
        One row per book and day: ``date`` (Date),
        ``book`` (a key of :data:`BOOK_LABELS`; any subset), ``nav`` (positive, finite),
        ``drawdown`` (finite fraction), ``rolling_sharpe`` (nullable; null or NaN leaves a gap).
    regimes : polars.DataFrame
        ``date`` (Date, no duplicates) and ``regime`` (QUIET | NORMAL | CRISIS, nullable). A day
        is shaded from its date to the next one (the last day one typical step); unlabelled days
        and a frame without rows leave the background white.
    sharpe_window : int
        The days in ``rolling_sharpe``, for the panel's label.

    Returns
    -------
    matplotlib.figure.Figure
        :data:`TEARSHEET_SIZE`; three panels sharing the date axis, the barbell thick and first
        in the legend, its drawdown filled.

    Raises
    ------
    ValidationError
        On missing columns, an empty ``series``, a ``date`` that is not a Date, a (book, date) or
        regime date twice, an unknown book or regime label, a non-numeric column, or a ``nav``
        that is not positive and finite or a ``drawdown`` that is not finite.
    """
    chart = "tearsheet"
    _require_frame(series, chart, _SERIES_COLUMNS)
    _require_date(series, chart)
    _require_labels(series, chart, "book", tuple(BOOK_LABELS))
    _require_unique_days(series, chart)
    # A Sharpe column of nulls only (every book shorter than the window) may arrive untyped.
    untyped = series.schema["rolling_sharpe"] == pl.Null
    _require_numeric(series, chart, ("nav", "drawdown") if untyped else ("nav", "drawdown", "rolling_sharpe"))
    nav = pl.col("nav").cast(pl.Float64)
    _require_rows(series, chart, nav.is_null() | ~nav.is_finite() | (nav <= 0.0),
                  "nav values not positive and finite")
    drawdown = pl.col("drawdown").cast(pl.Float64)
    _require_rows(series, chart, drawdown.is_null() | ~drawdown.is_finite(), "null or non-finite drawdown values")
    _require_regimes(regimes, f"{chart} regimes")

    frame = series.select(
        "date", "book", pl.col("nav", "drawdown", "rolling_sharpe").cast(pl.Float64).fill_nan(None)
    ).sort("date")
    by_book = frame.partition_by("book", as_dict=True, maintain_order=True)
    books = [b for b in BOOK_LABELS if (b,) in by_book]
    first, last = frame["date"].min(), frame["date"].max()
    x_first, x_last = mdates.date2num(first), mdates.date2num(last)
    if x_first == x_last:  # one day: a window around it instead of an empty axis
        x_first, x_last = x_first - 1.0, x_last + 1.0

    width, height = TEARSHEET_SIZE
    figure = _figure(width, height)
    left, right, top, bottom = 0.72, 0.2, 0.62, 0.36
    value_ax, drawdown_ax, sharpe_ax = figure.subplots(3, 1, sharex=True, gridspec_kw={
        "height_ratios": [5, 3, 3], "hspace": 0.1,
        "left": left / width, "right": 1 - right / width, "top": 1 - top / height, "bottom": bottom / height,
    })
    handles: list[Patch | Line2D] = []
    for book in books:
        rows = by_book[(book,)]
        x = np.asarray(mdates.date2num(rows["date"].to_numpy()), dtype=float)
        style = {
            "color": BOOK_COLOURS[book], "linewidth": BOOK_LINEWIDTHS[book],
            "zorder": 3 if book == "barbell" else 2, "marker": "o" if rows.height == 1 else None, "markersize": 3,
        }
        line, = value_ax.plot(x, rows["nav"].to_numpy(), label=BOOK_LABELS[book], **style)
        handles.append(line)
        drawdowns = rows["drawdown"].to_numpy()
        if book == "barbell":
            drawdown_ax.fill_between(x, drawdowns, 0.0, color=BOOK_COLOURS[book], alpha=0.2, linewidth=0,
                                     zorder=1)
        drawdown_ax.plot(x, drawdowns, **style)
        sharpe_ax.plot(x, rows["rolling_sharpe"].fill_null(np.nan).to_numpy(), **style)

    _, spans = regime_spans(regimes.sort("date"))
    for ax in (value_ax, drawdown_ax, sharpe_ax):
        shade_regimes(ax, spans)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", color="white", linewidth=0.6, alpha=0.8)
        ax.set_axisbelow(True)
        ax.set_xlim(x_first, x_last)

    value_ax.set_yscale("log")
    value_ax.yaxis.set_major_locator(_MultipleTicks())
    value_ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks would bring "2x10^0" labels
    value_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.4g}×"))
    value_ax.axhline(1.0, color="#707070", linewidth=0.6, linestyle="--", zorder=1)
    value_ax.set_ylabel("value of 1 invested (log)", fontsize=8)
    drawdown_ax.yaxis.set_major_formatter(_percent())
    drawdown_ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    drawdown_ax.set_ylim(top=0.0)
    drawdown_ax.set_ylabel("drawdown", fontsize=8)
    sharpe_ax.axhline(0.0, color="#707070", linewidth=0.6, zorder=1)
    sharpe_ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    sharpe_ax.set_ylabel(f"Sharpe, {sharpe_window}-day\nrolling, annualised", fontsize=8)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    sharpe_ax.xaxis.set_major_locator(locator)
    sharpe_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))

    _title(figure, f"What the book earned, {first} to {last}")
    _legend(figure, handles)
    # Four long book labels fill the legend's row; the regime key goes right of the title.
    figure.legend(
        handles=[Patch(facecolor=c, edgecolor="#a0a0a0", linewidth=0.5, label=r) for r, c in REGIME_COLOURS.items()],
        loc="upper right", bbox_to_anchor=(1 - _PAD / width, 1 - _PAD / height), ncol=len(REGIME_COLOURS),
        frameon=False, fontsize=8, borderaxespad=0, borderpad=0, handlelength=1.6, columnspacing=1.4,
    )
    return figure


class _MultipleTicks(Locator):
    """Round multiples on a log axis (0.5×, 1×, 2×) whether it spans a tenth of a decade or many.

    Matplotlib's log locator ticks only powers of ten by default, so a curve between 0.8 and 3
    would get a single label; narrow ranges fall back to evenly spaced ticks.
    """

    def __call__(self) -> list[float]:
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        low, high = sorted((vmin, vmax))
        if not (low > 0.0 and math.isfinite(high)):
            return []
        decades = range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1)
        coarser: list[float] = []
        for mantissas in _MANTISSAS:
            ticks = [t for t in (m * 10.0**d for d in decades for m in mantissas) if low <= t <= high]
            if len(ticks) > _MAX_TICKS:  # too many decades for even the coarsest: every few powers of ten
                return coarser or [float(t) for t in LogLocator(numticks=_MAX_TICKS).tick_values(low, high)]
            if len(ticks) >= _MIN_TICKS:
                return ticks
            coarser = ticks
        return [float(t) for t in MaxNLocator(nbins=4).tick_values(low, high) if low <= t <= high]


def _require_regimes(regimes: pl.DataFrame, chart: str) -> None:
    """As any chart's frame, except that no rows is allowed: no regime history, no shading."""
    empty = isinstance(regimes, pl.DataFrame) and regimes.height == 0
    if not empty or not set(_REGIME_COLUMNS) <= set(regimes.columns):
        _require_frame(regimes, chart, _REGIME_COLUMNS)
    _require_dates(regimes, chart)
    _require_labels(regimes.drop_nulls("regime"), chart, "regime", tuple(REGIME_COLOURS))


def _require_unique_days(frame: pl.DataFrame, chart: str) -> None:
    keys = frame.select("book", "date")
    repeated = keys.filter(keys.is_duplicated()).unique().sort("book", "date")
    if repeated.height:
        book, day = repeated.row(0)
        raise ValidationError(
            f"{chart}: {repeated.height} (book, date) pairs appear more than once, e.g. {book} on {day}"
        )


def _require_rows(frame: pl.DataFrame, chart: str, bad: pl.Expr, what: str) -> None:
    rows = frame.filter(bad).sort("book", "date")
    if rows.height:
        first = rows.row(0, named=True)
        raise ValidationError(f"{chart}: {rows.height} {what}, e.g. {first['book']} on {first['date']}")
