"""Past one machine: backfills launched as the UI launches them, on the local defaults and on
the production shape (instance on PostgreSQL, lakehouse on S3), and the whole history at once.

Every backfill here is a GraphQL ``launchPartitionBackfill`` of every asset against a `dagster
dev` (webserver, daemon, code server) on 127.0.0.1, which the daemon turns into one run (the
assets' single-run backfill policy), exactly as a click in the UI does.

1. 90 partitions onto S3 (moto's server on 127.0.0.1, signed requests) with the instance on a
   real PostgreSQL server, against the same 90 on the local defaults (SQLite instance,
   lakehouse on disk): wall time from launch to the backfill's end, and the ratio.
2. The as-of queries a backtest runs (``symbols_as_of``, ``universe_as_of`` on random days)
   over the S3 lakehouse and over the local one: p50 of each.
3. The whole history, cold: every asset from 2022-01-01 to yesterday in one single-run
   backfill, on a fresh instance and an empty lakehouse, in new processes (the synthetic market
   is simulated inside the run). Wall time and the peak memory of the whole process tree (the
   sum of each process's PSS, sampled every 0.2 s: shared pages are counted once).

A part whose server cannot start here (PostgreSQL binaries missing) is skipped with the reason.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from quant_assets.lakehouse import sql
from quant_assets.orchestration.assets import ASSETS
from quant_assets_tests.s3_server import AWS_ISOLATION, lakehouse_on, s3_server
from quant_assets_tests.servers import (
    BACKFILL,
    LAUNCH_BACKFILL,
    POSTGRES_INSTANCE,
    DagsterDev,
    ServerUnavailableError,
    dagster_dev_server,
    postgres_database,
)

NAMES = [a.key.to_user_string() for a in ASSETS]
NINETY = [date(2024, 1, 1) + timedelta(days=i) for i in range(90)]
FIRST = date(2022, 1, 1)
QUERIES = 20

def _backfill(dev: DagsterDev, days: list[date], timeout_s: float) -> float:
    """Launch a backfill of every asset over ``days`` and wait for its end; its wall time."""
    params = {"assetSelection": [{"path": [name]} for name in NAMES],
              "partitionNames": [d.isoformat() for d in days], "title": f"{len(days)} days"}
    started = time.perf_counter()
    launched = dev.graphql(LAUNCH_BACKFILL, {"p": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {launched}")
    while time.perf_counter() - started < timeout_s:
        backfill = dev.graphql(BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            elapsed = time.perf_counter() - started
            statuses = [run["status"] for run in backfill["runs"]]
            if backfill["status"] not in ("COMPLETED", "COMPLETED_SUCCESS") or statuses != ["SUCCESS"]:
                raise RuntimeError(f"backfill ended {backfill['status']} with runs {statuses}:\n{dev.log_tail()}")
            return elapsed
        time.sleep(0.5)
    raise RuntimeError(f"backfill of {len(days)} days not done after {timeout_s:.0f} s:\n{dev.log_tail()}")


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # gone, or not ours to read
        pass
    return 0


def _tree(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class PeakMemory:
    """Samples the PSS of a process tree in a thread; ``peak`` is the largest sum seen."""

    def __init__(self, root: int, every_s: float = 0.2) -> None:
        self.root, self.every_s, self.peak = root, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(_pss_bytes(pid) for pid in _tree(self.root)))
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _as_of_p50(root: str, days: list[date]) -> dict[str, float]:
    """p50 (ms) of the backtest's as-of queries on random days of ``days``, on one connection."""
    rng = random.Random(7)
    queries = {"symbols_as_of(random day)": "SELECT * FROM symbols_as_of(DATE '{d}')",
               "universe_as_of(random day)": "SELECT * FROM universe_as_of(DATE '{d}')"}
    p50 = {}
    with sql.connect(root) as con:
        con.sql(queries["universe_as_of(random day)"].format(d=days[0])).fetchall()  # builds and caches the views
        for label, text in queries.items():
            samples = []
            for _ in range(QUERIES):
                started = time.perf_counter()
                con.sql(text.format(d=rng.choice(days))).fetchall()
                samples.append(time.perf_counter() - started)
            p50[label] = statistics.median(samples) * 1000
    return p50


def ninety_days(tmp: Path) -> None:
    with dagster_dev_server(tmp / "local") as dev:
        local_s = _backfill(dev, NINETY, 1800)
        local_root = str(dev.lake)
        local_p50 = _as_of_p50(local_root, NINETY)
    try:
        with ExitStack() as stack:
            db = stack.enter_context(postgres_database())
            server = stack.enter_context(s3_server())
            root = server.create_bucket("bench") + "/lakehouse"
            dev = stack.enter_context(dagster_dev_server(tmp / "remote", POSTGRES_INSTANCE,
                                                         env={**AWS_ISOLATION, **server.aws_variables(), **db.env},
                                                         lakehouse=root))
            remote_s = _backfill(dev, NINETY, 3600)
            with lakehouse_on(server, root):
                remote_p50 = _as_of_p50(root, NINETY)
    except ServerUnavailableError as exc:
        print(f"  skipped Postgres + S3: {exc}")
        remote_s, remote_p50 = None, None

    print(f"backfill of {len(NINETY)} partitions x {len(NAMES)} assets ({NINETY[0]}..{NINETY[-1]}), "
          "launched through the webserver, one run")
    print(f"  local defaults (SQLite instance, lakehouse on disk)   {local_s:8.1f} s")
    if remote_s is not None:
        print(f"  Postgres instance, lakehouse on S3 (moto)             {remote_s:8.1f} s   "
              f"ratio {remote_s / local_s:.2f}x")
    print(f"as-of queries, p50 of {QUERIES} on random days of that range:")
    for label, ms in local_p50.items():
        remote = f"{remote_p50[label]:8.1f} ms on S3   ratio {remote_p50[label] / ms:.2f}x" if remote_p50 else ""
        print(f"  {label:30s} {ms:8.1f} ms local   {remote}")


def whole_history(tmp: Path) -> None:
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    days = [FIRST + timedelta(days=i) for i in range((yesterday - FIRST).days + 1)]
    with dagster_dev_server(tmp / "history") as dev, PeakMemory(dev.pid) as memory:
        idle = sum(_pss_bytes(pid) for pid in _tree(dev.pid))
        elapsed = _backfill(dev, days, 3600)
    print(f"the whole history, cold: {len(days)} partitions x {len(NAMES)} assets ({days[0]}..{days[-1]}), "
          "one single-run backfill launched through the webserver, fresh instance and lakehouse")
    print(f"  wall time, launch to end                   {elapsed:8.1f} s   (goal <= 600 s)")
    print(f"  peak memory, dagster dev's process tree    {memory.peak / 1e9:8.2f} GB   (goal <= 4 GB; "
          f"{idle / 1e9:.2f} GB before the launch)")


def main() -> None:
    # The servers inherit it; `make bench` sets it as `make ui` does.
    batch = os.environ.get("DAGSTER_EVENT_BATCH_SIZE") or "unset (one event at a time)"
    print(f"event log batches: DAGSTER_EVENT_BATCH_SIZE={batch}")
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        ninety_days(Path(tmp))
        whole_history(Path(tmp))


if __name__ == "__main__":
    main()
