"""Transport failures, charsets and the retry policy of SmSendClient (requests-mock)."""

from __future__ import annotations

import socket
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests

from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendError,
    SmSendInternalError,
    SmSendTemporaryError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import NO_RETRY, RetryPolicy

BASE = "https://gw.test"
FAST = RetryPolicy(attempts=4, initial_wait=0, max_wait=0)
QUEUE_CSV = "id,dest,status,status_text\n9182,+393209999999,100,Queued\n"
CREDITS_TSV = "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n1\t2024-03-01 10:00:00\t7\tmario\t3\t1.5000\r\n"


def make_client(**kwargs) -> SmSendClient:
    kwargs.setdefault("retry", NO_RETRY)
    kwargs.setdefault("base_url", BASE)
    return SmSendClient(username="acct-user9", password="pw-Secret9", **kwargs)


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connection is refused: the request never left."""
    return requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))


# name -> (path, call, success answer)
READS = {
    "credit": ("/sms/credit.php", lambda c: c.credit(), "OK 5.0000"),
    "credit_get": ("/backoffice/credit-get.php", lambda c: c.credit_get(7), "OK 5.0000"),
    "batch_status": (
        "/sms/batch-status.php",
        lambda c: len(c.batch_status("HTTP1", "queue").rows),
        QUEUE_CSV,
    ),
    "userlog_get": ("/backoffice/userlog-get.php", lambda c: len(c.userlog_get("credits")), CREDITS_TSV),
    "stream_batch_status": (
        "/sms/batch-status.php",
        lambda c: _parse_stream(c.stream_batch_status("HTTP1", "queue")),
        QUEUE_CSV,
    ),
}
WRITES = {
    "send": ("/sms/send.php", lambda c: c.send("+393331234567", "Ciao", sender="ACME").cost, "OK 0.05 HTTP1"),
    "credit_add": ("/backoffice/credit-add.php", lambda c: c.credit_add(7, 3, "1.5"), "OK 44"),
    "client_add": ("/backoffice/client-add.php", lambda c: c.client_add("Mario", "mario", "pw"), "OK 45"),
    "mnc": ("/sms/mnc.php", lambda c: c.mnc(["+393331234567"]), "OK HTTP2"),
    "recv_add": ("/backoffice/recv-add.php", lambda c: c.recv_add(7, "+393331234567"), "OK 001"),
    "recv_del": ("/backoffice/recv-del.php", lambda c: c.recv_del(7, "+393331234567", "001"), "OK"),
    "client_status": ("/backoffice/client-status.php", lambda c: c.client_status(7, True), "OK Attivato"),
}
ALL = {**READS, **WRITES}


def _parse_stream(context) -> int:
    # The frames of a stream are consumed inside the context, as a transfer does.
    with context as frames:
        return sum(len(frame) for frame in frames)


# ------------------------------------------------------------------ transport failures

HTML_500 = "<html><head><title>500 Internal Server Error</title></head><body>Oops</body></html>"


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (503, True), (404, False), (429, True)]
)
def test_http_error_status_is_a_transport_error(requests_mock, name, status, retryable):
    path, call, _ = ALL[name]
    requests_mock.post(BASE + path, text=HTML_500, status_code=status, headers={"Content-Type": "text/html"})
    with pytest.raises(SmSendTransportError) as info:
        call(make_client())
    assert info.value.status_code == status
    assert info.value.retryable is retryable
    assert f"HTTP {status}" in str(info.value)
    assert "<html>" not in str(info.value)


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   \r\n",
        b"<!DOCTYPE html><html><body>Welcome to nginx!</body></html>",
        b"\x00\xff\xfe\x80garbage\x1b",
    ],
)
def test_bodies_that_are_not_answers(requests_mock, name, content):
    path, call, _ = ALL[name]
    requests_mock.post(BASE + path, content=content, status_code=200)
    with pytest.raises(SmSendError) as info:
        call(make_client())
    # Answers (OK/KO) are transport errors; reports that are not reports are report errors.
    if (
        name in WRITES
        or name in ("credit", "credit_get")
        or (not content.strip() and name != "stream_batch_status")
    ):
        assert isinstance(info.value, SmSendTransportError)


@pytest.mark.parametrize("name", sorted(ALL))
def test_connect_timeout_never_left(requests_mock, name):
    path, call, _ = ALL[name]
    requests_mock.post(BASE + path, exc=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(SmSendTimeoutError) as info:
        call(make_client())
    assert info.value.request_sent is False


@pytest.mark.parametrize("name", sorted(ALL))
def test_read_timeout_may_have_been_processed(requests_mock, name):
    path, call, _ = ALL[name]
    requests_mock.post(BASE + path, exc=requests.ReadTimeout("read timed out"))
    with pytest.raises(SmSendTimeoutError) as info:
        call(make_client())
    assert info.value.request_sent is True


@pytest.mark.parametrize("name", sorted(ALL))
def test_connection_errors(requests_mock, name):
    path, call, _ = ALL[name]
    requests_mock.post(BASE + path, exc=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(SmSendTransportError) as info:
        call(make_client())
    assert type(info.value) is SmSendTransportError
    assert info.value.request_sent is True


def test_connection_refused_is_marked_not_sent(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", exc=refused())
    with pytest.raises(SmSendTransportError) as info:
        make_client().send("+393331234567", "Ciao", sender="ACME")
    assert info.value.request_sent is False


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ChunkedEncodingError("boom"),
        requests.exceptions.SSLError("bad cert"),
        requests.exceptions.TooManyRedirects("loop"),
    ],
)
def test_other_requests_errors_are_transport_errors(requests_mock, exc):
    requests_mock.post(BASE + "/sms/credit.php", exc=exc)
    with pytest.raises(SmSendTransportError):
        make_client().credit()


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_real_refused_connection_is_not_sent():
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}", timeout=(2, 2))
    with pytest.raises(SmSendTransportError) as info:
        client.credit()
    assert info.value.request_sent is False
    assert "pw-Secret9" not in str(info.value)


# ------------------------------------------------------------------ charsets


def _batch(requests_mock, content: bytes, ctype: str | None):
    headers = {"Content-Type": ctype} if ctype else {}
    requests_mock.post(BASE + "/sms/batch-status.php", content=content, headers=headers)


CITTA = "id,dest,status,status_text\n1,+393331234567,300,Città sconosciuta\n"


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (CITTA.encode("iso-8859-1"), "text/csv; charset=ISO-8859-1"),
        (CITTA.encode("utf-8"), "text/csv; charset=utf-8"),
        (CITTA.encode("utf-8"), None),  # UTF-8 by default
        (CITTA.encode("utf-8"), "text/csv"),
        (CITTA.encode("iso-8859-1"), None),  # not UTF-8: ISO-8859-1 fallback
        (CITTA.encode("iso-8859-1"), "text/csv"),
    ],
)
def test_response_charset(requests_mock, content, ctype):
    _batch(requests_mock, content, ctype)
    report = make_client().batch_status("HTTP1", "notify")
    assert report.rows[0].status_text == "Città sconosciuta"


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (CITTA.encode("iso-8859-1"), "text/csv; charset=ISO-8859-1"),
        (CITTA.encode("utf-8"), None),
        (CITTA.encode("utf-8"), "text/csv"),
        (CITTA.encode("iso-8859-1"), None),
    ],
)
def test_streamed_response_charset(requests_mock, content, ctype):
    _batch(requests_mock, content, ctype)
    with make_client().stream_batch_status("HTTP1", "notify") as frames:
        texts = [t for frame in frames for t in frame["status_text"]]
    assert texts == ["Città sconosciuta"]


def test_answer_charset_header_is_honoured(requests_mock):
    requests_mock.post(
        BASE + "/backoffice/client-status.php",
        content="KO Username già esistente.".encode("iso-8859-1"),
        headers={"Content-Type": "text/plain; charset=iso-8859-1"},
    )
    with pytest.raises(SmSendError) as info:
        make_client().client_status(7, True)
    assert info.value.code == "username_exists"


def test_request_charset_utf8_by_default(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", text="OK 0.05 HTTP1")
    make_client().send("+393331234567", "Caffè", sender="ACME")
    request = requests_mock.last_request
    assert "data=Caff%C3%A8" in request.body.decode("ascii")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"


def test_request_charset_iso_8859_1(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", text="OK 0.05 HTTP1")
    make_client(charset="iso-8859-1").send("+393331234567", "Caffè", sender="ACME")
    request = requests_mock.last_request
    raw = request.body.decode("ascii")
    assert "data=Caff%E8" in raw
    assert parse_qs(raw, encoding="iso-8859-1")["data"] == ["Caffè"]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=iso-8859-1"


@pytest.mark.parametrize("text", ["Costo 5€", "Ciao 😀"])
def test_request_charset_iso_8859_1_refuses_what_it_cannot_carry(requests_mock, text):
    requests_mock.post(BASE + "/sms/send.php", text="OK 0.05 HTTP1")
    with pytest.raises(SmSendValidationError) as info:
        make_client(charset="iso-8859-1").send("+393331234567", text, sender="ACME")
    assert "iso-8859-1" in str(info.value).lower()
    assert requests_mock.called is False


# ------------------------------------------------------------------ retry policy


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_are_retried_on_5xx_then_succeed(requests_mock, name):
    path, call, answer = READS[name]
    requests_mock.post(
        BASE + path,
        [{"status_code": 500, "text": "err"}, {"status_code": 502, "text": "bad gateway"}, {"text": answer}],
    )
    result = call(make_client(retry=FAST))
    assert result in (Decimal("5.0000"), 1, 2)
    assert requests_mock.call_count == 3


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_are_retried_on_transient_ko(requests_mock, name):
    path, call, answer = READS[name]
    requests_mock.post(BASE + path, [{"text": "KO Errore interno."}, {"text": answer}])
    call(make_client(retry=FAST))
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_are_retried_after_read_timeout_and_connection_errors(requests_mock, name):
    path, call, answer = READS[name]
    requests_mock.post(
        BASE + path,
        [{"exc": requests.ReadTimeout("slow")}, {"exc": requests.ConnectionError("reset")}, {"text": answer}],
    )
    call(make_client(retry=FAST))
    assert requests_mock.call_count == 3


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_are_not_retried_on_permanent_errors(requests_mock, name):
    path, call, _ = READS[name]
    requests_mock.post(BASE + path, text="KO Accesso non consentito (IP non abilitato).")
    with pytest.raises(SmSendAuthError):
        call(make_client(retry=FAST))
    assert requests_mock.call_count == 1


def test_reads_not_retried_on_404(requests_mock):
    requests_mock.post(BASE + "/sms/credit.php", status_code=404, text="Not Found")
    with pytest.raises(SmSendTransportError):
        make_client(retry=FAST).credit()
    assert requests_mock.call_count == 1


def test_read_retries_stop_after_the_policy_attempts(requests_mock):
    requests_mock.post(BASE + "/sms/credit.php", text="KO Errore interno.")
    with pytest.raises(SmSendInternalError):
        make_client(retry=RetryPolicy(attempts=3, initial_wait=0)).credit()
    assert requests_mock.call_count == 3


def test_no_retry_policy_means_one_attempt(requests_mock):
    requests_mock.post(BASE + "/sms/credit.php", status_code=503, text="busy")
    with pytest.raises(SmSendTransportError):
        make_client(retry=NO_RETRY).credit()
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("name", sorted(WRITES))
@pytest.mark.parametrize(
    "failure",
    [
        {"status_code": 500, "text": "Internal Server Error"},
        {"status_code": 502, "text": "Bad Gateway"},
        {"exc": requests.ReadTimeout("slow")},
        {"exc": requests.ConnectionError("Connection reset by peer")},
    ],
    ids=["500", "502", "read-timeout", "reset"],
)
def test_money_calls_are_not_retried_once_the_request_may_have_left(requests_mock, name, failure):
    path, call, answer = WRITES[name]
    requests_mock.post(BASE + path, [failure, {"text": answer}])
    with pytest.raises(SmSendTransportError) as info:
        call(make_client(retry=FAST))
    assert info.value.request_sent is True
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("name", sorted(WRITES))
def test_money_calls_not_retried_on_transient_ko(requests_mock, name):
    path, call, _ = WRITES[name]
    text = "KO Impossibile accodare il/i messaggio/i." if name == "send" else "KO Errore interno."
    requests_mock.post(BASE + path, text=text)
    with pytest.raises((SmSendTemporaryError, SmSendInternalError)):
        call(make_client(retry=FAST))
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("name", sorted(WRITES))
@pytest.mark.parametrize(
    "failure", [refused(), requests.ConnectTimeout("connect timed out")], ids=["refused", "connect-timeout"]
)
def test_money_calls_are_retried_when_the_request_never_left(requests_mock, name, failure):
    path, call, answer = WRITES[name]
    requests_mock.post(BASE + path, [{"exc": failure}, {"text": answer}])
    call(make_client(retry=FAST))
    assert requests_mock.call_count == 2


def test_money_call_gives_up_after_the_policy_attempts_when_never_connected(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", exc=refused())
    with pytest.raises(SmSendTransportError) as info:
        make_client(retry=RetryPolicy(attempts=3, initial_wait=0)).send(
            "+393331234567", "Ciao", sender="ACME"
        )
    assert info.value.request_sent is False
    assert requests_mock.call_count == 3


@pytest.mark.parametrize(("attempts", "initial_wait", "max_wait"), [(0, 0, 0), (1, -1, 0), (1, 0, -1)])
def test_retry_policy_rejects_nonsense(attempts, initial_wait, max_wait):
    with pytest.raises(ValueError):
        RetryPolicy(attempts=attempts, initial_wait=initial_wait, max_wait=max_wait)


def test_retry_is_logged_without_secrets(requests_mock, caplog):
    requests_mock.post(BASE + "/sms/credit.php", [{"status_code": 500, "text": "x"}, {"text": "OK 1.0000"}])
    with caplog.at_level("DEBUG"):
        make_client(retry=FAST).credit()
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert not any("pw-Secret9" in r.getMessage() for r in caplog.records)


def test_stream_checks_ko_before_yielding(requests_mock):
    requests_mock.post(BASE + "/backoffice/userlog-get.php", text="KO Username o password errati.\r\n")
    with pytest.raises(SmSendAuthError):
        with make_client().stream_userlog("credits"):
            pass


def test_stream_of_empty_body_is_transport_error(requests_mock):
    requests_mock.post(BASE + "/sms/batch-status.php", content=b"")
    with pytest.raises(SmSendTransportError):
        with make_client().stream_batch_status("HTTP1"):
            pass


def test_stream_crlf_lines_are_clean(requests_mock):
    requests_mock.post(BASE + "/backoffice/userlog-get.php", content=CREDITS_TSV.encode())
    with make_client().stream_userlog("credits") as frames:
        got = [row for frame in frames for row in frame.to_dict("records")]
    assert [(r["id"], r["username"], str(r["credit"])) for r in got] == [(1, "mario", "1.5000")]
