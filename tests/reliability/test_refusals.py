"""Gateway refusals -- wrong credentials, IP not enabled, insufficient credit -- fail the task at
once: ``AirflowFailException`` (Airflow burns no retries), one request, an actionable message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _shared import numbers
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from smsend_test_support.sensor_fixtures import first_event, reinstantiate
from smsend_test_support.sensor_fixtures import send as send_sms

from airflow_provider_smsend.operators.backoffice import SmSendAssignCreditOperator, SmSendCreditCheckOperator
from airflow_provider_smsend.operators.mms import SmSendMmsOperator
from airflow_provider_smsend.operators.sms import SmSendSmsOperator
from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor
from airflow_provider_smsend.sensors.inbound import SmSendInboundSmsSensor

DEMO = 1001
PENDING = "+393331230002"  # the sandbox leaves it pending forever
MESSAGES = {
    # the SMS API answers wrong credentials with "KO Accesso non consentito (utente non abilitato)."
    "bad_credentials": r"(Wrong username or password: fix|check) the connection's login and password",
    "ip_not_enabled": r"IP not enabled: enable this machine's public address",
    "insufficient_credit": r"Insufficient credit: top up the account",
}


def refuse(kind: str, sandbox: Any, add_smsend_connection: Callable[..., str]) -> str:
    """Make the gateway refuse in the way ``kind`` says; return the connection id to use."""
    if kind == "bad_credentials":
        return add_smsend_connection(
            "smsend_refused", password="wrong-pass", reseller_password="wrong-reseller-pass"
        )
    if kind == "ip_not_enabled":
        sandbox.admin.set_settings(allow_ips=["10.9.9.9"])
    else:
        sandbox.admin.set_credit(DEMO, "0")
    return add_smsend_connection("smsend_refused")


def requests_to(sandbox: Any, path: str) -> int:
    return sandbox.admin.stats()["requests"].get(path, 0)


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_sms_operator_fails_at_once(
    kind: str, sandbox: Any, add_smsend_connection: Any, ledger_conn_id: str, make_context: Any
) -> None:
    conn_id = refuse(kind, sandbox, add_smsend_connection)
    task = SmSendSmsOperator(
        task_id="send",
        recipients=numbers(40),
        text="Saldi",
        sender="ACME",
        concurrency=4,
        smsend_conn_id=conn_id,
    )
    with pytest.raises(AirflowFailException, match=rf"Sending stopped early: .*{MESSAGES[kind]}"):
        task.execute(make_context(task_id="send"))
    assert requests_to(sandbox, "/sms/send.php") <= 4  # stopped with the requests already in flight
    assert sandbox.admin.counts(kind="sms") == {}


@pytest.mark.parametrize("kind", ["bad_credentials", "ip_not_enabled"])  # reading costs no credit
@pytest.mark.parametrize("sensor_kind", ["batch_status", "inbound"])
def test_sensors_fail_at_once_in_poke_mode(
    kind: str, sensor_kind: str, sandbox: Any, add_smsend_connection: Any
) -> None:
    conn_id = refuse(kind, sandbox, add_smsend_connection)
    if sensor_kind == "batch_status":
        sensor: Any = SmSendBatchStatusSensor(
            task_id="wait",
            request_ids="HTTP00000000001",
            smsend_conn_id=conn_id,
            poke_interval=0.1,
            timeout=30,
        )
        path, expected = "/sms/batch-status.php", MESSAGES[kind]
    else:
        sensor = SmSendInboundSmsSensor(
            task_id="wait",
            rcpt="+393400000001",
            sharecode="001",
            smsend_conn_id=conn_id,
            poke_interval=0.1,
            timeout=30,
        )
        path, expected = "/wsdl/index.php", r"Not allowed: check the MMS id, password or ticket|KO 10[16]"
    with pytest.raises(AirflowFailException, match=rf"will not succeed by retrying: .*({expected})"):
        sensor.execute({})
    assert requests_to(sandbox, path) == 1  # no retry of a refusal


def test_deferred_sensor_fails_when_the_trigger_is_refused(sandbox: Any, smsend_conn_id: str) -> None:
    (request_id,) = send_sms(sandbox, PENDING)
    sensor = SmSendBatchStatusSensor(
        task_id="wait", request_ids=request_id, deferrable=True, poke_interval=0.1, timeout=30
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    sandbox.admin.set_settings(allow_ips=["10.9.9.9"])
    event = first_event(reinstantiate(deferred.value.trigger), timeout=20)
    assert event.payload["status"] == "error" and event.payload["code"] == "ip_not_enabled", event.payload
    with pytest.raises(AirflowFailException, match=MESSAGES["ip_not_enabled"]):
        sensor.resume_execution(deferred.value.method_name, {"event": event.payload}, {})


@pytest.mark.parametrize("kind", ["bad_credentials", "ip_not_enabled"])
def test_backoffice_operator_fails_at_once(
    kind: str, sandbox: Any, add_smsend_connection: Any, ledger_conn_id: str, make_context: Any
) -> None:
    conn_id = refuse(kind, sandbox, add_smsend_connection)
    task = SmSendAssignCreditOperator(
        task_id="credit", u_id=DEMO, bill_id=1, credit="5", smsend_conn_id=conn_id
    )
    expected = {  # the back-office refuses an IP with a bare "KO Accesso non consentito."
        "bad_credentials": r"Wrong username or password: fix the login/password",
        "ip_not_enabled": r"check the reseller credentials and the enabled IP addresses",
    }[kind]
    with pytest.raises(AirflowFailException, match=expected):
        task.execute(make_context(task_id="credit"))
    assert requests_to(sandbox, "/backoffice/credit-add.php") == 1
    assert [e for e in sandbox.admin.userlog() if e["type"] == "credits"] == []


def test_insufficient_credit_fails_the_backoffice_check_and_the_mms(
    sandbox: Any, add_smsend_connection: Any, ledger_conn_id: str, make_context: Any
) -> None:
    conn_id = refuse("insufficient_credit", sandbox, add_smsend_connection)
    check = SmSendCreditCheckOperator(
        task_id="check", u_id=DEMO, min_credit="10", mode="fail", smsend_conn_id=conn_id
    )
    with pytest.raises(AirflowFailException, match=r"below the required 10 EUR: top it up"):
        check.execute(make_context(task_id="check"))
    mms = SmSendMmsOperator(
        task_id="mms", subject="Promo", text="Ciao", recipients=["+393331234567"], smsend_conn_id=conn_id
    )
    with pytest.raises(AirflowFailException, match=r"No credit left for MMS: top up the account"):
        mms.execute(make_context(task_id="mms"))
    assert requests_to(sandbox, "/sms-gw/index.php") == 1
    assert sandbox.admin.messages(kind="mms") == []
