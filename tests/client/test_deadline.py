"""client/deadline.py: an attempt's deadline (counted on a fake clock, current per thread), the
deadline adapter ending a read the socket timeout would let wait, a TLS handshake that drips, the
socket timeout set only when it changes, the pool keys found once per origin, and the byte caps."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_smsend.client import deadline as deadlines
from airflow_provider_smsend.client.deadline import (
    Deadline,
    answer_too_big,
    attempt_budget,
    current,
    deadline,
    mount_deadlines,
    read_capped,
)
from airflow_provider_smsend.client.errors import SmSendTimeoutError, SmSendTransportError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_smsend.sandbox.testing import SandboxServer

DEMO = {"user": "demo", "pass": "demo-pass"}
CREDIT = "OK 100.0000"


def test_an_attempt_may_take_its_connect_plus_its_read_timeout() -> None:
    assert attempt_budget((5.0, 30.0)) == 35.0


def test_a_deadline_counts_down_and_a_pause_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(
        deadlines, "time", SimpleNamespace(monotonic=lambda: now[0])
    )  # this module's clock only
    limit = Deadline(10, max_bytes=64, what="credit.php")
    now[0] += 4
    assert (limit.remaining(), limit.expired(), limit.seconds, limit.max_bytes) == (6, False, 10, 64)
    with limit.paused():  # a stream's consumer holding a chunk
        now[0] += 100
    assert limit.remaining() == 6
    now[0] += 6
    assert limit.expired() and limit.remaining() == 0


def test_the_current_deadline_is_the_innermost_block_s_and_this_thread_s() -> None:
    outer, inner = Deadline(10), Deadline(5)
    seen: list[Deadline | None] = []
    assert current() is None
    with deadline(outer) as entered:
        assert entered is outer and current() is outer
        with deadline(inner):
            assert current() is inner
        assert current() is outer
        other = threading.Thread(target=lambda: seen.append(current()))
        other.start()
        other.join(10)
    assert current() is None and seen == [None]


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as made:
        mount_deadlines(made)
        yield made


def credit(session: requests.Session, sandbox: SandboxServer, **kwargs: Any) -> requests.Response:
    return session.post(f"{sandbox.url}/sms/credit.php", data=DEMO, timeout=(5, 30), **kwargs)


def test_a_deadline_ends_a_read_that_the_socket_timeout_lets_wait(
    sandbox: SandboxServer, session: requests.Session
) -> None:
    sandbox.admin.set_faults(latency_ms=2_000)  # the answer comes after 2 s: within the 30 s read timeout
    with deadline(Deadline(0.3)), pytest.raises(requests.RequestException):
        credit(session, sandbox)
    assert credit(session, sandbox).text == CREDIT  # no deadline: the same call waits and is answered


def test_a_body_over_the_deadline_s_cap_is_refused_as_it_is_read(
    sandbox: SandboxServer, session: requests.Session
) -> None:
    with (
        deadline(Deadline(30, max_bytes=5, what="credit.php")),
        pytest.raises(SmSendTransportError, match="answer to credit.php is longer than 5 bytes") as info,
    ):
        credit(session, sandbox).content  # noqa: B018 (reading the body is the point)
    assert (info.value.code, info.value.retryable, info.value.request_sent) == ("answer_too_big", False, True)
    with deadline(Deadline(30, max_bytes=len(CREDIT))):
        assert credit(session, sandbox).text == CREDIT


def test_read_capped_reads_a_streamed_body_up_to_its_cap(
    sandbox: SandboxServer, session: requests.Session
) -> None:
    fed: list[bytes] = []
    body = read_capped(
        credit(session, sandbox, stream=True), 64, answer_too_big("credit.php"), feed=fed.append
    )
    assert body == CREDIT.encode() and b"".join(fed) == body
    too_big = answer_too_big("credit.php", request_sent=False)
    with pytest.raises(SmSendTransportError, match="longer than 5 bytes") as info:
        read_capped(credit(session, sandbox, stream=True), 5, too_big)
    assert info.value.request_sent is False
    built = requests.Response()  # a response made in memory: its body is all there
    built._content = b"x" * 10
    with pytest.raises(SmSendTransportError):
        read_capped(built, 9, too_big)
    assert read_capped(built, 10, too_big) == b"x" * 10


class TlsDrip:
    """A TCP server on 127.0.0.1 that answers a TLS ClientHello one byte every ``interval`` seconds.

    Each connection gets a TLS record header announcing a 16 KiB handshake record, then one byte of
    it per interval: every read of the client's handshake is answered well within any socket
    timeout, so only a bound on the whole handshake ends it. The drip stops after ``limit`` seconds
    (the connection is then closed: a client that waited that long fails on a closed connection,
    not on a timeout). ``connections`` counts the connections; :meth:`given_up` those the client
    closed while the drip went on.
    """

    def __init__(self, *, interval: float = 0.05, limit: float = 20.0) -> None:
        self.interval, self.limit = interval, limit
        self.connections = 0
        self._given_up = 0
        self._changed = threading.Condition()
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(interval)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TlsDrip:
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(10)
        self._listener.close()

    def given_up(self, expected: int) -> int:
        """The connections the client closed mid-drip, once ``expected`` are (or after 10 s)."""
        with self._changed:
            self._changed.wait_for(lambda: self._given_up >= expected, timeout=10)
            return self._given_up

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(30)
                conn.recv(65536)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00")  # handshake record, TLS 1.2, 16 KiB
                conn.settimeout(self.interval)
                for _ in range(int(self.limit / self.interval)):
                    if self.stopping.is_set():
                        return
                    try:
                        if not conn.recv(1):  # the client closed the connection
                            break
                    except TimeoutError:  # nothing from the client: the next byte
                        conn.sendall(b"\x02")
                        continue
                else:
                    return  # the drip ran out first
            except OSError:
                pass
            with self._changed:
                self._given_up += 1
                self._changed.notify_all()


def test_a_tls_handshake_that_drips_ends_by_the_deadline_as_a_connect_timeout(
    session: requests.Session,
) -> None:
    with TlsDrip() as server:
        # The socket timeouts (30 s) would let each dripped byte through, for ever.
        with deadline(Deadline(0.5)), pytest.raises(requests.ConnectTimeout) as info:
            session.post(f"https://127.0.0.1:{server.port}/sms/send.php", data=DEMO, timeout=(30, 30))
        assert "TCP and TLS" in str(info.value)  # nothing was sent: the request follows the handshake
        assert (server.connections, server.given_up(1)) == (1, 1)


def test_a_money_call_whose_tls_handshake_drips_was_never_sent() -> None:
    with TlsDrip() as server:
        client = SmSendClient(
            base_url=f"https://127.0.0.1:{server.port}",
            username="u",
            password="p",
            default_sender="ACME",
            timeout=(20.0, 20.0),
            retry=RetryPolicy(attempts=2, initial_wait=0, max_wait=0),
        )
        # An attempt's deadline is 40 s; a shorter one for the whole call shows the bound is the
        # deadline's, not the 20 s connect timeout's.
        client.attempt_deadline = lambda: Deadline(0.5)  # type: ignore[method-assign]
        with pytest.raises(SmSendTimeoutError, match="Timed out connecting") as info:
            client.send("+393331234567", "ciao")
        assert info.value.request_sent is False
        assert (server.connections, server.given_up(2)) == (2, 2)  # never sent: tried again


class FakeSocket:
    """What _DeadlineSocket wraps: the timeouts given to it and the reads made."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.set: list[float | None] = []

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, value: float | None) -> None:
        self.timeout = value
        self.set.append(value)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return 0

    def sendall(self, data: Any, flags: int = 0) -> None:
        return None


def test_a_socket_timeout_reaches_the_socket_when_it_changes_and_the_deadline_shortens_it() -> None:
    raw = FakeSocket(30.0)
    sock = deadlines._DeadlineSocket(raw)
    sock.settimeout(5.0)  # urllib3 before sending: the connect timeout
    assert (sock.gettimeout(), raw.set) == (5.0, [])  # applied at the next read or write
    sock.sendall(b"request")
    sock.sendall(b"body")
    sock.settimeout(30.0)  # before the answer: the read timeout
    sock.recv_into(bytearray(8))
    sock.recv_into(bytearray(8))
    assert raw.set == [5.0, 30.0]  # one system call per change, not per read
    with deadline(Deadline(60)):  # more time left than the timeout: the timeout stays
        sock.recv_into(bytearray(8))
    assert raw.set == [5.0, 30.0]
    with deadline(Deadline(2)):  # less left: each read waits at most what is left
        sock.recv_into(bytearray(8))
        sock.recv_into(bytearray(8))
    assert len(raw.set) == 4 and all(0 < left <= 2 for left in raw.set[2:])
    sock.recv_into(bytearray(8))  # the deadline's block over: the timeout comes back
    assert raw.set[-1] == 30.0
    with deadline(Deadline(-1)), pytest.raises(TimeoutError):
        sock.recv_into(bytearray(8))


def test_the_deadline_adapter_finds_the_pool_key_of_an_origin_once_and_hands_out_copies(
    tmp_path: Any,
) -> None:
    adapter = deadlines.deadline_adapter()
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")

    def key(url: str, verify: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        request = requests.Request("POST", url).prepare()
        return adapter.build_connection_pool_key_attributes(request, verify, None)  # type: ignore[return-value]

    host, pool = key("https://gw.example/sms/send.php", str(bundle))
    assert host == {"scheme": "https", "host": "gw.example", "port": None}
    assert pool == {"ca_certs": str(bundle), "cert_reqs": "CERT_REQUIRED"}
    host["host"], pool["ca_certs"] = "changed", "changed"  # a caller's change stays its own
    assert key("https://gw.example/sms/credit.php", str(bundle)) == (
        {"scheme": "https", "host": "gw.example", "port": None},
        {"ca_certs": str(bundle), "cert_reqs": "CERT_REQUIRED"},
    )
    assert key("https://gw.example/x", str(tmp_path))[1]["ca_cert_dir"] == str(tmp_path)  # a directory
    assert key("http://127.0.0.1:8765/x", False) == (
        {"scheme": "http", "host": "127.0.0.1", "port": 8765},
        {"cert_reqs": "CERT_NONE"},
    )
