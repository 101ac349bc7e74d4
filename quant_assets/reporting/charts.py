"""Small PNG pictures of the pipeline's frames, for the Dagster UI's asset metadata.

Each chart comes in two steps, like a request that is built before it is sent: ``draw_<chart>``
validates its input and returns a drawn :class:`~matplotlib.figure.Figure` (inspectable, or
savable as SVG from a notebook), and :func:`render_png` turns any figure into PNG bytes.
:func:`markdown_image` wraps the bytes for ``MetadataValue.md``.

Matplotlib's object API on the Agg canvas only: no ``pyplot``, so no global figure registry and
nothing to close (a figure nobody references is freed by the garbage collector), and figures
rendered in different threads share no state (matplotlib caches fonts per thread). Layouts are
fixed in inches instead of ``tight_layout``, which would lay every label out a second time: text
dominates the cost of these charts (1.5 to 2 ms per label), so labels are plain text, not ticks.

The bytes are stored in Dagster's event log, so they are small and deterministic: rendered at
:data:`DPI`, reduced to a 256-colour palette (a chart has a few hundred distinct colours; this
makes the PNG 3-4 times smaller and moves no channel by more than about 15 of 255) and written
without a software or date stamp, so the same frame always gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import polars as pl
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import ScaledTranslation
from PIL import Image

from quant_assets.errors import ValidationError

#: Pixels per inch of every picture; sizes below are in inches.
DPI = 80
SLEEVE_COLOURS = {"core": "#3b6ea8", "aggressor": "#e08a2c"}
REGIME_COLOURS = {"QUIET": "#cfe8cf", "NORMAL": "#e6e6e6", "CRISIS": "#f4c2c2"}
DIRECTIONS = ("LONG", "SHORT")
#: Colour of an undefined correlation (an asset without variance) in the heatmap.
UNDEFINED_COLOUR = "#8c8c8c"
#: Above this many symbols the heatmap drops its tick labels (they would overlap).
MAX_LABELLED_SYMBOLS = 40

WEIGHTS_WIDTH = 7.0
#: Height of one bar's row; the figure grows with the legs up to :data:`WEIGHTS_MAX_HEIGHT`.
WEIGHTS_ROW = 0.16
WEIGHTS_MAX_HEIGHT = 11.0
REGIME_SIZE = (8.0, 4.4)
#: Side of the heatmap's square; labels and the colour bar are added around it.
HEATMAP_SIDE = 5.0

_SHORT_HATCH = "////"
_SHORT_SUFFIX = " (short)"
#: Space between the sleeves in the weights chart, in rows.
_SLEEVE_GAP = 0.6
_PAD = 0.1


def render_png(figure: Figure) -> bytes:
    """PNG bytes of a figure: Agg raster at :data:`DPI`, 256-colour palette, no metadata.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        Drawn at its own size in inches; its dpi is set to :data:`DPI`.

    Returns
    -------
    bytes
        An 8-bit paletted PNG, identical for identical figures.
    """
    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    # No dithering: dither noise would cost bytes and could differ where colours tie.
    palette = rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="png")  # Pillow writes no text chunks unless asked
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown for a PNG embedded as a data URI, the form the Dagster UI renders inline.

    Brackets and line breaks in ``alt`` are escaped or flattened: they would end the image.
    """
    alt = " ".join(alt.split()).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def draw_weights_by_sleeve(weights: pl.DataFrame) -> Figure:
    """Horizontal bars of every weight, core sleeve first, SHORT legs hatched.

    Parameters
    ----------
    weights : polars.DataFrame
        One row per leg: ``symbol`` (str), ``sleeve`` ("core" | "aggressor"), ``weight``
        (fraction of the book, finite), optionally ``direction`` ("LONG" | "SHORT"). Within a
        sleeve bars run from the largest weight down; the legend gives each sleeve's total.

    Returns
    -------
    matplotlib.figure.Figure
        :data:`WEIGHTS_WIDTH` wide; :data:`WEIGHTS_ROW` per leg plus margins, at most
        :data:`WEIGHTS_MAX_HEIGHT` high (rows shrink beyond about 60 legs).

    Raises
    ------
    ValidationError
        On missing columns, an empty frame, an unknown sleeve or direction, or a null or
        non-finite weight.
    """
    chart = "weights by sleeve"
    _require_frame(weights, chart, ("symbol", "sleeve", "weight"))
    _require_labels(weights, chart, "sleeve", tuple(SLEEVE_COLOURS))
    if "direction" in weights.columns:
        _require_labels(weights, chart, "direction", DIRECTIONS)
    _require_finite(weights, chart, "weight", "symbol")
    if weights["symbol"].null_count():
        raise ValidationError(f"{chart}: {weights['symbol'].null_count()} legs without a symbol")

    frame = (
        weights.select(
            pl.col("symbol").cast(pl.String),
            "sleeve",
            pl.col("weight").cast(pl.Float64),
            direction=pl.col("direction") if "direction" in weights.columns else pl.lit("LONG"),
            rank=pl.col("sleeve").replace_strict({s: i for i, s in enumerate(SLEEVE_COLOURS)}),
        )
        .sort(["rank", "weight", "symbol"], descending=[False, True, False])
    )
    n = frame.height
    sleeves = frame["sleeve"].to_list()
    short = [d == "SHORT" for d in frame["direction"].to_list()]
    # Row positions top-down; a small gap where the sleeve changes.
    y = np.arange(n, dtype=float) + _SLEEVE_GAP * (frame["rank"].to_numpy() > frame["rank"][0])
    rows = float(y[-1]) + 1.0

    top_axis = n > 25  # tall charts repeat the percent scale on top, near the largest bars
    top, bottom = 0.62 + (0.22 if top_axis else 0.0), 0.5
    row = min(WEIGHTS_ROW, (WEIGHTS_MAX_HEIGHT - top - bottom) / rows)
    fontsize = 7.0 if row >= 0.12 else 6.0
    height = top + bottom + row * rows
    figure = _figure(WEIGHTS_WIDTH, height)
    labels = [s + _SHORT_SUFFIX if is_short else s for s, is_short in zip(frame["symbol"], short)]
    left = _PAD + _text_width(figure, labels, fontsize) + 0.08
    ax = _axes(figure, left, bottom, WEIGHTS_WIDTH - left - 0.25, row * rows)

    values = frame["weight"].to_numpy()
    colours = np.array([SLEEVE_COLOURS[s] for s in sleeves])
    for hatched in (False, True):
        # Two collections (plain and hatched) instead of a patch per bar: a tenth of the cost.
        rows_of = np.flatnonzero(np.asarray(short) == hatched)
        if rows_of.size:
            ax.add_collection(PolyCollection(
                [_bar(values[i], y[i]) for i in rows_of], facecolors=colours[rows_of].tolist(),
                edgecolors="white", linewidths=0.5, hatch=_SHORT_HATCH if hatched else None,
            ), autolim=False)
    _label_rows(ax, y, labels, fontsize)
    ax.set_ylim(rows - 0.5, -0.5)  # first row on top
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=7, top=top_axis, labeltop=top_axis)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlim(min(0.0, frame["weight"].min()) * 1.05, max(frame["weight"].max(), 0.0) * 1.05 or 1.0)
    ax.set_xlabel("weight (% of the book)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)

    totals = dict(frame.group_by("sleeve").agg(pl.col("weight").sum()).iter_rows())
    handles = [Patch(facecolor=SLEEVE_COLOURS[s], label=f"{s} {totals[s]:.1%}")
               for s in SLEEVE_COLOURS if s in totals]
    if any(short):
        handles.append(Patch(facecolor="#777777", edgecolor="white", hatch=_SHORT_HATCH,
                             label=f"SHORT ({_count(sum(short), 'leg')})"))
    _title(figure, f"Barbell weights: {_count(n, 'leg')}")
    _legend(figure, handles)
    return figure


def draw_regime_history(history: pl.DataFrame) -> Figure:
    """Short and long volatility over their ratio, on a background shaded by regime label.

    Parameters
    ----------
    history : polars.DataFrame
        One row per date: ``date`` (Date, no duplicates, any order), ``regime`` (QUIET | NORMAL
        | CRISIS), ``vol_short``, ``vol_long`` (annualised fractions), ``vol_ratio``, optionally
        ``dispersion_ratio`` (drawn beside ``vol_ratio``). Null or NaN values leave gaps in the
        lines.

    Returns
    -------
    matplotlib.figure.Figure
        :data:`REGIME_SIZE`; a day's shading spans from it to the next date, the last day's
        one typical step, so a regime of a single (last) day is still visible.

    Raises
    ------
    ValidationError
        On missing columns, an empty frame, a ``date`` that is not a Date or repeats, or an
        unknown regime label.
    """
    chart = "regime history"
    _require_frame(history, chart, ("date", "regime", "vol_short", "vol_long", "vol_ratio"))
    _require_dates(history, chart)
    _require_labels(history, chart, "regime", tuple(REGIME_COLOURS))
    _require_numeric(history, chart, ("vol_short", "vol_long", "vol_ratio"))

    frame = history.sort("date")
    dates = frame["date"].to_numpy()
    edges, spans = regime_spans(frame)
    labels = frame["regime"].to_list()

    width, height = REGIME_SIZE
    figure = _figure(width, height)
    left, right, top, bottom = 0.62, 0.15, 0.62, 0.32
    vol_ax, ratio_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={
        "height_ratios": [3, 2], "hspace": 0.08,
        "left": left / width, "right": 1 - right / width, "top": 1 - top / height, "bottom": bottom / height,
    })
    line = {"linewidth": 1.0, "marker": "o" if frame.height == 1 else None, "markersize": 3}  # one day: no line
    short_line, = vol_ax.plot(dates, _floats(frame, "vol_short"), color="#b03030", label="short vol", **line)
    long_line, = vol_ax.plot(dates, _floats(frame, "vol_long"), color="#202020", label="long vol", **line)
    ratio_ax.plot(dates, _floats(frame, "vol_ratio"), color="#202020", **line)
    ratio_lines = []
    if "dispersion_ratio" in frame.columns:  # the cross-section's ratio, which the label also follows
        ratio_lines = ratio_ax.plot(dates, _floats(frame, "dispersion_ratio"), color="#3b6ea8",
                                    label="dispersion ratio", **line)
    ratio_ax.axhline(1.0, color="#707070", linewidth=0.6, linestyle="--")

    for ax in (vol_ax, ratio_ax):
        shade_regimes(ax, spans)
        ax.tick_params(labelsize=7)
        ax.set_xlim(edges[0], edges[-1])
    vol_ax.yaxis.set_major_formatter(_percent())
    vol_ax.set_ylabel("annualised vol", fontsize=8)
    ratio_ax.set_ylabel("short / long", fontsize=8)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ratio_ax.xaxis.set_major_locator(locator)
    # No offset ("2024-Dec" under the last tick): the title gives the dates.
    ratio_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))

    handles = [short_line, long_line, *ratio_lines] + [
        Patch(facecolor=c, edgecolor="#a0a0a0", linewidth=0.5, label=r) for r, c in REGIME_COLOURS.items()
    ]
    days = _count(len(labels), "day")
    _title(figure, f"Regime {dates[0]} .. {dates[-1]} ({days}): {labels[-1]} on the last day")
    _legend(figure, handles)
    return figure


def regime_spans(frame: pl.DataFrame) -> tuple[np.ndarray, dict[str, list[tuple[float, float]]]]:
    """The day edges of ``frame`` (``date`` ascending, ``regime``) in date numbers, each day
    spanning to the next date and the last one typical step (so a regime of a single last day
    is still visible), and each regime's runs of consecutive days as one (start, end) span per
    run; a null label is left unshaded."""
    x = np.asarray(mdates.date2num(frame["date"].to_numpy()), dtype=float)
    step = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    edges = np.append(x, x[-1] + step) if x.size else x
    labels = frame["regime"].fill_null("").to_numpy()
    spans: dict[str, list[tuple[float, float]]] = {r: [] for r in REGIME_COLOURS}
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if labels.size else np.array([], dtype=int)
    for a, b in zip(starts, np.r_[starts[1:], labels.size]):
        if labels[a]:
            spans[labels[a]].append((float(edges[a]), float(edges[b])))
    return edges, spans


def shade_regimes(ax: Axes, spans: dict[str, list[tuple[float, float]]]) -> None:
    """Shade ``ax`` behind everything by regime: one collection per regime, x in dates and y
    across the whole panel."""
    for regime, colour in REGIME_COLOURS.items():
        if spans[regime]:
            # autolim off: the shading (which may reach past the series) must not move the limits.
            ax.add_collection(PolyCollection(
                [[(a, 0.0), (a, 1.0), (b, 1.0), (b, 0.0)] for a, b in spans[regime]],
                facecolors=colour, linewidths=0, zorder=0, transform=ax.get_xaxis_transform(),
            ), autolim=False)


def covariance_to_correlation(covariance: np.ndarray) -> np.ndarray:
    """Correlations ``cov[i, j] / (sd[i] * sd[j])``; NaN where a variance is zero or not finite.

    Parameters
    ----------
    covariance : numpy.ndarray, shape (N, N)

    Returns
    -------
    numpy.ndarray, shape (N, N)
        The diagonal is 1 for every asset with a positive variance.
    """
    cov = np.asarray(covariance, dtype=np.float64)
    variance = np.diag(cov)
    sd = np.sqrt(np.where(np.isfinite(variance) & (variance > 0.0), variance, np.nan))
    corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    return corr


def draw_correlation_heatmap(symbols: Sequence[str], covariance: np.ndarray) -> Figure:
    """Correlation matrix of a covariance as a heatmap on a fixed [-1, 1] diverging scale.

    Parameters
    ----------
    symbols : sequence of str, length N
        Tick labels, in the order of the matrix; drawn only when N <= :data:`MAX_LABELLED_SYMBOLS`.
    covariance : numpy.ndarray, shape (N, N)
        Symmetric (to 1e-8 of the largest variance). An asset without variance has undefined
        correlations, drawn in :data:`UNDEFINED_COLOUR`.

    Returns
    -------
    matplotlib.figure.Figure
        A :data:`HEATMAP_SIDE` square plus labels and a colour bar.

    Raises
    ------
    ValidationError
        If there are no symbols, the matrix is not square, does not match ``symbols`` or is not
        symmetric.
    """
    chart = "correlation heatmap"
    cov = np.asarray(covariance, dtype=np.float64)
    n = len(symbols)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValidationError(f"{chart}: covariance must be square, got shape {cov.shape}")
    if n == 0:
        raise ValidationError(f"{chart}: no symbols")
    if cov.shape[0] != n:
        raise ValidationError(f"{chart}: {n} symbols for a covariance of shape {cov.shape}")
    _require_symmetric(cov, chart, symbols)

    corr = covariance_to_correlation(cov)
    undefined = [s for s, d in zip(symbols, np.isnan(np.diag(corr))) if d]
    labelled = n <= MAX_LABELLED_SYMBOLS
    fontsize = 6.0
    measure = _figure(1.0, 1.0)
    margin = _PAD + (_text_width(measure, [str(s) for s in symbols], fontsize) + 0.1 if labelled else 0.05)
    top, colour_bar = 0.4, 0.15
    width = margin + HEATMAP_SIDE + 0.2 + colour_bar + 0.45
    height = margin + HEATMAP_SIDE + top
    figure = _figure(width, height)
    ax = _axes(figure, margin, margin, HEATMAP_SIDE, HEATMAP_SIDE)
    cax = _axes(figure, margin + HEATMAP_SIDE + 0.2, margin, colour_bar, HEATMAP_SIDE)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=UNDEFINED_COLOUR)
    image = ax.imshow(np.ma.masked_invalid(corr), cmap=cmap, vmin=-1.0, vmax=1.0,
                      interpolation="nearest", aspect="auto")
    if labelled:
        names = [str(s) for s in symbols]
        _label_rows(ax, np.arange(n), names, fontsize)
        _label_columns(ax, np.arange(n), names, fontsize)
    ax.set_xticks([])
    ax.set_yticks([])
    figure.colorbar(image, cax=cax)
    cax.tick_params(labelsize=7)
    title = f"Correlation of {_count(n, 'leg')}"
    if undefined:
        title += f"; grey: undefined ({len(undefined)} without variance)"
    _title(figure, title, left=margin)
    return figure


def _require_frame(frame: pl.DataFrame, chart: str, columns: tuple[str, ...]) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise ValidationError(f"{chart}: expected a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"{chart}: missing columns {missing}; expected {list(columns)}, got {frame.columns}")
    if frame.height == 0:
        raise ValidationError(f"{chart}: the frame is empty")


def _require_date(frame: pl.DataFrame, chart: str) -> None:
    if frame.schema["date"] != pl.Date:
        raise ValidationError(f"{chart}: column 'date' must be a Date, got {frame.schema['date']}")


def _require_dates(frame: pl.DataFrame, chart: str) -> None:
    """A ``date`` column of Dates, none repeated (one row per day)."""
    _require_date(frame, chart)
    repeated = frame.filter(pl.col("date").is_duplicated())["date"].unique().sort()
    if repeated.len():
        raise ValidationError(f"{chart}: {repeated.len()} dates appear more than once, e.g. {repeated[0]}")


def _require_labels(frame: pl.DataFrame, chart: str, column: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted({v for v in frame[column].to_list() if v not in allowed}, key=str)
    if unknown:
        raise ValidationError(f"{chart}: unknown {column} labels {unknown}; expected one of {list(allowed)}")


def _require_numeric(frame: pl.DataFrame, chart: str, columns: tuple[str, ...]) -> None:
    for column in columns:
        if not frame.schema[column].is_numeric():
            raise ValidationError(f"{chart}: column {column!r} must be numeric, got {frame.schema[column]}")


def _require_finite(frame: pl.DataFrame, chart: str, column: str, key: str) -> None:
    _require_numeric(frame, chart, (column,))
    bad = frame.filter(pl.col(column).is_null() | ~pl.col(column).cast(pl.Float64).is_finite())[key]
    if bad.len():
        raise ValidationError(
            f"{chart}: {bad.len()} null or non-finite {column} values, e.g. {key} {bad.head(3).to_list()}"
        )


def _require_symmetric(cov: np.ndarray, chart: str, symbols: Sequence[str]) -> None:
    nan = np.isnan(cov)
    diff = np.abs(cov - cov.T)
    finite = np.isfinite(diff)
    variances = np.abs(np.diag(cov))
    scale = float(variances[np.isfinite(variances)].max(initial=0.0)) or 1.0
    worst = np.where(finite, diff, 0.0)
    if (nan != nan.T).any() or worst.max() > 1e-8 * scale:
        i, j = np.unravel_index(np.argmax(np.where(nan != nan.T, np.inf, worst)), cov.shape)
        raise ValidationError(
            f"{chart}: covariance is not symmetric: [{symbols[i]}, {symbols[j]}] = {cov[i, j]:.6g} "
            f"but [{symbols[j]}, {symbols[i]}] = {cov[j, i]:.6g}"
        )


def _floats(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _figure(width: float, height: float) -> Figure:
    """A figure of whole pixels at :data:`DPI` (Agg would truncate a fraction)."""
    figure = Figure(figsize=(round(width * DPI) / DPI, round(height * DPI) / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def _axes(figure: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """Axes at a rectangle given in inches from the figure's lower left corner."""
    fig_width, fig_height = figure.get_size_inches()
    return figure.add_axes((left / fig_width, bottom / fig_height, width / fig_width, height / fig_height))


def _text_width(figure: Figure, labels: Sequence[str], fontsize: float) -> float:
    """Width in inches of the widest label, measured on the five longest (each costs ~1 ms)."""
    renderer = figure.canvas.get_renderer()
    font = FontProperties(size=fontsize)
    longest = sorted(labels, key=len)[-5:]
    pixels = max(renderer.get_text_width_height_descent(s, font, ismath=False)[0] for s in longest)
    return 1.08 * pixels / figure.dpi  # slack for a shorter label of wider letters


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _percent() -> FuncFormatter:
    """Fractions as percent with no trailing zeros (0.5%, 1%, 12.5%); one per axis, it binds to it."""
    return FuncFormatter(lambda value, _: f"{value * 100:.4g}%")


def _bar(value: float, y: float, height: float = 0.8) -> list[tuple[float, float]]:
    low, high = min(value, 0.0), max(value, 0.0)
    return [(low, y - height / 2), (low, y + height / 2), (high, y + height / 2), (high, y - height / 2)]


def _label_rows(ax: Axes, y: np.ndarray, labels: Sequence[str], fontsize: float) -> None:
    """Labels left of the axes at data heights ``y``: plain text, no ticks.

    An axis' tick labels cost twice as much (a Tick is five artists, and the axis lays its
    labels out again to place its own label); these charts have up to 80 of them.
    """
    at = ax.get_yaxis_transform() + ScaledTranslation(-3 / 72, 0, ax.figure.dpi_scale_trans)
    for yi, label in zip(y, labels):
        ax.text(0, yi, label, transform=at, ha="right", va="center", fontsize=fontsize, parse_math=False)


def _label_columns(ax: Axes, x: np.ndarray, labels: Sequence[str], fontsize: float) -> None:
    """Labels below the axes at data positions ``x``, rotated to read upwards."""
    at = ax.get_xaxis_transform() + ScaledTranslation(0, -3 / 72, ax.figure.dpi_scale_trans)
    for xi, label in zip(x, labels):
        ax.text(xi, 0, label, transform=at, ha="center", va="top", rotation=90,
                fontsize=fontsize, parse_math=False)


def _title(figure: Figure, text: str, left: float = _PAD) -> None:
    """Top left, ``left`` inches in; the first line of every chart."""
    figure.text(left / figure.get_figwidth(), 1 - _PAD / figure.get_figheight(), text,
                fontsize=10, ha="left", va="top", parse_math=False)


def _legend(figure: Figure, handles: list[Patch | Line2D]) -> None:
    """One row under the title, outside the axes so it never covers data."""
    anchor = (_PAD / figure.get_figwidth(), 1 - 0.34 / figure.get_figheight())
    figure.legend(
        handles=handles, loc="upper left", bbox_to_anchor=anchor, ncol=len(handles), frameon=False,
        fontsize=8, borderaxespad=0, borderpad=0, handlelength=1.6, columnspacing=1.4,
    )
