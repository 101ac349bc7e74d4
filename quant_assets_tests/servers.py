"""Servers that tests and benchmarks start on 127.0.0.1 and always stop: a throwaway PostgreSQL
cluster, with a database per user of it, and `dagster dev` (webserver, daemon, code server) on
one of the deploy/ instances.

Not pytest-only: a benchmark uses it as ::

    from quant_assets_tests.servers import postgres_database

    with postgres_database() as db:          # initdb, start, create a database; stop and delete after
        os.environ.update(db.env)            # the DAGSTER_PG_* that deploy/postgres/dagster.yaml reads
        ...

The server binaries come from Debian's ``postgresql`` package (``make postgres``). PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL_INSTANCE = REPO / "deploy" / "local" / "dagster.yaml"
POSTGRES_INSTANCE = REPO / "deploy" / "postgres" / "dagster.yaml"
#: The variables deploy/postgres/dagster.yaml reads, in the order of :attr:`PostgresDatabase.env`.
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD")
#: What no test inherits: `make` exports DAGSTER_HOME and the lakehouse for `make run`/`make ui`;
#: a test must write only under tmp_path, record runs in an ephemeral instance (or a Postgres
#: database of its own) and never reach the internet.
ISOLATED_ENV = ("DAGSTER_HOME", "QUANT_ASSETS_LAKEHOUSE", "QUANT_ASSETS_CONFIGS", "QUANT_ASSETS_TRADINGVIEW_URL",
                "QUANT_ASSETS_TRADINGVIEW_COOKIE", "QUANT_ASSETS_TRADINGVIEW_CHART_URL", *PG_ENV)
_BINARIES = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "postgres"
_DATABASE_NUMBERS = itertools.count()
# Durability is worthless in a cluster that is deleted after the test, and costs seconds.
_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class ServerUnavailableError(RuntimeError):
    """A server cannot be started on this machine (its binaries or user are missing); the
    message says what is missing and how to get it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path:
    """The directory with PostgreSQL's server binaries: Debian's newest
    ``/usr/lib/postgresql/<version>/bin``, else the one ``pg_ctl`` on PATH is in.

    Raises
    ------
    ServerUnavailableError
        No directory holds all of initdb, pg_ctl and postgres.
    """
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                    if p.parent.name.isdigit() else 0, reverse=True)
    on_path = shutil.which("pg_ctl")
    candidates = [*debian, *([Path(on_path).resolve().parent] if on_path else [])]
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _BINARIES):
            return bindir
    raise ServerUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin "
        "or on PATH; `make postgres` installs Debian's postgresql package (as root, with apt-get)"
    )


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (it refuses root); None: ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServerUnavailableError(
            "running as root and there is no `postgres` user to run the PostgreSQL server as "
            "(it refuses root); `make postgres` installs Debian's postgresql package, which creates it"
        ) from exc


@dataclass(frozen=True)
class PostgresDatabase:
    """A database on 127.0.0.1 with its own owner, reached over TCP with a password."""

    host: str
    port: int
    name: str
    username: str
    password: str

    @property
    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables that point deploy/postgres/dagster.yaml at this database."""
        return dict(zip(PG_ENV, (self.host, str(self.port), self.name, self.username, self.password)))

    def connect(self):
        """A psycopg2 connection as the database's owner, in autocommit mode."""
        import psycopg2  # comes with dagster-postgres (the `deploy` extra)

        connection = psycopg2.connect(host=self.host, port=self.port, dbname=self.name, user=self.username,
                                      password=self.password, connect_timeout=10)
        connection.autocommit = True
        return connection

    def query(self, sql: str, params: tuple | dict | None = None) -> list[tuple]:
        """The rows ``sql`` returns, on a connection of its own."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster: TCP on 127.0.0.1:``port`` (password logins), and a unix
    socket in ``socket_dir`` where the superuser logs in without one."""

    port: int
    socket_dir: Path
    log: Path

    def create_database(self, name: str | None = None) -> PostgresDatabase:
        """A new database ``name`` (default: the next ``db_<n>``) owned by a new user of the same
        name with a random password."""
        import psycopg2
        from psycopg2 import sql

        name = name or f"db_{next(_DATABASE_NUMBERS)}"
        password = secrets.token_urlsafe(16)
        connection = psycopg2.connect(host=str(self.socket_dir), port=self.port, dbname="postgres",
                                      user=_SUPERUSER, connect_timeout=10)
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), (password,))
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
        finally:
            connection.close()
        return PostgresDatabase("127.0.0.1", self.port, name, name, password)


def _run(command: list[str], user: pwd.struct_passwd | None, what: str) -> None:
    if user is not None:
        command = ["runuser", "-u", user.pw_name, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n{done.stdout}{done.stderr}")


@contextmanager
def postgres_server(start_attempts: int = 3) -> Iterator[PostgresServer]:
    """A new PostgreSQL cluster in a temporary directory, serving 127.0.0.1 on a free port until
    the block ends; then it is stopped (``pg_ctl stop -m immediate``) and its directory deleted,
    whatever happened.

    Raises
    ------
    ServerUnavailableError
        The server binaries, or as root the ``postgres`` user, are missing.
    RuntimeError
        initdb failed, or the server did not start (the message holds its log).
    """
    bindir, user = postgres_bindir(), _server_user()
    # Not under the caller's tmp_path: pytest makes those 0700 for root, and the server runs as
    # the postgres user. A short path also keeps the socket's under the 107-byte limit.
    workdir = Path(tempfile.mkdtemp(prefix="quant-assets-pg-"))
    data, log = workdir / "data", workdir / "server.log"
    started = False
    try:
        if user is not None:
            os.chown(workdir, user.pw_uid, user.pw_gid)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", _SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync",
              "--auth-local=trust", "--auth-host=scram-sha-256"], user, "initdb")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS.format(socket_dir=workdir))
        for attempt in range(start_attempts):
            port = free_port()  # another process may take it before the server binds: try again
            started = True  # from here on, stop it whatever happens
            try:
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", f"-p {port}", "-w", "-t", "60",
                      "start"], user, "pg_ctl start")
                break
            except RuntimeError as exc:
                if attempt == start_attempts - 1:
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
                    raise RuntimeError(f"PostgreSQL did not start: {exc}\nserver log:\n{tail}") from exc
        yield PostgresServer(port, workdir, log)
    finally:
        if started:
            stop = [str(bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate", "-w", "-t", "60"]
            if user is not None:
                stop = ["runuser", "-u", user.pw_name, "--", *stop]
            # Fails only when no server is running (a start that never came up): nothing to stop.
            subprocess.run(stop, capture_output=True, timeout=120)
        shutil.rmtree(workdir)


@contextmanager
def postgres_database(name: str = "dagster") -> Iterator[PostgresDatabase]:
    """A throwaway server with one database ``name`` on it (see :func:`postgres_server`)."""
    with postgres_server() as server:
        yield server.create_database(name)


# What the UI sends to the webserver's GraphQL API to launch a run, launch a backfill, and follow one.
LAUNCH_RUN = """
mutation($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""

LAUNCH_BACKFILL = """
mutation($p: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $p) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""

BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 50) { runId status } }
  }
}"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


@dataclass(frozen=True)
class DagsterDev:
    """A running `dagster dev`: its port, process (the group's leader), home, lakehouse root and log."""

    port: int
    pid: int
    home: Path
    lake: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)

    @property
    def location(self) -> str:
        """The name of the code location the webserver serves (workspace.yaml's one)."""
        repos = self.graphql("{ repositoriesOrError { ... on RepositoryConnection "
                             "{ nodes { name location { name } } } } }")
        return repos["repositoriesOrError"]["nodes"][0]["location"]["name"]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def wait_until_answering(url: str, process: subprocess.Popen, log: Path, what: str, timeout_s: float,
                         every_s: float) -> None:
    """Ask ``url`` every ``every_s`` until it answers 200. A RuntimeError with the end of
    ``log`` if ``process`` exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            state = (f"exited with {process.returncode}" if process.poll() is not None
                     else f"did not answer within {timeout_s:.0f} s")
            raise RuntimeError(f"{what} at {url} {state}:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(every_s)


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop ``process`` and its group (started with ``start_new_session``): SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def dagster_dev_server(workdir: Path, instance: Path = LOCAL_INSTANCE, env: Mapping[str, str] | None = None,
                       lakehouse: str | None = None, start_timeout_s: float = 180) -> Iterator[DagsterDev]:
    """`dagster dev` with ``instance`` as its dagster.yaml and ``env`` (say, DAGSTER_PG_* or the
    AWS_* of an S3 endpoint) added to a clean environment; its home and log under ``workdir``,
    the lakehouse at ``lakehouse`` (default: ``workdir/lake``). The whole process group
    (webserver, daemon, code server, run workers) is stopped when the block ends."""
    home, log_path = workdir / "dagster_home", workdir / "dagster_dev.log"
    lake = lakehouse or str(workdir / "lake")
    home.mkdir(parents=True)
    shutil.copy(instance, home / "dagster.yaml")
    port = free_port()
    # Module-scoped users start before the tests' autouse isolation: strip the developer's settings here.
    clean = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV}
    full_env = {**clean, **(env or {}), "DAGSTER_HOME": str(home), "QUANT_ASSETS_LAKEHOUSE": lake}
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/server_info", server, log_path, "dagster dev",
                             start_timeout_s, every_s=1)
        yield DagsterDev(port, server.pid, home, lake, log_path)
    finally:
        stop_process_group(server)
