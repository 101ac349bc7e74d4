"""Tests run isolated from the developer's environment: no DAGSTER_HOME, lakehouse root,
configs directory, live-scanner URL, cookie or Postgres instance. Tests that need Postgres ask
for ``postgres_db``: a database of its own on a throwaway server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from quant_assets_tests.servers import (
    ISOLATED_ENV,
    LOCAL_INSTANCE,
    PostgresDatabase,
    PostgresServer,
    ServerUnavailableError,
    postgres_server,
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def local_dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding deploy/local/dagster.yaml, set in the environment as `make` sets
    it (the local instance keeps its event log under it)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_INSTANCE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (initdb and start take seconds); stopped and
    deleted at its end. Skips, saying what is missing, where the server cannot run."""
    try:
        with postgres_server() as server:
            yield server
    except ServerUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def postgres_db(postgres_cluster: PostgresServer) -> PostgresDatabase:
    """A fresh database and owner on the session's server: no test sees another's runs."""
    return postgres_cluster.create_database()
