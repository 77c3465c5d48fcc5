"""SmSendInboundSmsSensor: poke and deferrable modes over the same scenarios, against the sandbox."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import jinja2
import pytest
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.sensors.inbound import SmSendInboundSmsSensor
from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger

RECEPTION = "+393400000001"
CUSTOMER = "+393331234567"
MODES = ("poke", "deferrable")


@pytest.fixture
def sharecode(gateway, helpers) -> str:
    return helpers.sync_client(gateway).recv_add(1001, RECEPTION, 1)[0]


def run_sensor(sensor: SmSendInboundSmsSensor, mode: str, helpers: Any, context: dict | None = None) -> Any:
    context = context if context is not None else {}
    try:
        return sensor.execute(context)
    except TaskDeferred as deferred:
        assert mode == "deferrable", "poke mode must never defer"
        event = helpers.first_event(helpers.reinstantiate(deferred.trigger))
        return sensor.resume_execution(deferred.method_name, {"event": event.payload}, context)


def make(mode: str, sharecode: str, **kwargs: Any) -> SmSendInboundSmsSensor:
    settings: dict[str, Any] = {
        "poke_interval": 0.1, "timeout": 10, "deferrable": mode == "deferrable", "include_message": True,
    }  # fmt: skip
    settings.update(kwargs)
    return SmSendInboundSmsSensor(task_id=f"wait_{mode}", rcpt=RECEPTION, sharecode=sharecode, **settings)


def inject_later(gateway: Any, sharecode: str, sender: str, text: str, delay: float = 0.4) -> threading.Timer:
    timer = threading.Timer(delay, gateway.admin.inject_inbound, args=(RECEPTION, sharecode, sender, text))
    timer.start()
    return timer


@pytest.mark.parametrize("mode", MODES)
def test_reply_matching_sender_and_text(mode, gateway, sharecode, helpers):
    gateway.admin.inject_inbound(RECEPTION, sharecode, CUSTOMER, "SI", received_at=time.time() - 3600)
    gateway.admin.inject_inbound(RECEPTION, sharecode, "+393479999999", "SI")
    timer = inject_later(gateway, sharecode, CUSTOMER, "si grazie")
    sensor = make(mode, sharecode, sender="3331234567", text_pattern=r"^\s*si\b")
    reply = run_sensor(sensor, mode, helpers)
    timer.join()
    assert (reply["sender"], reply["text"], reply["match"]) == (CUSTOMER, "si grazie", "si")
    assert (reply["rcpt"], reply["sharecode"]) == (RECEPTION, sharecode)


@pytest.mark.parametrize("mode", MODES)
def test_old_messages_are_ignored_until_timeout(mode, gateway, sharecode, helpers):
    gateway.admin.inject_inbound(RECEPTION, sharecode, CUSTOMER, "SI", received_at=time.time() - 5)
    with pytest.raises(AirflowSensorTimeout):
        run_sensor(make(mode, sharecode, timeout=0.6), mode, helpers)


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_on_timeout(mode, gateway, sharecode, helpers):
    with pytest.raises(AirflowSkipException):
        run_sensor(make(mode, sharecode, timeout=0.6, soft_fail=True), mode, helpers)


@pytest.mark.parametrize("mode", MODES)
def test_explicit_received_after_accepts_an_earlier_reply(mode, gateway, sharecode, helpers):
    gateway.admin.inject_inbound(
        RECEPTION, sharecode, CUSTOMER, "Il codice è 482913", received_at=time.time() - 60
    )
    after = datetime.fromtimestamp(time.time() - 120, UTC).isoformat()
    reply = run_sensor(
        make(mode, sharecode, text_pattern=r"\b(\d{6})\b", received_after=after), mode, helpers
    )
    assert reply["groups"] == ["482913"]


@pytest.mark.parametrize("mode", MODES)
def test_non_retryable_error_fails_at_once(mode, gateway, sharecode, helpers):
    with pytest.raises(AirflowFailException, match="will not succeed by retrying"):
        run_sensor(make(mode, "999", timeout=30), mode, helpers)
    assert gateway.admin.stats()["requests"].get("/wsdl/index.php") == 1  # one receiveSms, not polled again


def test_deferral_carries_the_start_time_and_criteria(gateway, sharecode):
    sensor = make(
        "deferrable", sharecode, sender=CUSTOMER, text_pattern="si", poke_interval=5, max_poll_interval=50
    )
    before = datetime.now(UTC).replace(microsecond=0)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    after = datetime.now(UTC)
    trigger = info.value.trigger
    assert isinstance(trigger, SmSendInboundSmsTrigger)
    assert info.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["received_after"] == sensor.started_after.isoformat()
    assert sensor.started_after.microsecond == 0
    assert before <= sensor.started_after <= after  # the moment it started, to the second
    assert {k: kwargs[k] for k in ("rcpt", "sharecode", "sender", "text_pattern", "poll_interval")} == {
        "rcpt": RECEPTION,
        "sharecode": sharecode,
        "sender": CUSTOMER,
        "text_pattern": "si",
        "poll_interval": 5.0,
    }
    assert kwargs["max_poll_interval"] == 50.0


def test_reschedule_mode_keeps_the_first_start(gateway, sharecode):
    first = datetime(2024, 5, 1, 9, 0, 0, 123456, tzinfo=UTC)
    ti = mock.Mock()
    ti.get_first_reschedule_date.return_value = first
    sensor = SmSendInboundSmsSensor(task_id="w", rcpt=RECEPTION, sharecode=sharecode, mode="reschedule")
    sensor.prepare({"ti": ti})
    assert sensor.started_after == first.replace(microsecond=0)


def test_template_fields_are_rendered():
    sensor = SmSendInboundSmsSensor(
        task_id="wait",
        rcpt="{{ params.rcpt }}",
        sharecode="{{ params.code }}",
        sender="{{ params.sender }}",
        text_pattern="{{ params.pattern }}",
        received_after="{{ params.after }}",
        smsend_conn_id="{{ params.conn }}",
    )
    params = {
        "rcpt": RECEPTION,
        "code": "001",
        "sender": CUSTOMER,
        "pattern": "^si$",
        "after": "2024-05-01T09:00:00+00:00",
        "conn": "smsend_other",
    }
    sensor.render_template_fields({"params": params}, jinja_env=jinja2.Environment())
    rendered = {name: getattr(sensor, name) for name in sensor.template_fields}
    assert rendered == {
        "rcpt": RECEPTION,
        "sharecode": "001",
        "sender": CUSTOMER,
        "text_pattern": "^si$",
        "received_after": "2024-05-01T09:00:00+00:00",
        "smsend_conn_id": "smsend_other",
    }


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="leading zeros"):
        SmSendInboundSmsSensor(task_id="a", rcpt=RECEPTION, sharecode=1)
    with pytest.raises(ValueError, match="regular expression"):
        SmSendInboundSmsSensor(task_id="b", rcpt=RECEPTION, sharecode="001", text_pattern="(")
    sensor = SmSendInboundSmsSensor(task_id="c", rcpt=RECEPTION, sharecode="001", received_after="{{ x }}")
    sensor.received_after = "not a date"
    with pytest.raises(AirflowFailException, match="ISO 8601"):
        sensor.execute({})


def test_execute_complete_returns_the_reply_masked_by_default():
    sensor = SmSendInboundSmsSensor(task_id="w", rcpt=RECEPTION, sharecode="001")
    reply = {"id": 5, "sender": CUSTOMER, "text": "SI", "received_at": "2024-05-01T11:00:00+02:00"}
    assert sensor.execute_complete({}, {"status": "success", "xcom": reply}) == {
        "id": 5,
        "received_at": "2024-05-01T11:00:00+02:00",
        "sender": mask_number(CUSTOMER),
        "rcpt": mask_number(RECEPTION),
        "sharecode": "001",
    }
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete({}, {"status": "timeout", "message": "timed out"})


@pytest.mark.parametrize("mode", MODES)
def test_the_reply_is_masked_unless_include_message(mode, gateway, sharecode, helpers):
    """Default: only the message's id, time and masked numbers reach XCom; the opt-in re-reads the
    full message by its id after a deferral (the trigger's event never carries the text)."""
    inject_later(gateway, sharecode, CUSTOMER, "SI, code 424242")
    masked = run_sensor(make(mode, sharecode, sender=CUSTOMER, include_message=False), mode, helpers)
    assert masked["sender"] == mask_number(CUSTOMER) and "text" not in masked
    assert "424242" not in str(masked) and CUSTOMER not in str(masked)
    full = run_sensor(make(mode, sharecode, sender=CUSTOMER, received_after="2000-01-01T00:00:00+00:00",
                           text_pattern=r"code (\d+)"), mode, helpers)  # fmt: skip
    assert (full["id"], full["text"], full["sender"], full["groups"]) == (masked["id"], "SI, code 424242", CUSTOMER,
                                                                         ["424242"])  # fmt: skip
