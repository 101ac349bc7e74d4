"""Tests run isolated from the developer's environment: no DAGSTER_HOME, lakehouse root,
configs directory, live-scanner URL or cookie."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make` exports DAGSTER_HOME and the lakehouse for `make run`/`make ui`; a test must write
    # only under tmp_path, record runs in an ephemeral instance and never reach the internet.
    for name in ("DAGSTER_HOME", "QUANT_ASSETS_LAKEHOUSE", "QUANT_ASSETS_CONFIGS",
                 "QUANT_ASSETS_TRADINGVIEW_URL", "QUANT_ASSETS_TRADINGVIEW_COOKIE",
                 "QUANT_ASSETS_TRADINGVIEW_CHART_URL"):
        monkeypatch.delenv(name, raising=False)
