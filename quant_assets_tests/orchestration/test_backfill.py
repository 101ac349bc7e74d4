"""Dagster-native operations: single-run backfills, the regime's lookback window, checks on
every asset, step retries on the network asset only, and an object-storage lakehouse root."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import polars as pl
import pytest
from dagster import AssetKey, BackfillPolicy, DagsterEventType, DagsterInstance, materialize

from quant_assets.errors import SourceConnectionError
from quant_assets.lakehouse.contracts import BOOKS
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration import assets as assets_module
from quant_assets.orchestration.assets import ASSETS, SCREENER_POOL
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.resources import MarketDataResource
from quant_assets.orchestration.runner import materialise_days
from quant_assets.definitions import defs

NAMES = [a.key.to_user_string() for a in ASSETS]
DAYS = [date(2024, 6, 3) + timedelta(days=i) for i in range(5)]
SMALL = dict(n_instruments=400, seed=11)
RANGE_TAGS = {"dagster/asset_partition_range_start": DAYS[0].isoformat(),
              "dagster/asset_partition_range_end": DAYS[-1].isoformat()}


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """Five partitions of every asset in one Dagster run."""
    root = tmp_path_factory.mktemp("single")
    with DagsterInstance.ephemeral() as instance:
        result = materialize(ASSETS, resources=build_resources(lakehouse_root=str(root), **SMALL),
                             instance=instance, tags=RANGE_TAGS)
        runs = instance.get_runs_count()
    return root, result, runs


def _materialisations(result) -> dict[tuple[str, str], dict]:
    return {(m.asset_key.to_user_string(), m.partition): m.metadata
            for m in result.get_asset_materialization_events() for m in [m.materialization]}


def test_single_run_backfill_equals_one_run_per_partition(single_run, tmp_path):
    root, result, runs = single_run
    assert result.success and runs == 1
    materialise_days(DAYS, build_resources(lakehouse_root=str(tmp_path), **SMALL), max_days_per_run=1)
    single, per = PartitionStore(root), PartitionStore(tmp_path)
    for name in NAMES:
        assert single.partitions(name) == DAYS == per.partitions(name), name
        for day in DAYS:
            assert single.read(name, day).equals(per.read(name, day)), (name, day)


def test_each_partition_of_a_range_run_gets_its_own_metadata(single_run):
    root, result, _ = single_run
    metadata = _materialisations(result)
    assert set(metadata) == {(name, day.isoformat()) for name in NAMES for day in DAYS}
    for (name, key), meta in metadata.items():
        stored = PartitionStore(root).read(name, key)
        if name != "liquid_universe":  # its row count is every candidate, its preview the members
            assert meta["dagster/row_count"].value == stored.height, (name, key)
        assert meta["parquet"].value == str(PartitionStore(root).partition_dir(name, key))
    # One picture a run, on its newest partition.
    newest, oldest = DAYS[-1].isoformat(), DAYS[0].isoformat()
    for name, picture in (("barbell_weights", "weights_by_sleeve"), ("regime", "regime_history"),
                          ("covariance", "correlation"), ("portfolio_returns", "tearsheet")):
        assert metadata[(name, newest)][picture].value.startswith("![")
        assert "data:image/png;base64," in metadata[(name, newest)][picture].value
        assert picture not in metadata[(name, oldest)]
    # The tearsheet's table: one row per book over the run's days.
    table = metadata[("portfolio_returns", newest)]["performance"].value
    assert table.startswith("| book | start | end | days |")
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == [f"| {book}" for book in BOOKS]
    assert metadata[("portfolio_returns", oldest)]["empty"].value.startswith("no barbell_weights partition before")


def test_perturbing_every_input_after_a_day_changes_no_backtest_partition_up_to_it(single_run, tmp_path):
    """The lookahead proof: a market redrawn after ``cut`` (bars, screens, hence every asset
    after it) leaves every partition up to ``cut`` as it was, and changes the days after it."""
    root, _, _ = single_run
    cut = DAYS[2]
    resources = build_resources(lakehouse_root=str(tmp_path), **SMALL)
    resources["market_data"] = MarketDataResource(perturb_after=cut.isoformat(), **SMALL)
    assert materialize(ASSETS, resources=resources, tags=RANGE_TAGS).success
    ours, audit = PartitionStore(root), PartitionStore(tmp_path)
    for name in NAMES:
        for day in DAYS:
            if day <= cut:
                assert ours.read(name, day).equals(audit.read(name, day)), (name, day)
    changed = [day for day in DAYS if day > cut
               and not ours.read("portfolio_returns", day).equals(audit.read("portfolio_returns", day))]
    assert changed == [d for d in DAYS if d > cut]


def test_every_asset_has_a_passing_contract_check_and_its_own_checks(single_run):
    _, result, _ = single_run
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    for name in NAMES:
        assert evaluations[(name, "contract")].passed, name
    for check in [("regime", "label_valid"), ("covariance", "symmetric_psd"), ("barbell_weights", "weights_valid"),
                  ("barbell_weights", "constituents_have_tick_size"), ("metadata_catalog", "signals_have_tick_size"),
                  ("raw_screen", "all_configs_answered"), ("portfolio_returns", "legs_add_up")]:
        evaluation = evaluations[check]
        assert evaluation.passed, check
        assert evaluation.metadata["partitions_checked"].value == len(DAYS)


def test_regime_lookback_window_records_missing_partitions(single_run):
    _, result, _ = single_run
    metadata = _materialisations(result)
    newest = metadata[("regime", DAYS[-1].isoformat())]
    assert newest["universe_window"].value.startswith(f"{DAYS[-1] - timedelta(days=29)}..{DAYS[-1]}")
    # The backfill holds 5 of the 30 days of the window; the other 25 were never materialised.
    assert newest["universe_partitions_missing"].value.startswith("25 not materialised: 2024-05-09")


def test_lookback_near_the_start_tolerates_partitions_before_it(tmp_path):
    start = date(2022, 1, 1)
    result = materialize(ASSETS, resources=build_resources(lakehouse_root=str(tmp_path), **SMALL),
                         partition_key="2022-01-02", selection=["raw_screen", "liquid_universe", "regime"])
    assert result.success
    meta = _materialisations(result)[("regime", "2022-01-02")]
    assert meta["universe_partitions_missing"].value == (
        f"28 before the first partition {start}; 1 not materialised: 2022-01-01")


def test_blocking_check_failure_stops_the_portfolio_and_names_the_symbol(tmp_path, monkeypatch):
    monkeypatch.setattr(assets_module, "missing_tick_sizes", lambda observations: ["BINANCE:NOTICKUSDT"])
    result = materialize(ASSETS, resources=build_resources(lakehouse_root=str(tmp_path), **SMALL),
                         partition_key=DAYS[0].isoformat(), raise_on_error=False)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "signals_have_tick_size")
    assert not check.passed
    assert "BINANCE:NOTICKUSDT" in check.metadata["problems"].value
    assert not PartitionStore(tmp_path).exists("barbell_weights", DAYS[0])


def test_unreachable_screener_retries_the_raw_screen_step(tmp_path, monkeypatch):
    real, calls = assets_module.fetch_raw_screen, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise SourceConnectionError("scanner unreachable after the client's retries")
        return real(*args, **kwargs)

    monkeypatch.setattr(assets_module, "fetch_raw_screen", flaky)
    result = materialize(ASSETS, resources=build_resources(lakehouse_root=str(tmp_path), **SMALL),
                         partition_key=DAYS[0].isoformat(), selection=["raw_screen"])
    assert result.success and len(calls) == 2
    restarts = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_RESTARTED]
    assert [e.step_key for e in restarts] == ["raw_screen"]


def test_operations_are_declared_on_the_assets():
    graph = defs.resolve_asset_graph()
    for name in NAMES:
        node = graph.get(AssetKey(name))
        assert node.backfill_policy == BackfillPolicy.single_run(), name
    raw = next(a for a in ASSETS if a.key == AssetKey("raw_screen"))
    assert raw.op.retry_policy.max_retries == 3 and raw.op.pool == SCREENER_POOL
    assert all(a.op.retry_policy is None for a in ASSETS if a is not raw)
    checks = {(k.asset_key.to_user_string(), k.name) for a in ASSETS for k in a.check_keys}
    assert {(name, "contract") for name in NAMES} <= checks
    schedule = defs.resolve_schedule_def("daily_workflow_schedule")
    assert schedule.job_name == "daily_workflow" and schedule.cron_schedule == "0 1 * * *"


def test_object_storage_lakehouse_root_runs_the_whole_graph():
    root = f"memory://lake-{uuid.uuid4().hex}"
    materialise_days(DAYS[:1], build_resources(lakehouse_root=root, **SMALL))
    store = PartitionStore(root)
    for name in NAMES:
        assert store.partitions(name) == DAYS[:1], name
    assert store.read("barbell_weights", DAYS[0])["weight"].sum() == pytest.approx(1.0, abs=1e-9)
    assert isinstance(store.read("covariance", DAYS[0]), pl.DataFrame)
