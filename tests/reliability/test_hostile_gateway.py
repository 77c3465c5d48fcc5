"""Hostile gateway: every public call ends within its budget and in bounded memory.

A server on 127.0.0.1 (tests/smsend_test_support/hostile.py) plays the gateway badly: silent, one
byte every half second on the headers or on the body (each read is well within the read timeout,
so only a deadline on the whole call ends it), an endless report body, an endless line, an
endless SOAP array. Each mode drives every public call in a subprocess of its own (imports warmed
first), which reports, per call, the wall time, the error and the growth of the peak RSS. Bounds
are generous (a loaded 2-core CI machine) but finite: the client's budget + 5 s, 200 MB.
docs/gateway.md, "Deadlines and size caps", states the rules.

The silent gateway also drives what the hook builds from a connection's extras (``timeout``,
``connect_timeout``, ``retries=0``: one attempt of each call, receiveSms included) and both
deferrable triggers, which must end with a ``timeout`` event by their end time (plus
``END_TIME_GRACE`` and the slack), in a subprocess too (HOOK_SCRIPT).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from smsend_test_support.hostile import HostileGateway

from airflow_provider_smsend.client.errors import SmSendTimeoutError
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient
from airflow_provider_smsend.triggers._base import END_TIME_GRACE

TESTS = Path(__file__).resolve().parents[1]
SLACK_SECONDS = 5.0
RSS_GROWTH_MB = 200
NUMBER = "+393331234567"
RECEPTION = "+393400000001"

#: Peak-RSS measures of the subprocesses (prepended to SCRIPT and HOOK_SCRIPT).
MEASURE = r"""
def peak_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
    except OSError:
        pass


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
"""

#: Run in the subprocess: ``argv[1]`` is the mode; prints one JSON line per call.
SCRIPT = r"""
import asyncio, json, sys, time

import httpx, pandas, pyarrow.csv, zeep  # warmed: their import is not the call's time

from airflow_provider_smsend.client.async_http import SmSendAsyncClient
from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient
from smsend_test_support.hostile import HostileGateway

mode = sys.argv[1]


with HostileGateway(mode, interval=0.5) as gateway:
    policy = RetryPolicy(attempts=2, initial_wait=0.2, max_wait=0.2)
    http = SmSendClient(
        base_url=gateway.url, username="u", password="p", reseller_username="r", reseller_password="rp",
        default_sender="ACME", timeout=(1.0, 1.0), retry=policy, max_report_bytes=8 << 20,
    )
    soap = SmSendSoapClient(
        receive_url=gateway.url, mms_url=gateway.url, username="u", password="p", mms_id="C00000_001",
        mms_password="mp", timeout=(1.0, 1.0), retry=policy,
    )
    soap._service("receive"), soap._service("mms")  # the bundled WSDLs parsed before timing
    http.prepare("ciao"), http.credit_add  # phonenumbers and validation loaded

    def stream():
        with http.stream_batch_status("HTTP00000000001") as frames:
            return sum(len(f) for f in frames)

    def bulk():
        return http.bulk_send_path(sender="ACME", quality="h")(NUMBER, http.prepare("ciao"))

    def async_batch_status():
        async def go():
            async with SmSendAsyncClient.from_client(http, shared_pool=True) as client:
                return await client.batch_status("HTTP00000000001")
        return asyncio.run(go())

    calls = {
        "send": (True, lambda: http.send(NUMBER, "ciao")),
        "bulk send path": (True, bulk),
        "credit_add": (True, lambda: http.credit_add(1001, 1, "1")),
        "credit": (False, http.credit),
        "batch_status": (False, lambda: http.batch_status("HTTP00000000001")),
        "stream_batch_status": (False, stream),
        "userlog_get": (False, lambda: http.userlog_get("credits")),
        "async batch_status": (False, async_batch_status),
        "receive_sms": (False, lambda: soap.receive_sms("+393400000001", "001", messages=10)),
        "send_mms": (True, lambda: soap.send_mms("Promo", "Ciao", [NUMBER])),
    }
    for name, (money, call) in calls.items():
        reset_peak()
        base = rss_kib()
        started = time.monotonic()
        try:
            call()
            error = None
        except SmSendError as exc:
            error = exc
        elapsed = time.monotonic() - started
        print(json.dumps({
            "call": name, "money": money, "seconds": elapsed, "budget": http.budget,
            "error": type(error).__name__ if error else None,
            "timeout": error is not None and error.code == "timeout",
            "request_sent": getattr(error, "request_sent", None), "message": str(error),
            "retryable": getattr(error, "retryable", None), "growth_mb": (peak_kib() - base) / 1024,
        }), flush=True)
"""


#: Run in the subprocess against a silent gateway: the hook's clients from a connection's extras,
#: then each trigger until its first event; prints one JSON line per call or trigger.
HOOK_SCRIPT = r"""
import asyncio, json, os, sys, time

import httpx, pandas, zeep  # warmed

from smsend_test_support.hostile import HostileGateway

def measured(name, call, **extra):
    reset_peak()
    base = rss_kib()
    before = gateway.requests
    started = time.monotonic()
    try:
        outcome, error = call(), None
    except Exception as exc:
        outcome, error = None, exc
    print(json.dumps({
        "call": name, "seconds": time.monotonic() - started, "wall": time.time(),
        "error": type(error).__name__ if error else None, "code": getattr(error, "code", None),
        "request_sent": getattr(error, "request_sent", None), "message": str(error or ""),
        "requests": gateway.requests - before, "outcome": outcome,
        "growth_mb": (peak_kib() - base) / 1024, **extra,
    }, default=str), flush=True)


with HostileGateway("silent") as gateway:
    host = gateway.url.removeprefix("http://")
    os.environ["AIRFLOW_CONN_SMSEND_HUNG"] = (
        f"smsend://u:p@{host}/?scheme=http&timeout=1&connect_timeout=1&retries=0"
        "&mms_id=C00000_001&mms_password=mp"
    )
    from airflow_provider_smsend.hooks.smsend import SmSendHook
    from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger
    from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger

    hook = SmSendHook(smsend_conn_id="smsend_hung")
    client, soap = hook.client, hook.soap_client
    soap._service("receive"), soap._service("mms"), client.prepare("ciao")  # loaded before timing
    budget = client.budget
    measured("hook send", lambda: client.send(NUMBER, "ciao", sender="ACME"), budget=budget)
    measured("hook send_mms", lambda: soap.send_mms("Promo", "Ciao", [NUMBER]), budget=budget)
    measured("hook receive_sms", lambda: soap.receive_sms(RECEPTION, "001"), budget=budget)

    def first_event(trigger):
        async def first():
            async for event in trigger.run():
                return event.payload
            raise AssertionError("the trigger ended without an event")

        loop = asyncio.new_event_loop()  # closed without waiting for a SOAP call given up on
        try:
            return loop.run_until_complete(asyncio.wait_for(first(), 60))
        finally:
            loop.close()

    common = {"smsend_conn_id": "smsend_hung", "poll_interval": 0.2}
    for kind in ("batch_status", "inbound"):
        end_time = time.time() + 2.5
        trigger = (
            SmSendBatchStatusTrigger(request_ids=["HTTP00000000001"], report_type="notify", end_time=end_time, **common)
            if kind == "batch_status"
            else SmSendInboundSmsTrigger(
                rcpt=RECEPTION, sharecode="001", received_after="2026-01-01T00:00:00+00:00", end_time=end_time, **common
            )
        )
        measured(f"{kind} trigger", lambda: first_event(trigger), end_time=end_time)
"""


def run_script(script: str, *args: str) -> list[dict[str, Any]]:
    """Run ``script`` (its imports, then MEASURE, the constants and its body) in a subprocess."""
    script, marker, body = script.partition("\n\n\n")
    assert marker, "a script's imports end with two blank lines"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    constants = f"NUMBER = {NUMBER!r}\nRECEPTION = {RECEPTION!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", script + MEASURE + constants + body, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def run_mode(mode: str) -> list[dict[str, Any]]:
    return run_script(SCRIPT, mode)


@pytest.mark.parametrize("mode", ["silent", "drip_headers", "drip_body"])
def test_a_slow_or_silent_gateway_times_every_call_out_within_its_budget(mode: str) -> None:
    results = run_mode(mode)
    assert len(results) == 10, results
    for result in results:
        name = result["call"]
        assert result["timeout"], f"{name}: {result['error']}: {result['message']}"
        assert result["retryable"] is True, result
        assert result["seconds"] <= result["budget"] + SLACK_SECONDS, result
        assert result["growth_mb"] < RSS_GROWTH_MB, result
        if mode == "silent":  # the whole request was read: its outcome is unknown, even a read's
            assert result["request_sent"] is True, result
        if result["money"]:
            assert result["request_sent"] is True, result
            assert "may have been processed" in result["message"], result


@pytest.mark.parametrize("mode", ["endless_body", "endless_line", "huge_soap"])
def test_an_endless_answer_is_cut_at_its_cap_in_bounded_memory(mode: str) -> None:
    results = run_mode(mode)
    assert len(results) == 10, results
    for result in results:
        name = result["call"]
        assert result["error"] is not None, f"{name} returned normally from an endless answer"
        assert result["seconds"] <= result["budget"] + SLACK_SECONDS, result
        assert result["growth_mb"] < RSS_GROWTH_MB, result
        if mode != "huge_soap":  # a fast endless body hits its cap, not the deadline
            assert not result["timeout"], result
        if result["money"]:
            assert result["request_sent"] is not False, result


def test_receive_sms_returns_no_more_messages_than_asked() -> None:
    with HostileGateway("huge_soap", items=25) as gateway:
        soap = SmSendSoapClient(receive_url=gateway.url, username="u", password="p", timeout=(2.0, 5.0))
        listed = soap.receive_sms(RECEPTION, "001", messages=10)
    assert [sms.id for sms in listed] == list(range(10))


def test_the_retries_extra_bounds_receive_sms_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_smsend.hooks.smsend import SmSendHook

    with HostileGateway("silent") as gateway:
        host = gateway.url.removeprefix("http://")
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMSEND_HOSTILE",
            f"smsend://u:p@{host}/?scheme=http&retries=1&timeout=1&connect_timeout=1",
        )
        soap = SmSendHook(smsend_conn_id="smsend_hostile").soap_client
        assert soap.retry.attempts == 2
        soap.retry = RetryPolicy(attempts=2, initial_wait=0.0, max_wait=0.0)  # same count, no wait
        with pytest.raises(SmSendTimeoutError):
            soap.receive_sms(RECEPTION, "001")
        assert gateway.requests == 2


def test_hung_soap_calls_do_not_starve_the_loops_default_executor() -> None:
    from airflow_provider_smsend.hooks.smsend_async import SOAP_THREADS, run_soap_call

    async def scenario(url: str) -> float:
        soap = SmSendSoapClient(
            receive_url=url, username="u", password="p", timeout=(2.0, 2.0), retry=RetryPolicy(attempts=1)
        )
        await asyncio.to_thread(soap._service, "receive")
        hung = [
            asyncio.ensure_future(run_soap_call(soap.receive_sms, RECEPTION, "001"))
            for _ in range(3 * SOAP_THREADS)
        ]
        await asyncio.sleep(0.3)  # every SOAP thread is now waiting on the silent gateway
        started = time.monotonic()
        await asyncio.to_thread(lambda: None)  # what another trigger does meanwhile
        waited = time.monotonic() - started
        for task in hung:
            task.cancel()
        await asyncio.gather(*hung, return_exceptions=True)
        return waited

    with HostileGateway("silent") as gateway:
        waited = asyncio.run(scenario(gateway.url))
    assert waited < 1.0, f"an unrelated to_thread waited {waited:.2f} s behind hung SOAP calls"


def test_the_hooks_clients_and_the_triggers_end_within_their_bounds() -> None:
    """A silent gateway and a connection with 1 s timeouts and ``retries=0``: the hook's clients make
    one attempt each (receiveSms made four, whatever the extra said) and fail within the budget; each
    trigger ends with a ``timeout`` event by its end time; memory stays flat."""
    results = {result["call"]: result for result in run_script(HOOK_SCRIPT)}
    assert list(results) == [
        "hook send",
        "hook send_mms",
        "hook receive_sms",
        "batch_status trigger",
        "inbound trigger",
    ], results
    for name in ("hook send", "hook send_mms", "hook receive_sms"):
        result = results[name]
        assert result["code"] == "timeout", result
        assert result["request_sent"] is True, result  # it reached the gateway: outcome unknown
        assert result["requests"] == 1, result  # one attempt: retries=0
        assert result["seconds"] <= result["budget"] + SLACK_SECONDS, result
        assert result["growth_mb"] < RSS_GROWTH_MB, result
    assert "may have been processed" in results["hook send"]["message"], results["hook send"]
    for name in ("batch_status trigger", "inbound trigger"):
        result = results[name]
        assert result["error"] is None, result
        event = result["outcome"]
        assert event["status"] == "timeout", event
        assert "timed out" in event["message"] and "Last error:" in event["message"], event
        assert result["requests"] >= 1, result  # it really polled the gateway
        late = result["wall"] - result["end_time"]  # the last poll gets END_TIME_GRACE past the end time
        assert late <= END_TIME_GRACE + SLACK_SECONDS, result
        assert result["growth_mb"] < RSS_GROWTH_MB, result
