"""Every HTTP endpoint of SmSendClient on the wire (requests-mock): path, POST form, auth, types."""

from __future__ import annotations

import datetime as dt
import inspect
import re
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from airflow_provider_smsend.client import http as http_module
from airflow_provider_smsend.client.errors import (
    SmSendReportError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.http import SmSendClient, normalize_base_url
from airflow_provider_smsend.client.reports import ROME, BatchStatusReport, BatchStatusRow
from airflow_provider_smsend.client.retry import NO_RETRY, RetryPolicy

BASE = "https://gw.test"
USER, PASSWORD = "acct-user9", "pw-Secret9"
RESELLER, RESELLER_PASSWORD = "reseller", "rs-Secret7"

QUEUE_CSV = "id,dest,status,status_text\n9182,+393209999999,100,Queued\n9183,+393339999999,200,Sent\n"
CREDITS_TSV = "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n11\t2024-03-01 10:15:00\t7\tmario\t3\t12.3456\r\n"


def make_client(**kwargs) -> SmSendClient:
    kwargs.setdefault("retry", NO_RETRY)
    return SmSendClient(username=USER, password=PASSWORD, base_url=BASE, **kwargs)


def reseller_client() -> SmSendClient:
    return make_client(reseller_username=RESELLER, reseller_password=RESELLER_PASSWORD)


def form(request) -> dict[str, str]:
    parsed = parse_qs(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


# name -> (path, auth kind, answer body, call, expected result, expected fields besides auth)
ENDPOINTS = {
    "client_add": (
        "/backoffice/client-add.php",
        "reseller",
        "OK 123",
        lambda c: c.client_add("Mario Rossi", "mario", "p4ss+word"),
        123,
        {"name": "Mario Rossi", "username": "mario", "password": "p4ss+word", "reseller": "0"},
    ),
    "credit_add": (
        "/backoffice/credit-add.php",
        "reseller",
        "OK 456",
        lambda c: c.credit_add(7, 3, "12,3456"),
        456,
        {"u_id": "7", "bill_id": "3", "credit": "12.3456"},
    ),
    "credit_get": (
        "/backoffice/credit-get.php",
        "reseller",
        "OK 123.4567",
        lambda c: c.credit_get("7"),
        Decimal("123.4567"),
        {"u_id": "7"},
    ),
    "userlog_get": (
        "/backoffice/userlog-get.php",
        "reseller",
        CREDITS_TSV,
        lambda c: [(e.id, e.credit) for e in c.userlog_get("credits", u_id=7, date_from="2024-03-01")],
        [(11, Decimal("12.3456"))],
        {"type": "credits", "u_id": "7", "from": "2024-03-01"},
    ),
    "stream_userlog": (
        "/backoffice/userlog-get.php",
        "reseller",
        CREDITS_TSV,
        lambda c: _stream(c.stream_userlog("credits", date_to=dt.date(2024, 3, 31))),
        [11],
        {"type": "credits", "to": "2024-03-31"},
    ),
    "recv_add": (
        "/backoffice/recv-add.php",
        "reseller",
        "OK 001,002,003",
        lambda c: c.recv_add(7, "+393331234567", 3),
        ["001", "002", "003"],
        {"u_id": "7", "dest": "+393331234567", "num": "3"},
    ),
    "recv_del": (
        "/backoffice/recv-del.php",
        "reseller",
        "OK",
        lambda c: c.recv_del(7, "+393331234567", "002"),
        None,
        {"u_id": "7", "dest": "+393331234567", "sharecode": "002"},
    ),
    "client_status": (
        "/backoffice/client-status.php",
        "reseller",
        "OK Disattivato",
        lambda c: c.client_status(7, False),
        False,
        {"u_id": "7", "active": "0"},
    ),
    "send": (
        "/sms/send.php",
        "sms",
        "OK 0.0450 HTTP00000000111",
        lambda c: (lambda r: (r.cost, r.request_id, r.recipient))(
            c.send("+393331234567", "Ciao!", sender="ACME")
        ),
        (Decimal("0.0450"), "HTTP00000000111", "+393331234567"),
        {
            "rcpt": "+393331234567",
            "data": "Ciao!",
            "sender": "ACME",
            "qty": "h",
            "operation": "TEXT",
            "return_id": "1",
        },
    ),
    "mnc": (
        "/sms/mnc.php",
        "sms",
        "OK HTTP00000000112",
        lambda c: c.mnc(["+393331234567", "3401234567"]),
        "HTTP00000000112",
        {"numbers": "+393331234567,+393401234567", "return_id": "1"},
    ),
    "mnc_chunked": (
        "/sms/mnc.php",
        "sms",
        "OK HTTP00000000113",
        lambda c: c.mnc_chunked(["+393331234567"], chunk_size=10),
        ["HTTP00000000113"],
        {"numbers": "+393331234567", "return_id": "1"},
    ),
    "batch_status": (
        "/sms/batch-status.php",
        "sms",
        QUEUE_CSV,
        lambda c: c.batch_status("HTTP00000000111", "queue"),
        BatchStatusReport(
            request_id="HTTP00000000111",
            report_type="queue",
            rows=[
                BatchStatusRow(9182, "+393209999999", 100, "Queued"),
                BatchStatusRow(9183, "+393339999999", 200, "Sent"),
            ],
        ),
        {"id": "HTTP00000000111", "type": "queue", "schema": "1"},
    ),
    "stream_batch_status": (
        "/sms/batch-status.php",
        "sms",
        QUEUE_CSV,
        lambda c: _stream(c.stream_batch_status("HTTP00000000111", "queue")),
        [9182, 9183],
        {"id": "HTTP00000000111", "type": "queue", "schema": "1"},
    ),
    "credit": (
        "/sms/credit.php",
        "sms",
        "OK 12.3400",
        lambda c: c.credit(),
        Decimal("12.3400"),
        {"type": "credit"},
    ),
}


def _stream(context) -> list[int]:
    """The ids of a streamed report's frames."""
    with context as frames:
        return [int(i) for frame in frames for i in frame["id"]]


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_endpoint_on_the_wire(requests_mock, name):
    path, auth, answer, call, expected, fields = ENDPOINTS[name]
    requests_mock.post(BASE + path, text=answer)

    result = call(reseller_client())

    assert result == expected
    assert requests_mock.call_count == 1
    request = requests_mock.last_request
    assert request.method == "POST"
    assert request.url == BASE + path  # no query string: credentials travel in the body only
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    sent = form(request)
    if auth == "reseller":
        auth_fields = {"smsusername": RESELLER, "smspassword": RESELLER_PASSWORD}
        assert "user" not in sent and "pass" not in sent
    else:
        auth_fields = {"user": USER, "pass": PASSWORD}
        assert "smsusername" not in sent and "smspassword" not in sent
    assert sent == {**auth_fields, **fields}
    for secret in (PASSWORD, RESELLER_PASSWORD, USER):
        assert secret not in request.url


def test_every_gateway_path_of_the_client_is_covered():
    source = inspect.getsource(http_module)
    paths = set(re.findall(r"\"(/(?:backoffice|sms)/[a-z-]+\.php)\"", source))
    assert len(paths) == 11
    assert paths == {path for path, *_ in ENDPOINTS.values()}
    for name in ENDPOINTS:
        assert callable(getattr(SmSendClient, name))


def test_reseller_credentials_default_to_login_and_password(requests_mock):
    requests_mock.post(BASE + "/backoffice/credit-get.php", text="OK 1.0000")
    make_client().credit_get(7)
    sent = form(requests_mock.last_request)
    assert (sent["smsusername"], sent["smspassword"]) == (USER, PASSWORD)


def test_plus_is_sent_as_percent_2b(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", text="OK 0.05 HTTP1")
    make_client().send("+393331234567", "1+1=2", sender="+393401234567")
    raw = requests_mock.last_request.body.decode("ascii")
    assert "rcpt=%2B393331234567" in raw
    assert "sender=%2B393401234567" in raw
    assert "data=1%2B1%3D2" in raw
    assert "+" not in raw.replace("data=", "")  # no literal '+' at all (it would decode to a space)


def test_mnc_numbers_raw_body(requests_mock):
    requests_mock.post(BASE + "/sms/mnc.php", text="OK HTTP1")
    make_client().mnc(["+393331234567", "+393401234567"])
    assert "numbers=%2B393331234567%2C%2B393401234567" in requests_mock.last_request.body.decode("ascii")


def test_client_add_optional_fields_and_reseller_flag(requests_mock):
    requests_mock.post(BASE + "/backoffice/client-add.php", text="OK 9")
    assert (
        make_client().client_add(
            "Shop",
            "shop",
            "pw",
            email="a@b.it",
            tpl_id=4,
            contact="Anna",
            ref_id="R-1",
            reseller=True,
            vhost="sms.shop.it",
        )
        == 9
    )
    sent = form(requests_mock.last_request)
    assert sent["reseller"] == "1"
    assert {k: sent[k] for k in ("email", "tpl_id", "contact", "ref_id", "vhost")} == {
        "email": "a@b.it",
        "tpl_id": "4",
        "contact": "Anna",
        "ref_id": "R-1",
        "vhost": "sms.shop.it",
    }


def test_client_status_activated(requests_mock):
    requests_mock.post(BASE + "/backoffice/client-status.php", text="OK Attivato")
    assert make_client().client_status(7, True) is True
    assert form(requests_mock.last_request)["active"] == "1"


def test_client_status_unexpected_answer(requests_mock):
    requests_mock.post(BASE + "/backoffice/client-status.php", text="OK Forse")
    with pytest.raises(SmSendTransportError):
        make_client().client_status(7, True)


@pytest.mark.parametrize(
    ("answer", "cost", "request_id"),
    [
        ("OK 0.0450 HTTP00000000111", Decimal("0.0450"), "HTTP00000000111"),
        ("OK HTTP0001 0.05", Decimal("0.05"), "HTTP0001"),
        ("OK 0.0450\r\n", Decimal("0.0450"), None),
    ],
)
def test_send_result_types(requests_mock, answer, cost, request_id):
    requests_mock.post(BASE + "/sms/send.php", text=answer)
    result = make_client().send("+393331234567", "Ciao", sender="ACME")
    assert type(result.cost) is Decimal
    assert (result.cost, result.request_id) == (cost, request_id)
    assert str(result.cost) == str(cost)


def test_send_without_return_id(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", text="OK 0.05")
    result = make_client().send("+393331234567", "Ciao", sender="ACME", return_id=False)
    assert "return_id" not in form(requests_mock.last_request)
    assert result.request_id is None


def test_send_answer_without_cost_is_transport_error(requests_mock):
    requests_mock.post(BASE + "/sms/send.php", text="OK")
    with pytest.raises(SmSendTransportError):
        make_client().send("+393331234567", "Ciao", sender="ACME")


def test_mnc_without_return_id(requests_mock):
    requests_mock.post(BASE + "/sms/mnc.php", text="OK")
    assert make_client().mnc(["+393331234567"], return_id=False) is None
    assert "return_id" not in form(requests_mock.last_request)


def test_mnc_chunked_splits_and_collects_ids(requests_mock):
    requests_mock.post(
        BASE + "/sms/mnc.php", [{"text": "OK HTTP1"}, {"text": "OK HTTP2"}, {"text": "OK HTTP3"}]
    )
    numbers = [f"+39333123456{i}" for i in range(5)]
    assert make_client().mnc_chunked(numbers, chunk_size=2) == ["HTTP1", "HTTP2", "HTTP3"]
    sent = [form(r)["numbers"].split(",") for r in requests_mock.request_history]
    assert sent == [numbers[0:2], numbers[2:4], numbers[4:5]]


def test_mnc_chunked_needs_request_ids(requests_mock):
    requests_mock.post(BASE + "/sms/mnc.php", text="OK")
    with pytest.raises(SmSendTransportError):
        make_client().mnc_chunked(["+393331234567"])


def test_recv_add_without_codes_is_transport_error(requests_mock):
    requests_mock.post(BASE + "/backoffice/recv-add.php", text="OK  , ")
    with pytest.raises(SmSendTransportError):
        make_client().recv_add(7, "+393331234567")


def test_recv_add_codes_are_stripped(requests_mock):
    requests_mock.post(BASE + "/backoffice/recv-add.php", text="OK 001, 002 ,003")
    assert make_client().recv_add(7, "+393331234567", 3) == ["001", "002", "003"]


@pytest.mark.parametrize(
    ("credit_type", "answer", "expected"), [("h", "OK 250", 250), ("ll", "OK 0", 0), ("hqs", "OK 3", 3)]
)
def test_credit_by_quality_is_an_sms_count(requests_mock, credit_type, answer, expected):
    requests_mock.post(BASE + "/sms/credit.php", text=answer)
    result = make_client().credit(credit_type)
    assert type(result) is int and result == expected
    assert form(requests_mock.last_request)["type"] == credit_type


@pytest.mark.parametrize("answer", ["OK 12,3400", "OK 12.3400"])
def test_credit_money_is_decimal_never_float(requests_mock, answer):
    requests_mock.post(BASE + "/sms/credit.php", text=answer)
    result = make_client().credit("credit")
    assert type(result) is Decimal and result == Decimal("12.34")


def test_credit_get_bad_value_is_transport_error(requests_mock):
    requests_mock.post(BASE + "/backoffice/credit-get.php", text="OK tanti")
    with pytest.raises(SmSendTransportError):
        make_client().credit_get(7)


def test_userlog_dates_are_rome_aware(requests_mock):
    requests_mock.post(BASE + "/backoffice/userlog-get.php", text=CREDITS_TSV)
    (entry,) = make_client().userlog_get("credits")
    assert entry.date == dt.datetime(2024, 3, 1, 10, 15, tzinfo=ROME)  # the same instant, in UTC
    assert entry.date.utcoffset() == dt.timedelta(0)


def test_batch_status_with_reordered_columns(requests_mock):
    requests_mock.post(
        BASE + "/sms/batch-status.php", text="status,status_text,dest,id\r\n200,Delivered,+393331234567,5\r\n"
    )
    report = make_client().batch_status("HTTP1")
    assert form(requests_mock.last_request)["type"] == "notify"
    assert report.rows == [BatchStatusRow(5, "+393331234567", 200, "Delivered")]
    assert report.counts() == {"success": 1}


def test_session_is_reused_and_closed(requests_mock):
    requests_mock.post(BASE + "/sms/credit.php", text="OK 1.0000")
    with make_client() as client:
        client.credit()
        first = client.session
        client.credit()
        assert client.session is first
    assert requests_mock.call_count == 2


def test_no_session_before_first_call():
    client = make_client()
    assert client._session is None


def test_repr_has_no_password():
    client = reseller_client()
    assert PASSWORD not in repr(client) and RESELLER_PASSWORD not in repr(client)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("app.smsend.it", "https://app.smsend.it"),
        ("app.smsend.it/", "https://app.smsend.it"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("https://sms.reseller.example/api/", "https://sms.reseller.example/api"),
        ("127.0.0.1:8765", "https://127.0.0.1:8765"),
    ],
)
def test_normalize_base_url(host, url):
    assert normalize_base_url(host) == url


def test_explicit_http_base_url_is_used(requests_mock):
    requests_mock.post("http://127.0.0.1:8765/sms/credit.php", text="OK 1.0000")
    client = SmSendClient(username=USER, password=PASSWORD, base_url="http://127.0.0.1:8765")
    assert client.credit() == Decimal(1)
    assert requests_mock.last_request.url == "http://127.0.0.1:8765/sms/credit.php"


def test_default_base_url_is_https_app_smsend(requests_mock):
    requests_mock.post("https://app.smsend.it/sms/credit.php", text="OK 1.0000")
    SmSendClient(username=USER, password=PASSWORD).credit()
    assert requests_mock.call_count == 1


def test_proxy_environment_is_read_once_and_honoured(monkeypatch):
    """HTTPS_PROXY / NO_PROXY apply to the gateway's URL; requests does not rescan the environment per call."""
    from airflow_provider_smsend.client.http import SmSendClient

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    remote = SmSendClient(base_url="https://app.smsend.it", username="u", password="p").session
    local = SmSendClient(base_url="http://127.0.0.1:8765", username="u", password="p").session
    assert remote.proxies.get("https") == "http://proxy.example:3128"
    assert "https" not in local.proxies and "http" not in local.proxies
    assert remote.trust_env is False


def test_send_prepared_posts_exactly_what_send_posts(requests_mock):
    """The bulk path skips the checks it already made; the request on the wire is the same."""
    from airflow_provider_smsend.client.http import SmSendClient

    requests_mock.post("https://gw.test/sms/send.php", text="OK 0.0850 HTTP00000000001")
    client = SmSendClient(base_url="gw.test", username="u", password="p", default_sender="ACME")
    via_send = client.send("3331234567", "Città €")
    prepared = client.prepare("Città €")
    via_prepared = client.send_prepared("+393331234567", prepared, sender="ACME", quality="h")
    first, second = requests_mock.request_history
    assert first.body == second.body
    assert via_send == via_prepared


# ---------------------------------------------------------------------- deadlines and caps


def test_an_answer_longer_than_an_ok_line_is_refused_and_not_retried(requests_mock):
    requests_mock.post(BASE + "/sms/credit.php", content=b"OK " + b"9" * (64 << 10))
    with pytest.raises(SmSendTransportError) as caught:
        make_client().credit()
    assert caught.value.code == "answer_too_big" and not caught.value.retryable
    assert requests_mock.call_count == 1


def test_a_report_longer_than_max_report_bytes_is_a_report_error(requests_mock):
    body = b"id,dest,status,status_text,netcode\r\n" + b"1,+393331234567,1,Consegnato,22201\r\n" * 100
    requests_mock.post(BASE + "/sms/batch-status.php", content=body)
    assert len(make_client(max_report_bytes=len(body)).batch_status("HTTP1").rows) == 100
    with pytest.raises(SmSendReportError, match="max_report_bytes") as caught:
        make_client(max_report_bytes=len(body) - 1).batch_status("HTTP1")
    assert caught.value.code == "report_too_big"
    with (
        pytest.raises(SmSendReportError, match="max_report_bytes"),
        make_client(max_report_bytes=len(body) - 1).stream_batch_status("HTTP1") as frames,
    ):
        list(frames)


@pytest.mark.parametrize("max_report_bytes", [0, -1, True, 1.5, "10"])
def test_max_report_bytes_must_be_a_positive_integer(max_report_bytes):
    with pytest.raises(SmSendValidationError, match="max_report_bytes"):
        make_client(max_report_bytes=max_report_bytes)


@pytest.mark.parametrize("split", [1, 1000, 65536])
def test_line_guard_allows_lines_up_to_the_cap_across_chunks(split):
    from airflow_provider_smsend.client.reports import MAX_LINE_BYTES, LineGuard

    ok = b"a\n" + b"x" * MAX_LINE_BYTES + b"\r\nb"
    guard = LineGuard()
    for start in range(0, len(ok), split):
        guard.feed(ok[start : start + split])
    long = b"a\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n"
    guard = LineGuard()
    with pytest.raises(SmSendReportError, match="line longer than"):
        for start in range(0, len(long), split):
            guard.feed(long[start : start + split])


def test_the_budget_is_the_once_only_write_budget():
    from airflow_provider_smsend.client.once_only import write_budget

    client = make_client(timeout=(2.0, 3.0), retry=RetryPolicy(attempts=3, initial_wait=0.5, max_wait=8.0))
    assert client.budget == write_budget(client.timeout, client.retry) == 3 * 5.0 + 0.5 + 1.0


class CountingSession:
    """A requests session (the ``session=`` seam) that counts the requests it prepares."""

    @staticmethod
    def make():
        import requests

        class Counting(requests.Session):
            prepared = 0

            def prepare_request(self, request):
                type(self).prepared += 1
                return super().prepare_request(request)

        session = Counting()
        session.trust_env = False  # as the client's own session: the environment is read once
        return session


def test_each_endpoint_s_request_is_prepared_once_while_the_session_stays_the_same(requests_mock):
    requests_mock.post(f"{BASE}/sms/credit.php", text="OK 1.0000")
    requests_mock.post(f"{BASE}/backoffice/credit-get.php", text="OK 2.0000")
    session = CountingSession.make()
    client = make_client(session=session, reseller_username=RESELLER, reseller_password=RESELLER_PASSWORD)
    for _ in range(3):
        assert client.credit() == Decimal("1.0000")
        assert client.credit_get(7) == Decimal("2.0000")
    assert type(session).prepared == 2  # one per endpoint
    assert [form(r)["user" if "sms" in r.path else "smsusername"] for r in requests_mock.request_history] == [
        USER,
        RESELLER,
    ] * 3
    session.headers["X-Trace"] = "on"  # a change to the session: prepared again, and on the wire
    seen: list[int] = []
    session.hooks["response"].append(lambda response, **_: seen.append(response.status_code))
    client.credit()
    assert type(session).prepared == 3
    assert requests_mock.last_request.headers["X-Trace"] == "on" and seen == [200]
    session.cookies.set("sid", "abc", domain="gw.test", path="/")  # cookies: read at every request
    client.credit()
    assert type(session).prepared == 3 and requests_mock.last_request.headers["Cookie"] == "sid=abc"


def test_a_session_that_reads_the_environment_prepares_every_request(requests_mock):
    requests_mock.post(f"{BASE}/sms/credit.php", text="OK 1.0000")
    session = CountingSession.make()
    session.trust_env = True  # requests reads proxies and CA bundles from the environment per request
    client = make_client(session=session)
    client.credit()
    client.credit()
    assert type(session).prepared == 2
