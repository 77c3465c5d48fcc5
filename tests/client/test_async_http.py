"""SmSendAsyncClient against httpx.MockTransport: bodies, parsing, errors and retry like the sync client."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from airflow_provider_smsend.client.async_http import SmSendAsyncClient
from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendInternalError,
    SmSendInvalidParameterError,
    SmSendReportError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0, max_wait=0)
NOTIFY = "id,dest,status,status_text\r\n1,+393331234567,200,Delivered\r\n2,+393331230000,300,Unknown subscriber\r\n"


class Gateway:
    """A scripted gateway: answers in order (the last one repeats) and records each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def form(self, index: int = -1) -> dict[str, str]:
        body = self.requests[index].content.decode("ascii")
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def make(gateway: Gateway, **kwargs: object) -> SmSendAsyncClient:
    settings: dict = {
        "username": "demo",
        "password": "demo-pass",
        "base_url": "http://gw.test",
        "retry": FAST_RETRY,
    }
    settings.update(kwargs)
    return SmSendAsyncClient(transport=httpx.MockTransport(gateway), **settings)


def run(coro):
    return asyncio.run(coro)


def text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> httpx.Response:
    return httpx.Response(status, content=body.encode("utf-8"), headers={"Content-Type": content_type})


def test_batch_status_posts_the_form_and_parses_the_report():
    gateway = Gateway(text(NOTIFY))

    async def go():
        async with make(gateway) as client:
            return await client.batch_status("HTTP00000000111", "notify")

    report = run(go())
    assert report.request_id == "HTTP00000000111"
    assert [(r.id, r.dest, r.status) for r in report.rows] == [
        (1, "+393331234567", 200),
        (2, "+393331230000", 300),
    ]
    request = gateway.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://gw.test/sms/batch-status.php"
    assert request.url.query == b""  # credentials travel in the body, never in the URL
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert gateway.form() == {
        "user": "demo",
        "pass": "demo-pass",
        "id": "HTTP00000000111",
        "type": "notify",
        "schema": "1",
    }


def test_credit_and_sms_count():
    gateway = Gateway(text("OK 12.3456"), text("OK 140"))

    async def go():
        async with make(gateway) as client:
            return await client.credit(), await client.credit("h")

    assert run(go()) == (Decimal("12.3456"), 140)
    assert gateway.form(1)["type"] == "h"


def test_credit_get_uses_the_reseller_credentials():
    gateway = Gateway(text("OK 5.0000"))
    client = make(gateway, reseller_username="reseller", reseller_password="reseller-pass")
    assert run(client.credit_get(1001)) == Decimal("5.0000")
    assert gateway.form() == {"smsusername": "reseller", "smspassword": "reseller-pass", "u_id": "1001"}
    assert str(gateway.requests[0].url).endswith("/backoffice/credit-get.php")


def test_userlog_get_parses_the_tsv_report():
    body = "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n7\t2024-05-01 10:00:00\t1001\tdemo\t1\t12.5000\r\n"
    gateway = Gateway(text(body))
    entries = run(make(gateway).userlog_get("credits", date_from="2024-05-01"))
    assert [(e.id, e.u_id, e.credit) for e in entries] == [(7, 1001, Decimal("12.5000"))]
    assert gateway.form()["from"] == "2024-05-01"


def test_validation_happens_before_any_request():
    gateway = Gateway(text("OK"))
    with pytest.raises(SmSendValidationError):
        run(make(gateway).batch_status("HTTP1", "weekly"))
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        ("KO Accesso non consentito (IP non abilitato).", SmSendAuthError, "ip_not_enabled"),
        ("KO Username o password errati", SmSendAuthError, "bad_credentials"),
        ("KO Parametro id non corretto.", SmSendInvalidParameterError, "invalid_parameter"),
    ],
)
def test_non_retryable_ko_fails_at_once(answer, error, code):
    gateway = Gateway(text(answer))
    with pytest.raises(error) as info:
        run(make(gateway).batch_status("HTTP1", "notify"))
    assert info.value.code == code
    assert not info.value.retryable
    assert len(gateway.requests) == 1


def test_internal_error_is_retried_then_succeeds():
    gateway = Gateway(text("KO Errore interno."), text("<html>502</html>", status=502), text(NOTIFY))
    report = run(make(gateway).batch_status("HTTP1", "notify"))
    assert len(report.rows) == 2
    assert len(gateway.requests) == 3


def test_retries_stop_after_the_policy_attempts():
    gateway = Gateway(text("KO Errore interno."))
    with pytest.raises(SmSendInternalError):
        run(make(gateway).batch_status("HTTP1", "notify"))
    assert len(gateway.requests) == FAST_RETRY.attempts


@pytest.mark.parametrize(
    ("failure", "error", "request_sent"),
    [
        (httpx.ConnectError("refused"), SmSendTransportError, False),
        (httpx.ConnectTimeout("slow"), SmSendTimeoutError, False),
        (httpx.ReadTimeout("slow"), SmSendTimeoutError, True),
        (httpx.RemoteProtocolError("dropped"), SmSendTransportError, True),
    ],
)
def test_transport_errors_map_like_the_sync_client(failure, error, request_sent):
    gateway = Gateway(failure)
    with pytest.raises(error) as info:
        run(make(gateway, retry=RetryPolicy(attempts=1)).credit())
    assert type(info.value) is error
    assert info.value.request_sent is request_sent
    assert info.value.retryable


def test_http_404_is_not_retryable_and_5xx_is():
    gateway = Gateway(text("not found", status=404))
    with pytest.raises(SmSendTransportError) as info:
        run(make(gateway).credit())
    assert info.value.status_code == 404 and not info.value.retryable
    assert len(gateway.requests) == 1

    gateway = Gateway(text("busy", status=503))
    with pytest.raises(SmSendTransportError) as info:
        run(make(gateway).credit())
    assert info.value.status_code == 503 and info.value.retryable
    assert len(gateway.requests) == FAST_RETRY.attempts


def test_garbage_answer_is_a_transport_error_and_empty_report_too():
    with pytest.raises(SmSendTransportError, match="not an OK/KO answer"):
        run(make(Gateway(text("<html>hello</html>"))).credit())
    with pytest.raises(SmSendTransportError, match="empty body"):
        run(make(Gateway(text("  "))).batch_status("HTTP1", "queue"))


def test_malformed_report_is_a_report_error():
    with pytest.raises(SmSendReportError):
        run(
            make(Gateway(text("id,dest,status,status_text\n1,+39333,abc,Sent\n"))).batch_status(
                "HTTP1", "queue"
            )
        )


def test_response_charset_is_honoured():
    body = "OK 1,5000".encode("iso-8859-1")
    gateway = Gateway(
        httpx.Response(200, content=body, headers={"Content-Type": "text/plain; charset=iso-8859-1"})
    )
    assert run(make(gateway).credit()) == Decimal("1.5000")


def test_request_charset_iso_8859_1_encodes_the_body():
    gateway = Gateway(text(NOTIFY))
    run(make(gateway, charset="iso-8859-1").batch_status("HTTPè1", "notify"))
    assert b"id=HTTP%E81" in gateway.requests[0].content
    assert gateway.requests[0].headers["Content-Type"].endswith("charset=iso-8859-1")


def test_from_client_mirrors_the_sync_settings():
    sync = SmSendClient(
        username="u",
        password="s3cret-pass",
        base_url="http://127.0.0.1:9",
        timeout=(2.0, 7.0),
        retry=FAST_RETRY,
    )
    gateway = Gateway(text("OK 1.0000"))
    client = SmSendAsyncClient.from_client(sync, transport=httpx.MockTransport(gateway))
    assert client.base_url == "http://127.0.0.1:9"
    assert client.retry is FAST_RETRY
    assert run(client.credit()) == Decimal("1.0000")
    assert gateway.form() == {"user": "u", "pass": "s3cret-pass", "type": "credit"}
    http = client._http()
    assert http.timeout.connect == 2.0 and http.timeout.read == 7.0
    assert "s3cret-pass" not in repr(client)


def test_aclose_is_idempotent():
    client = make(Gateway(text("OK 1")))

    async def go():
        await client.credit()
        await client.aclose()
        await client.aclose()

    run(go())


def test_every_async_client_shares_one_tls_context(monkeypatch):
    """httpx would load the CA bundle again for each client (each trigger): one context serves all."""
    import httpx

    from airflow_provider_smsend.client.async_http import SmSendAsyncClient, shared_ssl_context

    seen = []
    real = httpx.AsyncClient

    def capture(*args, **kwargs):
        seen.append(kwargs.get("verify"))
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", capture)
    for _ in range(3):
        SmSendAsyncClient(username="u", password="p", base_url="https://gw.test")._http()
    assert len(seen) == 3 and all(v is shared_ssl_context() for v in seen)
