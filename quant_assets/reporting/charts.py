"""Small PNG pictures of the pipeline's frames, for the Dagster UI's asset metadata.

Matplotlib's object API on the Agg canvas (no ``pyplot``, so no global state and safe in
threads). Every function validates its input, renders at a modest resolution (the bytes are
stored in Dagster's event log) and returns deterministic PNG bytes: the same frame gives the
same picture, byte for byte.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import polars as pl
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from quant_assets.errors import ValidationError

DPI = 80
SLEEVE_COLOURS = {"core": "#3b6ea8", "aggressor": "#e08a2c"}
REGIME_COLOURS = {"QUIET": "#cfe8cf", "NORMAL": "#ececec", "CRISIS": "#f4c2c2"}
#: Above this many symbols the heatmap drops its tick labels (they would overlap).
MAX_LABELLED_SYMBOLS = 60


def _require(frame: pl.DataFrame, columns: tuple[str, ...], chart: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"{chart}: missing columns {missing}; got {frame.columns}")
    if frame.height == 0:
        raise ValidationError(f"{chart}: the frame is empty")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No software or date stamps: the bytes depend on the data only.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def plot_weights_by_sleeve(weights: pl.DataFrame) -> bytes:
    """Horizontal bars of every weight, coloured by sleeve; SHORT legs hatched.

    Parameters
    ----------
    weights : polars.DataFrame
        ``symbol`` (str), ``sleeve`` ("core" | "aggressor"), ``weight`` (fraction), optionally
        ``direction`` ("LONG" | "SHORT").

    Raises
    ------
    ValidationError
        On missing columns, an empty frame or an unknown sleeve.
    """
    chart = "weights by sleeve"
    _require(weights, ("symbol", "sleeve", "weight"), chart)
    unknown = sorted(set(weights["sleeve"].to_list()) - set(SLEEVE_COLOURS), key=str)
    if unknown:
        raise ValidationError(f"{chart}: unknown sleeves {unknown}; expected {sorted(SLEEVE_COLOURS)}")
    frame = weights.with_columns(
        direction=pl.col("direction") if "direction" in weights.columns else pl.lit("LONG")
    ).sort(["sleeve", "weight", "symbol"], descending=[True, False, False])  # core on top
    n = frame.height
    figure = Figure(figsize=(7.0, min(1.2 + 0.22 * n, 14.0)))
    ax = figure.add_subplot()
    y = np.arange(n)
    colours = [SLEEVE_COLOURS[s] for s in frame["sleeve"]]
    hatches = ["///" if d == "SHORT" else "" for d in frame["direction"]]
    bars = ax.barh(y, frame["weight"].to_numpy() * 100.0, color=colours, edgecolor="white")
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    labels = [f"{s} (short)" if d == "SHORT" else s for s, d in zip(frame["symbol"], frame["direction"])]
    ax.set_yticks(y, labels, fontsize=7 if n > 30 else 8)
    ax.set_xlabel("weight (%)")
    totals = frame.group_by("sleeve").agg(pl.col("weight").sum())
    share = dict(totals.iter_rows())
    ax.legend(
        handles=[Patch(color=SLEEVE_COLOURS[s], label=f"{s} {share[s] * 100:.1f}%")
                 for s in ("core", "aggressor") if s in share],
        loc="lower right", fontsize=8,
    )
    ax.set_title(f"Barbell weights: {n} legs", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def plot_regime_history(history: pl.DataFrame) -> bytes:
    """Short and long volatility and their ratio over time, on a background shaded by regime.

    Parameters
    ----------
    history : polars.DataFrame
        ``date`` (Date), ``regime`` (QUIET | NORMAL | CRISIS), ``vol_short``, ``vol_long``
        (annualised fractions), ``vol_ratio``; one row per day, ascending.

    Raises
    ------
    ValidationError
        On missing columns, an empty frame or an unknown regime label.
    """
    chart = "regime history"
    _require(history, ("date", "regime", "vol_short", "vol_long", "vol_ratio"), chart)
    unknown = sorted(set(history["regime"].to_list()) - set(REGIME_COLOURS), key=str)
    if unknown:
        raise ValidationError(f"{chart}: unknown regimes {unknown}; expected {sorted(REGIME_COLOURS)}")
    frame = history.sort("date")
    dates = frame["date"].to_numpy()
    figure = Figure(figsize=(8.0, 4.2))
    vol_ax, ratio_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    # Regime spans: runs of equal labels, each from its first day to the next run's first day.
    labels = frame["regime"].to_list()
    starts = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    ends = starts[1:] + [len(labels) - 1]
    for ax in (vol_ax, ratio_ax):
        for a, b in zip(starts, ends):
            ax.axvspan(dates[a], dates[b], color=REGIME_COLOURS[labels[a]], linewidth=0)
    vol_ax.plot(dates, frame["vol_short"].to_numpy() * 100.0, color="#b03030", linewidth=1.0, label="short vol")
    vol_ax.plot(dates, frame["vol_long"].to_numpy() * 100.0, color="#303030", linewidth=1.0, label="long vol")
    vol_ax.set_ylabel("annualised vol (%)", fontsize=8)
    vol_ax.legend(
        handles=[*vol_ax.get_lines(), *(Patch(color=c, label=r) for r, c in REGIME_COLOURS.items())],
        loc="upper left", fontsize=7, ncol=5,
    )
    ratio_ax.plot(dates, frame["vol_ratio"].to_numpy(), color="#303030", linewidth=1.0)
    ratio_ax.axhline(1.0, color="#808080", linewidth=0.6, linestyle="--")
    ratio_ax.set_ylabel("short / long", fontsize=8)
    for ax in (vol_ax, ratio_ax):
        ax.tick_params(labelsize=7)
        ax.margins(x=0)
    vol_ax.set_title(f"Regime {dates[0]} .. {dates[-1]}: {labels[-1]} on the last day", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def plot_correlation_heatmap(symbols: list[str], covariance: np.ndarray) -> bytes:
    """Correlation matrix of a covariance as a heatmap on a fixed [-1, 1] diverging scale.

    Parameters
    ----------
    symbols : list of str, length N
    covariance : numpy.ndarray, shape (N, N)
        Symmetric. A zero-variance asset's correlations are undefined and drawn grey.

    Raises
    ------
    ValidationError
        If the matrix is not square, not symmetric, empty, or does not match ``symbols``.
    """
    chart = "correlation heatmap"
    cov = np.asarray(covariance, dtype=np.float64)
    n = len(symbols)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValidationError(f"{chart}: covariance must be square, got shape {cov.shape}")
    if cov.shape[0] != n or n == 0:
        raise ValidationError(f"{chart}: {n} symbols for a covariance of shape {cov.shape}")
    if not np.allclose(cov, cov.T, equal_nan=True):
        raise ValidationError(f"{chart}: covariance is not symmetric")
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    size = 3.0 + 0.12 * min(n, MAX_LABELLED_SYMBOLS)
    figure = Figure(figsize=(size + 1.0, size))
    ax = figure.add_subplot()
    cmap = ListedColormap(_diverging(256)).with_extremes(bad="#b0b0b0")
    image = ax.imshow(np.ma.masked_invalid(corr), cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    if n <= MAX_LABELLED_SYMBOLS:
        ax.set_xticks(range(n), symbols, rotation=90, fontsize=5)
        ax.set_yticks(range(n), symbols, fontsize=5)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(f"Correlation of {n} legs", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def _diverging(n: int) -> np.ndarray:
    """Blue (-1) to white (0) to red (+1), RGBA rows."""
    t = np.linspace(-1.0, 1.0, n)[:, None]
    blue, white, red = np.array([0.23, 0.38, 0.66]), np.ones(3), np.array([0.75, 0.19, 0.19])
    rgb = np.where(t < 0, white + (blue - white) * -t, white + (red - white) * t)
    return np.hstack([rgb, np.ones((n, 1))])


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown for a PNG embedded as a data URI, the form the Dagster UI renders inline."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
