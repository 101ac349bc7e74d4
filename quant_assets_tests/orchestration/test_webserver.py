"""The UI path: `dagster dev` (webserver + daemon) on 127.0.0.1 runs a partition launched
through the webserver's GraphQL API, as a click in the UI would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from quant_assets.lakehouse.store import PartitionStore

REPO = Path(__file__).resolve().parents[2]
DAY = "2024-06-03"
ASSETS = ["raw_screen", "liquid_universe", "signals", "regime", "covariance", "barbell_weights",
          "metadata_catalog"]

LAUNCH = """
mutation($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def _wait(what: str, check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def dagster_dev(tmp_path):
    home, lake = tmp_path / "dagster_home", tmp_path / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "QUANT_ASSETS_LAKEHOUSE": str(lake)}
    log = (tmp_path / "dagster_dev.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait("the webserver", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/server_info", timeout=5).status == 200, 180)
        yield port, lake
    finally:
        # The whole process group: webserver, daemon and code server.
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                break
            try:
                server.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def test_partition_launched_through_the_webserver_materialises_every_asset(dagster_dev):
    port, lake = dagster_dev
    repos = _graphql(port, "{ repositoriesOrError { ... on RepositoryConnection "
                           "{ nodes { name location { name } } } } }")
    location = repos["repositoriesOrError"]["nodes"][0]["location"]["name"]
    params = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                           "jobName": "daily_workflow"},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]}}
    launched = _graphql(port, LAUNCH, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        status = _graphql(port, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                          {"id": run_id})["runOrError"]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    assert _wait("the run to finish", finished, 400) == "SUCCESS"
    store = PartitionStore(lake)
    for asset in ASSETS:
        assert [d.isoformat() for d in store.partitions(asset)] == [DAY], asset
