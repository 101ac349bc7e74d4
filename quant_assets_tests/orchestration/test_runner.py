from __future__ import annotations

from datetime import date

import pytest

from quant_assets.errors import QuantAssetsError
from quant_assets.orchestration.jobs import build_resources
from quant_assets.orchestration.runner import materialise_days


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
