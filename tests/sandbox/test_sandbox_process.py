"""The sandbox as a process: CLI, SQLite persistence across restarts and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests
from sandbox_helpers import DEMO, RESELLER

from airflow_provider_smsend.sandbox.testing import run_sandbox

SEND = {**DEMO, "rcpt": "+393331234567", "data": "Hello", "sender": "ACME", "qty": "h", "return_id": "1"}


def start_cli(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_smsend.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url_line, uri_line = process.stdout.readline(), process.stdout.readline()
    assert url_line.startswith("smSend sandbox listening on http://127.0.0.1:"), url_line
    return process, url_line.split()[-1], uri_line.split()[-1]


def test_state_file_survives_a_restart(tmp_path):
    path = str(tmp_path / "state.sqlite")
    with run_sandbox(state_file=path) as sandbox:
        request_id = requests.post(f"{sandbox.url}/sms/send.php", data=SEND, timeout=5).text.split()[2]
        requests.post(
            f"{sandbox.url}/backoffice/recv-add.php",
            data={**RESELLER, "u_id": "1001", "dest": "+393399999999"},
            timeout=5,
        )
        requests.post(
            f"{sandbox.url}/backoffice/client-add.php",
            data={**RESELLER, "name": "N", "username": "n", "password": "p", "reseller": "0"},
            timeout=5,
        )
        sandbox.admin.inject_inbound("+393399999999", "001", "+393401112222", "kept")
        sandbox.admin.advance(10)
    with run_sandbox(state_file=path) as sandbox:
        assert sandbox.admin.credit(1001) == "99.9150"
        assert sandbox.admin.clock()["offset"] == 10
        report = requests.post(
            f"{sandbox.url}/sms/batch-status.php",
            timeout=5,
            data={**DEMO, "id": request_id, "type": "notify", "schema": "1"},
        ).text
        assert report.splitlines()[1] == "1,+393331234567,200,Delivered"
        assert [m["text"] for m in sandbox.admin.inbound()] == ["kept"]
        assert requests.post(
            f"{sandbox.url}/sms/credit.php", data={"user": "n", "pass": "p"}, timeout=5
        ).text == ("OK 0.0000")
        assert (
            requests.post(f"{sandbox.url}/sms/send.php", data=SEND, timeout=5).text.split()[2]
            == "HTTP00000000002"
        )
        assert len(sandbox.admin.userlog()) == 1
        sandbox.admin.reset()
    with run_sandbox(state_file=path) as sandbox:
        assert sandbox.admin.messages() == [] and sandbox.admin.credit(1001) == "100.0000"


def test_cli_prints_the_url_and_connection_uri_and_survives_sigkill(tmp_path):
    path = str(tmp_path / "state.sqlite")
    process, url, uri = start_cli("--state-file", path, "--delivery-delay", "0")
    try:
        port = url.rsplit(":", 1)[1]
        assert uri == (
            f"smsend://demo:demo-pass@127.0.0.1:{port}/?scheme=http&reseller_username=reseller"
            "&reseller_password=reseller-pass&mms_id=C00000_001&mms_password=mms-pass&mms_auth=plain"
        )
        request_id = requests.post(f"{url}/sms/send.php", data=SEND, timeout=5).text.split()[2]
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    process, url, _ = start_cli("--state-file", path, "--delivery-delay", "0")
    try:
        report = requests.post(
            f"{url}/sms/batch-status.php",
            timeout=5,
            data={**DEMO, "id": request_id, "type": "queue", "schema": "1"},
        ).text
        assert report.splitlines()[1] == "1,+393331234567,200,Sent"
    finally:
        process.terminate()
        assert process.wait(10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop


def test_cli_fault_flags(tmp_path):
    process, url, _ = start_cli("--stall", "--seed", "3")
    try:
        with pytest.raises(requests.ReadTimeout):
            requests.post(f"{url}/sms/credit.php", data=DEMO, timeout=(5, 0.5))
        assert requests.get(f"{url}/_sandbox/faults", timeout=5).json()["stall_rate"] == 1.0
    finally:
        process.terminate()
        assert process.wait(10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop


def test_cli_rejects_bad_options():
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_smsend.sandbox", "--drop-rate", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "between 0 and 1" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_smsend.sandbox", "--allow-ip", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "nope" in result.stderr
