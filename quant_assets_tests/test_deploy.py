"""The deploy/ configurations: the local instance really has the settings it claims, the
Postgres instance passes Dagster's schema, the Kubernetes files name what they must."""

from __future__ import annotations

import re
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _home(tmp_path: Path, config: Path | str) -> Path:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    if isinstance(config, Path):
        shutil.copy(config, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(config)
    return home


def test_local_instance_queues_runs_limits_the_screener_and_retries_crashed_runs(tmp_path):
    with DagsterInstance.from_config(str(_home(tmp_path, DEPLOY / "local" / "dagster.yaml"))) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()  # what the daemon's queue enforces
        assert concurrency.run_queue_config.max_concurrent_runs == 2
        assert {"key": "dagster/backfill", "limit": 1} in concurrency.run_queue_config.tag_concurrency_limits
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled


def test_postgres_instance_passes_the_schema_and_a_typo_does_not(tmp_path):
    config, _ = dagster_instance_config(str(_home(tmp_path, DEPLOY / "postgres" / "dagster.yaml")))
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    typo = (DEPLOY / "postgres" / "dagster.yaml").read_text().replace("max_concurrent_runs", "max_concurent_runs")
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(_home(tmp_path / "typo", typo)))


def test_helm_values_run_our_module_on_k8s_with_an_object_store_lakehouse():
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "quant_assets.definitions"]
    lakehouse = {e["name"]: e["value"] for e in deployment["env"]}["QUANT_ASSETS_LAKEHOUSE"]
    assert re.match(r"^(s3|gs|az)://", lakehouse)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runRetries"] == {"enabled": True, "maxRetries": 2}


def test_dockerfile_pins_the_dagster_libraries_to_the_installed_release():
    major, minor, patch = version("dagster").split(".")
    library = f"0.{int(minor) + 16}.{patch}"  # dagster 1.13.28 ships its libraries as 0.29.28
    dockerfile = (DEPLOY / "k8s" / "Dockerfile").read_text()
    for name in ("dagster-k8s", "dagster-postgres"):
        assert f"{name}=={library}" in dockerfile, name
    assert "-c requirements.lock" in dockerfile and "quant_assets.definitions" in dockerfile
