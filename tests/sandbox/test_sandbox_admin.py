"""The admin API and the Python test helper."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from sandbox_helpers import DEMO, RESELLER, post

from airflow_provider_smsend.sandbox.testing import run_sandbox

SEND = {**DEMO, "rcpt": "+393331234567", "data": "Hello", "sender": "ACME", "qty": "h"}


def test_messages_counts_and_reset(sandbox, http):
    sandbox.admin.set_settings(delivery_delay=2.0)  # still queued when inspected
    post(http, sandbox, "/sms/send.php", **SEND)
    post(http, sandbox, "/sms/send.php", **{**SEND, "rcpt": "+393471234567"})
    post(http, sandbox, "/sms/mnc.php", **DEMO, numbers="+393331234567")
    assert sandbox.admin.counts() == {"+393331234567": 2, "+393471234567": 1}
    assert sandbox.admin.counts(kind="sms") == {"+393331234567": 1, "+393471234567": 1}
    [message] = sandbox.admin.messages(rcpt="+393471234567")
    assert message["queue_status"] == 100 and message["network"] == "Vodafone" and message["cost"] == "0.0850"
    assert message["request_id"] == "HTTP00000000002" and message["username"] == "demo"
    sandbox.admin.reset()
    assert sandbox.admin.messages() == [] and sandbox.admin.credit(1001) == "100.0000"
    assert sandbox.admin.stats() == {
        "requests": {},
        "total": 0,
        "faults_injected": {"stall": 0, "drop": 0, "http500": 0, "ko_queue": 0},
    }


def test_clock_moves_message_statuses(sandbox, http):
    post(http, sandbox, "/sms/send.php", **SEND)
    before = sandbox.admin.clock()
    after = sandbox.admin.advance(5)
    assert after["offset"] == before["offset"] + 5
    assert after["epoch"] >= before["epoch"] + 5
    [message] = sandbox.admin.messages()
    assert (message["queue_text"], message["notify_text"]) == ("Sent", "Delivered")
    with pytest.raises(RuntimeError, match="forward"):
        sandbox.admin.advance(-1)


def test_inbound_injection(sandbox):
    sms = sandbox.admin.inject_inbound("+393399999999", "001", "+393401112222", "Ciao", "2024-03-01T10:00:00")
    assert sms["id"] == 1 and sms["received_at"] == "2024-03-01T10:00:00+01:00"
    assert sandbox.admin.inbound() == [sms]
    with pytest.raises(RuntimeError, match="missing fields"):
        sandbox.admin.call("POST", "inbound", {"rcpt": "+393399999999"})


def test_stats_count_requests_per_endpoint(sandbox, http):
    for _ in range(3):
        post(http, sandbox, "/sms/credit.php", **DEMO)
    post(http, sandbox, "/backoffice/credit-get.php", **RESELLER, u_id="1001")
    http.get(f"{sandbox.url}/wsdl/?wsdl")
    stats = sandbox.admin.stats()
    assert stats["requests"] == {"/sms/credit.php": 3, "/backoffice/credit-get.php": 1, "/wsdl/?wsdl": 1}
    assert stats["total"] == 5
    sandbox.admin.reset_stats()
    assert sandbox.admin.stats()["total"] == 0


def test_accounts_and_credit(sandbox, http):
    accounts = {a["username"]: a for a in sandbox.admin.accounts()}
    assert accounts["demo"]["u_id"] == 1001 and accounts["demo"]["credit"] == "100.0000"
    assert accounts["reseller"]["is_reseller"] is True and accounts["demo2"]["parent"] == "reseller"
    assert sandbox.admin.set_credit(1001, "12.5") == "12.5000"
    assert post(http, sandbox, "/sms/credit.php", **DEMO) == "OK 12.5000"
    with pytest.raises(RuntimeError, match="404"):
        sandbox.admin.credit(4242)


def test_userlog_and_settings(sandbox, http):
    post(http, sandbox, "/backoffice/credit-add.php", **RESELLER, u_id="1001", bill_id="1", credit="1")
    [entry] = sandbox.admin.userlog()
    assert entry["type"] == "credits" and entry["credit"] == "1.0000" and entry["reseller"] == "reseller"
    assert sandbox.admin.set_settings(mnc_report="full")["mnc_report"] == "full"
    with pytest.raises(RuntimeError, match="mnc_report"):
        sandbox.admin.set_settings(mnc_report="ragged")
    with pytest.raises(RuntimeError, match="400"):
        sandbox.admin.set_settings(allow_ips=["not an ip"])


def test_app_state_gives_direct_access(sandbox, http):
    post(http, sandbox, "/sms/send.php", **SEND)
    state = sandbox.app_state
    assert [m.rcpt for m in state.messages.values()] == ["+393331234567"]
    assert state.accounts[1001].credit == Decimal("99.9150")


def test_connection_uri_names_every_extra(sandbox):
    assert sandbox.connection_uri == (
        f"smsend://demo:demo-pass@127.0.0.1:{sandbox.port}/?scheme=http&reseller_username=reseller"
        "&reseller_password=reseller-pass&mms_id=C00000_001&mms_password=mms-pass&mms_auth=plain"
    )


def test_unknown_paths_are_404(sandbox, http):
    assert http.get(f"{sandbox.url}/sms/nothing.php").status_code == 404


def test_run_sandbox_options_and_clean_stop(http):
    with run_sandbox(delivery_delay=0, allow_ips=["10.1.2.3"]) as sandbox:
        assert sandbox.admin.settings() == {
            "delivery_delay": 0.0,
            "mnc_report": "spec",
            "allow_ips": ["10.1.2.3"],
        }
        assert (
            post(http, sandbox, "/sms/credit.php", **DEMO) == "KO Accesso non consentito (IP non abilitato)."
        )
        url = sandbox.url
    with pytest.raises(requests.ConnectionError):
        http.get(f"{url}/_sandbox/health", timeout=2)
