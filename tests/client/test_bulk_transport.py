"""The bulk send path (SmSendClient.bulk_send_path): the same requests and outcomes as send_prepared.

A small local HTTP server records every request it gets and answers as each test scripts it, so
the bulk path (one prepared request per run, each message sent by ``Session.send``) and
send_prepared (``Session.post``) are compared on the wire and on every failure a send can meet.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender
from airflow_provider_smsend.client.errors import SmSendError, SmSendTransportError, SmSendValidationError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.ledger import MemoryLedger
from airflow_provider_smsend.client.retry import NO_RETRY, RetryPolicy

NUMBER = "+393331234567"
OK = b"OK 0.0850 HTTP00000000001"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the gateway

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        server: Gateway = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server.seen.append(
            (self.command, self.path, list(self.headers.items()), body, self.client_address[1])
        )
        server.answer(self)

    do_POST = do_GET = _handle

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def answer_ok(handler: Handler) -> None:
    handler.reply(200, OK)


class Gateway(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, list[tuple[str, str]], bytes, int]] = []
        self.answer: Callable[[Handler], None] = answer_ok

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


def serve(server: Gateway) -> Iterator[Gateway]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    yield from serve(Gateway())


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smsend test gateway")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "gateway.pem", tmp_path / "gateway.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_gateway(tmp_path: Path) -> Iterator[tuple[Gateway, Path]]:
    """The recording gateway over HTTPS, and the certificate a client must trust to reach it."""
    cert_path, key_path = self_signed(tmp_path)
    server = Gateway()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for running in serve(server):
        yield running, cert_path


def make_client(url: str, **kwargs: Any) -> SmSendClient:
    kwargs.setdefault("retry", NO_RETRY)
    return SmSendClient(base_url=url, username="acct-user9", password="pw-Secret9 &+", **kwargs)


def both_ways(client: SmSendClient, text: str = "Ciao", *, url: str | None = None, **path: Any) -> list[Any]:
    """Send one message through send_prepared, then through the bulk path: the two results or errors."""
    quality = path.pop("quality", "h")
    prepared = client.prepare(text, quality=quality, url=url, operation="WAPPUSH" if url else None)
    send = client.bulk_send_path(sender="ACME", quality=quality, url=url, **path)
    outcomes: list[Any] = []
    for call in (
        lambda: client.send_prepared(NUMBER, prepared, sender="ACME", quality=quality, url=url, **path),
        lambda: send(NUMBER, prepared),
    ):
        try:
            outcomes.append(call())
        except SmSendError as exc:
            outcomes.append(
                (type(exc), str(exc), exc.code, exc.retryable, getattr(exc, "request_sent", None))
            )
    return outcomes


def wire(seen: list[tuple[str, str, list[tuple[str, str]], bytes, int]]) -> list[tuple[Any, ...]]:
    return [(method, path, headers, body) for method, path, headers, body, _ in seen]


# ------------------------------------------------------------------ the same request on the wire


@pytest.mark.parametrize(
    ("text", "client_kwargs", "path_kwargs", "url"),
    [
        ("Ciao, ordine n. 42 + sconto 10%", {}, {}, None),
        ("Città € ü", {"charset": "iso-8859-15"}, {}, None),
        ("Привет", {}, {"quality": "n"}, None),  # UCS2
        ("Offerta", {}, {"return_id": False}, "https://example.com/o?x=1&y=2"),  # WAPPUSH
        ("x" * 400, {"charset": "iso-8859-1"}, {}, None),  # MULTITEXT
    ],
)
def test_bulk_path_sends_byte_identical_requests(gateway, text, client_kwargs, path_kwargs, url):
    client = make_client(gateway.url, **client_kwargs)
    via_requests, via_bulk = both_ways(client, text, url=url, **path_kwargs)
    assert via_bulk == via_requests
    first, second = wire(gateway.seen)
    assert second == first  # request line, every header in order, body
    assert ("Content-Length", str(len(first[3]))) in first[2]


@pytest.mark.parametrize(
    ("password", "text", "sender", "named"),
    [
        ("pässwörd€", "Città €", "ACME", "pass"),  # the first field that fails is named
        ("secret", "Città €", "ACME€", "data"),
        ("secret", "Ciao", "ACME€", "sender"),
    ],
)
def test_unencodable_field_named_like_form_body(password, text, sender, named):
    client = SmSendClient(base_url="http://gw.test", username="u", password=password, charset="iso-8859-1")
    prepared = client.prepare(text)
    send = client.bulk_send_path(sender=sender, quality="h")
    with pytest.raises(SmSendValidationError) as bulk:
        send(NUMBER, prepared)
    with pytest.raises(SmSendValidationError) as single:
        client.send_prepared(NUMBER, prepared, sender=sender, quality="h")
    assert str(bulk.value) == str(single.value)
    assert f"The {named!r} field" in str(bulk.value) and password not in str(bulk.value)


# ------------------------------------------------------------------ one preparation per run, the session's adapters per call


def test_the_session_prepares_the_request_once_per_run_not_per_message(gateway, monkeypatch):
    prepared_requests: list[Any] = []
    original = requests.Session.prepare_request
    monkeypatch.setattr(
        requests.Session, "prepare_request", lambda s, r: prepared_requests.append(r) or original(s, r)
    )
    client = make_client(gateway.url)
    send = client.bulk_send_path(sender="ACME", quality="h")
    prepared = client.prepare("Ciao")
    results = [send(f"+39333123{n:04d}", prepared) for n in range(20)]
    assert [r.request_id for r in results] == ["HTTP00000000001"] * 20
    assert len(prepared_requests) == 1  # the template, at the start of the run
    assert len({port for *_, port in gateway.seen}) == 1  # one keep-alive connection


def test_requests_mock_sees_every_bulk_request(requests_mock):
    requests_mock.post("https://gw.test/sms/send.php", text="OK 0.0850 HTTP00000000001")
    client = make_client("gw.test")
    send = client.bulk_send_path(sender="ACME", quality="h")
    assert send(NUMBER, client.prepare("Ciao")).request_id == "HTTP00000000001"
    assert len(requests_mock.request_history) == 1
    assert requests_mock.last_request.body == client.form_body(
        {"rcpt": NUMBER, "data": "Ciao", "sender": "ACME", "qty": "h", "operation": "TEXT", "return_id": "1"},
        "sms",
    )


def test_bulk_sender_over_a_requests_mock_session_records_every_outcome(requests_mock):
    """What a user's test of a bulk DAG does: BulkSender's worker threads reach the mock."""
    accepted = {f"+39333100000{n}" for n in range(4, 10)}

    def answer(request: Any, context: Any) -> str:
        rcpt = parse_qs(request.text)["rcpt"][0]
        return f"OK 0.0850 HTTP0000000{rcpt[-4:]}" if rcpt in accepted else "KO Parametro rcpt non valido."

    requests_mock.post("https://gw.test/sms/send.php", text=answer)
    client = make_client("gw.test", default_sender="ACME")
    recipients = sorted(accepted | {"+393331000010", "+393331000011"})
    result = BulkSender(client, ledger=MemoryLedger(), job_key="mocked", concurrency=4).run(
        [BulkMessage(n, "Ciao") for n in recipients]
    )
    assert len(requests_mock.request_history) == len(recipients)
    outcomes = {o.recipient: o for o in result.outcomes}
    assert {r for r, o in outcomes.items() if o.status == "accepted"} == accepted
    assert all(outcomes[r].request_id == f"HTTP0000000{r[-4:]}" for r in accepted)
    assert {outcomes[r].status for r in ("+393331000010", "+393331000011")} == {"rejected"}
    assert result.totals["accepted"] == len(accepted) and result.totals["total"] == len(recipients)


def test_an_adapter_mounted_after_the_path_was_built_gets_the_next_sends(gateway):
    client = make_client(gateway.url)
    prepared = client.prepare("Ciao")
    send = client.bulk_send_path(sender="ACME", quality="h")
    send(NUMBER, prepared)
    import requests_mock

    adapter = requests_mock.Adapter()
    adapter.register_uri("POST", gateway.url + "/sms/send.php", text="OK 0.05 HTTP9")
    client.session.mount(gateway.url, adapter)
    assert send(NUMBER, prepared).request_id == "HTTP9"
    assert len(gateway.seen) == 1 and adapter.call_count == 1


def test_every_bulk_request_has_the_clients_finite_timeout(gateway):
    client = make_client(gateway.url, timeout=(2.5, 7.0))
    adapter = client.session.get_adapter(gateway.url)
    timeouts: list[Any] = []
    real = adapter.send

    def spy(request: Any, **kwargs: Any) -> Any:
        timeouts.append(kwargs["timeout"])
        return real(request, **kwargs)

    from unittest import mock

    with mock.patch.object(adapter, "send", side_effect=spy):
        send = client.bulk_send_path(sender="ACME", quality="h")
        for _ in range(3):
            send(NUMBER, client.prepare("Ciao"))
    assert timeouts == [(2.5, 7.0)] * 3


def test_after_close_the_next_call_opens_a_new_connection_as_requests_does(gateway):
    client = make_client(gateway.url)
    send = client.bulk_send_path(sender="ACME", quality="h")
    prepared = client.prepare("Ciao")
    send(NUMBER, prepared)
    send(NUMBER, prepared)
    client.close()  # the pool manager forgets its pools
    send(NUMBER, prepared)
    ports = [port for *_, port in gateway.seen]
    assert ports[0] == ports[1] != ports[2]


# ------------------------------------------------------------------ the same outcome of every answer and failure


def answer_500(handler: Handler) -> None:
    handler.reply(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})


def answer_ko_queue(handler: Handler) -> None:
    handler.reply(200, b"KO Impossibile accodare il messaggio.")


def answer_latin1(handler: Handler) -> None:
    handler.reply(
        200,
        "KO Credito non sufficiente: più credito".encode("iso-8859-1"),
        {"Content-Type": "text/plain; charset=iso-8859-1"},
    )


def answer_gzip(handler: Handler) -> None:
    handler.reply(200, gzip.compress(OK), {"Content-Encoding": "gzip"})


def answer_html(handler: Handler) -> None:
    handler.reply(200, b"<html>login</html>", {"Content-Type": "text/html"})


def hang_up(handler: Handler) -> None:
    handler.close_connection = True  # the request was read, no answer comes: it may have been processed


def stall(handler: Handler) -> None:
    time.sleep(1.0)


def short_body(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b"OK 0.05")
    handler.close_connection = True


ANSWERS = {
    "http 500": answer_500,
    "ko queue": answer_ko_queue,
    "latin-1 ko": answer_latin1,
    "gzip ok": answer_gzip,
    "html page": answer_html,
    "hang up": hang_up,
    "read timeout": stall,
    "body cut short": short_body,
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_answer_and_failure_ends_the_same_way(gateway, name):
    gateway.answer = ANSWERS[name]
    client = make_client(gateway.url, timeout=(1.0, 0.3))
    via_requests, via_bulk = both_ways(client)
    assert via_bulk == via_requests
    assert len(gateway.seen) == 2


def test_connection_refused_is_retried_and_reported_the_same():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    client = make_client(
        f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=2, initial_wait=0, max_wait=0)
    )
    via_requests, via_bulk = both_ways(client)
    assert via_bulk == via_requests
    assert via_bulk[-1] is False  # request_sent: the request provably never left


def test_redirect_is_followed_as_requests_follows_it(gateway):
    def redirect(handler: Handler) -> None:
        if handler.path == "/sms/send.php":
            handler.reply(302, b"moved", {"Location": "/moved/send.php"})
        else:
            handler.reply(200, b"KO Parametro rcpt non valido.")

    gateway.answer = redirect
    client = make_client(gateway.url)
    via_requests, via_bulk = both_ways(client)
    assert via_bulk == via_requests
    assert [(m, p) for m, p, *_ in gateway.seen] == [
        ("POST", "/sms/send.php"),
        ("GET", "/moved/send.php"),
    ] * 2


def test_a_cookie_the_gateway_sets_is_sent_back_as_requests_would(gateway):
    def set_cookie(handler: Handler) -> None:
        handler.reply(200, OK, {"Set-Cookie": "PHPSESSID=abc123; Path=/"})

    gateway.answer = set_cookie
    client = make_client(gateway.url)
    send = client.bulk_send_path(sender="ACME", quality="h")
    prepared = client.prepare("Ciao")
    send(NUMBER, prepared)
    send(NUMBER, prepared)
    headers = [dict(h) for _, _, h, _, _ in gateway.seen]
    assert "Cookie" not in headers[0]
    assert headers[1]["Cookie"] == "PHPSESSID=abc123"
    assert client.session.cookies.get("PHPSESSID") == "abc123"
    both_ways(client)  # with the cookie in the jar, both paths send the same request
    *_, first, second = wire(gateway.seen)
    assert second == first


# ------------------------------------------------------------------ TLS verification and proxies, as requests does them


def test_https_with_a_trusted_bundle_sends_the_same(tls_gateway, monkeypatch):
    gateway, cert_path = tls_gateway
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))  # read once, when the session is made
    client = make_client(gateway.url)
    via_requests, via_bulk = both_ways(client)
    assert via_bulk == via_requests and via_bulk.cost is not None
    first, second = wire(gateway.seen)
    assert second == first


def test_https_with_an_untrusted_certificate_fails_the_same(tls_gateway, monkeypatch):
    gateway, _ = tls_gateway
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    client = make_client(gateway.url)
    via_requests, via_bulk = both_ways(client)
    assert via_bulk == via_requests
    assert gateway.seen == []  # verification failed before any request


def test_an_http_proxy_from_the_environment_gets_the_same_request(gateway, monkeypatch):
    # The recording server plays the proxy: it sees the absolute URL and the proxy credentials.
    host, port = gateway.server_address[:2]
    monkeypatch.setenv("HTTP_PROXY", f"http://proxy-user:proxy-pw@{host}:{port}")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    client = make_client("http://gw.invalid")
    via_requests, via_bulk = both_ways(client)
    assert via_bulk == via_requests and via_bulk.cost is not None
    first, second = wire(gateway.seen)
    assert second == first
    assert first[1] == "http://gw.invalid/sms/send.php"
    assert any(key == "Proxy-Authorization" for key, _ in first[2])


# ------------------------------------------------------------------ patched or instrumented sessions take the requests path


def _patch_session_send(client: SmSendClient, calls: list[str]) -> Any:
    from unittest import mock

    def fake_send(*args: Any, **kwargs: Any) -> Any:
        calls.append("stub")
        response = requests.Response()
        response.status_code, response._content = 200, b"OK 0.05 HTTP9"
        return response

    return mock.patch.object(client.session, "send", side_effect=fake_send)


def _wrap_class_send(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    import functools

    real = requests.Session.send

    @functools.wraps(real)  # what tracing instrumentation does: same name and module, __wrapped__ set
    def traced(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        calls.append("traced")
        return real(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", traced)


def _patch_adapter_instance(client: SmSendClient, calls: list[str]) -> Any:
    from unittest import mock

    adapter = client.session.get_adapter(client.base_url)
    real = adapter.send

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append("adapter")
        return real(*args, **kwargs)

    return mock.patch.object(adapter, "send", side_effect=spy)


@pytest.mark.parametrize("how", ["session.send", "Session.send wrapped", "adapter.send"])
def test_a_patched_or_instrumented_session_gets_every_bulk_send(gateway, monkeypatch, how):
    """A stub or a tracing wrapper on the session sees bulk sends, as it sees send(): each one is a
    ``Session.send`` call through the session's adapter."""
    import contextlib

    client = make_client(gateway.url)
    prepared = client.prepare("Ciao", quality="h")
    calls: list[str] = []
    with contextlib.ExitStack() as stack:
        if how == "session.send":
            stack.enter_context(_patch_session_send(client, calls))
        elif how == "Session.send wrapped":
            _wrap_class_send(monkeypatch, calls)
        else:
            stack.enter_context(_patch_adapter_instance(client, calls))
        send = client.bulk_send_path(sender="ACME", quality="h")
        send(NUMBER, prepared)
        send("+393339876543", prepared)
    assert len(calls) == 2
    assert len(gateway.seen) == (0 if how == "session.send" else 2)


def test_patching_after_the_path_was_built_is_seen_too(gateway):
    client = make_client(gateway.url)
    prepared = client.prepare("Ciao", quality="h")
    send = client.bulk_send_path(sender="ACME", quality="h")
    send(NUMBER, prepared)
    calls: list[str] = []
    with _patch_adapter_instance(client, calls):
        send(NUMBER, prepared)
    assert calls == ["adapter"] and len(gateway.seen) == 2


def test_an_untrusted_certificate_is_a_never_sent_error(tls_gateway, monkeypatch):
    gateway, _ = tls_gateway
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    via_requests, via_bulk = both_ways(make_client(gateway.url))
    assert via_requests[0] is SmSendTransportError and via_requests[-1] is False  # request_sent
    assert via_bulk == via_requests
