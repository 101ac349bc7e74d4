from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id

from quant_assets.errors import QuantAssetsError
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.assets import SCREENER_POOL
from quant_assets.orchestration.runner import RUNNER_PID_TAG, materialise_days, release_dead_runs


def test_partition_before_first_is_rejected(tmp_path):
    with pytest.raises(QuantAssetsError, match="partition 2021-06-01 is before the first partition"):
        materialise_days([date(2021, 6, 1)], build_resources(lakehouse_root=str(tmp_path)))


def test_failed_run_names_partition_step_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndirection: SIDEWAYS\nmarkets: [crypto]\n")
    resources = build_resources(lakehouse_root=str(tmp_path / "lake"), config_paths=[str(bad)],
                                n_instruments=200)
    with pytest.raises(QuantAssetsError) as err:
        materialise_days([date(2024, 6, 3)], resources)
    message = str(err.value)
    assert "partitions 2024-06-03 failed" in message
    assert "max_retries" not in message  # a bad config is not retried like a network error
    assert "raw_screen" in message and str(bad) in message and "direction" in message
    assert not (tmp_path / "lake" / "raw_screen").exists()


def test_a_dead_runners_screener_slot_is_released(tmp_path, monkeypatch):
    """A `quant-assets run` killed while raw_screen held the pool slot must not block the next."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "deploy" / "local" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with DagsterInstance.get() as instance:
        dead = instance.add_run(DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(),
                                           status=DagsterRunStatus.STARTED,
                                           tags={RUNNER_PID_TAG: str(gone.pid)}))
        alive = instance.add_run(DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(),
                                            status=DagsterRunStatus.STARTED,
                                            tags={RUNNER_PID_TAG: str(os.getpid())}))
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(SCREENER_POOL)  # as a step does first
        assert storage.claim_concurrency_slot(SCREENER_POOL, dead.run_id, "raw_screen").is_claimed
        assert release_dead_runs(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert storage.get_concurrency_info(SCREENER_POOL).claimed_slots == []
        # A live runner's slot is left alone.
        assert storage.claim_concurrency_slot(SCREENER_POOL, alive.run_id, "raw_screen").is_claimed
        assert release_dead_runs(instance) == []
        storage.free_concurrency_slots_for_run(alive.run_id)
    materialise_days([date(2024, 6, 3)], build_resources(lakehouse_root=str(tmp_path / "lake"), n_instruments=200))
    with DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info(SCREENER_POOL).claimed_slots == []  # released after the run
