"""`dagster dev` (webserver + daemon + code server) on 127.0.0.1 for the UI tests
(quant_assets_tests/servers.py starts it), with a temporary DAGSTER_HOME holding one of the
deploy/ instances (``make ui``'s by default, or the Postgres one) and a temporary lakehouse."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from quant_assets_tests.servers import DagsterDev, dagster_dev_server


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


@pytest.fixture
def dagster_dev(tmp_path) -> Iterator[DagsterDev]:
    """`make ui`: `dagster dev` on the local instance (SQLite under DAGSTER_HOME)."""
    with dagster_dev_server(tmp_path) as dev:
        yield dev
