"""Failed runs reported to a webhook.

A run fails when a step raises, when its pod or process dies, or when a blocking check fails
(dagster then fails the step that emitted the check, and the run with it). For every failed
run of this code location the sensor below POSTs one JSON alert (:class:`RunFailureAlert`) to
the URL in ``$QUANT_ASSETS_ALERT_WEBHOOK``: run id, job, partitions, each failed step with the
root cause of its error, and the run's failed checks of ERROR severity, blocking or not.
Without the variable it skips each failed run and says so.

Delivery is at most once. A run-failure sensor moves its cursor past a run whether or not its
handler succeeded (dagster never reports a run twice), so an unreachable webhook is retried
here, within the tick, under :class:`DeliveryPolicy`. After the last attempt the tick fails
with an :class:`~quant_assets.errors.AlertDeliveryError` that names the run (the sensor's
page in the UI shows it), and the sensor goes on with the next failed run at the next tick.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import urlsplit

from dagster import (
    AssetCheckSeverity,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    SkipReason,
    run_failure_sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from quant_assets.errors import AlertDeliveryError
from quant_assets.orchestration.runner import root_cause

#: The environment variable holding the webhook's URL (read at every tick, so setting it on
#: the code location takes effect without a redeploy of the definitions).
ALERT_WEBHOOK_ENV = "QUANT_ASSETS_ALERT_WEBHOOK"
#: Longest error text in an alert; the run's page has the rest.
_MAX_TEXT = 500


class PartitionSpan(TypedDict):
    """The run's partitions: one day (start == end) or a single-run backfill's range."""

    start: str
    end: str


class FailedStep(TypedDict):
    step: str
    error: str


class FailedCheck(TypedDict):
    asset: str
    check: str
    blocking: bool
    #: What the check found: its ``problems`` metadata (partitions and symbols), else its description.
    problems: str


class RunFailureAlert(TypedDict):
    """The JSON body POSTed for a failed run. ``text`` is one line for chat webhooks."""

    event: str
    run_id: str
    job: str
    partitions: PartitionSpan | None
    failed_steps: list[FailedStep]
    failed_checks: list[FailedCheck]
    error: str
    text: str


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try a webhook: ``attempts`` POSTs, waiting ``backoff_s``, then twice as long
    after each failure; each POST gives up after ``timeout_s``. The defaults stay well inside
    a sensor tick's time limit (60 s)."""

    attempts: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 5.0


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _partitions(run: DagsterRun) -> PartitionSpan | None:
    tags = run.tags
    if PARTITION_NAME_TAG in tags:
        return {"start": tags[PARTITION_NAME_TAG], "end": tags[PARTITION_NAME_TAG]}
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        return {"start": tags[ASSET_PARTITION_RANGE_START_TAG], "end": tags[ASSET_PARTITION_RANGE_END_TAG]}
    return None


def _failed_checks(instance: DagsterInstance, run_id: str) -> list[FailedCheck]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    failed = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.asset_check_evaluation_data
        if evaluation.passed or evaluation.severity != AssetCheckSeverity.ERROR:
            continue
        problems = evaluation.metadata.get("problems")
        failed.append(FailedCheck(
            asset=evaluation.asset_key.to_user_string(),
            check=evaluation.check_name,
            blocking=bool(evaluation.blocking),
            problems=_short(str(problems.value) if problems is not None else evaluation.description or ""),
        ))
    return failed


def build_run_failure_alert(
    instance: DagsterInstance, run: DagsterRun, failure: DagsterEvent, step_failures: Sequence[DagsterEvent]
) -> RunFailureAlert:
    """The alert for ``run``, failed with the run-failure event ``failure``."""
    steps = [
        FailedStep(step=event.step_key or "", error=_short(root_cause(event.step_failure_data.error)))
        for event in step_failures
        if event.step_failure_data.error is not None
    ]
    checks = _failed_checks(instance, run.run_id)
    error = steps[0]["error"] if steps else _short(failure.message or "the run failed")
    span = _partitions(run)
    where = "" if span is None else f" ({span['start']})" if span["start"] == span["end"] else (
        f" ({span['start']}..{span['end']})")
    in_steps = f" in {', '.join(s['step'] for s in steps)}" if steps else ""
    return RunFailureAlert(
        event="run_failure",
        run_id=run.run_id,
        job=run.job_name,
        partitions=span,
        failed_steps=steps,
        failed_checks=checks,
        error=error,
        text=f"quant_assets: run {run.run_id} of {run.job_name}{where} failed{in_steps}: {error}",
    )


def post_alert(
    url: str, alert: Mapping[str, Any], policy: DeliveryPolicy = DeliveryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """POST ``alert`` as JSON to ``url``; any 2xx answer delivers it.

    Raises
    ------
    AlertDeliveryError
        No attempt was answered with 2xx (a 4xx other than 408/429 is not retried: the same
        body would be refused again). The message names the webhook's host, never its full
        URL: chat webhooks carry their secret in the path.
    """
    body = json.dumps(alert).encode()
    failures: list[str] = []
    for attempt in range(1, policy.attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "quant-assets-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout_s) as response:
                response.read()
            return
        except urllib.error.HTTPError as exc:
            failures.append(f"HTTP {exc.code}")
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break
        except OSError as exc:  # refused, unreachable, timed out (URLError is an OSError)
            failures.append(str(getattr(exc, "reason", exc)))
        if attempt < policy.attempts:
            sleep(policy.backoff_s * 2 ** (attempt - 1))
    raise AlertDeliveryError(
        f"alert for run {alert.get('run_id')} not delivered to the webhook at {urlsplit(url).netloc or url!r} "
        f"after {len(failures)} attempt(s): {'; '.join(failures)}"
    )


def build_run_failure_alert_sensor(
    policy: DeliveryPolicy = DeliveryPolicy(), name: str = "run_failure_webhook"
) -> SensorDefinition:
    """The sensor POSTing a :class:`RunFailureAlert` for each failed run of this code location."""

    # Running by default: without a URL it only skips, and an alert sensor that has to be
    # remembered is the one nobody turned on.
    @run_failure_sensor(name=name, default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=30)
    def run_failure_webhook(context: RunFailureSensorContext) -> SkipReason | None:
        run = context.dagster_run
        url = os.environ.get(ALERT_WEBHOOK_ENV, "").strip()
        if not url:
            return SkipReason(f"run {run.run_id} of {run.job_name} failed; no alert sent: {ALERT_WEBHOOK_ENV} is not set")
        alert = build_run_failure_alert(context.instance, run, context.failure_event, context.get_step_failure_events())
        post_alert(url, alert, policy)
        context.log.info(f"alert for failed run {run.run_id} delivered to {urlsplit(url).netloc}")
        return None

    return run_failure_webhook


run_failure_alert_sensor = build_run_failure_alert_sensor()
