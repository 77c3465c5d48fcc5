"""client/deadline.py: an attempt's deadline (counted on a fake clock, current per thread), the
deadline adapter ending a read the socket timeout would let wait, and the byte caps."""

from __future__ import annotations

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
from airflow_provider_smsend.client.errors import SmSendTransportError

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
