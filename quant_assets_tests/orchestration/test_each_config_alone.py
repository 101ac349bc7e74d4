"""Each shipped config on its own, as a new user runs it (`quant-assets run --config ...`), over
a week with a weekend: every asset, every day, whatever the config's markets and book size."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from quant_assets.lakehouse.contracts import BOOKS, contract_problems
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.runner import materialise_days
from quant_assets.risk.daily import check_weights

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
#: Thursday to Wednesday: a Saturday and a Sunday in the middle of one run.
WEEK = [date(2024, 6, 6) + timedelta(days=k) for k in range(7)]
FRIDAY = date(2024, 6, 7)
WEEKDAY_MARKETS = {"futures", "america", "forex"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_a_shipped_config_alone_materialises_every_asset_every_day(config, tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # an ephemeral instance, not the user's
    materialise_days(WEEK, build_resources(lakehouse_root=str(tmp_path), config_paths=[str(config)]))

    store = PartitionStore(tmp_path)
    for asset in (a.key.path[-1] for a in ASSETS):
        for day in WEEK:
            frame = store.read(asset, day)
            assert contract_problems(asset, frame, day) == [], (asset, day)

    weekday_only = set(store.read("raw_screen", WEEK[0])["market"].unique()) <= WEEKDAY_MARKETS
    for day in WEEK:
        regime, weights = store.read("regime", day), store.read("barbell_weights", day)
        assert regime.height == 1 and regime["date"][0] == day
        closed = weekday_only and day.weekday() >= 5
        # A weekend partition reflects the Friday session of markets closed on weekends.
        assert regime["session"][0] == (FRIDAY if closed else day), day
        assert check_weights(weights) == [], day
        if weights.height:
            assert weights["session"].unique().to_list() == [FRIDAY if closed else day]
    # A closed market's weekend repeats Friday's book: same names, same weights.
    if weekday_only:
        friday = store.read("barbell_weights", FRIDAY).drop("date")
        for day in (date(2024, 6, 8), date(2024, 6, 9)):
            assert store.read("barbell_weights", day).drop("date").equals(friday)
    assert any(store.read("barbell_weights", day).height for day in WEEK), "no book all week"

    # The backtest: nothing held over the first day, every book every day after it.
    assert store.read("portfolio_returns", WEEK[0]).is_empty()
    earned = {day: store.read("portfolio_returns", day) for day in WEEK[1:]}
    assert all(frame["book"].to_list() == list(BOOKS) for frame in earned.values())
    if weekday_only:
        saturday, sunday, monday = date(2024, 6, 8), date(2024, 6, 9), date(2024, 6, 10)
        for day in (saturday, sunday):  # closed markets: the legs earn nothing
            assert (earned[day]["gross_return"] == 0.0).all(), day
        for day in (sunday, monday):  # the weekend's books are Friday's, undrifted: nothing to trade
            assert (earned[day]["turnover"] == 0.0).all(), day
