"""Contract tests: SmSendSoapClient against the suite's sandbox gateway over real HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
from smsend_test_support.sandbox import soap_client

from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendInsufficientCreditError,
    SmSendValidationError,
)

RCPT = "+393331234567"
GIF = b"GIF89a" + b"\x00" * 64
# Sandbox fixture accounts (sandbox/default_accounts.json).
RESELLER = {"smsusername": "reseller", "smspassword": "reseller-pass"}
CLIENT_ID = 1001


def share_code(sandbox: Any, rcpt: str = RCPT) -> str:
    answer = requests.post(
        f"{sandbox.url}/backoffice/recv-add.php",
        data={**RESELLER, "u_id": CLIENT_ID, "dest": rcpt, "num": 1},
        timeout=10,
    )
    assert answer.text.startswith("OK "), answer.text
    return answer.text.split()[1].split(",")[0]


@pytest.mark.parametrize("live_wsdl", [False, True], ids=["bundled-wsdl", "live-wsdl"])
def test_receive_sms(sandbox, live_wsdl):
    code = share_code(sandbox)
    for n, text in enumerate(["Ciao", "Perché è così", "third"]):
        sandbox.admin.inject_inbound(RCPT, code, f"+39333000000{n}", text)
    wsdl = {"wsdl_receive": f"{sandbox.url}/wsdl/?wsdl"} if live_wsdl else {}
    client = soap_client(sandbox, **wsdl)

    items = client.receive_sms(RCPT, code, messages=10)

    assert sorted(s.text for s in items) == ["Ciao", "Perché è così", "third"]
    assert all(s.received_at.tzinfo is not None and str(s.received_at.tzinfo) == "Europe/Rome" for s in items)
    assert len({s.id for s in items}) == 3
    assert len(client.receive_sms(RCPT, code, messages=2)) == 2


def test_receive_sms_empty(sandbox):
    assert soap_client(sandbox).receive_sms(RCPT, share_code(sandbox)) == []


def test_receive_sms_wrong_password_is_an_auth_error(sandbox):
    with pytest.raises(SmSendAuthError):
        soap_client(sandbox, password="wrong").receive_sms(RCPT, share_code(sandbox))


@pytest.mark.parametrize("live_wsdl", [False, True], ids=["bundled-wsdl", "live-wsdl"])
def test_send_mms_plain(sandbox, live_wsdl):
    wsdl = {"wsdl_mms": f"{sandbox.url}/sms-gw/?wsdl"} if live_wsdl else {}
    result = soap_client(sandbox, **wsdl).send_mms("Oggetto", "Testo dell'MMS", [RCPT], image=GIF)

    assert result.cost == Decimal("0.3700")
    [recorded] = sandbox.admin.messages(kind="mms")
    assert recorded["rcpt"] == RCPT
    assert recorded["subject"] == "Oggetto"
    assert recorded["attachments"] == ["image/gif"]


def test_send_mms_md5_with_latin1_text(sandbox):
    client = soap_client(sandbox, mms_id="C00000_002", mms_password="mms-md5-pass", mms_auth="md5")
    result = client.send_mms("Città", "Perché è così", [RCPT, "+393331234568"])

    assert result.cost == Decimal("0.7400")
    assert sorted(m["text"] for m in sandbox.admin.messages(kind="mms")) == ["Perché è così"] * 2


def test_send_mms_md5_wrong_secret_is_refused(sandbox):
    client = soap_client(sandbox, mms_id="C00000_002", mms_password="not-it", mms_auth="md5")
    with pytest.raises(SmSendAuthError):
        client.send_mms("S", "T", [RCPT])
    assert sandbox.admin.messages(kind="mms") == []


def test_send_mms_without_credit(sandbox):
    sandbox.admin.set_credit(CLIENT_ID, "0")
    with pytest.raises(SmSendInsufficientCreditError) as info:
        soap_client(sandbox).send_mms("S", "T", [RCPT])
    assert info.value.retryable is False


def test_invalid_mms_never_reaches_the_sandbox(sandbox):
    client = soap_client(sandbox)
    with pytest.raises(SmSendValidationError):
        client.send_mms("x" * 26, "T", [RCPT])
    assert sandbox.admin.stats()["total"] == 0
    client.send_mms("S", "T", [RCPT])
    assert sandbox.admin.stats()["requests"] == {"/sms-gw/index.php": 1}
