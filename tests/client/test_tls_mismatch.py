"""A TLS handshake that fails never sent the request: classified 'never sent', with a fix to suggest.

Against the plain-HTTP sandbox reached with https://, the handshake fails on the server's plain
HTTP answer (``WRONG_VERSION_NUMBER``): nothing reached the gateway, so a send is never-sent (a
retry may resend it), and the message says to set ``scheme=http``.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from airflow_provider_smsend.client.errors import SmSendTransportError
from airflow_provider_smsend.client.http import SmSendClient, never_connected, tls_handshake_failure


def test_a_send_over_https_to_a_plain_http_gateway_is_never_sent(sandbox: Any) -> None:
    client = SmSendClient(
        base_url=sandbox.url.replace("http://", "https://"), username="demo", password="demo-pass",
        default_sender="ACME",
    )  # fmt: skip
    before = sandbox.admin.stats()["requests"].get("/sms/send.php", 0)
    with pytest.raises(SmSendTransportError) as info:
        client.send("+393471234565", "Ciao")
    error = info.value
    assert error.request_sent is False and error.retryable is False and error.code == "tls_to_plain_http"
    assert "scheme=http" in str(error) and sandbox.url.replace("http://", "https://") in str(error)
    assert "demo-pass" not in str(error)
    assert sandbox.admin.stats()["requests"].get("/sms/send.php", 0) == before  # nothing reached it


def test_a_read_over_https_to_a_plain_http_gateway_fails_at_once(sandbox: Any) -> None:
    client = SmSendClient(base_url=sandbox.url.replace("http://", "https://"), username="demo", password="x")
    with pytest.raises(SmSendTransportError, match="scheme=http") as info:
        client.credit()
    assert info.value.request_sent is False


@pytest.mark.parametrize(
    ("reason", "handshake"),
    [
        ("WRONG_VERSION_NUMBER", True),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", True),
        ("BAD_RECORD_MAC", False),
        (None, False),
    ],
)
def test_only_handshake_reasons_mean_never_sent(reason: str | None, handshake: bool) -> None:
    error = ssl.SSLError(1, f"[SSL: {reason}] something")
    error.reason = reason  # type: ignore[misc]
    assert tls_handshake_failure(error) is handshake
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = error
    assert never_connected(wrapped) is handshake


def test_a_bulk_send_to_the_wrong_scheme_leaves_nobody_unknown(sandbox: Any) -> None:
    """The bulk path (each request straight through the pool) classifies the handshake the same way."""
    from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender
    from airflow_provider_smsend.client.ledger import MemoryLedger

    client = SmSendClient(
        base_url=sandbox.url.replace("http://", "https://"), username="demo", password="demo-pass",
        default_sender="ACME",
    )  # fmt: skip
    ledger = MemoryLedger()
    result = BulkSender(client, ledger=ledger, job_key="tls", concurrency=4).run(
        [BulkMessage(f"+39347{i:06d}5", "Ciao") for i in range(8)]
    )
    assert result.totals["unknown"] == 0 and result.totals["accepted"] == 0
    assert {o.status for o in result.outcomes} == {"rejected"}
    assert all(o.error_code == "tls_to_plain_http" for o in result.outcomes)
