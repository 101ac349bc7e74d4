"""The run-failure webhook: one JSON POST per failed run to a server on 127.0.0.1, naming the
run, job, partitions, failed steps and failed checks; nothing for a successful run; a
webhook that fails or cannot be reached fails the tick, not the sensor."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import AssetCheckSpec, DagsterInstance, Definitions, Output, asset, build_sensor_context, materialize

from quant_assets.errors import AlertDeliveryError
from quant_assets.orchestration.alerts import (
    ALERT_WEBHOOK_ENV,
    DeliveryPolicy,
    build_run_failure_alert_sensor,
    post_alert,
)
from quant_assets.orchestration.assets import ASSETS, daily_partitions
from quant_assets.orchestration.jobs import build_resources, daily_workflow_job
from quant_assets.orchestration.metadata import check_result

DAY = "2024-06-04"
FAST = DeliveryPolicy(attempts=2, backoff_s=0.0, timeout_s=2.0)


class Webhook:
    """An HTTP server on 127.0.0.1 that records each POST and answers with the next of
    ``answers``, then with ``status``."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.answers: list[int] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append({"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)})
                self.send_response(hook.answers.pop(0) if hook.answers else hook.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)


@pytest.fixture
def webhook(monkeypatch) -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, hook.url)
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()
        hook.thread.join(timeout=5)


@asset(partitions_def=daily_partitions, check_specs=[AssetCheckSpec("tick_sizes", asset="book", blocking=True)])
def book(context):
    """A stand-in asset whose blocking check fails, as barbell_weights' does without tick sizes."""
    yield Output(1)
    yield check_result("tick_sizes", {context.partition_key: ["no positive tick size for BINANCE:XYZUSDT"]})


@asset(partitions_def=daily_partitions)
def fine() -> int:
    return 1


class Tick:
    """Evaluates ``sensor`` against ``instance`` as the daemon would, keeping its cursor."""

    def __init__(self, sensor, instance: DagsterInstance) -> None:
        self.sensor, self.instance, self.cursor = sensor, instance, None

    def __call__(self):
        result = self.sensor.evaluate_tick(build_sensor_context(instance=self.instance, cursor=self.cursor))
        self.cursor = result.cursor
        return result


@pytest.fixture
def ticking():
    sensor = build_run_failure_alert_sensor(FAST)
    with DagsterInstance.ephemeral() as instance:
        tick = Tick(sensor, instance)
        assert "Initiating" in tick().skip_message  # the first tick only sets the cursor
        yield instance, tick


def _fail_daily_run(instance: DagsterInstance, tmp_path: Path) -> str:
    """A run of the daily job whose screener configs cannot be read; its run id."""
    resources = build_resources(lakehouse_root=str(tmp_path / "lake"), config_paths=[str(tmp_path / "missing.yaml")])
    job = Definitions(assets=ASSETS, jobs=[daily_workflow_job], resources=resources).resolve_job_def("daily_workflow")
    result = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
    assert not result.success
    return result.run_id


def test_failed_daily_run_posts_one_alert_naming_run_job_partition_and_step(webhook, ticking, tmp_path):
    instance, tick = ticking
    run_id = _fail_daily_run(instance, tmp_path)
    result = tick()
    assert not result.dagster_run_reactions[0].error
    (post,) = webhook.posts
    assert post["path"] == "/hooks/secret-token" and post["type"] == "application/json"
    alert = post["json"]
    assert alert["event"] == "run_failure" and alert["run_id"] == run_id and alert["job"] == "daily_workflow"
    assert alert["partitions"] == {"start": DAY, "end": DAY}
    (step,) = alert["failed_steps"]
    assert step["step"] == "raw_screen" and "missing.yaml" in step["error"]
    assert alert["error"] == step["error"] and alert["failed_checks"] == []
    assert alert["text"].startswith(f"quant_assets: run {run_id} of daily_workflow ({DAY}) failed in raw_screen: ")
    # Reported once: later ticks find nothing new.
    tick()
    assert len(webhook.posts) == 1


def test_failed_blocking_check_is_named_in_the_alert(webhook, ticking):
    instance, tick = ticking
    result = materialize([book], partition_key=DAY, instance=instance, raise_on_error=False)
    assert not result.success  # dagster fails the step of a failed blocking check
    tick()
    (post,) = webhook.posts
    alert = post["json"]
    assert alert["run_id"] == result.run_id and alert["partitions"] == {"start": DAY, "end": DAY}
    (check,) = alert["failed_checks"]
    assert check["asset"] == "book" and check["check"] == "tick_sizes" and check["blocking"] is True
    assert DAY in check["problems"] and "BINANCE:XYZUSDT" in check["problems"]
    (step,) = alert["failed_steps"]
    assert step["step"] == "book" and "tick_sizes" in step["error"] and "blocking" in step["error"]


def test_successful_run_posts_nothing(webhook, ticking):
    instance, tick = ticking
    assert materialize([fine], partition_key=DAY, instance=instance).success
    result = tick()
    assert not result.run_requests and not result.dagster_run_reactions
    assert webhook.posts == []


def test_without_a_url_the_sensor_skips_and_says_why(webhook, ticking, monkeypatch, tmp_path):
    instance, tick = ticking
    monkeypatch.delenv(ALERT_WEBHOOK_ENV)
    run_id = _fail_daily_run(instance, tmp_path)
    result = tick()
    assert ALERT_WEBHOOK_ENV in result.skip_message and run_id in result.skip_message
    assert webhook.posts == []


def test_failing_webhook_fails_the_tick_and_the_next_run_is_still_reported(webhook, ticking):
    instance, tick = ticking
    webhook.status = 500
    first = materialize([book], partition_key=DAY, instance=instance, raise_on_error=False)
    result = tick()  # does not raise: dagster records the error on the tick
    (reaction,) = result.dagster_run_reactions
    assert reaction.dagster_run.run_id == first.run_id
    assert "AlertDeliveryError" in reaction.error.to_string() and "HTTP 500" in reaction.error.to_string()
    assert "secret-token" not in reaction.error.to_string()  # the URL's secret stays out of logs
    assert len(webhook.posts) == FAST.attempts
    webhook.status = 200
    second = materialize([book], partition_key=DAY, instance=instance, raise_on_error=False)
    tick()
    assert [p["json"]["run_id"] for p in webhook.posts] == [first.run_id] * FAST.attempts + [second.run_id]


def test_unreachable_webhook_fails_the_tick_not_the_sensor(ticking, monkeypatch):
    instance, tick = ticking
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, f"http://127.0.0.1:{port}/hook")
    materialize([book], partition_key=DAY, instance=instance, raise_on_error=False)
    (reaction,) = tick().dagster_run_reactions
    assert "AlertDeliveryError" in reaction.error.to_string() and f"127.0.0.1:{port}" in reaction.error.to_string()


@pytest.mark.parametrize("answers, waits, delivered", [
    ([500, 200], [0.5], True),           # retried after a server error
    ([429, 429, 429], [0.5, 1.0], False),  # backing off, then giving up
    ([400], [], False),                  # not retried: the same body would be refused again
])
def test_post_alert_retries_what_can_succeed(webhook, answers, waits, delivered):
    webhook.answers = list(answers)
    slept: list[float] = []
    policy = DeliveryPolicy(attempts=3, backoff_s=0.5, timeout_s=2.0)
    if delivered:
        post_alert(webhook.url, {"run_id": "r1"}, policy, sleep=slept.append)
    else:
        with pytest.raises(AlertDeliveryError, match=f"HTTP {answers[-1]}"):
            post_alert(webhook.url, {"run_id": "r1"}, policy, sleep=slept.append)
    assert len(webhook.posts) == len(answers) and slept == waits
