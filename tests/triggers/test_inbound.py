"""SmSendInboundSmsTrigger in a real event loop against the sandbox's receiveSms."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_smsend.client.errors import SmSendInternalError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.soap import ROME, ReceivedSms
from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook
from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger

RECEPTION = "+393400000001"
CUSTOMER = "+393331234567"


@pytest.fixture
def sharecode(gateway, helpers) -> str:
    return helpers.sync_client(gateway).recv_add(1001, RECEPTION, 1)[0]


def trigger(sharecode: str, **kwargs) -> SmSendInboundSmsTrigger:
    settings = {
        "rcpt": RECEPTION,
        "sharecode": sharecode,
        "received_after": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "poll_interval": 0.1,
        "end_time": time.time() + 10,
    }
    settings.update(kwargs)
    return SmSendInboundSmsTrigger(**settings)


async def _first(trig):
    async for event in trig.run():
        return event
    return None


def test_serialize_round_trips_exactly_and_holds_no_secret(gateway, helpers):
    original = trigger(
        "001",
        sender=CUSTOMER,
        text_pattern=r"^\s*si\b",
        ignore_case=False,
        messages=20,
        received_after="2024-05-01T09:00:00+00:00",
        end_time=1_800_000_000.0,
        max_poll_interval=120,
    )
    path, kwargs = original.serialize()
    assert path == "airflow_provider_smsend.triggers.inbound.SmSendInboundSmsTrigger"
    assert SmSendInboundSmsTrigger(**kwargs).serialize() == (path, kwargs)
    assert helpers.reinstantiate(original).serialize() == (path, kwargs)
    assert kwargs["received_after"] == "2024-05-01T09:00:00+00:00"
    dumped = json.dumps(kwargs)
    assert not [secret for secret in helpers.secrets if secret in dumped]


def test_a_reply_injected_while_waiting_matches_and_older_ones_do_not(gateway, sharecode):
    gateway.admin.inject_inbound(
        RECEPTION, sharecode, CUSTOMER, "SI (yesterday)", received_at=time.time() - 86400
    )
    gateway.admin.inject_inbound(RECEPTION, sharecode, "+393479999999", "SI from someone else")

    async def go():
        task = asyncio.ensure_future(
            _first(trigger(sharecode, sender="333 1234567", text_pattern=r"^\s*(?P<answer>si|no)\b"))
        )
        await asyncio.sleep(0.4)
        assert not task.done()
        await asyncio.to_thread(gateway.admin.inject_inbound, RECEPTION, sharecode, CUSTOMER, "Si, confermo")
        return await asyncio.wait_for(task, 10)

    event = asyncio.run(go())
    assert event.payload["status"] == "success"
    reply = event.payload["xcom"]
    # The triggerer logs every event and the metadata database keeps it: no text, numbers masked.
    assert reply["sender"] == mask_number(CUSTOMER) and reply["rcpt"] == mask_number(RECEPTION)
    assert set(reply) == {"id", "received_at", "sender", "rcpt", "sharecode"}
    assert "confermo" not in json.dumps(event.payload) and CUSTOMER not in json.dumps(event.payload)
    assert reply["sharecode"] == sharecode
    assert datetime.fromisoformat(reply["received_at"]).tzinfo is not None


def test_nothing_new_times_out(gateway, sharecode):
    gateway.admin.inject_inbound(RECEPTION, sharecode, CUSTOMER, "SI", received_at=time.time() - 60)
    event = asyncio.run(_first(trigger(sharecode, end_time=time.time() + 0.5)))
    assert event.payload["status"] == "timeout"


def test_unassigned_share_code_is_a_non_retryable_error(gateway, sharecode):
    event = asyncio.run(_first(trigger("999")))
    assert event.payload["status"] == "error"
    assert event.payload["error_type"].startswith("SmSend")


def test_receive_sms_runs_in_a_worker_thread_and_retryable_errors_poll_again(monkeypatch):
    threads: list[str] = []
    now = datetime.now(ROME)
    answers: list = [
        SmSendInternalError("boom"),
        [ReceivedSms(id=1, sender=CUSTOMER, text="code 123456", received_at=now + timedelta(seconds=1))],
    ]

    class FakeSoap:
        def receive_sms(self, rcpt, sharecode, messages):
            threads.append(threading.current_thread().name)
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        def close(self):
            threads.append("closed")

    async def fake_soap(self):
        return FakeSoap()

    monkeypatch.setattr(SmSendAsyncHook, "get_soap_client", fake_soap)
    event = asyncio.run(
        _first(
            trigger("001", text_pattern=r"code (\d{6})", received_after=now.isoformat(), poll_interval=0.01)
        )
    )
    assert event.payload["status"] == "success"
    assert "123456" not in str(event.payload)  # a code is the text's: the sensor re-reads it
    assert len(threads) == 3 and threads[-1] == "closed"
    assert threading.main_thread().name not in threads[:2]


def test_bad_pattern_or_date_fail_when_the_trigger_is_built():
    with pytest.raises(ValueError, match="regular expression"):
        trigger("001", text_pattern="(")
    with pytest.raises(ValueError, match="ISO 8601"):
        trigger("001", received_after="soon")


@pytest.fixture
def customers_conn(tmp_path, monkeypatch) -> str:
    import sqlite3

    db = tmp_path / "warehouse.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, number TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, ?)", (CUSTOMER,))
    monkeypatch.setenv("AIRFLOW_CONN_CUSTOMERS", f"sqlite://{db}")
    return "customers"


def test_sender_sql_is_read_in_the_triggerer_and_never_serialized(gateway, sharecode, customers_conn):
    sql = "SELECT number FROM customers WHERE id = 1"
    waiting = trigger(sharecode, sender_sql=sql, sender_conn_id=customers_conn, text_pattern=r"^\s*si\b")
    kwargs = waiting.serialize()[1]
    assert (kwargs["sender"], kwargs["sender_sql"], kwargs["sender_conn_id"]) == (None, sql, customers_conn)
    assert CUSTOMER.removeprefix("+39") not in json.dumps(kwargs)
    gateway.admin.inject_inbound(RECEPTION, sharecode, "+393479999999", "SI")  # not the customer
    threading.Timer(0.4, gateway.admin.inject_inbound, args=(RECEPTION, sharecode, CUSTOMER, "si")).start()
    event = asyncio.run(_first(waiting))
    assert event.payload["status"] == "success", event.payload
    assert event.payload["xcom"]["sender"] == mask_number(CUSTOMER)
    assert waiting.serialize()[1] == kwargs  # the number read stays out of the kwargs


def test_sender_sql_without_a_row_ends_the_trigger_with_an_error(gateway, sharecode, customers_conn):
    missing = trigger(
        sharecode, sender_sql="SELECT number FROM customers WHERE id = 9", sender_conn_id=customers_conn
    )
    event = asyncio.run(_first(missing))
    assert event.payload["status"] == "error" and "found no sender" in event.payload["message"], event.payload
