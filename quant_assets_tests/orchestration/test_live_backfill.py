"""A backfill of past partitions with the live source pointed at the fakes (the HTTP scanner
and the chart websocket): screens reconstructed from bars, all seven assets written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.resources import MarketDataResource
from quant_assets.orchestration.runner import materialise_days
from quant_assets.sources.synthetic import SyntheticMarketConfig, get_market
from quant_assets_tests.sources.tradingview.conftest import chart_feed_in_thread, fake_in_thread

NAMES = [a.key.to_user_string() for a in ASSETS]


def test_live_source_backfills_past_partitions_from_the_fakes(tmp_path, monkeypatch):
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=k) for k in (4, 3, 2)]
    market = get_market(SyntheticMarketConfig(n_instruments=300, seed=9))
    with fake_in_thread(market, as_of=today) as scanner, chart_feed_in_thread(market, as_of=today) as chart_url:
        monkeypatch.setenv("QUANT_ASSETS_TRADINGVIEW_CHART_URL", chart_url)
        resources = build_resources(lakehouse_root=str(tmp_path), source="tradingview", seed=9, n_instruments=300)
        # A new resource, not model_copy: Dagster rebuilds resources from their init values.
        resources["market_data"] = MarketDataResource(source="tradingview", seed=9, n_instruments=300,
                                                      tradingview_url=scanner.url)
        materialise_days(days, resources)
    store = PartitionStore(tmp_path)
    for name in NAMES:
        assert store.partitions(name) == days, name
    raw = store.read("raw_screen", days[0])
    assert raw["reconstructed"].all()  # flagged: recomputed from bars, not what the scanner said
    assert set(raw["symbol"]) <= set(market.screen(today)["symbol"])  # only instruments listed today
    weights = store.read("barbell_weights", days[-1])
    assert abs(weights["weight"].sum() - 1.0) < 1e-9
    assert len(list((tmp_path / "_bars").iterdir())) > 50  # bars kept for the next run
    assert store.read("regime", days[-1])["regime"][0] in {"QUIET", "NORMAL", "CRISIS"}
    assert isinstance(store.read("covariance", days[-1]), pl.DataFrame)
