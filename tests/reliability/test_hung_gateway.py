"""Hung gateway: with the sandbox never answering, every call gives up within its timeout.

The sandbox's ``stall_rate=1`` accepts each gateway request and never answers it. Timeouts are
short (1 s); each call must fail within its time budget plus a small margin, with an SmSend
timeout error that says so. A stalled answer ends at the read timeout of each attempt (within the
attempt's deadline, connect + read: docs/gateway.md, "Deadlines and size caps"): money calls
(send, credit-add, sendMms) make one attempt; read-only calls are retried by their RetryPolicy
(here 2 attempts, 0.2 s apart). Triggers end with an event by their sensor's end time.
tests/reliability/test_hostile_gateway.py covers the gateways that answer too slowly or too much.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_smsend.client.async_http import SmSendAsyncClient
from airflow_provider_smsend.client.errors import SmSendTimeoutError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient
from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.triggers._base import END_TIME_GRACE
from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger
from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger

TIMEOUT = 1.0
MARGIN = 1.0
READS = RetryPolicy(attempts=2, initial_wait=0.2, max_wait=0.2)
ONE_ATTEMPT = TIMEOUT
READ_BUDGET = READS.attempts * TIMEOUT + 0.2
NUMBER = "+393331234567"
TIMEOUT_TEXT = r"(did not answer|[Tt]imed out)"


@pytest.fixture
def stalled(sandbox: Any) -> Iterator[Any]:
    sandbox.admin.set_faults(stall_rate=1.0)
    yield sandbox
    sandbox.admin.set_faults(stall_rate=0.0)


@contextmanager
def within(budget: float) -> Iterator[None]:
    """The block takes at least one timeout (it really waited) and at most ``budget`` + MARGIN."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed <= budget + MARGIN, f"took {elapsed:.2f} s, budget {budget} s"


def http_client(sandbox: Any) -> SmSendClient:
    return SmSendClient(
        base_url=sandbox.url,
        username="demo",
        password="demo-pass",
        reseller_username="reseller",
        reseller_password="reseller-pass",
        default_sender="ACME",
        timeout=TIMEOUT,
        retry=READS,
    )


def soap_client(sandbox: Any) -> SmSendSoapClient:
    return SmSendSoapClient(
        receive_url=sandbox.url,
        mms_url=sandbox.url,
        username="demo",
        password="demo-pass",
        mms_id="C00000_001",
        mms_password="mms-pass",
        timeout=(TIMEOUT, TIMEOUT),
        retry=READS,
    )


def bulk_send(client: SmSendClient) -> Any:
    """One message through the bulk sender's path (straight through the session's pool)."""
    return client.bulk_send_path(sender="ACME", quality="h")(NUMBER, client.prepare("ciao"))


def run_async(sandbox: Any, call: Callable[[SmSendAsyncClient], Any]) -> Any:
    async def go() -> Any:
        async with SmSendAsyncClient.from_client(http_client(sandbox)) as client:
            return await call(client)

    return asyncio.run(go())


CALLS: dict[str, tuple[float, Callable[[Any], Any]]] = {
    "http send": (ONE_ATTEMPT, lambda s: http_client(s).send(NUMBER, "ciao")),
    "http credit": (READ_BUDGET, lambda s: http_client(s).credit()),
    "http batch_status": (READ_BUDGET, lambda s: http_client(s).batch_status("HTTP00000000001", "notify")),
    "http bulk send path": (ONE_ATTEMPT, lambda s: bulk_send(http_client(s))),
    "http credit_add": (ONE_ATTEMPT, lambda s: http_client(s).credit_add(1001, 1, "1")),
    "http userlog_get": (READ_BUDGET, lambda s: http_client(s).userlog_get("credits")),
    "soap receive_sms": (READ_BUDGET, lambda s: soap_client(s).receive_sms("+393400000001", "001")),
    "soap send_mms": (ONE_ATTEMPT, lambda s: soap_client(s).send_mms("Promo", "Ciao", [NUMBER])),
    "async credit": (READ_BUDGET, lambda s: run_async(s, lambda c: c.credit())),
    "async batch_status": (READ_BUDGET, lambda s: run_async(s, lambda c: c.batch_status("HTTP00000000001"))),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_client_call_gives_up_within_its_timeout(stalled: Any, name: str) -> None:
    budget, call = CALLS[name]
    with within(budget), pytest.raises(SmSendTimeoutError, match=TIMEOUT_TEXT) as caught:
        call(stalled)
    assert caught.value.retryable
    assert caught.value.request_sent  # the request reached the gateway: its outcome is unknown
    assert stalled.admin.faults()["injected"]["stall"] >= 1


def test_connection_timeout_extras_bound_the_hook_clients(stalled: Any, add_smsend_connection: Any) -> None:
    conn_id = add_smsend_connection("smsend_stalled", timeout=TIMEOUT, connect_timeout=TIMEOUT, retries=0)
    hook = SmSendHook(smsend_conn_id=conn_id)
    with within(ONE_ATTEMPT), pytest.raises(SmSendTimeoutError, match=TIMEOUT_TEXT):
        hook.client.send(NUMBER, "ciao", sender="ACME")
    with within(ONE_ATTEMPT), pytest.raises(SmSendTimeoutError, match=TIMEOUT_TEXT):
        hook.soap_client.send_mms("Promo", "Ciao", [NUMBER])
    # retries=0: receiveSms makes one attempt too (it made four whatever the extra said)
    with within(ONE_ATTEMPT), pytest.raises(SmSendTimeoutError, match=TIMEOUT_TEXT):
        hook.soap_client.receive_sms("+393400000001", "001")


def first_event_at(trigger: Any) -> tuple[dict[str, Any], float]:
    """Run ``trigger`` in an event loop; return its first event's payload and when it came (epoch).

    The loop is closed without waiting for its worker threads: a blocking SOAP call that the
    trigger gave up on finishes on its own (at its read timeout), as it would in the triggerer.
    """

    async def first() -> tuple[dict[str, Any], float]:
        async for event in trigger.run():
            return event.payload, time.time()
        raise AssertionError("the trigger ended without an event")

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(first(), 60))
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["batch_status", "inbound"])
def test_triggers_end_by_their_end_time(stalled: Any, add_smsend_connection: Any, kind: str) -> None:
    conn_id = add_smsend_connection("smsend_stalled", timeout=TIMEOUT, connect_timeout=TIMEOUT)
    end_time = time.time() + 2.5
    common = {"smsend_conn_id": conn_id, "poll_interval": 0.2, "end_time": end_time}
    trigger = (
        SmSendBatchStatusTrigger(request_ids=["HTTP00000000001"], report_type="notify", **common)
        if kind == "batch_status"
        else SmSendInboundSmsTrigger(
            rcpt="+393400000001", sharecode="001", received_after="2026-01-01T00:00:00+00:00", **common
        )
    )
    payload, at = first_event_at(trigger)
    late = at - end_time  # the last poll gets END_TIME_GRACE past the end time, then the event goes out
    assert late <= END_TIME_GRACE + MARGIN, f"the event came {late:.2f} s after the end time"
    assert payload["status"] == "timeout", payload
    assert "timed out" in payload["message"] and "Last error:" in payload["message"], payload
    assert stalled.admin.faults()["injected"]["stall"] >= 1
