"""Contract tests: SmSendSoapClient against the local sandbox gateway over real HTTP."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendInsufficientCreditError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient

if importlib.util.find_spec("airflow_provider_smsend.sandbox.testing") is None:  # pragma: no cover
    pytest.skip(
        "airflow_provider_smsend.sandbox.testing (run_sandbox) is not available", allow_module_level=True
    )

from airflow_provider_smsend.sandbox.testing import run_sandbox  # noqa: E402

RCPT = "+393331234567"
GIF = b"GIF89a" + b"\x00" * 64
# Sandbox fixture accounts (sandbox/default_accounts.json).
RESELLER = {"smsusername": "reseller", "smspassword": "reseller-pass"}
CLIENT_ID = 1001


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with run_sandbox(delivery_delay=0) as server:
        yield server


@pytest.fixture
def gateway(sandbox: Any) -> Any:
    sandbox.admin.reset()
    return sandbox


def make_client(gateway: Any, **kwargs: Any) -> SmSendSoapClient:
    options: dict[str, Any] = {
        "receive_url": gateway.url,
        "mms_url": gateway.url,
        "username": "demo",
        "password": "demo-pass",
        "mms_id": "C00000_001",
        "mms_password": "mms-pass",
        "retry": RetryPolicy(attempts=1),
        "timeout": (5.0, 10.0),
    }
    options.update(kwargs)
    return SmSendSoapClient(**options)


def share_code(gateway: Any, rcpt: str = RCPT) -> str:
    answer = requests.post(
        f"{gateway.url}/backoffice/recv-add.php",
        data={**RESELLER, "u_id": CLIENT_ID, "dest": rcpt, "num": 1},
        timeout=10,
    )
    assert answer.text.startswith("OK "), answer.text
    return answer.text.split()[1].split(",")[0]


@pytest.mark.parametrize("live_wsdl", [False, True], ids=["bundled-wsdl", "live-wsdl"])
def test_receive_sms(gateway, live_wsdl):
    code = share_code(gateway)
    for n, text in enumerate(["Ciao", "Perché è così", "third"]):
        gateway.admin.inject_inbound(RCPT, code, f"+39333000000{n}", text)
    wsdl = {"wsdl_receive": f"{gateway.url}/wsdl/?wsdl"} if live_wsdl else {}
    client = make_client(gateway, **wsdl)

    items = client.receive_sms(RCPT, code, messages=10)

    assert sorted(s.text for s in items) == ["Ciao", "Perché è così", "third"]
    assert all(s.received_at.tzinfo is not None and str(s.received_at.tzinfo) == "Europe/Rome" for s in items)
    assert len({s.id for s in items}) == 3
    assert len(client.receive_sms(RCPT, code, messages=2)) == 2


def test_receive_sms_empty(gateway):
    assert make_client(gateway).receive_sms(RCPT, share_code(gateway)) == []


def test_receive_sms_wrong_password_is_an_auth_error(gateway):
    with pytest.raises(SmSendAuthError):
        make_client(gateway, password="wrong").receive_sms(RCPT, share_code(gateway))


@pytest.mark.parametrize("live_wsdl", [False, True], ids=["bundled-wsdl", "live-wsdl"])
def test_send_mms_plain(gateway, live_wsdl):
    wsdl = {"wsdl_mms": f"{gateway.url}/sms-gw/?wsdl"} if live_wsdl else {}
    result = make_client(gateway, **wsdl).send_mms("Oggetto", "Testo dell'MMS", [RCPT], image=GIF)

    assert result.cost == Decimal("0.3700")
    [recorded] = gateway.admin.messages(kind="mms")
    assert recorded["rcpt"] == RCPT
    assert recorded["subject"] == "Oggetto"
    assert recorded["attachments"] == ["image/gif"]


def test_send_mms_md5_with_latin1_text(gateway):
    client = make_client(gateway, mms_id="C00000_002", mms_password="mms-md5-pass", mms_auth="md5")
    result = client.send_mms("Città", "Perché è così", [RCPT, "+393331234568"])

    assert result.cost == Decimal("0.7400")
    assert sorted(m["text"] for m in gateway.admin.messages(kind="mms")) == ["Perché è così"] * 2


def test_send_mms_md5_wrong_secret_is_refused(gateway):
    client = make_client(gateway, mms_id="C00000_002", mms_password="not-it", mms_auth="md5")
    with pytest.raises(SmSendAuthError):
        client.send_mms("S", "T", [RCPT])
    assert gateway.admin.messages(kind="mms") == []


def test_send_mms_without_credit(gateway):
    gateway.admin.set_credit(CLIENT_ID, "0")
    with pytest.raises(SmSendInsufficientCreditError) as info:
        make_client(gateway).send_mms("S", "T", [RCPT])
    assert info.value.retryable is False


def test_invalid_mms_never_reaches_the_sandbox(gateway):
    gateway.admin.reset_stats()
    client = make_client(gateway)
    with pytest.raises(SmSendValidationError):
        client.send_mms("x" * 26, "T", [RCPT])
    assert gateway.admin.stats()["total"] == 0
    client.send_mms("S", "T", [RCPT])
    assert gateway.admin.stats()["requests"] == {"/sms-gw/index.php": 1}
