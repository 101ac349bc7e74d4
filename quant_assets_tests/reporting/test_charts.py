from __future__ import annotations

import base64
import gc
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib import dates as mdates
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb, to_rgba
from matplotlib.figure import Figure
from PIL import Image

from quant_assets.errors import ValidationError
from quant_assets.reporting.charts import (
    DPI,
    REGIME_COLOURS,
    REGIME_SIZE,
    SLEEVE_COLOURS,
    UNDEFINED_COLOUR,
    WEIGHTS_MAX_HEIGHT,
    WEIGHTS_WIDTH,
    covariance_to_correlation,
    draw_correlation_heatmap,
    draw_regime_history,
    draw_weights_by_sleeve,
    markdown_image,
    render_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode(png: bytes) -> np.ndarray:
    """RGB pixels, shape (height, width, 3); decodes the whole file, so a truncated one fails."""
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def _size(png: bytes) -> tuple[int, int]:
    height, width, _ = _decode(png).shape
    return width, height


def _pixels_near(png: bytes, colour: str, tolerance: int = 16) -> int:
    """Pixels within ``tolerance`` of ``colour`` per channel (the palette moves colours a little)."""
    target = np.round(np.array(to_rgb(colour)) * 255)
    return int((np.abs(_decode(png).astype(int) - target).max(axis=2) <= tolerance).sum())


def _drawn_size(figure: Figure) -> tuple[int, int]:
    width, height = figure.get_size_inches() * DPI
    assert width == pytest.approx(round(width)) and height == pytest.approx(round(height))  # whole pixels
    return round(width), round(height)


def _weights() -> pl.DataFrame:
    return pl.DataFrame({
        "symbol": ["EX:C1", "EX:C2", "EX:C3", "EX:C4", "EX:A1", "EX:A2"],
        "sleeve": ["core", "core", "core", "core", "aggressor", "aggressor"],
        "weight": [0.20, 0.30, 0.15, 0.25, 0.04, 0.06],
        "direction": ["LONG", "SHORT", "LONG", "LONG", "SHORT", "SHORT"],
    })


def _many_weights(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "symbol": [f"BINANCE:S{i:03d}USDT.P" for i in range(n)],
        "sleeve": ["core" if i % 5 else "aggressor" for i in range(n)],
        "weight": np.full(n, 1.0 / n),
        "direction": ["SHORT" if i % 3 == 0 else "LONG" for i in range(n)],
    })


def _history(labels: list[str]) -> pl.DataFrame:
    t = np.arange(len(labels))
    return pl.DataFrame({
        "date": [date(2023, 1, 2) + timedelta(days=int(i)) for i in t],
        "regime": labels,
        "vol_short": 0.2 + 0.1 * np.sin(t / 9.0),
        "vol_long": np.full(len(labels), 0.2),
        "vol_ratio": 1.0 + 0.5 * np.sin(t / 9.0),
    })


def _runs() -> pl.DataFrame:
    return _history(["NORMAL"] * 40 + ["CRISIS"] * 20 + ["QUIET"] * 60)


def _covariance() -> np.ndarray:
    return np.array([[4.0, 1.0, 0.0], [1.0, 1.0, -0.5], [0.0, -0.5, 1.0]])


# weights by sleeve ---------------------------------------------------------------------------


def test_rendered_weights_by_sleeve_png_has_the_drawn_size():
    png = render_png(draw_weights_by_sleeve(_weights()))
    assert _size(png) == _drawn_size(draw_weights_by_sleeve(_weights()))
    assert _size(png)[0] == round(WEIGHTS_WIDTH * DPI)


def test_draw_weights_by_sleeve_height_grows_with_the_legs_up_to_a_cap():
    heights = [draw_weights_by_sleeve(_many_weights(n)).get_figheight() for n in (1, 6, 40, 60, 200)]
    assert heights[0] < heights[1] < heights[2] < heights[3] <= WEIGHTS_MAX_HEIGHT
    assert heights[4] == pytest.approx(WEIGHTS_MAX_HEIGHT)


def test_draw_weights_by_sleeve_orders_core_first_then_largest_weight_first():
    ax = draw_weights_by_sleeve(_weights()).axes[0]
    top_down = [t.get_text() for t in sorted(ax.texts, key=lambda t: t.get_position()[1])]
    assert top_down == ["EX:C2 (short)", "EX:C4", "EX:C1", "EX:C3", "EX:A2 (short)", "EX:A1 (short)"]
    assert ax.yaxis_inverted()  # the first row is drawn on top


def test_draw_weights_by_sleeve_colours_bars_by_sleeve_and_hatches_short_legs():
    ax = draw_weights_by_sleeve(_weights()).axes[0]
    bars = {}  # row -> (weight, colour, hatched)
    for collection in ax.collections:
        for path, colour in zip(collection.get_paths(), collection.get_facecolors()):
            (x0, y0), (x1, y1) = path.vertices.min(axis=0), path.vertices.max(axis=0)
            bars[round((y0 + y1) / 2, 6)] = (x1 - x0, tuple(colour), collection.get_hatch() is not None)
    rows = [bars[y] for y in sorted(bars)]
    core, aggressor = to_rgba(SLEEVE_COLOURS["core"]), to_rgba(SLEEVE_COLOURS["aggressor"])
    assert [w for w, _, _ in rows] == pytest.approx([0.30, 0.25, 0.20, 0.15, 0.06, 0.04])
    assert [c for _, c, _ in rows] == [core] * 4 + [aggressor] * 2
    assert [h for _, _, h in rows] == [True, False, False, False, True, True]


def test_draw_weights_by_sleeve_legend_gives_each_sleeve_total_and_short_count():
    legend = draw_weights_by_sleeve(_weights()).legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["core 90.0%", "aggressor 10.0%", "SHORT (3 legs)"]


def test_draw_weights_by_sleeve_without_direction_marks_nothing_short():
    figure = draw_weights_by_sleeve(_weights().drop("direction"))
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["core 90.0%", "aggressor 10.0%"]
    assert all(c.get_hatch() is None for c in figure.axes[0].collections)
    assert not any("(short)" in t.get_text() for t in figure.axes[0].texts)


def test_draw_weights_by_sleeve_x_axis_reads_in_percent():
    ax = draw_weights_by_sleeve(_weights()).axes[0]
    formatter = ax.xaxis.get_major_formatter()
    assert [formatter(v, 0) for v in (0.0, 0.05, 0.125)] == ["0%", "5%", "12.5%"]
    assert ax.get_xlim()[1] >= 0.30


def test_rendered_weights_by_sleeve_draws_a_single_leg_verbatim():
    one = pl.DataFrame({"symbol": ["EX:A$_$B"], "sleeve": ["aggressor"], "weight": [1.0]})
    assert _size(render_png(draw_weights_by_sleeve(one)))[1] > 0  # parsed as mathtext, "$_$" fails to render
    assert [t.get_text() for t in draw_weights_by_sleeve(one).axes[0].texts] == ["EX:A$_$B"]


def test_draw_weights_by_sleeve_keeps_sixty_labels_apart_and_inside_the_figure():
    figure = draw_weights_by_sleeve(_many_weights(60))
    figure.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in figure.axes[0].texts), key=lambda b: -b.y0)
    assert len(boxes) == 60
    assert all(upper.y0 >= lower.y1 for upper, lower in zip(boxes, boxes[1:]))
    assert min(b.x0 for b in boxes) >= 0 and max(b.x1 for b in boxes) <= figure.axes[0].get_window_extent().x0


# regime history ------------------------------------------------------------------------------


def test_rendered_regime_history_png_has_the_fixed_size():
    expected = (round(REGIME_SIZE[0] * DPI), round(REGIME_SIZE[1] * DPI))
    assert _size(render_png(draw_regime_history(_runs()))) == expected
    assert _size(render_png(draw_regime_history(_history(["QUIET"])))) == expected


def test_draw_regime_history_shades_each_run_of_labels_in_both_panels():
    figure = draw_regime_history(_runs())
    x = mdates.date2num(_runs()["date"].to_numpy())
    expected = {"NORMAL": [(x[0], x[40])], "CRISIS": [(x[40], x[60])], "QUIET": [(x[60], x[119] + 1.0)]}
    assert len(figure.axes) == 2
    for ax in figure.axes:
        shading = [c for c in ax.collections if isinstance(c, PolyCollection)]
        spans = {}
        for collection in shading:
            colour = tuple(collection.get_facecolor()[0])
            regime = next(r for r, c in REGIME_COLOURS.items() if to_rgba(c) == colour)
            spans[regime] = [(p.vertices[:, 0].min(), p.vertices[:, 0].max()) for p in collection.get_paths()]
        assert spans == expected  # whole days: exact in float
        assert ax.get_xlim() == pytest.approx((x[0], x[119] + 1.0))


def test_rendered_regime_history_shows_a_crisis_of_the_last_day_only():
    calm = ["NORMAL"] * 120
    alarm = calm[:-1] + ["CRISIS"]
    crisis = REGIME_COLOURS["CRISIS"]
    # The legend shows the CRISIS colour either way; the last day's span adds a strip per panel.
    extra = _pixels_near(render_png(draw_regime_history(_history(alarm))), crisis) - _pixels_near(
        render_png(draw_regime_history(_history(calm))), crisis)
    assert extra > 300


def test_draw_regime_history_plots_the_vols_and_the_ratio_in_date_order():
    history = _runs()
    shuffled = history.sample(fraction=1.0, shuffle=True, seed=1)
    vol_ax, ratio_ax = draw_regime_history(shuffled).axes
    short_line, long_line = vol_ax.get_lines()
    assert short_line.get_ydata() == pytest.approx(history["vol_short"].to_numpy())
    assert long_line.get_ydata() == pytest.approx(history["vol_long"].to_numpy())
    assert ratio_ax.get_lines()[0].get_ydata() == pytest.approx(history["vol_ratio"].to_numpy())
    assert vol_ax.yaxis.get_major_formatter()(0.2, 0) == "20%"
    assert render_png(draw_regime_history(shuffled)) == render_png(draw_regime_history(history))


def test_draw_regime_history_legend_names_the_lines_and_all_three_regimes():
    legend = draw_regime_history(_history(["QUIET"] * 5)).legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["short vol", "long vol", "QUIET", "NORMAL", "CRISIS"]


def test_draw_regime_history_draws_the_dispersion_ratio_beside_the_vol_ratio():
    history = _runs().with_columns(dispersion_ratio=pl.col("vol_ratio") * 0.5)
    figure = draw_regime_history(history)
    dispersion = figure.axes[1].get_lines()[1]
    assert dispersion.get_ydata() == pytest.approx(history["dispersion_ratio"].to_numpy())
    assert "dispersion ratio" in [t.get_text() for t in figure.legends[0].get_texts()]


# correlation heatmap -------------------------------------------------------------------------


def test_covariance_to_correlation_matches_numpy_corrcoef():
    returns = np.random.default_rng(0).normal(size=(5, 50))
    assert covariance_to_correlation(np.cov(returns)) == pytest.approx(np.corrcoef(returns))


def test_covariance_to_correlation_is_nan_for_a_zero_variance_asset():
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    corr = covariance_to_correlation(cov)
    assert np.isnan(corr[2]).all() and np.isnan(corr[:, 2]).all()
    assert corr[:2, :2] == pytest.approx(np.array([[1.0, 0.5], [0.5, 1.0]]))


def test_rendered_correlation_heatmap_draws_a_zero_variance_asset_grey():
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    with np.errstate(all="raise"):  # no warning escapes either
        grey = _pixels_near(render_png(draw_correlation_heatmap(["A", "B", "C"], cov)), UNDEFINED_COLOUR, tolerance=4)
    healthy = _pixels_near(render_png(draw_correlation_heatmap(["A", "B", "C"], _covariance())), UNDEFINED_COLOUR, tolerance=4)
    assert grey > 10_000 and healthy < 100  # a row and a column of a 400-pixel square; none otherwise
    title = draw_correlation_heatmap(["A", "B", "C"], cov).texts[0].get_text()
    assert title == "Correlation of 3 legs; grey: undefined (1 without variance)"


def test_draw_correlation_heatmap_uses_a_fixed_diverging_scale():
    figure = draw_correlation_heatmap(["A", "B"], np.array([[1.0, 0.01], [0.01, 1.0]]))
    image = figure.axes[0].get_images()[0]
    assert image.get_clim() == (-1.0, 1.0)
    blue, white, red = (image.cmap(v) for v in (0.0, 0.5, 1.0))
    assert blue[2] > blue[0] and red[0] > red[2] and min(white[:3]) > 0.9
    assert image.get_array()[0, 1] == pytest.approx(0.01)


@pytest.mark.parametrize("n, labelled", [(40, True), (41, False)])
def test_draw_correlation_heatmap_labels_symbols_up_to_forty(n, labelled):
    symbols = [f"EX:S{i:02d}" for i in range(n)]
    figure = draw_correlation_heatmap(symbols, np.eye(n))
    ax = figure.axes[0]
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == (sorted(symbols * 2) if labelled else [])
    assert ax.get_xticks().size == 0 and ax.get_yticks().size == 0
    assert figure.texts[0].get_text() == f"Correlation of {n} legs"


def test_rendered_correlation_heatmap_png_has_the_drawn_size():
    symbols = ["A", "B", "C"]
    png = render_png(draw_correlation_heatmap(symbols, _covariance()))
    assert _size(png) == _drawn_size(draw_correlation_heatmap(symbols, _covariance()))


def test_draw_correlation_heatmap_keeps_forty_long_labels_inside_the_figure():
    symbols = [f"BINANCE:S{i:03d}USDT.P" for i in range(40)]
    figure = draw_correlation_heatmap(symbols, np.eye(40))
    figure.canvas.draw()
    boxes = [t.get_window_extent() for t in figure.axes[0].texts]
    assert min(b.x0 for b in boxes) >= 0 and min(b.y0 for b in boxes) >= 0


# every chart ---------------------------------------------------------------------------------


def _renders():
    return [
        lambda: render_png(draw_weights_by_sleeve(_weights())),
        lambda: render_png(draw_regime_history(_runs())),
        lambda: render_png(draw_correlation_heatmap(["A", "B", "C"], _covariance())),
    ]


@pytest.mark.parametrize("draw", [
    lambda: draw_weights_by_sleeve(_many_weights(60)),
    lambda: draw_weights_by_sleeve(_weights()),
    lambda: draw_regime_history(_runs()),
])
def test_draw_charts_keep_the_title_and_legend_off_the_data(draw):
    figure = draw()
    figure.canvas.draw()
    title, legend = figure.texts[0].get_window_extent(), figure.legends[0].get_window_extent()
    assert not title.overlaps(legend)
    for ax in figure.axes:
        # tight: the axes with their tick labels (the weights chart repeats them on top)
        assert not legend.overlaps(ax.get_tightbbox()) and not title.overlaps(ax.get_tightbbox())
    assert legend.x1 <= figure.bbox.x1 and legend.y1 <= figure.bbox.y1


def test_rendered_charts_give_identical_bytes_for_identical_input():
    for render in _renders():
        assert render() == render()
    changed = _weights().with_columns(weight=pl.col("weight") * 0.5)
    assert render_png(draw_weights_by_sleeve(changed)) != render_png(draw_weights_by_sleeve(_weights()))


def test_rendered_charts_give_identical_bytes_in_threads():
    serial = [render() for render in _renders()]
    with ThreadPoolExecutor(max_workers=6) as pool:
        threaded = list(pool.map(lambda i: _renders()[i % 3](), range(12)))
    assert threaded == serial * 4


def test_rendered_charts_leave_no_figure_alive():
    gc.collect()
    before = sum(isinstance(o, Figure) for o in gc.get_objects())
    for render in _renders():
        render()
    gc.collect()
    assert sum(isinstance(o, Figure) for o in gc.get_objects()) == before


def test_rendered_charts_stay_small_at_the_largest_expected_sizes():
    rng = np.random.default_rng(0)
    days = 730
    history = _history((["NORMAL"] * 200 + ["CRISIS"] * 30 + ["QUIET"] * 135) * 2).with_columns(
        vol_short=pl.Series(0.2 + 0.05 * rng.standard_normal(days)).abs())
    symbols = [f"BINANCE:S{i:03d}USDT.P" for i in range(40)]
    pngs = [
        render_png(draw_weights_by_sleeve(_many_weights(60))),
        render_png(draw_regime_history(history)),
        render_png(draw_correlation_heatmap(symbols, np.cov(rng.normal(size=(40, 100))))),
    ]
    assert [len(p) < 80_000 for p in pngs] == [True, True, True], [len(p) for p in pngs]


# validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: render_png(draw_weights_by_sleeve(_weights().drop("weight"))), r"weights by sleeve: missing columns \['weight'\]"),
    (lambda: render_png(draw_weights_by_sleeve(_weights().clear())), "weights by sleeve: the frame is empty"),
    (lambda: render_png(draw_weights_by_sleeve(_weights().with_columns(sleeve=pl.lit("middle")))),
     r"weights by sleeve: unknown sleeve labels \['middle'\]"),
    (lambda: render_png(draw_weights_by_sleeve(_weights().with_columns(direction=pl.lit("FLAT")))),
     r"weights by sleeve: unknown direction labels \['FLAT'\]"),
    (lambda: render_png(draw_weights_by_sleeve(_weights().with_columns(weight=pl.lit(float("nan"))))),
     r"weights by sleeve: 6 null or non-finite weight values, e.g. symbol \['EX:C1'"),
    (lambda: render_png(draw_weights_by_sleeve(_weights().with_columns(weight=pl.lit("0.1")))),
     "weights by sleeve: column 'weight' must be numeric"),
    (lambda: render_png(draw_weights_by_sleeve(_weights().to_dicts())), "weights by sleeve: expected a polars DataFrame"),
    (lambda: render_png(draw_regime_history(_runs().drop("vol_ratio"))), r"regime history: missing columns \['vol_ratio'\]"),
    (lambda: render_png(draw_regime_history(_runs().clear())), "regime history: the frame is empty"),
    (lambda: render_png(draw_regime_history(_runs().with_columns(regime=pl.lit("PANIC")))),
     r"regime history: unknown regime labels \['PANIC'\]"),
    (lambda: render_png(draw_regime_history(_runs().with_columns(pl.col("date").cast(pl.String)))),
     "regime history: column 'date' must be a Date, got String"),
    (lambda: render_png(draw_regime_history(pl.concat([_runs(), _runs().head(2)]))),
     "regime history: 2 dates appear more than once, e.g. 2023-01-02"),
    (lambda: render_png(draw_regime_history(_runs().with_columns(pl.col("vol_long").cast(pl.String)))),
     "regime history: column 'vol_long' must be numeric"),
    (lambda: render_png(draw_correlation_heatmap(["A"], np.ones((1, 2)))),
     r"correlation heatmap: covariance must be square, got shape \(1, 2\)"),
    (lambda: render_png(draw_correlation_heatmap(["A"], np.ones(3))),
     r"correlation heatmap: covariance must be square, got shape \(3,\)"),
    (lambda: render_png(draw_correlation_heatmap(["A"], np.eye(2))),
     r"correlation heatmap: 1 symbols for a covariance of shape \(2, 2\)"),
    (lambda: render_png(draw_correlation_heatmap([], np.empty((0, 0)))), "correlation heatmap: no symbols"),
    (lambda: render_png(draw_correlation_heatmap(["A", "B"], np.array([[1.0, 0.1], [0.2, 1.0]]))),
     r"correlation heatmap: covariance is not symmetric: \[A, B\] = 0.1 but \[B, A\] = 0.2"),
    (lambda: render_png(draw_correlation_heatmap(["A", "B"], np.array([[1.0, np.nan], [0.2, 1.0]]))),
     r"correlation heatmap: covariance is not symmetric: \[A, B\] = nan but \[B, A\] = 0.2"),
])
def test_rendered_charts_name_the_chart_and_the_fault_on_bad_input(call, message):
    with pytest.raises(ValidationError, match=message):
        call()


def test_rendered_correlation_heatmap_tolerates_rounding_asymmetry():
    cov = _covariance() * 1e-4
    cov[0, 1] += 1e-16  # floating-point noise from a long-form round trip, far below 1e-8 of the variance
    assert _size(render_png(draw_correlation_heatmap(["A", "B", "C"], cov)))[0] > 0


# markdown ------------------------------------------------------------------------------------


def test_markdown_image_round_trips_the_bytes():
    png = render_png(draw_weights_by_sleeve(_weights()))
    text = markdown_image(png, "weights on 2024-06-03")
    prefix = "![weights on 2024-06-03](data:image/png;base64,"
    assert text.startswith(prefix) and text.endswith(")")
    assert base64.b64decode(text[len(prefix):-1], validate=True) == png


def test_markdown_image_escapes_what_would_end_the_alt_text():
    text = markdown_image(b"\x89PNG", "legs [core]\nand ]aggressors")
    assert text.startswith(r"![legs \[core\] and \]aggressors](data:image/png;base64,")
