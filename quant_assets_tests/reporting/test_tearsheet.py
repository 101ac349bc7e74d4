from __future__ import annotations

import io
import warnings
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib import dates as mdates
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from PIL import Image

from quant_assets.errors import ValidationError
from quant_assets.reporting.charts import DPI, REGIME_COLOURS, render_png
from quant_assets.backtest.performance import equity_curves
from quant_assets.reporting.tearsheet import BOOK_LABELS, TEARSHEET_SIZE
from quant_assets.reporting.tearsheet import draw_tearsheet as draw


def draw_tearsheet(series: pl.DataFrame, regimes: pl.DataFrame):
    return draw(series, regimes, sharpe_window=63)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = date(2021, 1, 1)


def _days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def _daily(returns: dict[str, list[float] | np.ndarray]) -> pl.DataFrame:
    return pl.concat([
        pl.DataFrame({"date": _days(len(r)), "book": book, "net_return": np.asarray(r, dtype=float)})
        .with_columns(regime=pl.lit(None, pl.String))
        for book, r in returns.items()
    ])


def _random_daily(days: int, books=tuple(BOOK_LABELS), seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return _daily({b: rng.normal(0.0005, 0.01 * (i + 1), days) for i, b in enumerate(books)})


def _regimes(labels: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"date": _days(len(labels)), "regime": labels}, schema={"date": pl.Date, "regime": pl.String})


def _runs() -> pl.DataFrame:
    return _regimes(["NORMAL"] * 40 + ["CRISIS"] * 20 + ["QUIET"] * 60)


def _series(days: int = 120, books=tuple(BOOK_LABELS)) -> pl.DataFrame:
    return equity_curves(_random_daily(days, books))


def _spans(ax) -> dict[str, list[tuple[float, float]]]:
    spans = {}
    for collection in ax.collections:
        if not isinstance(collection, PolyCollection) or not len(collection.get_facecolor()):
            continue
        colour = tuple(collection.get_facecolor()[0])
        regime = next((r for r, c in REGIME_COLOURS.items() if to_rgba(c) == colour), None)
        if regime is not None:
            spans[regime] = [(p.vertices[:, 0].min(), p.vertices[:, 0].max()) for p in collection.get_paths()]
    return spans


def _book_lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


# drawing -------------------------------------------------------------------------------------


def test_draw_tearsheet_has_three_panels_sharing_dates_value_on_a_log_scale():
    figure = draw_tearsheet(_series(), _runs())
    value_ax, drawdown_ax, sharpe_ax = figure.axes
    assert value_ax.get_yscale() == "log" and drawdown_ax.get_yscale() == "linear"
    x = mdates.date2num(_days(120))
    for ax in figure.axes:
        assert ax.get_xlim() == pytest.approx((x[0], x[-1]))
    assert figure.texts[0].get_text() == "What the book earned, 2021-01-01 to 2021-04-30"
    assert tuple(figure.get_size_inches() * DPI) == pytest.approx(tuple(round(s * DPI) for s in TEARSHEET_SIZE))


def test_draw_tearsheet_draws_one_line_per_book_with_the_barbell_first_and_thickest():
    series = _series()
    figure = draw_tearsheet(series.sample(fraction=1.0, shuffle=True, seed=2), _runs())
    lines = _book_lines(figure.axes[0])
    assert [line.get_label() for line in lines] == list(BOOK_LABELS.values())
    assert lines[0].get_linewidth() > max(line.get_linewidth() for line in lines[1:])
    barbell = series.filter(pl.col("book") == "barbell")
    assert lines[0].get_ydata() == pytest.approx(barbell["nav"].to_numpy())
    assert lines[0].get_xdata() == pytest.approx(mdates.date2num(barbell["date"].to_numpy()))
    sharpe = figure.axes[2].get_lines()[0].get_ydata()
    assert np.isnan(sharpe[:62]).all() and sharpe[62:] == pytest.approx(barbell["rolling_sharpe"].to_numpy()[62:])


def test_draw_tearsheet_draws_only_the_books_present():
    figure = draw_tearsheet(_series(books=("core_only", "barbell")), _runs())
    books = [BOOK_LABELS["barbell"], BOOK_LABELS["core_only"]]
    assert [line.get_label() for line in _book_lines(figure.axes[0])] == books
    texts = [t.get_text() for legend in figure.legends for t in legend.get_texts()]
    assert texts == [*books, "QUIET", "NORMAL", "CRISIS"]


def test_draw_tearsheet_fills_the_barbell_drawdown_and_draws_a_zero_sharpe_line():
    figure = draw_tearsheet(_series(), _runs())
    drawdown_ax, sharpe_ax = figure.axes[1:]
    fills = [c for c in drawdown_ax.collections if not _spans_of(c)]
    assert len(fills) == 1  # the barbell's area; benchmarks are lines
    deepest = _series().filter(pl.col("book") == "barbell")["drawdown"].min()
    assert fills[0].get_paths()[0].vertices[:, 1].min() == pytest.approx(deepest)
    assert len(_book_lines(drawdown_ax)) == 0 and len(drawdown_ax.get_lines()) == 4
    assert any(list(line.get_ydata()) == [0, 0] for line in sharpe_ax.get_lines())
    assert drawdown_ax.get_ylim()[1] == 0.0


def _spans_of(collection) -> bool:
    colours = {to_rgba(c) for c in REGIME_COLOURS.values()}
    return len(collection.get_facecolor()) > 0 and tuple(collection.get_facecolor()[0]) in colours


def test_draw_tearsheet_shades_each_regime_run_as_one_span_in_every_panel():
    figure = draw_tearsheet(_series(), _runs())
    x = mdates.date2num(_days(120))
    expected = {"NORMAL": [(x[0], x[40])], "CRISIS": [(x[40], x[60])], "QUIET": [(x[60], x[119] + 1.0)]}
    for ax in figure.axes:
        assert _spans(ax) == expected


def test_draw_tearsheet_leaves_unlabelled_days_and_missing_regimes_white():
    figure = draw_tearsheet(_series(), _regimes(["CRISIS"] * 10 + [None] * 100 + ["CRISIS"] * 10))
    x = mdates.date2num(_days(120))
    assert _spans(figure.axes[0]) == {"CRISIS": [(x[0], x[10]), (x[110], x[119] + 1.0)]}
    empty = draw_tearsheet(_series(), _runs().clear())
    assert all(_spans(ax) == {} for ax in empty.axes)


def test_draw_tearsheet_labels_the_axes_in_multiples_and_percent():
    figure = draw_tearsheet(_series(), _runs())
    value_ax, drawdown_ax, _ = figure.axes
    value_format, drawdown_format = value_ax.yaxis.get_major_formatter(), drawdown_ax.yaxis.get_major_formatter()
    assert [value_format(v, 0) for v in (0.5, 1.0, 1.25, 2.0)] == ["0.5×", "1×", "1.25×", "2×"]
    assert [drawdown_format(v, 0) for v in (0.0, -0.25)] == ["0%", "-25%"]
    assert value_ax.yaxis.get_minor_locator()() == []  # no "2x10^0" minor labels on the log axis


@pytest.mark.parametrize("low, high, expected", [
    (0.5, 5.0, [0.5, 1.0, 2.0, 5.0]),
    (0.05, 2.5, [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]),
    (0.3, 3.3, [0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0]),
    (0.8, 1.6, [0.8, 1.0, 1.25, 1.5]),
    (0.9, 1.3, [0.9, 1.0, 1.1, 1.2, 1.3]),  # a narrow range: evenly spaced
])
def test_draw_tearsheet_value_axis_ticks_round_multiples_for_any_range(low, high, expected):
    locator = draw_tearsheet(_series(), _runs()).axes[0].yaxis.get_major_locator()
    assert locator.tick_values(low, high) == pytest.approx(expected)


def test_draw_tearsheet_draws_a_single_day_without_warnings():
    one = _series().filter(pl.col("date") == START)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = draw_tearsheet(one.with_columns(rolling_sharpe=pl.lit(None)), _runs().head(1))
        assert render_png(figure).startswith(PNG_SIGNATURE)
    assert figure.axes[0].get_xlim()[0] < mdates.date2num(START) < figure.axes[0].get_xlim()[1]


def test_draw_tearsheet_keeps_the_title_and_legends_off_the_data():
    figure = draw_tearsheet(_series(), _runs())
    figure.canvas.draw()
    title = figure.texts[0].get_window_extent()
    legends = [legend.get_window_extent() for legend in figure.legends]
    boxes = [title, *legends]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    for ax in figure.axes:
        assert not any(box.overlaps(ax.get_tightbbox()) for box in boxes)
    assert all(0 <= box.x0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1 for box in boxes)


# rendering -----------------------------------------------------------------------------------


def test_rendered_tearsheet_of_five_years_of_four_books_stays_small():
    days = 5 * 365
    series = equity_curves(_random_daily(days, seed=1))
    labels = (["NORMAL"] * 250 + ["CRISIS"] * 30 + ["QUIET"] * 85) * 5
    png = render_png(draw_tearsheet(series, _regimes(labels)))
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == tuple(round(s * DPI) for s in TEARSHEET_SIZE)
    assert len(png) < 150_000, len(png)


def test_rendered_tearsheet_gives_identical_bytes_for_shuffled_input():
    series = _series()
    shuffled = series.sample(fraction=1.0, shuffle=True, seed=5)
    regimes = _runs().sample(fraction=1.0, shuffle=True, seed=6)
    assert render_png(draw_tearsheet(shuffled, regimes)) == render_png(draw_tearsheet(series, _runs()))


# validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: draw_tearsheet(_series().drop("drawdown"), _runs()), r"tearsheet: missing columns \['drawdown'\]"),
    (lambda: draw_tearsheet(_series().clear(), _runs()), "tearsheet: the frame is empty"),
    (lambda: draw_tearsheet(_series().to_dicts(), _runs()), "tearsheet: expected a polars DataFrame"),
    (lambda: draw_tearsheet(_series().with_columns(pl.col("book").replace({"core_only": "leveraged"})), _runs()),
     r"tearsheet: unknown book labels \['leveraged'\]"),
    (lambda: draw_tearsheet(_series().with_columns(pl.col("date").cast(pl.Datetime)), _runs()),
     "tearsheet: column 'date' must be a Date"),
    (lambda: draw_tearsheet(pl.concat([_series(), _series().head(2)]), _runs()),
     r"tearsheet: 2 \(book, date\) pairs appear more than once, e.g. barbell on 2021-01-01"),
    (lambda: draw_tearsheet(_series().with_columns(nav=pl.when(pl.col("book") == "core_only").then(0.0)
                                                   .otherwise(pl.col("nav"))), _runs()),
     "tearsheet: 120 nav values not positive and finite, e.g. core_only on 2021-01-01"),
    (lambda: draw_tearsheet(_series().with_columns(drawdown=pl.lit(float("nan"))), _runs()),
     "tearsheet: 480 null or non-finite drawdown values, e.g. barbell on 2021-01-01"),
    (lambda: draw_tearsheet(_series().with_columns(pl.col("rolling_sharpe").cast(pl.String)), _runs()),
     "tearsheet: column 'rolling_sharpe' must be numeric"),
    (lambda: draw_tearsheet(_series(), _runs().drop("regime")), r"tearsheet regimes: missing columns \['regime'\]"),
    (lambda: draw_tearsheet(_series(), _runs().with_columns(regime=pl.lit("PANIC"))),
     r"tearsheet regimes: unknown regime labels \['PANIC'\]"),
    (lambda: draw_tearsheet(_series(), pl.concat([_runs(), _runs().head(1)])),
     "tearsheet regimes: 1 dates appear more than once, e.g. 2021-01-01"),
    (lambda: draw_tearsheet(_series(), _runs().with_columns(pl.col("date").cast(pl.String))),
     "tearsheet regimes: column 'date' must be a Date, got String"),
])
def test_draw_tearsheet_names_the_chart_and_the_fault_on_bad_input(call, message):
    with pytest.raises(ValidationError, match=message):
        call()
