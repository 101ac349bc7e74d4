"""Dagster's SQLite event log, with a batch of asset events written in one transaction.

A single-run backfill of every asset over the whole history (1794 days) writes about 29,000
asset events: one ASSET_MATERIALIZATION_PLANNED per asset and partition when the run is
created, and one ASSET_MATERIALIZATION per asset and partition as each step ends. Dagster's
``SqliteEventLogStorage`` writes each event on its own: a new engine and a committed
transaction in the run's database, then another in the index database, 8-13 ms an event here.
Launched from the UI, that backfill took 748.6 s, of which 140 s went on the planned events and
28-42 s per step on its materialisations. With this class and batches of 1000 it took 419.2 s
(benchmarks/bench_deploy.py; the run's own event log shows the split).

Dagster already hands such events over in batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set (the
planned events of a run, the materialisations of a step over a partition range), but its SQLite
storage then still writes them one by one (only dagster-postgres writes a batch at once). This
class writes each batch of asset events in one transaction per database, with the same rows as
``store_event``. The Makefile exports ``DAGSTER_EVENT_BATCH_SIZE``; without it this class
behaves exactly as its parent.

``deploy/local/dagster.yaml`` selects it; ``base_dir`` defaults to where Dagster keeps its own
SQLite event log, ``$DAGSTER_HOME/history/runs``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from dagster import DagsterInvariantViolationError, Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData

from quant_assets.errors import ConfigError


def _is_asset_event(event: EventLogEntry) -> bool:
    return event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose ``store_event_batch`` writes consecutive asset events of a
    batch in one transaction per database; every other event is stored as the parent stores it."""

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteEventLogStorage:
        base_dir = config_value.get("base_dir")
        if not base_dir:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ConfigError("dagster.yaml, event_log_storage: BatchingSqliteEventLogStorage has no "
                                  "config key `base_dir` and DAGSTER_HOME is not set: set either")
            base_dir = os.path.join(home, "history", "runs")
        return cls(base_dir=base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # Consecutive groups keep the events in their order in the run's log.
        for is_asset, group in groupby(events, key=_is_asset_event):
            group = list(group)
            if is_asset and len(group) > 1:
                for run_id, of_run in groupby(group, key=lambda event: event.run_id):
                    self._store_asset_events(run_id, list(of_run))
            else:
                for event in group:
                    self.store_event(event)

    def _store_asset_events(self, run_id: str, events: list[EventLogEntry]) -> None:
        """What ``store_event`` does for each asset event, in two transactions for all of them."""
        inserts = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(run_id) as conn:
            for insert in inserts:
                conn.execute(insert)
        with self.index_transaction() as conn:
            event_ids = [conn.execute(insert).inserted_primary_key[0] for insert in inserts]
            if any(event_id is None for event_id in event_ids):
                raise DagsterInvariantViolationError(f"run {run_id}: an asset event stored in the index has no id")
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset table holds the latest event of each kind per asset, and events of one
            # kind write the same columns: storing the last of each (asset, kind), in log order,
            # leaves the rows the whole sequence would have left, without serialising the rest.
            last: dict[tuple[str, str], int] = {}
            for i, event in enumerate(events):
                last[(event.get_dagster_event().asset_key.to_string(), event.dagster_event_type.value)] = i
            for i in sorted(last.values()):
                self._store_asset_event(conn, events[i], event_ids[i])
