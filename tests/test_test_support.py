"""The suite's own helpers: the sandbox reset every test starts from, and the services probe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests
from smsend_test_support.sandbox import NO_FAULTS, SETTINGS, reset_sandbox
from smsend_test_support.services import require_service

from airflow_provider_smsend.sandbox.testing import run_sandbox

if TYPE_CHECKING:
    from airflow_provider_smsend.sandbox.testing import SandboxServer

DEMO = {"user": "demo", "pass": "demo-pass"}
RESELLER = {"smsusername": "reseller", "smspassword": "reseller-pass"}


def snapshot(server: SandboxServer) -> dict[str, Any]:
    """Everything the admin API shows, and the state it does not (share codes, id counters)."""
    admin = server.admin
    return {
        "accounts": admin.accounts(),
        "messages": admin.messages(),
        "inbound": admin.inbound(),
        "userlog": admin.userlog(),
        "offset": admin.clock()["offset"],
        "faults": admin.faults(),
        "settings": admin.settings(),
        "stats": admin.stats(),
        "shares": dict(server.app_state.shares),
        "counters": dict(server.app_state.counters),
    }


def dirty(server: SandboxServer) -> None:
    """Change every part of a sandbox's state a test can change."""
    url = server.url
    sent = requests.post(
        f"{url}/sms/send.php",
        data={**DEMO, "rcpt": "+393331234567", "data": "x", "sender": "ACME", "qty": "h", "return_id": "1"},
        timeout=10,
    )
    assert sent.text.startswith("OK"), sent.text
    added = requests.post(
        f"{url}/backoffice/recv-add.php", data={**RESELLER, "u_id": 1001, "dest": "+393400000009", "num": 1},
        timeout=10,
    )  # fmt: skip
    assert added.text.startswith("OK"), added.text
    server.admin.set_credit(1002, "3")
    server.admin.inject_inbound("+393400000009", added.text.split()[1], "+393331234567", "hi")
    server.admin.advance(3600)
    server.admin.set_settings(delivery_delay=7, mnc_report="full", allow_ips=["10.0.0.0/8"])
    server.admin.set_faults(latency_ms=1, jitter_ms=1, ko_queue_rate=0.5, http500_rate=0.1, seed=3)
    server.app_state.faults.injected["drop"] = 4  # as a drop fault would count


def test_reset_gives_the_state_of_a_new_sandbox_under_the_suite_settings(
    sandbox_server: SandboxServer,
) -> None:
    with run_sandbox(**SETTINGS) as fresh:
        expected = snapshot(fresh)
    dirty(sandbox_server)
    assert snapshot(sandbox_server) != expected
    reset_sandbox(sandbox_server)
    after = snapshot(sandbox_server)
    # Accounts are created when the fixture loads: only their creation time differs.
    for account in after["accounts"] + expected["accounts"]:
        account.pop("created_at", None)
    assert after == expected
    assert after["faults"] == {**NO_FAULTS, "injected": {"stall": 0, "drop": 0, "http500": 0, "ko_queue": 0}}
    assert after["settings"] == SETTINGS and after["stats"]["total"] == 0


def test_the_sandbox_fixture_is_the_reset_session_sandbox(
    sandbox_server: SandboxServer, sandbox: Any
) -> None:
    assert sandbox is sandbox_server
    assert sandbox.admin.settings() == SETTINGS and sandbox.admin.messages() == []


def test_a_setting_given_to_the_reset_overrides_the_suite_settings(sandbox_server: SandboxServer) -> None:
    try:
        assert reset_sandbox(sandbox_server, delivery_delay=0.3).admin.settings()["delivery_delay"] == 0.3
    finally:
        reset_sandbox(sandbox_server)


def test_a_missing_service_skips_or_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe() -> None:
        raise ConnectionRefusedError("nobody listens on 127.0.0.1:1")

    monkeypatch.delenv("SMSEND_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Fake DB is not available"):
        require_service("Fake DB", probe)
    monkeypatch.setenv("SMSEND_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="SMSEND_REQUIRE_SERVICES=1 makes this a failure"):
        require_service("Fake DB", probe)
