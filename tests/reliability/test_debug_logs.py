"""Personal data at DEBUG: every logger the gateway's calls touch (ours, zeep, requests' urllib3,
httpx and httpcore) set to DEBUG, one call of each kind against the sandbox, and no full number and
no message text in what they logged (README, "Reliability": personal data).

What each library logs at DEBUG, checked here rather than assumed: urllib3 logs the method, the
path and the status (every gateway call is a form POST: the numbers travel in the body, never in
the query string); httpx logs the URL and status, httpcore the phases and the answer's headers;
zeep's transport would log whole SOAP envelopes, which our transport logs only through
``client/_soap_zeep.mask_envelope``.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import requests
from smsend_test_support.sandbox import soap_client

from airflow_provider_smsend.client.async_http import SmSendAsyncClient
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import RetryPolicy

LOGGERS = ("airflow_provider_smsend", "zeep", "urllib3", "requests", "httpx", "httpcore")
RECEPTION = "+393331234567"
REPLY_FROM = "+393339876543"
MMS_TO = "+393477005440"
SMS_TO = ("+393401112223", "+393405556667")
CHECKED = "+393209998887"
TEXTS = ("Ciao Giulia, il tuo ordine", "Sì grazie, confermo", "Promo Giulia", "Guarda la foto Giulia")
GIF = b"GIF89a" + b"\x01" * 64


def national(number: str) -> str:
    """The digits after the country code: what a leak shows even if the ``+39`` is rewritten."""
    return number[3:]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_no_number_or_text_in_any_debug_log(sandbox, debug_logs):
    added = requests.post(
        f"{sandbox.url}/backoffice/recv-add.php",
        data={"smsusername": "reseller", "smspassword": "reseller-pass", "u_id": 1001, "dest": RECEPTION},
        timeout=10,
    )
    sharecode = added.text.split()[1].split(",")[0]
    sandbox.admin.inject_inbound(RECEPTION, sharecode, REPLY_FROM, TEXTS[1])
    debug_logs.clear()  # from here on, only what the provider's calls log

    client = SmSendClient(
        username="demo",
        password="demo-pass",
        base_url=sandbox.url,
        reseller_username="reseller",
        reseller_password="reseller-pass",
        default_sender="ACME",
        retry=RetryPolicy(attempts=1),
    )
    sent = client.send(SMS_TO[0], TEXTS[0])
    bulk = client.bulk_send_path(sender="ACME", quality="h")
    bulk(SMS_TO[1], client.prepare(TEXTS[0]))
    client.mnc_chunked([CHECKED])
    client.batch_status(sent.request_id, "notify")
    [code] = client.recv_add(1001, MMS_TO)
    client.recv_del(1001, MMS_TO, code)

    async def read_async() -> None:
        async with SmSendAsyncClient.from_client(client) as async_client:
            await async_client.batch_status(sent.request_id, "notify")

    asyncio.run(read_async())
    soap = soap_client(sandbox)
    [reply] = soap.receive_sms(RECEPTION, sharecode)
    soap.send_mms(TEXTS[2], TEXTS[3], [MMS_TO], image=GIF)

    logged = debug_logs.text
    loggers = {record.name.split(".")[0] for record in debug_logs.records}
    assert {"airflow_provider_smsend", "zeep", "urllib3", "httpx", "httpcore"} <= loggers
    assert "receiveSmsResponse" in logged and "sendMms" in logged  # the envelopes were logged, masked
    assert reply.text == TEXTS[1]
    numbers = (RECEPTION, REPLY_FROM, MMS_TO, CHECKED, *SMS_TO)
    personal = [national(n) for n in numbers] + [*TEXTS, "Giulia"]
    assert [value for value in personal if value in logged] == []
    for secret in ("demo-pass", "reseller-pass", "mms-pass"):
        assert secret not in logged
