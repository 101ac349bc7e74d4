"""The deploy/ configurations: the local instance has the settings it claims, the Postgres
instance works against a real PostgreSQL server (quant_assets_tests/servers.py), it and the Helm
values' instance settings pass dagster's instance schema (a misspelt key fails), and the image
installs the `deploy` extra under requirements.lock, which pins every package it brings.
test_helm_values.py checks the rest of the Helm values."""

from __future__ import annotations

import re
import shutil
import tomllib
from importlib import import_module
from importlib.metadata import distribution, version
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, asset, materialize
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import PoolGranularity, dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.tags import BACKFILL_ID_TAG
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from quant_assets.orchestration.assets import ASSETS, SCREENER_POOL
from quant_assets_tests.servers import PG_ENV

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
LOCAL = DEPLOY / "local" / "dagster.yaml"
POSTGRES = DEPLOY / "postgres" / "dagster.yaml"
VALUES = DEPLOY / "k8s" / "values.yaml"
DOCKERFILE = DEPLOY / "k8s" / "Dockerfile"


def _home(tmp_path: Path, config: Path | str | dict[str, Any]) -> str:
    """A fresh DAGSTER_HOME holding ``config`` (a file to copy, YAML text or a mapping)."""
    home = tmp_path / f"home-{len(list(tmp_path.glob('home-*')))}"
    home.mkdir()
    if isinstance(config, Path):
        shutil.copy(config, home / "dagster.yaml")
    else:
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        (home / "dagster.yaml").write_text(text)
    return str(home)


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


# --- deploy/local/dagster.yaml ------------------------------------------------------------


def test_local_instance_queues_two_runs_one_backfill_and_retries_crashed_runs(local_dagster_home):
    with DagsterInstance.from_config(str(local_dagster_home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config  # what the daemon enforces
        assert queue.max_concurrent_runs == 2
        assert queue.tag_concurrency_limits == [{"key": BACKFILL_ID_TAG, "limit": 1}]
        assert queue.max_user_code_failure_retries == 3 and queue.user_code_failure_retry_delay == 10
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 3600
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60
        assert not instance.telemetry_enabled
        # `make ui`'s daemon runs the queue, the monitor and the retries.
        assert {"QUEUED_RUN_COORDINATOR", "MONITORING", "EVENT_LOG_CONSUMER"} <= set(
            instance.get_required_daemon_types()
        )


def test_local_instance_admits_one_screener_step_at_a_time(local_dagster_home):
    pools = {a.op.pool for a in ASSETS} - {None}
    assert pools == {SCREENER_POOL}  # so the default pool limit is the screener's and no other's
    with DagsterInstance.from_config(str(local_dagster_home)) as instance:
        config = instance.get_concurrency_config().pool_config
        assert config.default_pool_limit == 1 and config.pool_granularity == PoolGranularity.OP
        storage = instance.event_log_storage
        # What a step does before it runs: give the pool its default limit, then claim a slot.
        storage.initialize_concurrency_limit_to_default(SCREENER_POOL)
        info = storage.get_concurrency_info(SCREENER_POOL)
        assert info.limit == 1 and info.using_default_limit
        assert storage.claim_concurrency_slot(SCREENER_POOL, "run-a", "raw_screen").is_claimed
        assert not storage.claim_concurrency_slot(SCREENER_POOL, "run-b", "raw_screen").is_claimed
        storage.free_concurrency_slots_for_run("run-a")
        assert storage.claim_concurrency_slot(SCREENER_POOL, "run-b", "raw_screen").is_claimed


@pytest.mark.parametrize("path", [LOCAL, POSTGRES], ids=["local", "postgres"])
@pytest.mark.parametrize(
    "key, typo",
    [
        ("max_concurrent_runs", "max_concurent_runs"),
        ("default_limit", "default_limits"),
        ("max_retries", "max_retry"),
        ("free_slots_after_run_end_seconds", "free_slot_after_run_end_seconds"),
    ],
)
def test_instance_schema_rejects_a_misspelt_key(tmp_path, path, key, typo):
    text = path.read_text()
    assert f"{key}:" in text
    dagster_instance_config(_home(tmp_path, text))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(_home(tmp_path, text.replace(f"{key}:", f"{typo}:")))


# --- deploy/postgres/dagster.yaml ---------------------------------------------------------


def test_postgres_instance_is_the_local_one_with_storage_on_postgres(tmp_path):
    """Without a server: the file passes the instance schema, its storages are dagster-postgres's
    classes and load (the package is installed), and apart from its storage it is the local file.
    test_postgres_instance_runs_against_a_local_server connects them to a real server."""
    home = _home(tmp_path, POSTGRES)
    config, _ = dagster_instance_config(home)
    database = config["storage"]["postgres"]["postgres_db"]
    env = {k: v["env"] for k, v in database.items() if isinstance(v, dict) and "env" in v}
    assert sorted(env.values()) == sorted(PG_ENV)
    assert database["scheme"] == "postgresql+psycopg2"
    ref = InstanceRef.from_dir(home)
    storages = (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data)
    loads = {(data.module_name, data.class_name) for data in storages}
    assert loads == {
        ("dagster_postgres", "PostgresRunStorage"),
        ("dagster_postgres", "PostgresEventLogStorage"),
        ("dagster_postgres", "PostgresScheduleStorage"),
    }
    for data in storages:  # what the instance imports when it loads, before it connects
        assert isinstance(getattr(import_module(data.module_name), data.class_name), type), data
    postgres, local = _load(POSTGRES), _load(LOCAL)
    assert postgres.pop("storage") and local.pop("event_log_storage") and postgres == local


def test_postgres_instance_runs_against_a_local_server(tmp_path, monkeypatch, postgres_db):
    """deploy/postgres/dagster.yaml against a real PostgreSQL on 127.0.0.1 (a password login over
    TCP, as from another machine): the storages connect and create their tables, a pooled
    asset's run and events land in Postgres, and the pool takes the file's default limit."""
    for name, value in postgres_db.env.items():
        monkeypatch.setenv(name, value)

    @asset(pool=SCREENER_POOL)
    def pooled() -> int:
        return 1

    with DagsterInstance.from_config(_home(tmp_path, POSTGRES)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
        result = materialize([pooled], instance=instance)
        assert result.success
        info = instance.event_log_storage.get_concurrency_info(SCREENER_POOL)
        assert info.limit == 1 and info.using_default_limit and not info.claimed_slots
    # Read back with SQL, not through dagster: the rows are in this database.
    assert postgres_db.query("SELECT status FROM runs WHERE run_id = %s", (result.run_id,)) == [("SUCCESS",)]
    (materialised,) = postgres_db.query(
        "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (result.run_id,))
    assert materialised == ('["pooled"]',)
    assert postgres_db.query('SELECT "limit" FROM concurrency_limits WHERE concurrency_key = %s',
                             (SCREENER_POOL,)) == [(1,)]
    # The pool's one slot, free again after the step.
    assert postgres_db.query("SELECT run_id, step_key FROM concurrency_slots WHERE concurrency_key = %s",
                             (SCREENER_POOL,)) == [(None, None)]


# --- deploy/k8s/values.yaml ---------------------------------------------------------------

# What the chart's templates/configmap-instance.yaml and helpers/instance/*.tpl make of the
# values we set: camelCase value -> dagster.yaml key. A value the chart would not render is an
# error here, so a misspelt key fails the test instead of silently vanishing in the chart.
_RUN_MONITORING = {
    "enabled": "enabled",
    "startTimeoutSeconds": "start_timeout_seconds",
    "cancelTimeoutSeconds": "cancel_timeout_seconds",
    "maxResumeRunAttempts": "max_resume_run_attempts",
    "pollIntervalSeconds": "poll_interval_seconds",
    "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds",
}
_RUN_RETRIES = {
    "enabled": "enabled",
    "maxRetries": "max_retries",
    "retryOnAssetOrOpFailure": "retry_on_asset_or_op_failure",
}
_QUEUED_RUN_COORDINATOR = {
    "maxConcurrentRuns": "max_concurrent_runs",
    "tagConcurrencyLimits": "tag_concurrency_limits",
    "dequeueIntervalSeconds": "dequeue_interval_seconds",
    "dequeueUseThreads": "dequeue_use_threads",
    "dequeueNumWorkers": "dequeue_num_workers",
}
_POOLS = {
    "defaultLimit": "default_limit",
    "granularity": "granularity",
    "opGranularityRunBuffer": "op_granularity_run_buffer",
}
_RUNS = {"maxConcurrentRuns": "max_concurrent_runs", "tagConcurrencyLimits": "tag_concurrency_limits"}
_CHART_SECTIONS = {
    "dagster-user-deployments", "dagsterWebserver", "dagsterDaemon", "runLauncher", "postgresql",
    "generatePostgresqlPasswordSecret", "concurrency", "telemetry", "computeLogManager", "scheduler",
    "pythonLogs", "retention", "serviceAccount", "global", "imagePullSecrets", "ingress", "migrate",
    "additionalInstanceConfig",
}
_STORAGES = {
    "run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage"),
    "event_log_storage": ("dagster_postgres.event_log", "PostgresEventLogStorage"),
    "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
}


def _check_known(section: dict[str, Any], known: Any, where: str) -> None:
    unknown = set(section) - set(known)
    if unknown:
        raise ValueError(f"{where}: {sorted(unknown)} not rendered by the chart (as mirrored here)")


def _renamed(section: dict[str, Any], names: dict[str, str], where: str) -> dict[str, Any]:
    _check_known(section, names, where)
    return {names[key]: value for key, value in section.items() if value is not None}


def _chart_instance(values: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml the Helm chart renders from ``values`` (the sections we set)."""
    _check_known(values, _CHART_SECTIONS, "values")
    pg = values["postgresql"]
    database = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams", {}),
    }
    if pg.get("postgresqlScheme"):
        database["scheme"] = pg["postgresqlScheme"]
    instance: dict[str, Any] = {
        kind: {"module": module, "class": cls, "config": {"postgres_db": database}}
        for kind, (module, cls) in _STORAGES.items()
    }
    launcher = values["runLauncher"]
    if launcher["type"] != "K8sRunLauncher":
        raise ValueError(f"runLauncher.type: expected K8sRunLauncher, got {launcher['type']!r}")
    instance["run_launcher"] = {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {}}
    daemon = values["dagsterDaemon"]
    _check_known(daemon, ["enabled", "runCoordinator", "runRetries", "runMonitoring"], "dagsterDaemon")
    coordinator = daemon["runCoordinator"]
    if coordinator["enabled"]:
        queued = coordinator.get("config", {}).get("queuedRunCoordinator") or {}
        run_coordinator = {"module": "dagster.core.run_coordinator", "class": coordinator["type"]}
        if any(v not in (None, [], {}) for v in queued.values()):
            run_coordinator["config"] = _renamed(queued, _QUEUED_RUN_COORDINATOR, "queuedRunCoordinator")
        instance["run_coordinator"] = run_coordinator
    if daemon["runMonitoring"]["enabled"]:
        instance["run_monitoring"] = _renamed(daemon["runMonitoring"], _RUN_MONITORING, "runMonitoring")
    if daemon["runRetries"]["enabled"]:
        instance["run_retries"] = _renamed(daemon["runRetries"], _RUN_RETRIES, "runRetries")
    instance["telemetry"] = {"enabled": values["telemetry"]["enabled"]}
    concurrency = values.get("concurrency", {})
    _check_known(concurrency, ["enabled", "pools", "runs"], "concurrency")
    if concurrency.get("enabled"):
        instance["concurrency"] = {
            "pools": _renamed(concurrency.get("pools", {}), _POOLS, "concurrency.pools"),
            "runs": _renamed(concurrency.get("runs", {}), _RUNS, "concurrency.runs"),
        }
    return instance


def test_helm_values_run_our_module_on_k8s_with_an_object_store_lakehouse():
    values = _load(VALUES)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "quant_assets.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}  # env reaches run pods
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert re.fullmatch(r"s3://[a-z0-9.-]+/\S+", env["QUANT_ASSETS_LAKEHOUSE"])  # s3fs is in the image
    # A location's resources would be copied onto its run pods over the launcher's sizing.
    assert "resources" not in deployment
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    run_pod = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]
    assert {"cpu", "memory"} <= set(run_pod["resources"]["requests"])


def test_helm_instance_settings_pass_the_schema_and_match_the_local_rules(tmp_path):
    rendered = _chart_instance(_load(VALUES))
    config, _ = dagster_instance_config(_home(tmp_path, rendered))
    local = _load(LOCAL)
    assert config["concurrency"]["pools"] == local["concurrency"]["pools"]
    runs = config["concurrency"]["runs"]
    assert runs["tag_concurrency_limits"] == local["concurrency"]["runs"]["tag_concurrency_limits"]
    assert runs["max_concurrent_runs"] > local["concurrency"]["runs"]["max_concurrent_runs"]
    assert config["run_retries"] == local["run_retries"]
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] == 60
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_storage"]["config"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_helm_instance_check_fails_on_a_misspelt_or_conflicting_value(tmp_path):
    values = _load(VALUES)
    runs = values["concurrency"]["runs"]
    runs["maxConcurentRuns"] = runs.pop("maxConcurrentRuns")
    with pytest.raises(ValueError, match="maxConcurentRuns"):
        _chart_instance(values)
    values = _load(VALUES)
    values["dagsterDaemon"]["runCoordinator"]["config"] = {"queuedRunCoordinator": {"maxConcurrentRuns": 8}}
    with pytest.raises(DagsterInvalidConfigError):  # run limits in two places
        dagster_instance_config(_home(tmp_path, _chart_instance(values)))


# --- deploy/k8s/Dockerfile ----------------------------------------------------------------


def _pip_install(dockerfile: str) -> str:
    """The image's `RUN pip install ...` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    (line,) = [ln for ln in joined.splitlines() if ln.startswith("RUN pip install")]
    return line


def _installed_tree(name: str, extras: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every distribution ``name[extras]`` pulls in, as installed here: {canonical name: version}.
    Markers are evaluated for this interpreter (the image's: Linux, CPython 3.11)."""
    tree: dict[str, str] = {}
    todo, seen = [(canonicalize_name(name), extras)], set()
    while todo:
        dist_name, wanted = todo.pop()
        if (dist_name, wanted) in seen:  # a package asked for with other extras is walked again
            continue
        seen.add((dist_name, wanted))
        dist = distribution(dist_name)
        tree[dist_name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if not req.marker or any(req.marker.evaluate({"extra": e}) for e in ("", *wanted)):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return tree


def test_dockerfile_installs_the_deploy_extra_under_the_lock():
    dockerfile = DOCKERFILE.read_text()
    # One resolution under the lock, no version written twice: the image takes its versions
    # from pyproject.toml and requirements.lock like every other install.
    assert _pip_install(dockerfile).split() == ["RUN", "pip", "install", "-c", "requirements.lock", "'.[deploy]'"]
    assert re.search(r"^COPY pyproject\.toml requirements\.lock README\.md \./$", dockerfile, re.M)
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert '"-m", "quant_assets.definitions"' in dockerfile
    # `-c` constrains only what the lock names: anything missing from it would install at
    # whatever version is newest on the day of the build.
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pinned, _, locked = line.partition("==")
            lock[canonicalize_name(pinned)] = locked.strip()
    tree = _installed_tree("quant_assets", frozenset({"deploy"}))
    del tree["quant-assets"]  # the project itself, from the build context
    assert {"dagster-k8s", "dagster-postgres", "s3fs", "kubernetes", "psycopg2-binary", "aiobotocore"} <= set(tree)
    assert {name: tree[name] for name in tree if lock.get(name) != tree[name]} == {}


def test_deploy_extra_pairs_the_dagster_libraries_with_dagster():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(re.fullmatch(r"([\w.-]+)==(\S+)", r).groups() for r in project["dependencies"] + project[
        "optional-dependencies"]["deploy"] if "==" in r)
    major, minor, patch = pins["dagster"].split(".")
    library = f"0.{int(minor) + 16}.{patch}"  # dagster 1.13.27 ships its libraries as 0.29.27
    assert pins["dagster-k8s"] == pins["dagster-postgres"] == library
    assert pins["s3fs"] == version("fsspec")  # s3fs and fsspec are released together
