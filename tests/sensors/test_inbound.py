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
        "sender_sql": None,
        "sender_conn_id": None,
    }
    by_sql = SmSendInboundSmsSensor(
        task_id="wait_sql",
        rcpt=RECEPTION,
        sharecode="001",
        sender_sql="SELECT number FROM customers WHERE id = {{ params.id }}",
        sender_conn_id="{{ params.conn }}",
    )
    by_sql.render_template_fields({"params": {"id": 7, "conn": "warehouse"}}, jinja_env=jinja2.Environment())
    assert (by_sql.sender_sql, by_sql.sender_conn_id) == (
        "SELECT number FROM customers WHERE id = 7",
        "warehouse",
    )


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


@pytest.fixture
def customers_conn(tmp_path, monkeypatch) -> str:
    """A SQLite warehouse with the customers table the reply example reads its sender from."""
    import sqlite3

    db = tmp_path / "warehouse.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, number TEXT, name TEXT)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)", [(1, CUSTOMER, "Anna"), (2, OTHER, "Bruno")]
        )
    monkeypatch.setenv("AIRFLOW_CONN_CUSTOMERS", f"sqlite://{db}")
    return "customers"


OTHER = "+393477005440"


def national(number: str) -> str:
    return number.removeprefix("+39")


@pytest.mark.parametrize("mode", MODES)
def test_sender_sql_reads_the_sender_when_the_sensor_starts(
    mode, gateway, sharecode, helpers, customers_conn
):
    """The number comes from the query, never from a template: the rendered fields and the trigger's
    kwargs hold the query (the trigger runs it again when it starts); the other sender's SI is ignored."""
    sensor = make(
        mode,
        sharecode,
        include_message=False,
        sender_sql="SELECT number FROM customers WHERE id = {{ params.customer_id }}",
        sender_conn_id=customers_conn,
        text_pattern=r"^\s*si\b",
    )
    sensor.render_template_fields({"params": {"customer_id": 1}}, jinja_env=jinja2.Environment())
    rendered = str({name: getattr(sensor, name) for name in sensor.template_fields})
    assert CUSTOMER not in rendered and "WHERE id = 1" in rendered
    gateway.admin.inject_inbound(RECEPTION, sharecode, OTHER, "SI")  # not the customer: ignored
    inject_later(gateway, sharecode, CUSTOMER, "SI")
    if mode == "deferrable":
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute({})
        kwargs = deferred.value.trigger.serialize()[1]
        assert (
            kwargs["sender"] is None and kwargs["sender_sql"] == "SELECT number FROM customers WHERE id = 1"
        )
        assert CUSTOMER not in str(kwargs) and national(CUSTOMER) not in str(kwargs)
        sensor = make(
            mode, sharecode, include_message=False, sender_sql="unused", sender_conn_id=customers_conn
        )
        event = helpers.first_event(helpers.reinstantiate(deferred.value.trigger))
        reply = sensor.resume_execution(deferred.value.method_name, {"event": event.payload}, {})
    else:
        reply = run_sensor(sensor, mode, helpers)
    assert reply["sender"] == mask_number(CUSTOMER), reply


def test_sender_sql_without_a_row_fails_the_task(customers_conn):
    sensor = SmSendInboundSmsSensor(
        task_id="w", rcpt=RECEPTION, sharecode="001", sender_sql="SELECT number FROM customers WHERE id = 9",
        sender_conn_id=customers_conn,
    )  # fmt: skip
    with pytest.raises(AirflowFailException, match="sender_sql found no sender"):
        sensor.prepare({})
    with pytest.raises(ValueError, match="not both"):
        SmSendInboundSmsSensor(
            task_id="a", rcpt=RECEPTION, sharecode="001", sender=CUSTOMER, sender_sql="SELECT 1"
        )
    with pytest.raises(ValueError, match="sender_conn_id"):
        SmSendInboundSmsSensor(task_id="b", rcpt=RECEPTION, sharecode="001", sender_sql="SELECT 1")


@pytest.mark.parametrize("mode", MODES)
def test_include_groups_adds_the_named_groups_and_no_text(mode, gateway, sharecode, helpers):
    inject_later(gateway, sharecode, CUSTOMER, "Si grazie, a domani Giulia")
    sensor = make(
        mode, sharecode, sender=CUSTOMER, include_message=False, include_groups=True,
        text_pattern=r"^\s*(?P<answer>si|no)\b",
    )  # fmt: skip
    reply = run_sensor(sensor, mode, helpers)
    assert reply["named_groups"] == {"answer": "Si"}, reply
    assert reply["sender"] == mask_number(CUSTOMER) and "text" not in reply
    assert "Giulia" not in str(reply) and CUSTOMER not in str(reply)
