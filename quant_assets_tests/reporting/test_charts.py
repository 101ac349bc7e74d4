from __future__ import annotations

import base64
import io
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from PIL import Image

from quant_assets.errors import ValidationError
from quant_assets.reporting.charts import (
    markdown_image,
    plot_correlation_heatmap,
    plot_regime_history,
    plot_weights_by_sleeve,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        image.load()  # decodes the whole image: a truncated file fails here
        return image.size


def _weights(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame({
        "symbol": [f"EX:S{i}" for i in range(n)],
        "sleeve": ["core"] * (n - 2) + ["aggressor"] * 2,
        "weight": [0.9 / (n - 2)] * (n - 2) + [0.05, 0.05],
        "direction": ["LONG", "SHORT"] * (n // 2),
    })


def _history(n: int = 120) -> pl.DataFrame:
    labels = (["NORMAL"] * 40 + ["CRISIS"] * 20 + ["QUIET"] * 60)[:n]
    t = np.arange(n)
    return pl.DataFrame({
        "date": [date(2023, 1, 1) + timedelta(days=int(i)) for i in t],
        "regime": labels,
        "vol_short": 0.2 + 0.1 * np.sin(t / 9.0),
        "vol_long": np.full(n, 0.2),
        "vol_ratio": 1.0 + 0.5 * np.sin(t / 9.0),
    })


def test_weights_chart_is_a_png_that_grows_with_the_legs():
    small, large = _size(plot_weights_by_sleeve(_weights(6))), _size(plot_weights_by_sleeve(_weights(40)))
    assert small[0] == large[0] and large[1] > small[1]


def test_single_leg_and_missing_direction_are_fine():
    one = pl.DataFrame({"symbol": ["EX:A"], "sleeve": ["core"], "weight": [1.0]})
    assert _size(plot_weights_by_sleeve(one))[0] > 0


def test_charts_are_deterministic():
    assert plot_weights_by_sleeve(_weights()) == plot_weights_by_sleeve(_weights())
    assert plot_regime_history(_history()) == plot_regime_history(_history())
    cov = np.array([[1.0, 0.3], [0.3, 2.0]])
    assert plot_correlation_heatmap(["A", "B"], cov) == plot_correlation_heatmap(["A", "B"], cov)


def test_regime_history_png_for_two_years_is_small():
    png = plot_regime_history(_history(120).vstack(_history(120).with_columns(pl.col("date") + pl.duration(days=120))))
    width, height = _size(png)
    assert width > height and len(png) < 120_000


def test_heatmap_zero_variance_column_is_drawn_not_raised():
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert _size(plot_correlation_heatmap(["A", "B", "C"], cov))[0] > 0


@pytest.mark.parametrize("call, message", [
    (lambda: plot_weights_by_sleeve(_weights().drop("weight")), r"weights by sleeve: missing columns \['weight'\]"),
    (lambda: plot_weights_by_sleeve(_weights().clear()), "weights by sleeve: the frame is empty"),
    (lambda: plot_weights_by_sleeve(_weights().with_columns(sleeve=pl.lit("middle"))), r"unknown sleeves \['middle'\]"),
    (lambda: plot_regime_history(_history().with_columns(regime=pl.lit("PANIC"))), r"regime history: unknown regimes \['PANIC'\]"),
    (lambda: plot_correlation_heatmap(["A"], np.ones((1, 2))), "correlation heatmap: covariance must be square"),
    (lambda: plot_correlation_heatmap(["A"], np.eye(2)), "1 symbols for a covariance of shape"),
    (lambda: plot_correlation_heatmap(["A", "B"], np.array([[1.0, 0.1], [0.2, 1.0]])), "not symmetric"),
])
def test_bad_input_names_the_chart_and_the_fault(call, message):
    with pytest.raises(ValidationError, match=message):
        call()


def test_markdown_image_round_trips_the_bytes():
    png = plot_weights_by_sleeve(_weights())
    text = markdown_image(png, "weights on 2024-06-03")
    assert text.startswith("![weights on 2024-06-03](data:image/png;base64,") and text.endswith(")")
    assert base64.b64decode(text.split(",", 1)[1][:-1]) == png
