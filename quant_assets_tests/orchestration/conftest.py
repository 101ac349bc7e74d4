"""`dagster dev` (webserver + daemon + code server) on 127.0.0.1 for the UI tests, with a
temporary DAGSTER_HOME configured like `make ui` (deploy/local/dagster.yaml) and lakehouse."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def wait(what: str, check, timeout_s: float, transient: tuple[type[Exception], ...] = (OSError,),
         poll_s: float = 1.0):
    """Poll ``check()`` until it returns something truthy (``transient`` errors count as not
    yet); fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except transient:
            result = None
        if result:
            return result
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass(frozen=True)
class DagsterDev:
    port: int
    lake: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def dagster_dev(tmp_path):
    home, lake = tmp_path / "dagster_home", tmp_path / "lake"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "QUANT_ASSETS_LAKEHOUSE": str(lake)}
    log = (tmp_path / "dagster_dev.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait("the webserver", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/server_info", timeout=5).status == 200, 180)
        yield DagsterDev(port, lake, tmp_path / "dagster_dev.log")
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


