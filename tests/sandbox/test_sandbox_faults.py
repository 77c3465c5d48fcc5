"""Fault injection over real HTTP: drops, stalls, 500 pages, KO queue answers, latency."""

from __future__ import annotations

import pytest
import requests
from sandbox_helpers import DEMO, post

SEND = {**DEMO, "rcpt": "+393331234567", "data": "Hello", "sender": "ACME", "qty": "h"}


def test_drop_closes_the_connection_without_an_answer(sandbox):
    sandbox.admin.set_faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/sms/send.php", data=SEND, timeout=5)
    # The ambiguous case: the gateway processed the request although the client saw no answer.
    assert sandbox.admin.counts() == {"+393331234567": 1}
    assert sandbox.admin.faults()["injected"]["drop"] == 1
    assert sandbox.admin.health() == {"status": "ok"}  # the admin API is never faulted


def test_drop_without_recording(sandbox):
    sandbox.admin.set_faults(drop_rate=1.0, record_on_failure=False)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/sms/send.php", data=SEND, timeout=5)
    assert sandbox.admin.counts() == {}


def test_stall_makes_the_client_time_out(sandbox):
    sandbox.admin.set_faults(stall_rate=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{sandbox.url}/sms/credit.php", data=DEMO, timeout=(5, 1))
    assert sandbox.admin.stats()["requests"] == {"/sms/credit.php": 1}  # it arrived...
    assert sandbox.admin.faults()["injected"]["stall"] == 1  # ... and was never answered
    assert sandbox.admin.counts() == {}
    sandbox.admin.set_faults(stall_rate=0)
    assert requests.post(f"{sandbox.url}/sms/credit.php", data=DEMO, timeout=5).text == "OK 100.0000"


def test_http500_is_a_plain_page_and_the_message_is_recorded(sandbox):
    sandbox.admin.set_faults(http500_rate=1.0)
    answer = requests.post(f"{sandbox.url}/sms/send.php", data=SEND, timeout=5)
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert "Internal Server Error" in answer.text
    assert sandbox.admin.counts() == {"+393331234567": 1}
    assert sandbox.admin.credit(1001) == "99.9150"


def test_http500_applies_to_soap_too(sandbox):
    sandbox.admin.set_faults(http500_rate=1.0)
    answer = requests.post(f"{sandbox.url}/sms-gw/index.php", data=b"<x/>", timeout=5)
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")


def _ko_queue_run(sandbox, http) -> list[str]:
    sandbox.admin.set_faults(ko_queue_rate=0.5, seed=1234)
    return [post(http, sandbox, "/sms/send.php", **SEND) for _ in range(30)]


def test_ko_queue_rate_is_seeded_and_records_nothing(sandbox, http):
    answers = _ko_queue_run(sandbox, http)
    refused = answers.count("KO Impossibile accodare il/i messaggio/i.")
    accepted = answers.count("OK 0.0850")
    assert refused + accepted == 30 and 5 < refused < 25
    assert sandbox.admin.counts() == {"+393331234567": accepted}
    assert sandbox.admin.stats()["requests"]["/sms/send.php"] == 30
    sandbox.admin.reset()
    assert _ko_queue_run(sandbox, http) == answers  # same seed, same faults
    assert post(http, sandbox, "/sms/credit.php", **DEMO) == "OK " + sandbox.admin.credit(1001)


def test_ko_queue_on_mnc_and_not_on_reads(sandbox, http):
    sandbox.admin.set_faults(ko_queue_rate=1.0)
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers="+393331234567") == (
        "KO Impossibile accodare la/e richiesta/e."
    )
    assert post(http, sandbox, "/sms/credit.php", **DEMO) == "OK 100.0000"
    assert sandbox.admin.counts() == {}


def test_latency_delays_gateway_answers_only(sandbox, http):
    sandbox.admin.set_faults(latency_ms=5_000, jitter_ms=50)
    with pytest.raises(requests.ReadTimeout):  # no answer can come before the latency has passed
        http.post(f"{sandbox.url}/sms/credit.php", data=DEMO, timeout=(5, 0.5))
    # Meanwhile the admin API answers (the latency is awaited, it blocks nothing else):
    assert sandbox.admin.stats()["requests"] == {"/sms/credit.php": 1}
    assert sandbox.admin.health() == {"status": "ok"}
    sandbox.admin.set_faults(latency_ms=0, jitter_ms=0)
    assert post(http, sandbox, "/sms/credit.php", **DEMO) == "OK 100.0000"


def test_invalid_fault_settings_are_refused(sandbox):
    with pytest.raises(RuntimeError, match="400"):
        sandbox.admin.set_faults(drop_rate=2)
    with pytest.raises(RuntimeError, match="unknown fault settings"):
        sandbox.admin.set_faults(explode=1)
