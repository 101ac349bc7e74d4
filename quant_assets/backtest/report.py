"""What the book earned, as people read it: the daily series from the lakehouse, the summary
table (:mod:`~quant_assets.backtest.performance`) and the tearsheet picture
(:mod:`~quant_assets.reporting.tearsheet`), for the Dagster UI, ``quant-assets report`` and its
HTML page."""

from __future__ import annotations

import base64
import html
from datetime import date

import polars as pl
from matplotlib.figure import Figure

from quant_assets.backtest.books import RETURNS_SCHEMA
from quant_assets.backtest.performance import equity_curves, performance, performance_by_regime
from quant_assets.lakehouse.contracts import SHARPE_WINDOW
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.reporting.charts import render_png
from quant_assets.reporting.tearsheet import draw_tearsheet


#: The daily series: ``portfolio_returns`` without its legs.
SERIES_SCHEMA = {column: dtype for column, dtype in RETURNS_SCHEMA.items() if column != "legs"}


def history(store: PartitionStore, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    """Every ``portfolio_returns`` row from ``start`` to ``end`` (inclusive; None: unbounded),
    without its legs, sorted by date and book."""
    days = [d for d in store.partitions("portfolio_returns")
            if (start is None or d >= start) and (end is None or d <= end)]
    frames = store.read_many("portfolio_returns", days, list(SERIES_SCHEMA)).values()
    return pl.concat([pl.DataFrame(schema=SERIES_SCHEMA), *frames]).sort("date", "book")


def tearsheet(daily: pl.DataFrame) -> tuple[Figure, pl.DataFrame]:
    """The picture of ``daily`` (``portfolio_returns`` rows) and its performance table."""
    regimes = daily.filter(pl.col("book") == "barbell").select("date", "regime").sort("date")
    return draw_tearsheet(equity_curves(daily), regimes, SHARPE_WINDOW), performance(daily)


def html_report(daily: pl.DataFrame, title: str) -> str:
    """A self-contained HTML page: the performance table, the same by regime, the tearsheet."""
    figure, table = tearsheet(daily)
    png = base64.b64encode(render_png(figure)).decode()
    by_regime = performance_by_regime(daily)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f3f3f3}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Performance</h2>{_html_table(table)}
<h2>By regime (the regime on the day each book was decided)</h2>{_html_table(by_regime)}
<h2>Tearsheet</h2><img alt="equity, drawdown and rolling Sharpe" src="data:image/png;base64,{png}">
</body></html>
"""


def _html_table(frame: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        text = "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in frame.iter_rows())
    return f"<table><tr>{head}</tr>{rows}</table>"
