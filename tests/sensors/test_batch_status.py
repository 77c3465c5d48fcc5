"""SmSendBatchStatusSensor: poke, reschedule and deferrable modes over the same scenarios, against the sandbox."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import pytest
from airflow.sdk import conf
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_smsend.client.batch_rules import FinalReports
from airflow_provider_smsend.client.errors import SmSendAuthError, SmSendInternalError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.reports import read_batch_status
from airflow_provider_smsend.sensors.batch_status import STATE_KEY, SmSendBatchStatusSensor
from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

GOOD = ("+393331234567", "+393471234567", "+393281234567")
UNKNOWN = "+393331230000"  # sandbox: notify 300 Unknown subscriber
PENDING = "+393331230002"  # sandbox: stays pending forever
MODES = ("poke", "reschedule", "deferrable")


class TaskStateStore:
    """What ``context["task_state_store"]`` keeps between the processes of a task instance: JSON."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self.writes += 1


class TaskInstance:
    """The part of the runtime task instance a reschedule-mode sensor asks: its first poke's date."""

    def __init__(self) -> None:
        self.first_poke: datetime | None = None

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first_poke


def run_sensor(mode: str, request_ids: Any, helpers: Any, **kwargs: Any) -> Any:
    """Run like Airflow: poke mode in one process; reschedule mode a new sensor (process) per poke
    sharing only the task state store; deferrable mode: execute, run the re-created trigger, resume."""
    context: dict = {"ti": TaskInstance(), "task_state_store": TaskStateStore()}
    if mode != "reschedule":
        sensor = make(mode, request_ids, **kwargs)
        try:
            return sensor.execute(context)
        except TaskDeferred as deferred:
            assert mode == "deferrable", "poke mode must never defer"
            assert deferred.method_name == "execute_complete"
            event = helpers.first_event(helpers.reinstantiate(deferred.trigger))
            return sensor.resume_execution(deferred.method_name, {"event": event.payload}, context)
    while True:
        started = datetime.now(UTC)
        try:
            return make(mode, request_ids, **kwargs).execute(context)
        except AirflowRescheduleException as rescheduled:
            context["ti"].first_poke = context["ti"].first_poke or started
            time.sleep(max(0.0, (rescheduled.reschedule_date - datetime.now(UTC)).total_seconds()))


def make(mode: str, request_ids: Any, **kwargs: Any) -> SmSendBatchStatusSensor:
    settings: dict[str, Any] = {
        "poke_interval": 0.1,
        "timeout": 10,
        "deferrable": mode == "deferrable",
        "mode": "reschedule" if mode == "reschedule" else "poke",
    }
    settings.update(kwargs)
    return SmSendBatchStatusSensor(task_id=f"wait_{mode}", request_ids=request_ids, **settings)


# ---------------------------------------------------------------- the matrix: same scenarios, both modes


@pytest.mark.parametrize("mode", MODES)
def test_all_delivered(mode, gateway, helpers):
    ids = helpers.send(gateway, *GOOD[:2])
    summary = run_sensor(mode, ids, helpers)
    assert summary["outcome"] == "satisfied"
    assert (summary["total"], summary["delivered"], summary["pending"], summary["failed"]) == (2, 2, 0, [])
    assert summary["by_status"] == {"200": 2}


@pytest.mark.parametrize("mode", MODES)
def test_partial_delivery_meets_a_ratio(mode, gateway, helpers):
    ids = helpers.send(gateway, *GOOD, UNKNOWN)
    summary = run_sensor(mode, ",".join(ids), helpers, success_rule=0.75)
    assert summary["delivered_ratio"] == 0.75
    assert summary["by_class"] == {"pending": 0, "success": 3, "failure": 1, "unknown": 0}
    assert [(row["dest"], row["status"], row["status_text"]) for row in summary["failed"]] == [
        (mask_number(UNKNOWN), 300, "Unknown subscriber")
    ]
    assert UNKNOWN not in json.dumps(summary)


@pytest.mark.parametrize("mode", MODES)
def test_fail_fast_on_a_3xx_row(mode, gateway, helpers):
    ids = helpers.send(gateway, GOOD[0], UNKNOWN, PENDING)
    # The pending row never moves: failing (not timing out after 30 s) is deciding without it.
    with pytest.raises(AirflowFailException, match="all_delivered cannot hold"):
        run_sensor(mode, ids, helpers, timeout=30)


@pytest.mark.parametrize("mode", MODES)
def test_timeout(mode, gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    with pytest.raises(AirflowSensorTimeout):
        run_sensor(mode, ids, helpers, timeout=0.6)


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_on_timeout_and_on_failure(mode, gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    with pytest.raises(AirflowSkipException):
        run_sensor(mode, ids, helpers, timeout=0.6, soft_fail=True)
    ids = helpers.send(gateway, UNKNOWN)
    with pytest.raises(AirflowSkipException):
        run_sensor(mode, ids, helpers, soft_fail=True)


@pytest.mark.parametrize("mode", MODES)
def test_non_retryable_gateway_error_fails_at_once(mode, gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    with pytest.raises(AirflowFailException, match="will not succeed by retrying") as info:
        run_sensor(mode, ids, helpers, smsend_conn_id="smsend_bad", timeout=30)
    assert isinstance(info.value.__cause__, SmSendAuthError)
    assert gateway.admin.stats()["requests"]["/sms/batch-status.php"] == 1  # one refused poll, no other


@pytest.mark.parametrize("mode", MODES)
def test_all_terminal_returns_even_with_failures(mode, gateway, helpers):
    ids = helpers.send(gateway, GOOD[0], UNKNOWN)
    summary = run_sensor(mode, ids, helpers, success_rule="all_terminal")
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
        "concurrency": 16,
        "final": None,  # nothing final at the first poke
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


def frame(*reports: tuple[str, tuple[int, ...]], report_type: str = "notify") -> Any:
    """A batch-status frame: ``(request id, statuses)`` per report, one row per status."""
    header = "id,dest,status,netcode,status_text" if report_type == "mnc" else "id,dest,status,status_text"
    bodies = []
    for rid, statuses in reports:
        rows = [
            f"{i},+39333123{i:04d},{s},{'22201,' if report_type == 'mnc' else ''}text {s}"
            for i, s in enumerate(statuses, start=1)
        ]
        bodies.append((rid, "\n".join([header, *rows, ""]).encode(), None))
    return read_batch_status(bodies, report_type)


class FakeClient:
    """The sync client's ``batch_status_frame``: answers (frames or errors) in turn, calls recorded."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[str], str, int]] = []

    def batch_status_frame(self, request_ids: list[str], report_type: str, *, concurrency: int) -> Any:
        self.calls.append((list(request_ids), report_type, concurrency))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_retryable_error_in_poke_mode_is_logged_and_poked_again(monkeypatch):
    client = FakeClient(
        SmSendInternalError("KO Errore interno"), frame(("HTTP1", (100,))), frame(("HTTP1", (200,)))
    )
    sensor = make("poke", "HTTP1", poke_interval=0.01, concurrency=3)
    sensor.hook.__dict__["client"] = client
    warnings: list = []
    monkeypatch.setattr(sensor.log, "warning", lambda *args, **kwargs: warnings.append(args))
    assert sensor.poke({}) is False
    assert warnings and "Retryable" in warnings[0][0]
    assert sensor.execute({})["delivered"] == 1
    assert client.answers == []
    assert client.calls == [(["HTTP1"], "notify", 3)] * 3  # the documented concurrency, every poll


def test_poke_mode_keeps_final_reports_and_fetches_only_the_others():
    client = FakeClient(
        frame(("A", (200,)), ("B", (100,)), ("C", (300, 100))),
        frame(("B", (200,)), ("C", (300, 200))),
    )
    sensor = make("poke", ["A", "B", "C"], poke_interval=0.01, success_rule="all_terminal")
    sensor.hook.__dict__["client"] = client
    summary = sensor.execute({})
    assert [call[0] for call in client.calls] == [["A", "B", "C"], ["B", "C"]]
    assert summary["by_status"] == {"200": 3, "300": 1} and summary["outcome"] == "satisfied"


def test_reschedule_pokes_share_the_final_reports_through_the_task_state_store():
    """Every reschedule-mode poke is a new process: only the task state store links them."""
    answers = [
        frame(("A", (300,)), ("B", (100,)), ("C", (100,))),
        frame(("B", (200,)), ("C", (100,))),
        frame(("C", (200,))),
    ]
    context: dict = {"ti": TaskInstance(), "task_state_store": TaskStateStore()}
    fetched: list[list[str]] = []
    for _ in range(3):
        sensor = make("reschedule", ["A", "B", "C"], success_rule="all_terminal")
        client = FakeClient(answers.pop(0))
        sensor.hook.__dict__["client"] = client
        try:
            summary = sensor.execute(context)
        except AirflowRescheduleException:
            summary = None
        fetched.append(client.calls[0][0])
    assert fetched == [["A", "B", "C"], ["B", "C"], ["C"]]
    assert summary is not None and summary["by_status"] == {"200": 2, "300": 1}
    assert [row["dest"] for row in summary["failed"]] == [mask_number("+393331230001")]
    stored = context["task_state_store"].get(STATE_KEY)
    assert len(FinalReports.from_json(stored, ["A", "B", "C"], "notify")) == 3
    assert "+393331230001" not in json.dumps(stored)


def test_a_retry_with_every_report_final_asks_the_gateway_nothing():
    final = FinalReports(["A", "B"], "notify")
    final.absorb(frame(("A", (200,)), ("B", (302,))))
    store = TaskStateStore()
    store.set(STATE_KEY, final.to_json())
    sensor = make("reschedule", "A,B", success_rule="all_terminal")
    sensor.hook.__dict__["client"] = FakeClient()  # any request would fail: no answer left
    summary = sensor.execute({"ti": TaskInstance(), "task_state_store": store})
    assert (summary["total"], summary["delivered"], summary["failed_count"]) == (2, 1, 1)


def test_the_state_of_another_batch_is_not_used(monkeypatch):
    other = FinalReports(["A", "X"], "notify")
    other.absorb(frame(("A", (200,)), ("X", (200,))))
    store = TaskStateStore()
    store.set(STATE_KEY, other.to_json())
    sensor = make("reschedule", "A,B")
    client = FakeClient(frame(("A", (200,)), ("B", (100,))))
    sensor.hook.__dict__["client"] = client
    warnings: list = []
    monkeypatch.setattr(sensor.log, "warning", lambda *args, **kwargs: warnings.append(args))
    assert sensor.poke({"task_state_store": store}) is False
    assert client.calls[0][0] == ["A", "B"]
    assert warnings and "another set of request ids" in str(warnings[0])


def test_the_trigger_carries_the_first_pokes_final_reports():
    client = FakeClient(frame(("A", (200,)), ("B", (100,)), ("C", (300,))))
    sensor = make("deferrable", ["A", "B", "C"], concurrency=5)
    sensor.hook.__dict__["client"] = client
    sensor.fail_fast = False
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["concurrency"] == 5
    restarted = SmSendBatchStatusTrigger(**json.loads(json.dumps(kwargs)))  # a triggerer restart
    assert restarted.final.pending() == ["B"]
    assert "+393331230001" not in json.dumps(kwargs)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("8", TypeError),
        (8.0, TypeError),
        (True, TypeError),
        (None, TypeError),
        (0, ValueError),
        (65, ValueError),
    ],
)
def test_concurrency_is_checked_at_construction(value, error):
    with pytest.raises(error, match="concurrency must be"):
        SmSendBatchStatusSensor(task_id="w", request_ids="HTTP1", concurrency=value)
    with pytest.raises(error, match="concurrency must be"):
        SmSendBatchStatusTrigger(request_ids=["HTTP1"], concurrency=value)
    assert SmSendBatchStatusSensor(task_id="w", request_ids="HTTP1").concurrency == 16
    assert SmSendBatchStatusSensor(task_id="w", request_ids="HTTP1", concurrency=64).concurrency == 64


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


# ---------------------------------------------------------------- one request per pending id, every mode

#: Sent one sandbox minute apart: the first is an unknown subscriber, the others are delivered.
STAGGERED = (UNKNOWN, GOOD[0], GOOD[1])
#: Sandbox seconds to a final report per report type: notify (twice the delay) and mnc (the delay).
DELAYS = {"notify": 50, "mnc": 100}


def staggered_batch(gateway: Any, helpers: Any, report_type: str) -> list[str]:
    """Three requests whose reports become final one per poll (the sandbox clock moves 60 s a poll)."""
    gateway.admin.reset()
    gateway.admin.set_settings(delivery_delay=DELAYS[report_type])
    client = helpers.sync_client(gateway)
    ids = []
    for number in STAGGERED:
        if ids:
            gateway.admin.advance(60)
        ids.append(client.mnc([number]) if report_type == "mnc" else client.send(number, "hello").request_id)
    gateway.admin.reset_stats()
    return ids


def count_requests_per_poll(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Gateway batch-status requests of each poll, sync or async client; each poll moves the clock 60 s."""
    import asyncio

    from airflow_provider_smsend.client.async_http import SmSendAsyncClient
    from airflow_provider_smsend.client.http import SmSendClient

    per_poll: list[int] = []

    def after_poll() -> None:
        per_poll.append(gateway.admin.stats()["requests"].get("/sms/batch-status.php", 0))
        gateway.admin.reset_stats()
        gateway.admin.advance(60)

    sync_frame, async_frame = SmSendClient.batch_status_frame, SmSendAsyncClient.batch_status_frame

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return sync_frame(self, *args, **kwargs)
        finally:
            after_poll()

    async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await async_frame(self, *args, **kwargs)
        finally:
            await asyncio.to_thread(after_poll)

    monkeypatch.setattr(SmSendClient, "batch_status_frame", counted)
    monkeypatch.setattr(SmSendAsyncClient, "batch_status_frame", counted_async)
    return per_poll


@pytest.mark.parametrize("report_type", ["notify", "mnc"])
def test_each_poll_fetches_only_the_pending_reports_in_every_mode(
    report_type, gateway, helpers, monkeypatch, capfd
):
    summaries = {}
    per_poll = count_requests_per_poll(gateway, monkeypatch)
    for mode in MODES:
        ids = staggered_batch(gateway, helpers, report_type)
        per_poll.clear()
        capfd.readouterr()
        summaries[mode] = run_sensor(
            mode, ids, helpers, report_type=report_type, success_rule="all_terminal", poke_interval=0.05
        )
        logged = capfd.readouterr()
        # A request per pending id at each poll: 3, then 2 (the unknown subscriber is final), then 1.
        assert per_poll == [3, 2, 1], mode
        poll_lines = [line for line in logged.out.splitlines() if "request id(s) fetched" in line]
        assert len(poll_lines) == 3, (mode, poll_lines)  # one line per poll, not one per id
        assert [
            re.search(r"(\d+) request id\(s\) fetched, (\d+) already final", line).groups()
            for line in poll_lines
        ] == [
            ("3", "0"),
            ("2", "1"),
            ("1", "2"),
        ]
        for number in STAGGERED:
            assert number not in logged.out + logged.err, mode
            assert number not in json.dumps(summaries[mode]), mode
    # Same gateway answers (the sandbox is reset: same ids, same rows), same summary in every mode.
    assert summaries["poke"] == summaries["reschedule"] == summaries["deferrable"]
    summary = summaries["poke"]
    assert (summary["total"], summary["delivered"], summary["failed_count"], summary["outcome"]) == (
        3,
        2,
        1,
        "satisfied",
    )
    assert [(row["request_id"], row["dest"], row["status"]) for row in summary["failed"]] == [
        (summary["request_ids"][0], mask_number(UNKNOWN), 300)
    ]
