"""Retry policy (docs/gateway.md, "Retry and money"), built on tenacity.

- Read-only calls (credit, credit-get, batch-status, userlog-get, receiveSms) are retried with
  exponential backoff on transport errors, 5xx answers and transient KO texts.
- Calls that spend money or change state are retried only when the request provably never
  reached the gateway (the connection could not be established): a second SMS or a second credit
  is a real cost.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_smsend.client.errors import SmSendError, SmSendTransportError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    :param attempts: total attempts of a read-only call (1 disables retries).
    :param initial_wait: first backoff in seconds; doubled at each attempt.
    :param max_wait: cap of one backoff, in seconds.
    """

    attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts!r}")
        if self.initial_wait < 0 or self.max_wait < 0:
            raise ValueError("RetryPolicy waits must be >= 0")


NO_RETRY = RetryPolicy(attempts=1)


def is_retryable_read(exc: BaseException) -> bool:
    """True if a read-only call that raised ``exc`` may be tried again."""
    return isinstance(exc, SmSendError) and exc.retryable


def is_retryable_write(exc: BaseException) -> bool:
    """True if a money-spending call that raised ``exc`` provably did not reach the gateway, and may
    get through if tried again (a wrong scheme, for one, will not)."""
    return isinstance(exc, SmSendTransportError) and not exc.request_sent and exc.retryable


def call_with_retry(func: Callable[[], T], *, policy: RetryPolicy, idempotent: bool) -> T:
    """Call ``func`` under ``policy``; ``idempotent`` selects the read or the write rule."""
    return _retrying(policy, idempotent)(func)


@functools.lru_cache(maxsize=64)
def _retrying(policy: RetryPolicy, idempotent: bool) -> Any:
    """The tenacity ``Retrying`` of a policy and rule, built once: a bulk send makes thousands of
    calls, and building it cost about as much CPU as the rest of a request's preparation. Reusing it
    across threads is safe: tenacity keeps each call's state in a ``RetryCallState`` and its
    statistics in a thread-local."""
    import tenacity

    predicate = is_retryable_read if idempotent else is_retryable_write
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait),
        retry=tenacity.retry_if_exception(predicate),
        reraise=True,
        before_sleep=_log_retry,
    )


async def async_call_with_retry(
    func: Callable[[], object], *, policy: RetryPolicy, idempotent: bool
) -> object:
    """Async twin of :func:`call_with_retry`; ``func`` returns an awaitable."""
    import tenacity

    predicate = is_retryable_read if idempotent else is_retryable_write
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait),
        retry=tenacity.retry_if_exception(predicate),
        reraise=True,
        before_sleep=_log_retry,
    )
    async for attempt in retrying:
        with attempt:
            return await func()  # type: ignore[misc]
    raise AssertionError("unreachable")  # pragma: no cover


def _log_retry(state: object) -> None:
    outcome = getattr(state, "outcome", None)
    exc = outcome.exception() if outcome is not None else None
    log.warning(
        "smSend call failed (%s), attempt %s; retrying in %.1f s",
        type(exc).__name__ if exc else "error",
        getattr(state, "attempt_number", "?"),
        getattr(getattr(state, "next_action", None), "sleep", 0.0),
    )
