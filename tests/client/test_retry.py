"""client/retry.py: read-only calls retried on what may pass later; money calls only when the request
provably never reached the gateway; the policy's bounds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendTemporaryError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.retry import (
    NO_RETRY,
    RetryPolicy,
    async_call_with_retry,
    call_with_retry,
    is_retryable_read,
    is_retryable_write,
)

FAST = RetryPolicy(attempts=3, initial_wait=0, max_wait=0)

NEVER_SENT = SmSendTransportError("connection refused", request_sent=False)
MAY_HAVE_BEEN_SENT = SmSendTimeoutError("no answer")
WRONG_SCHEME = SmSendTransportError("TLS to a plain HTTP gateway", request_sent=False, retryable=False)


def failing(*errors: BaseException, then: Any = "OK") -> tuple[Callable[[], Any], list[int]]:
    """A call that raises ``errors`` one per attempt, then returns ``then``; and its attempt counter."""
    calls: list[int] = []

    def call() -> Any:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return then

    return call, calls


def test_the_policy_is_checked() -> None:
    assert RetryPolicy() == RetryPolicy(attempts=4, initial_wait=0.5, max_wait=8.0) and NO_RETRY.attempts == 1
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="waits must be >= 0"):
        RetryPolicy(initial_wait=-1)


@pytest.mark.parametrize(
    ("error", "read", "write"),
    [
        (NEVER_SENT, True, True),
        (MAY_HAVE_BEEN_SENT, True, False),  # a timeout: the SMS may exist
        (SmSendTemporaryError("KO Impossibile accodare"), True, False),
        (WRONG_SCHEME, False, False),  # never sent, but trying again cannot help
        (SmSendAuthError("KO Utente non abilitato"), False, False),
        (SmSendValidationError("bad number"), False, False),
        (ConnectionError("not ours"), False, False),
    ],
    ids=["never-sent", "timeout", "temporary-ko", "wrong-scheme", "auth", "validation", "foreign"],
)
def test_what_reads_and_writes_retry(error: BaseException, read: bool, write: bool) -> None:
    assert (is_retryable_read(error), is_retryable_write(error)) == (read, write)


def test_a_read_is_retried_until_it_passes_and_each_retry_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    call, calls = failing(MAY_HAVE_BEEN_SENT, SmSendTemporaryError("busy"))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_smsend.client.retry"):
        assert call_with_retry(call, policy=FAST, idempotent=True) == "OK"
    assert len(calls) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "smSend call failed (SmSendTimeoutError), attempt 1; retrying in 0.0 s",
        "smSend call failed (SmSendTemporaryError), attempt 2; retrying in 0.0 s",
    ]


def test_a_read_stops_at_the_attempts_and_raises_the_last_error() -> None:
    last = SmSendTimeoutError("still nothing")
    call, calls = failing(MAY_HAVE_BEEN_SENT, MAY_HAVE_BEEN_SENT, last)
    with pytest.raises(SmSendTimeoutError) as info:
        call_with_retry(call, policy=FAST, idempotent=True)
    assert info.value is last and len(calls) == 3
    call, calls = failing(MAY_HAVE_BEEN_SENT)
    with pytest.raises(SmSendTimeoutError):
        call_with_retry(call, policy=NO_RETRY, idempotent=True)
    assert len(calls) == 1


def test_a_write_is_retried_only_when_it_never_left() -> None:
    call, calls = failing(NEVER_SENT, NEVER_SENT)
    assert call_with_retry(call, policy=FAST, idempotent=False) == "OK" and len(calls) == 3
    for error in (MAY_HAVE_BEEN_SENT, SmSendTemporaryError("KO Impossibile accodare"), WRONG_SCHEME):
        call, calls = failing(error)
        with pytest.raises(type(error)):
            call_with_retry(call, policy=FAST, idempotent=False)
        assert len(calls) == 1, error


def test_the_async_twin_follows_the_same_rules() -> None:
    def async_failing(*errors: BaseException) -> tuple[Callable[[], Any], list[int]]:
        call, calls = failing(*errors)

        async def attempt() -> Any:
            return call()

        return attempt, calls

    read, read_calls = async_failing(MAY_HAVE_BEEN_SENT, SmSendTemporaryError("busy"))
    assert asyncio.run(async_call_with_retry(read, policy=FAST, idempotent=True)) == "OK"
    write, write_calls = async_failing(MAY_HAVE_BEEN_SENT)
    with pytest.raises(SmSendTimeoutError):
        asyncio.run(async_call_with_retry(write, policy=FAST, idempotent=False))
    auth, auth_calls = async_failing(SmSendAuthError("KO"))
    with pytest.raises(SmSendAuthError):
        asyncio.run(async_call_with_retry(auth, policy=FAST, idempotent=True))
    assert (len(read_calls), len(write_calls), len(auth_calls)) == (3, 1, 1)
