"""Tests run isolated from the developer's environment: no DAGSTER_HOME, no lakehouse root."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make` exports both for `make run`/`make ui`; a test must write only under tmp_path
    # and record runs in an ephemeral instance.
    for name in ("DAGSTER_HOME", "QUANT_ASSETS_LAKEHOUSE", "QUANT_ASSETS_CONFIGS"):
        monkeypatch.delenv(name, raising=False)
