"""SmSendBatchStatusSensor: poke and deferrable modes over the same scenarios, against the sandbox."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jinja2
import pytest
from airflow.sdk import conf
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_smsend.client.errors import SmSendAuthError, SmSendInternalError
from airflow_provider_smsend.client.reports import BatchStatusReport, BatchStatusRow
from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor
from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

GOOD = ("+393331234567", "+393471234567", "+393281234567")
UNKNOWN = "+393331230000"  # sandbox: notify 300 Unknown subscriber
PENDING = "+393331230002"  # sandbox: stays pending forever
MODES = ("poke", "deferrable")


def run_sensor(sensor: SmSendBatchStatusSensor, mode: str, helpers: Any) -> Any:
    """Run like Airflow: execute; on deferral run the re-created trigger, then resume_execution."""
    context: dict = {}
    try:
        return sensor.execute(context)
    except TaskDeferred as deferred:
        assert mode == "deferrable", "poke mode must never defer"
        assert deferred.method_name == "execute_complete"
        event = helpers.first_event(helpers.reinstantiate(deferred.trigger))
        return sensor.resume_execution(deferred.method_name, {"event": event.payload}, context)


def make(mode: str, request_ids: Any, **kwargs: Any) -> SmSendBatchStatusSensor:
    settings: dict[str, Any] = {"poke_interval": 0.1, "timeout": 10, "deferrable": mode == "deferrable"}
    settings.update(kwargs)
    return SmSendBatchStatusSensor(task_id=f"wait_{mode}", request_ids=request_ids, **settings)


# ---------------------------------------------------------------- the matrix: same scenarios, both modes


@pytest.mark.parametrize("mode", MODES)
def test_all_delivered(mode, gateway, helpers):
    ids = helpers.send(gateway, *GOOD[:2])
    summary = run_sensor(make(mode, ids), mode, helpers)
    assert summary["outcome"] == "satisfied"
    assert (summary["total"], summary["delivered"], summary["pending"], summary["failed"]) == (2, 2, 0, [])
    assert summary["by_status"] == {"200": 2}


@pytest.mark.parametrize("mode", MODES)
def test_partial_delivery_meets_a_ratio(mode, gateway, helpers):
    ids = helpers.send(gateway, *GOOD, UNKNOWN)
    summary = run_sensor(make(mode, ",".join(ids), success_rule=0.75), mode, helpers)
    assert summary["delivered_ratio"] == 0.75
    assert summary["by_class"] == {"pending": 0, "success": 3, "failure": 1, "unknown": 0}
    assert [(row["dest"], row["status"], row["status_text"]) for row in summary["failed"]] == [
        (UNKNOWN, 300, "Unknown subscriber")
    ]


@pytest.mark.parametrize("mode", MODES)
def test_fail_fast_on_a_3xx_row(mode, gateway, helpers):
    ids = helpers.send(gateway, GOOD[0], UNKNOWN, PENDING)
    started = time.monotonic()
    with pytest.raises(AirflowFailException, match="all_delivered cannot hold"):
        run_sensor(make(mode, ids, timeout=30), mode, helpers)
    assert time.monotonic() - started < 10  # did not wait for the pending row nor the timeout


@pytest.mark.parametrize("mode", MODES)
def test_timeout(mode, gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    with pytest.raises(AirflowSensorTimeout):
        run_sensor(make(mode, ids, timeout=0.6), mode, helpers)


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_on_timeout_and_on_failure(mode, gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    with pytest.raises(AirflowSkipException):
        run_sensor(make(mode, ids, timeout=0.6, soft_fail=True), mode, helpers)
    ids = helpers.send(gateway, UNKNOWN)
    with pytest.raises(AirflowSkipException):
        run_sensor(make(mode, ids, soft_fail=True), mode, helpers)


@pytest.mark.parametrize("mode", MODES)
def test_non_retryable_gateway_error_fails_at_once(mode, gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    started = time.monotonic()
    with pytest.raises(AirflowFailException, match="will not succeed by waiting") as info:
        run_sensor(make(mode, ids, smsend_conn_id="smsend_bad", timeout=30), mode, helpers)
    assert isinstance(info.value.__cause__, SmSendAuthError)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("mode", MODES)
def test_all_terminal_returns_even_with_failures(mode, gateway, helpers):
    ids = helpers.send(gateway, GOOD[0], UNKNOWN)
    summary = run_sensor(make(mode, ids, success_rule="all_terminal"), mode, helpers)
    assert summary["outcome"] == "satisfied" and summary["failed_count"] == 1


# ---------------------------------------------------------------- deferral and resume


def test_defers_with_the_right_trigger(gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    sensor = make("deferrable", ids, poke_interval=5, max_poll_interval=60, timeout=600, success_rule="0.5")
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    deferred = info.value
    assert isinstance(deferred.trigger, SmSendBatchStatusTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=660)
    path, kwargs = deferred.trigger.serialize()
    end_time = kwargs.pop("end_time")
    assert before + 600 <= end_time <= time.time() + 600
    assert kwargs == {
        "request_ids": ids,
        "report_type": "notify",
        "success_rule": 0.5,
        "fail_fast": True,
        "smsend_conn_id": "smsend_default",
        "poll_interval": 5.0,
        "max_poll_interval": 60.0,
    }


def test_already_satisfied_returns_without_deferring(gateway, helpers):
    ids = helpers.send(gateway, GOOD[0])
    gateway.admin.advance(60)
    summary = make("deferrable", ids).execute({})  # no TaskDeferred raised
    assert summary["delivered"] == 1


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"status": "timeout", "message": "Sensor has timed out"}, AirflowSensorTimeout),
        (
            {"status": "failed", "message": "Batch status rule failed", "summary": {"failed": []}},
            AirflowFailException,
        ),
        (
            {"status": "error", "message": "bad credentials", "error_type": "SmSendAuthError"},
            AirflowFailException,
        ),
        (None, AirflowFailException),
        ({"status": "weird"}, AirflowFailException),
    ],
)
def test_execute_complete_error_paths(event, error):
    sensor = make("deferrable", ["HTTP1"])
    with pytest.raises(error):
        sensor.execute_complete({}, event)
    with pytest.raises(error):
        sensor.resume_execution("execute_complete", {"event": event}, {})
    soft = make("deferrable", ["HTTP1"], soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution("execute_complete", {"event": event}, {})


def test_execute_complete_success_returns_the_summary():
    summary = {"delivered": 1, "total": 1, "delivered_ratio": 1.0}
    assert (
        make("deferrable", ["HTTP1"]).execute_complete({}, {"status": "success", "xcom": summary}) == summary
    )


# ---------------------------------------------------------------- retryable errors, templates, arguments


def report(*statuses: int) -> BatchStatusReport:
    rows = [
        BatchStatusRow(id=i, dest="+393331234567", status=s, status_text="x") for i, s in enumerate(statuses)
    ]
    return BatchStatusReport(request_id="HTTP1", report_type="notify", rows=rows)


def test_retryable_error_in_poke_mode_is_logged_and_poked_again(monkeypatch):
    answers: list = [SmSendInternalError("KO Errore interno"), report(100), report(200)]

    class FakeClient:
        def batch_status(self, request_id, report_type):
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    sensor = make("poke", "HTTP1", poke_interval=0.01)
    sensor.hook.__dict__["client"] = FakeClient()
    warnings: list = []
    monkeypatch.setattr(sensor.log, "warning", lambda *args, **kwargs: warnings.append(args))
    assert sensor.poke({}) is False
    assert warnings and "Retryable" in warnings[0][0]
    assert sensor.execute({})["delivered"] == 1
    assert answers == []


def test_template_fields_are_rendered():
    sensor = SmSendBatchStatusSensor(
        task_id="wait",
        request_ids="{{ params.ids }}",
        report_type="{{ params.kind }}",
        success_rule="{{ params.rule }}",
        smsend_conn_id="{{ params.conn }}",
    )
    assert set(sensor.template_fields) == {"request_ids", "report_type", "success_rule", "smsend_conn_id"}
    context = {
        "params": {"ids": "['HTTP1', 'HTTP2']", "kind": "queue", "rule": "0.9", "conn": "smsend_other"}
    }
    sensor.render_template_fields(context, jinja_env=jinja2.Environment())
    assert (sensor.request_ids, sensor.report_type, sensor.success_rule, sensor.smsend_conn_id) == (
        "['HTTP1', 'HTTP2']",
        "queue",
        "0.9",
        "smsend_other",
    )
    assert sensor._settings() == (["HTTP1", "HTTP2"], "queue", 0.9)


def test_arguments_are_checked_when_known():
    with pytest.raises(ValueError, match="success_rule"):
        SmSendBatchStatusSensor(task_id="a", request_ids="HTTP1", success_rule="most")
    with pytest.raises(ValueError, match="report_type"):
        SmSendBatchStatusSensor(task_id="b", request_ids="HTTP1", report_type="weekly")
    rendered_later = SmSendBatchStatusSensor(
        task_id="c", request_ids="HTTP1", success_rule="{{ params.rule }}"
    )
    rendered_later.success_rule = "most"
    with pytest.raises(AirflowFailException, match="success_rule"):
        rendered_later.execute({})
    with pytest.raises(AirflowFailException, match="No request id"):
        SmSendBatchStatusSensor(task_id="d", request_ids="").execute({})


def test_defaults_backoff_and_deferrable():
    sensor = SmSendBatchStatusSensor(task_id="w", request_ids="HTTP1", max_poll_interval=300)
    assert sensor.deferrable is conf.getboolean("operators", "default_deferrable", fallback=False)
    assert sensor.exponential_backoff is True
    assert sensor.max_wait == timedelta(seconds=300)
    assert SmSendBatchStatusSensor(task_id="x", request_ids="HTTP1").exponential_backoff is False
    assert sensor.smsend_conn_id == "smsend_default"
