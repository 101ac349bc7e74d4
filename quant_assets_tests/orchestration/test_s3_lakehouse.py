"""The whole workflow with its lakehouse on a real S3 protocol (moto's server on 127.0.0.1,
signatures checked): every asset materialised into ``s3://bucket/prefix`` by ``quant-assets
run`` and by Dagster's own step subprocesses equals a local run of the same partitions; the SQL
surface answers the same over both; the credentials, given only through the environment, are
never written anywhere; and a wrong secret or a missing bucket is an error naming the root."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from quant_assets import cli
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.contracts import CONTRACTS
from quant_assets.lakehouse.store import PartitionStore
from quant_assets.orchestration.assets import ASSETS
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.runner import materialise_days
from quant_assets_tests.s3_server import lakehouse_on, s3_server

REPO = Path(__file__).resolve().parents[2]
NAMES = [a.key.to_user_string() for a in ASSETS]
DAYS = [date(2024, 6, 3) + timedelta(days=i) for i in range(3)]
SMALL = dict(n_instruments=400, seed=11)
CLI = [sys.executable, "-m", "quant_assets.cli"]


@dataclasses.dataclass(frozen=True)
class Runs:
    """What the module's runs left: the S3 lakehouse, the local one, and every trace to search
    for the secret (outputs, Dagster homes)."""

    root: str
    local: Path
    outputs: dict[str, str]
    homes: list[Path]
    seconds: dict[str, float]


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def server():
    with s3_server() as running:
        yield running


@pytest.fixture(scope="module")
def runs(server, tmp_path_factory) -> Runs:
    """Three days of every asset: on S3 by ``quant-assets run`` in a subprocess (the lakehouse
    and the credentials in its environment only), locally in this process."""
    scratch = tmp_path_factory.mktemp("s3_runs")
    root = f"{server.create_bucket()}/lakehouse"
    home = scratch / "dagster_home"
    env = {**server.env(root), "DAGSTER_HOME": str(home)}
    started = time.monotonic()
    run = _cli(env, "run", "--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat(),
               "--instruments", str(SMALL["n_instruments"]), "--seed", str(SMALL["seed"]), "--verbose", timeout=600)
    on_s3 = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    local = scratch / "local"
    started = time.monotonic()
    materialise_days(DAYS, build_resources(lakehouse_root=str(local), **SMALL))
    return Runs(root, local, {"quant-assets run": run.stdout + run.stderr}, [home],
                {"s3": on_s3, "local": time.monotonic() - started})


def test_every_asset_materialised_on_s3_equals_a_local_run(runs, server):
    with lakehouse_on(server):
        s3, local = PartitionStore(runs.root), PartitionStore(runs.local)
        assert str(s3.root) == runs.root
        for name in NAMES:
            assert s3.partitions(name) == DAYS == local.partitions(name), name
            assert len(s3.versions(name, DAYS[0])) == 1, name
            for day in DAYS:
                assert s3.read(name, day).equals(local.read(name, day)), (name, day)
        # The risk stages read their prices through the bars cache, kept in the bucket.
        assert server.keys(runs.root, "lakehouse/_bars/")
    out = runs.outputs["quant-assets run"]
    assert f"into {runs.root}" in out and "Point-in-time catalog" in out  # answered by SQL over S3


CLI_COMMANDS = [
    ["sql", f"SELECT * FROM universe_as_of(DATE '{DAYS[-1]}') ORDER BY config, symbol", "--format", "csv"],
    ["sql", "SELECT * FROM performance()", "--format", "csv"],
    ["sql", f"SELECT r.date, r.regime, count(*) AS n FROM regime r JOIN symbols_as_of(DATE '{DAYS[1]}') s ON true "
            "GROUP BY ALL ORDER BY r.date", "--format", "json"],
    ["report"],
]


@pytest.mark.parametrize("command", CLI_COMMANDS, ids=["universe_as_of", "performance", "symbols_as_of", "report"])
def test_cli_over_s3_answers_as_over_a_local_lakehouse(runs, server, command, capsys):
    over_s3 = _cli(server.env(runs.root), *command)
    assert over_s3.returncode == 0, over_s3.stderr
    assert cli.main([*command, "--lakehouse", str(runs.local)]) == 0
    on_disk = capsys.readouterr().out
    assert str(DAYS[-1]) in over_s3.stdout  # an answer, not an empty table
    assert over_s3.stdout == on_disk
    runs.outputs[" ".join(command)] = over_s3.stdout + over_s3.stderr


def test_every_point_in_time_macro_over_s3_answers_as_over_a_local_lakehouse(runs, server):
    queries = [f"SELECT * FROM {asset}_as_of(DATE '{day}') ORDER BY ALL" for asset in CONTRACTS for day in DAYS]
    queries += ["SELECT * FROM performance_by_regime()", "SELECT * FROM portfolio_equity ORDER BY book, date",
                "SELECT * FROM portfolio_legs ORDER BY ALL",
                # The two runs were recorded at different times: everything else must agree.
                "SELECT * EXCLUDE (recorded_at) FROM symbol_versions() ORDER BY symbol, version",
                "SELECT * EXCLUDE (recorded_at) FROM catalog_known(known_at := now()) ORDER BY ALL"]
    with lakehouse_on(server), sql.connect(runs.root) as remote, sql.connect(runs.local) as disk:
        for query in queries:
            got, want = remote.sql(query).pl(), disk.sql(query).pl()
            assert got.height > 0 or query.startswith("SELECT * FROM portfolio_returns_as_of"), query
            assert got.equals(want), query


def _materialize(env: dict[str, str], home: Path, select: str, day: date) -> subprocess.CompletedProcess:
    """``dagster asset materialize`` of ``select`` for ``day``, recorded in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    config = {"resources": {"market_data": {"config": SMALL}}}
    return subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "quant_assets.definitions",
         "--select", select, "--partition", day.isoformat(), "--config-json", json.dumps(config)],
        cwd=REPO, env={**env, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=600)


def test_dagster_step_subprocesses_materialise_into_s3(runs, server, tmp_path):
    """``dagster asset materialize``: the multiprocess executor runs each step in a process of
    its own, every one of them finding the bucket and credentials in its environment."""
    root = f"{server.create_bucket()}/lakehouse"
    home = tmp_path / "dagster_home"
    done = _materialize(server.env(root), home, "raw_screen,liquid_universe,signals", DAYS[1])
    runs.outputs["dagster asset materialize"] = done.stdout + done.stderr
    runs.homes.append(home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "multiprocess" in done.stdout + done.stderr  # steps ran in processes of their own
    with lakehouse_on(server):
        s3, local = PartitionStore(root), PartitionStore(runs.local)
        for name in ("raw_screen", "liquid_universe", "signals"):
            assert s3.partitions(name) == [DAYS[1]], name
            assert s3.read(name, DAYS[1]).equals(local.read(name, DAYS[1])), name


def test_a_wrong_secret_or_a_missing_bucket_fails_naming_the_root(runs, server, tmp_path):
    wrong = "Wr0ngButDistinctive" + "Z" * 21
    bad = dataclasses.replace(server, secret_access_key=wrong)
    for args in (["sql", "SELECT * FROM regime"], ["doctor"]):
        failed = _cli(bad.env(runs.root), *args)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"lakehouse {runs.root}: cannot list" in failed.stderr and "access denied" in failed.stderr
        assert wrong not in failed.stdout + failed.stderr and server.secret_access_key not in failed.stderr
    missing = "s3://no-such-bucket-anywhere/lakehouse"
    failed = _cli(server.env(missing), "sql", "SELECT * FROM regime")
    assert failed.returncode == 1
    assert f"lakehouse {missing}: cannot list it: The specified bucket does not exist" in failed.stderr
    # A run: its step fails reading its input (an asset without retries: raw_screen would
    # retry for half a minute), and Dagster stores the error.
    home = tmp_path / "dagster_home"
    run = _materialize(bad.env(runs.root), home, "regime", DAYS[1])
    runs.outputs["run with a wrong secret"] = run.stdout + run.stderr
    runs.homes.append(home)
    assert run.returncode != 0
    said = run.stdout + run.stderr
    assert f"lakehouse {runs.root}: cannot list" in said and "access denied" in said
    assert wrong not in run.stdout + run.stderr
    assert not [p for p in home.rglob("*") if p.is_file() and wrong.encode() in p.read_bytes()]


def test_the_secret_is_never_printed_logged_or_stored(runs, server):
    """Searched for: the secret, in every output of the runs and queries above (at Dagster's
    DEBUG level), in a query run with every library's debug logging on, in every file of the
    Dagster homes (event logs, run storage, compute logs), in every object of the bucket and in
    the server's log."""
    debug = subprocess.run(
        [sys.executable, "-c", "import logging, sys\nlogging.basicConfig(level=logging.DEBUG)\n"
         "from quant_assets import cli\nsys.exit(cli.main(sys.argv[1:]))", "sql", "SELECT count(*) FROM signals"],
        cwd=REPO, env=server.env(runs.root), capture_output=True, text=True, timeout=300)
    assert debug.returncode == 0, debug.stderr[-3000:]
    assert "botocore" in debug.stderr and "Authorization" in debug.stderr  # the requests were logged
    traces = {**runs.outputs, "sql with debug logging": debug.stdout + debug.stderr}
    assert len(traces) >= 2 and all(traces.values())
    secret = server.secret_access_key
    for what, text in traces.items():
        assert secret not in text, what
    files = [p for home in runs.homes for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)  # the run and event storage were searched
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    client, bucket = server.client(), runs.root.removeprefix("s3://").split("/")[0]
    keys = server.keys(bucket)
    assert len(keys) > 7 * len(DAYS)
    for key in keys:
        assert secret.encode() not in client.get_object(Bucket=bucket, Key=key)["Body"].read(), key
    assert secret not in server.log.read_text(errors="replace")
