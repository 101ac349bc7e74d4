"""Regime detection scored against the synthetic market's hidden regime path.

The detector (:func:`quant_assets.risk.regime.detect_regimes`, with the settings the ``regime``
asset uses) runs on the equal-weight daily return of every listed instrument over the
partitions' span; its labels are compared with the hidden QUIET / NORMAL / CRISIS path.
Printed: balanced accuracy (mean recall of the three labels), days from each true CRISIS onset
to the first CRISIS label, and label changes a month, against the truth's own.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from quant_assets.risk.returns import build_returns_panel, equal_weight_market_returns
from quant_assets.risk.regime import detect_regimes
from quant_assets.risk.settings import RiskSettings
from quant_assets.sources.synthetic import SyntheticMarketConfig, SyntheticSource

START, END = date(2022, 1, 1), date(2026, 11, 24)
REGIMES = ("QUIET", "NORMAL", "CRISIS")
#: A detected change this many days after a true change answers it; any other is spurious.
ANSWER_WINDOW_DAYS = 10


def score(detected: list[str], truth: list[str]) -> dict[str, float]:
    """Balanced accuracy, median CRISIS detection delay, label changes a month (30 days)."""
    d, t = np.array(detected), np.array(truth)
    recalls = [float(np.mean(d[t == r] == r)) for r in REGIMES if (t == r).any()]
    onsets = [i for i in range(1, t.size) if t[i] == "CRISIS" and t[i - 1] != "CRISIS"]
    delays, missed = [], 0
    for i in onsets:
        # The episode, plus a grace period for a detector that lags its end.
        stop = i + int(np.argmax(t[i:] != "CRISIS")) if (t[i:] != "CRISIS").any() else t.size
        hits = np.flatnonzero(d[i : stop + ANSWER_WINDOW_DAYS] == "CRISIS")
        if hits.size:
            delays.append(int(hits[0]))
        else:
            missed += 1
    true_changes = np.flatnonzero(t[1:] != t[:-1]) + 1
    detected_changes = np.flatnonzero(d[1:] != d[:-1]) + 1
    spurious = sum(
        1 for i in detected_changes
        if not ((true_changes <= i) & (true_changes >= i - ANSWER_WINDOW_DAYS)).any()
    )
    months = t.size / 30.0
    return {
        "balanced_accuracy": float(np.mean(recalls)),
        "onsets": len(onsets),
        "missed": missed,
        "median_delay_days": float(np.median(delays)) if delays else float("nan"),
        "max_delay_days": float(max(delays)) if delays else float("nan"),
        "changes_per_month": detected_changes.size / months,
        "true_changes_per_month": true_changes.size / months,
        "spurious_per_month": spurious / months,
    }


def main() -> None:
    source = SyntheticSource(SyntheticMarketConfig())
    market = source.market
    symbols = market.instruments["symbol"].to_list()
    settings = RiskSettings()
    bars = source.daily_bars(symbols, START, END)
    panel = build_returns_panel(bars, END, (END - START).days, min_observations=60)
    detected = detect_regimes(equal_weight_market_returns(panel), panel.dates, settings.regime)
    scored = detected.filter(~pl.col("warm_up")).join(
        market.regime_path(START, END).rename({"regime": "truth"}), on="date"
    )
    result = score(scored["regime"].to_list(), scored["truth"].to_list())
    print(f"regime detection vs hidden path, {scored['date'][0]}..{scored['date'][-1]} "
          f"({scored.height} days, {len(panel.symbols)} instruments, equal-weight market)")
    print(f"  balanced accuracy            {result['balanced_accuracy']:.3f}   (target >= 0.8)")
    print(f"  CRISIS onsets                {result['onsets']}, missed {result['missed']}")
    print(f"  detection delay, median      {result['median_delay_days']:.1f} days (target <= 5), "
          f"max {result['max_delay_days']:.0f}")
    print(f"  label changes a month        {result['changes_per_month']:.2f} "
          f"(truth {result['true_changes_per_month']:.2f})")
    print(f"  spurious changes a month     {result['spurious_per_month']:.2f}   (target < 1; a change "
          f"more than {ANSWER_WINDOW_DAYS} days after any true change)")
    confusion = scored.group_by("truth", "regime").len().sort("truth", "regime")
    print("  confusion (truth, detected, days):",
          ", ".join(f"{a}/{b}={n}" for a, b, n in confusion.iter_rows()))


if __name__ == "__main__":
    main()
