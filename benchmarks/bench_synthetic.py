"""Synthetic market: time to simulate a 10,000-instrument, 3-year panel with every screener
indicator, to screen one date, and vectorised ADX against a per-instrument Python loop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date
from typing import TypeVar

import numpy as np
import polars as pl

from quant_assets.sources.screener import indicators
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig

N_INSTRUMENTS = 10_000
AS_OF = date(2023, 12, 31)  # the panel then spans 2021-01-01 .. 2023-12-31
LOOP_SAMPLE = 500

T = TypeVar("T")


def _adx_loop(high: list[float], low: list[float], close: list[float], period: int = 14) -> list[float]:
    """Baseline: one instrument's ADX as a plain loop over its bars (no gaps)."""

    def rma(values: list[float]) -> list[float]:
        out, window, state = [], [], None
        for x in values:
            if math.isnan(x):
                out.append(math.nan)
                continue
            if state is None:
                window.append(x)
                state = sum(window) / period if len(window) == period else None
            else:
                state = (state * (period - 1) + x) / period
            out.append(math.nan if state is None else state)
        return out

    plus, minus, tr = [math.nan], [math.nan], [math.nan]
    for i in range(1, len(close)):
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        plus.append(up if up > down and up > 0 else 0.0)
        minus.append(down if down > up and down > 0 else 0.0)
        tr.append(max(high[i], close[i - 1]) - min(low[i], close[i - 1]))
    dx = []
    for t, p, m in zip(rma(tr), rma(plus), rma(minus)):
        if math.isnan(t) or t == 0:
            dx.append(math.nan if math.isnan(t) else 0.0)
            continue
        pdi, mdi = 100 * p / t, 100 * m / t
        dx.append(100 * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi else 0.0)
    return rma(dx)


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    config = SyntheticMarketConfig(n_instruments=N_INSTRUMENTS)
    market, universe_s = _timed(lambda: SyntheticMarket(config))
    screen, panel_s = _timed(lambda: market.screen(AS_OF))
    n_days = (AS_OF - config.start).days + 1
    cells = n_days * N_INSTRUMENTS
    _, screen_s = _timed(lambda: market.screen(date(2023, 6, 30)))
    sample = market.instruments["symbol"].to_list()[:: N_INSTRUMENTS // LOOP_SAMPLE][:LOOP_SAMPLE]
    bars, bars_s = _timed(lambda: market.bars(config.start, AS_OF, sample))

    # ADX on the sample: the vectorised panel function against the plain loop per instrument.
    calendar = pl.date_range(config.start, AS_OF, eager=True).to_frame("date")
    panels = {
        name: calendar.join(bars.pivot(on="symbol", index="date", values=name), on="date", how="left")
        .drop("date")
        .to_numpy()
        .astype(np.float64)
        for name in ("high", "low", "close")
    }
    _, vector_s = _timed(lambda: indicators.adx(panels["high"], panels["low"], panels["close"]))
    per_symbol = bars.partition_by("symbol", maintain_order=True)
    _, loop_s = _timed(
        lambda: [_adx_loop(*(g[c].to_list() for c in ("high", "low", "close"))) for g in per_symbol]
    )

    print(f"synthetic market: {N_INSTRUMENTS:,} instruments x {n_days:,} days ({config.start} .. {AS_OF})")
    print(f"  universe (instruments, listings, clones)   {universe_s:8.2f} s")
    print(
        f"  panel: simulate bars + all indicators      {panel_s:8.2f} s"
        f"   {cells / panel_s:12,.0f} instrument-days/s"
    )
    print(
        f"  screen one date (panel cached)             {screen_s:8.4f} s"
        f"   {screen.height / screen_s:12,.0f} rows/s ({screen.height:,} rows)"
    )
    print(
        f"  bars, {len(sample)} symbols x 3 years             {bars_s:8.3f} s"
        f"   {bars.height / bars_s:12,.0f} rows/s"
    )
    print(
        f"  ADX on {len(sample)} instruments: vectorised {vector_s:.3f} s, per-instrument loop "
        f"{loop_s:.3f} s -> {loop_s / vector_s:.1f}x"
    )
