"""The whole graph, materialised with dagster for consecutive partitions of a small market."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from quant_assets import cli
from quant_assets.definitions import defs
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.contracts import BOOKS
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.resources import MarketDataResource
from quant_assets.pipeline import QuantitativePipeline

ASSET_NAMES = ["raw_screen", "liquid_universe", "signals", "regime", "covariance",
               "barbell_weights", "metadata_catalog", "portfolio_returns"]
DAYS = [date(2024, 6, 3) + timedelta(days=i) for i in range(3)]
SMALL = dict(n_instruments=400, seed=11)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Three consecutive partitions of all seven assets, materialised with dagster."""
    root = tmp_path_factory.mktemp("lake")
    resources = build_resources(lakehouse_root=str(root), **SMALL)
    with DagsterInstance.ephemeral() as instance:
        results = [
            materialize(ASSETS, partition_key=d.isoformat(), resources=resources, instance=instance)
            for d in DAYS
        ]
    return root, results


def test_definitions_load_the_daily_assets():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(ASSET_NAMES)
    for name in ASSET_NAMES:
        node = graph.get(AssetKey(name))
        assert node.partitions_def is not None
        assert node.partitions_def.get_partition_keys()[0] == "2022-01-01"
    assert defs.resolve_job_def("daily_workflow") is not None


def test_every_asset_written_per_partition(lake):
    root, results = lake
    assert all(r.success for r in results)
    store = PartitionStore(root)
    for name in ASSET_NAMES:
        assert store.partitions(name) == DAYS, name
        path = store.path(name, DAYS[1])
        assert str(path.parent) == str(root / name / f"date={DAYS[1]}") and path.is_file()
        frame = pl.read_parquet(path)
        assert frame.height > 0, name
        assert set(frame["date"].unique()) == {DAYS[1]}, name
    # Nothing was decided before the first day: nothing is held over it.
    assert store.read("portfolio_returns", DAYS[0]).is_empty()


def test_materialisation_metadata_and_checks(lake):
    _, results = lake
    result = results[-1]
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert set(mats) == set(ASSET_NAMES)
    meta = mats["signals"].materialization.metadata
    assert meta["dagster/row_count"].value > 0
    assert "preview" in meta and "dagster/column_schema" in meta
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["weights_valid"].passed
    assert checks["signals_have_tick_size"].passed
    assert checks["constituents_have_tick_size"].passed


def test_weights_sum_to_one_within_caps(lake):
    root, _ = lake
    store = PartitionStore(root)
    for day in DAYS:
        weights = store.read("barbell_weights", day)
        assert weights["weight"].sum() == pytest.approx(1.0, abs=1e-9)
        assert (weights["weight"] >= -1e-12).all()
        assert (weights["weight"] <= weights["cap"] + 1e-9).all()
        assert set(weights["sleeve"]) <= {"core", "aggressor"}
        legs = store.read("signals", day).filter(pl.col("selected"))
        assert set(weights["symbol"]) <= set(legs["symbol"])
        regime = store.read("regime", day)["regime"][0]
        assert (weights["regime"] == regime).all()


def test_signals_direction_from_config(lake):
    root, _ = lake
    signals = PartitionStore(root).read("signals", DAYS[0])
    directions = dict(signals.group_by("config").agg(pl.col("direction").unique()).iter_rows())
    assert directions["crypto_spot_short"] == ["SHORT"]
    assert directions["crypto_perps_long"] == ["LONG"]


def _copy_past_universe(root: Path, target: Path, day: date) -> None:
    """Give ``target`` the partitions before ``day`` that ``day`` reads: regime's lookback window
    of liquid universes, and the decisions the backtest holds over the day."""
    for asset in ("liquid_universe", "barbell_weights", "signals", "regime", "metadata_catalog"):
        for past in PartitionStore(root).partitions(asset):
            if past < day:
                PartitionStore(target).write(asset, past, PartitionStore(root).read(asset, past))


def test_rematerialising_a_partition_is_identical(lake, tmp_path):
    root, _ = lake
    _copy_past_universe(root, tmp_path, DAYS[1])
    resources = build_resources(lakehouse_root=str(tmp_path), **SMALL)
    assert materialize(ASSETS, partition_key=DAYS[1].isoformat(), resources=resources).success
    for name in ASSET_NAMES:
        a = PartitionStore(root).read(name, DAYS[1])
        b = PartitionStore(tmp_path).read(name, DAYS[1])
        assert a.equals(b), name


def test_lookahead_audit_changed_future_leaves_partition_byte_identical(lake, tmp_path):
    """Re-materialise a day on a market whose every draw after it is different."""
    root, _ = lake
    day = DAYS[1]
    _copy_past_universe(root, tmp_path, day)  # the same past; only the future differs
    resources = build_resources(lakehouse_root=str(tmp_path), **SMALL)
    # A new resource (model_copy would not reach the run: Dagster rebuilds resources from their
    # init values).
    resources["market_data"] = MarketDataResource(perturb_after=day.isoformat(), **SMALL)
    perturbed = resources["market_data"].get_source().market
    original = build_resources(**SMALL)["market_data"].get_source().market
    after = day + timedelta(days=1)
    assert not perturbed.screen(after).equals(original.screen(after))
    assert perturbed.screen(day).equals(original.screen(day))
    assert materialize(ASSETS, partition_key=day.isoformat(), resources=resources).success
    for name in ASSET_NAMES:
        ours = PartitionStore(root).path(name, day).read_bytes()
        audit = PartitionStore(tmp_path).path(name, day).read_bytes()
        assert ours == audit, name


def test_cli_sql_reads_views_over_partitions(lake, capsys):
    root, _ = lake
    code = cli.main(["sql", "SELECT date, regime FROM regime ORDER BY date",
                     "--lakehouse", str(root), "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["date"] for r in rows] == [d.isoformat() for d in DAYS]
    assert {r["regime"] for r in rows} <= {"QUIET", "NORMAL", "CRISIS"}

    query = (f"SELECT count(*) AS n FROM barbell_weights w "
             f"JOIN symbols_as_of(DATE '{DAYS[-1]}') s USING (symbol) "
             f"WHERE w.date = DATE '{DAYS[-1]}' AND s.tick_size > 0")
    assert cli.main(["sql", query, "--lakehouse", str(root), "--format", "csv"]) == 0
    n_joined = int(capsys.readouterr().out.splitlines()[1])
    n_weights = PartitionStore(root).read("barbell_weights", DAYS[-1]).height
    assert n_joined == n_weights > 0


def test_universe_as_of_joins_signals_weights_and_catalog(lake):
    root, _ = lake
    day = DAYS[-1]
    universe = sql.query(f"SELECT * FROM universe_as_of(DATE '{day}')", root)
    store = PartitionStore(root)
    selected = store.read("signals", day).filter(pl.col("selected"))
    weights = store.read("barbell_weights", day)
    assert universe.height == selected.height
    assert (universe["tick_size"] > 0).all()
    held = universe.filter(pl.col("weight").is_not_null()).unique("symbol")
    assert set(held["symbol"]) == set(weights["symbol"])
    assert held["weight"].sum() == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(duckdb.IOException, match=r"signals/date=2030-01-01/part-\*\.parquet"):
        sql.query("SELECT * FROM universe_as_of(DATE '2030-01-01')", root)


def test_cli_sql_error_is_reported_not_raised(lake, capsys):
    root, _ = lake
    assert cli.main(["sql", "SELECT * FROM no_such_asset", "--lakehouse", str(root)]) == 1
    assert "no_such_asset" in capsys.readouterr().err


def test_run_full_pipeline_returns_regime_weights_signals(tmp_path):
    pipeline = QuantitativePipeline(lakehouse=tmp_path, **SMALL)
    result = pipeline.run_full_pipeline(date=DAYS[0])
    assert result.regime["regime"] in {"QUIET", "NORMAL", "CRISIS"}
    assert result.weights["weight"].sum() == pytest.approx(1.0, abs=1e-9)
    assert result.signals["selected"].all() and result.signals.height > 0


def test_cli_run_shows_progress_and_report(tmp_path, capsys):
    code = cli.main(["run", "--start", str(DAYS[0]), "--end", str(DAYS[1]), "--lakehouse",
                     str(tmp_path), "--instruments", str(SMALL["n_instruments"]),
                     "--seed", str(SMALL["seed"])])
    out = capsys.readouterr().out
    assert code == 0
    assert "[2/2] partitions up to 2024-06-04 done" in out  # both days in one run
    assert "Regime:" in out and "Top core weights" in out and "Point-in-time catalog" in out
    assert PartitionStore(tmp_path).partitions("barbell_weights") == DAYS[:2]


README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_sql_examples_run_on_the_lakehouse(lake):
    """Every statement of the README's SQL block runs; the example day becomes a test day."""
    root, _ = lake
    block = README.read_text().split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip()]
    assert len(statements) == 4
    day = DAYS[-1].isoformat()
    results = [sql.query(s.replace("2026-11-20", day).replace("2026-11-21", "2099-01-01"), root)
               for s in statements]
    why_not, portfolio, universe, _changes = results
    assert why_not.height > 0 and why_not["rejected_by"].null_count() < why_not.height
    assert portfolio.height == PartitionStore(root).read("barbell_weights", DAYS[-1]).height
    assert (portfolio["tick_size"] > 0).all()
    assert universe.height == PartitionStore(root).read("signals", DAYS[-1])["selected"].sum()


def test_readme_backtest_queries_run_and_agree_with_the_partitions(lake):
    """The README's backtest SQL block runs; its example days become the test's days."""
    root, _ = lake
    block = README.read_text().split("```sql\n")[2].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip()]
    assert len(statements) == 4
    performance, by_regime, equity, legs = [
        sql.query(s.replace("2026-01-01", "2024-01-01").replace("2026-12-31", "2024-12-31")
                  .replace("2026-11-20", DAYS[-1].isoformat()), root) for s in statements]
    store = PartitionStore(root)
    # Nothing was held over the first day; the two days after it earned something.
    assert set(performance["book"]) == set(BOOKS) and (performance["days"] == 2).all()
    assert set(by_regime["book"]) == set(BOOKS) and by_regime["days"].sum() == 2 * len(BOOKS)
    earned = [store.read("portfolio_returns", d).filter(pl.col("book") == "barbell")["net_return"][0] for d in DAYS[1:]]
    assert equity["date"].to_list() == DAYS[1:]
    assert equity["nav"].to_list() == pytest.approx([1 + earned[0], (1 + earned[0]) * (1 + earned[1])], abs=1e-14)
    barbell = store.read("portfolio_returns", DAYS[-1]).filter(pl.col("book") == "barbell").row(0, named=True)
    assert legs["contribution"].sum() == pytest.approx(barbell["gross_return"], abs=1e-14)
    assert legs["cost"].sum() == pytest.approx(barbell["cost"], abs=1e-14)
    held = store.read("barbell_weights", DAYS[-2])  # the book decided the day before
    assert set(legs.filter(pl.col("weight") > 0)["symbol"]) == set(held.filter(pl.col("weight") > 0)["symbol"])


def test_report_prints_the_tables_and_writes_the_tearsheet(lake, tmp_path, capsys):
    root, _ = lake
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    assert cli.main(["report", "--lakehouse", str(root), "--output", str(page)]) == 0
    out = capsys.readouterr().out
    assert f"What the book earned, {DAYS[1]}..{DAYS[-1]}" in out and "By regime" in out
    assert all(book in out for book in BOOKS)
    text = page.read_text()
    assert text.count("<table>") == 2 and "data:image/png;base64," in text
    assert cli.main(["report", "--lakehouse", str(root), "--start", str(DAYS[2]), "--output", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"What the book earned, {DAYS[2]}..{DAYS[2]}" in capsys.readouterr().out
    assert cli.main(["report", "--lakehouse", str(root), "--output", str(tmp_path / "report.pdf")]) == 1
    assert "expected a .html or .png" in capsys.readouterr().err
    assert cli.main(["report", "--lakehouse", str(root), "--start", "2030-01-01"]) == 1
    assert "no portfolio_returns rows between 2030-01-01" in capsys.readouterr().err
