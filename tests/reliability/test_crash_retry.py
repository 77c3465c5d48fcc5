"""Crash and retry: a worker killed with SIGKILL mid-send, then the task retried, never sends twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from _shared import build_context, numbers, sms_tests
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.operators.backoffice import SmSendAssignCreditOperator
from airflow_provider_smsend.operators.sms import SmSendSmsOperator

if TYPE_CHECKING:
    from pathlib import Path

DEMO = 1001
WAIT = 60.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` (bounded): the other side is a separate process, there is no event to wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@contextmanager
def worker(script: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Run ``script`` in a Python subprocess (a worker); it prints 'started' when it begins."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def ledger_rows(path: Path, job_key: str) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        try:
            rows = db.execute(
                "SELECT item, state FROM smsend_send_ledger WHERE job_key = ?", (job_key,)
            ).fetchall()
        except sqlite3.OperationalError:  # the worker has not created the table yet
            return {}
    return dict(rows)


def test_bulk_send_killed_mid_way_then_retried(
    sandbox: Any, smsend_conn_id: str, ledger_conn_id: str, ledger_db: Path
) -> None:
    """tests/operators/test_sms.py's worker (KILL_SCRIPT) killed mid-send; the retry in this process."""
    recipients = numbers(300, start=5000000)
    sandbox.admin.set_faults(latency_ms=20)
    job = "campaign/send/killed_run/-1"  # the job key of KILL_SCRIPT's task instance
    with worker(sms_tests.KILL_SCRIPT, {"RECIPIENTS": json.dumps(recipients)}) as proc:
        wait_until(lambda: sum(sandbox.admin.counts(kind="sms").values()) >= 60, "60 messages were sent")
        sigkill(proc)
    at_kill = ledger_rows(ledger_db, job)
    accepted_before = {r for r, state in at_kill.items() if state == "accepted"}
    in_flight = {r for r, state in at_kill.items() if state == "sending"}
    assert accepted_before and len(at_kill) < 300, "the kill must land mid-send"
    sandbox.admin.set_faults(latency_ms=0)
    sends_before = sandbox.admin.stats()["requests"]["/sms/send.php"]

    retry = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=recipients,
        text="x",
        sender="ACME",
        fail_on="all",
    )
    result = retry.execute(
        build_context(dag_id="campaign", task_id="send", run_id="killed_run", try_number=2)
    )

    counts = sandbox.admin.counts(kind="sms")
    outcomes = {o["recipient"]: o for o in result["outcomes_list"]}
    assert set(outcomes) == set(recipients)
    assert max(counts.values()) == 1, "no recipient may get the message twice"
    # Accepted before the kill: reported from the ledger, not sent again.
    for number in accepted_before:
        assert outcomes[number]["status"] == "accepted" and outcomes[number]["previous_try"], number
        assert counts[number] == 1
    # The retry sent exactly the recipients the killed worker never marked.
    assert sandbox.admin.stats()["requests"]["/sms/send.php"] - sends_before == 300 - len(at_kill)
    # In flight at the kill: unknown, never resent (whether or not the gateway got them).
    assert {r for r, o in outcomes.items() if o["status"] == "unknown"} == in_flight
    # Every recipient the gateway never saw is reported: unknown (or sent by the retry, count 1).
    assert {r for r in recipients if counts.get(r, 0) == 0} <= in_flight
    assert {r for r, o in outcomes.items() if o["status"] == "accepted"} == set(recipients) - in_flight


CREDIT_SCRIPT = textwrap.dedent(
    """
    from airflow_provider_smsend.operators.backoffice import SmSendAssignCreditOperator

    class TI:
        dag_id, task_id, run_id, map_index, try_number = "onboarding", "credit", "killed_credit_run", -1, 1
        def xcom_push(self, key, value):
            pass

    print("started", flush=True)
    SmSendAssignCreditOperator(task_id="credit", u_id=1001, bill_id=1, credit="7.5000").execute({"ti": TI()})
    print("finished", flush=True)
    """
)


def test_credit_assignment_killed_during_the_call_then_retried(
    sandbox: Any, smsend_conn_id: str, ledger_conn_id: str, ledger_db: Path, make_context: Any
) -> None:
    """The worker dies after its credit-add reached the gateway and before it recorded the answer.

    The worker is frozen (SIGSTOP) as soon as its request is at the gateway, so the gateway's
    answer (1.5 s later) finds a live connection and the credit is assigned; then it is killed.
    """
    job = "onboarding/credit/killed_credit_run/-1"
    item = "credit_add:1001:1:7.5000"
    sandbox.admin.set_faults(latency_ms=1500)  # the gateway answers 1.5 s after the request arrives
    with worker(CREDIT_SCRIPT, {}) as proc:
        wait_until(
            lambda: (
                sandbox.admin.stats()["requests"].get("/backoffice/credit-add.php", 0) == 1
                and ledger_rows(ledger_db, job).get(item) == "sending"
            ),
            "the credit-add request left the worker",
        )
        proc.send_signal(signal.SIGSTOP)
        wait_until(
            lambda: any(e["type"] == "credits" for e in sandbox.admin.userlog()), "the gateway assigned it"
        )
        sigkill(proc)
    assert ledger_rows(ledger_db, job) == {item: "sending"}, "the outcome must not have been recorded"
    sandbox.admin.set_faults(latency_ms=0)

    retry = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="7.5000")
    context = make_context(dag_id="onboarding", task_id="credit", run_id="killed_credit_run", try_number=2)
    credit_id = retry.execute(context)["credit_id"]

    credits = [e for e in sandbox.admin.userlog() if e["type"] == "credits"]
    assert len(credits) == 1, credits
    assert credits[0]["id"] == credit_id and credits[0]["credit"] == "7.5000"
    assert sandbox.admin.credit(DEMO) == "107.5000"
    stats = sandbox.admin.stats()["requests"]
    assert stats["/backoffice/credit-add.php"] == 1  # resolved through the log, not assigned again
    assert stats["/backoffice/userlog-get.php"] >= 1
    assert ledger_rows(ledger_db, job) == {item: "accepted"}


def test_credit_assignment_killed_before_the_gateway_acted_assigns_nothing(
    sandbox: Any, smsend_conn_id: str, ledger_conn_id: str, ledger_db: Path, make_context: Any
) -> None:
    """Killed while the gateway was still waiting (it then drops the request): the retry finds no
    credit in the log and fails with an actionable message instead of guessing; nothing is assigned."""
    job = "onboarding/credit/killed_credit_run/-1"
    sandbox.admin.set_faults(latency_ms=1500)
    with worker(CREDIT_SCRIPT, {}) as proc:
        wait_until(
            lambda: sandbox.admin.stats()["requests"].get("/backoffice/credit-add.php", 0) == 1,
            "the credit-add request left the worker",
        )
        sigkill(proc)
    time.sleep(1.6)  # let the gateway's 1.5 s latency pass: it finds the client gone and drops the request
    sandbox.admin.set_faults(latency_ms=0)
    retry = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="7.5000")
    with pytest.raises(AirflowFailException, match="NOT done again automatically.*resend_unknown=True"):
        retry.execute(
            make_context(dag_id="onboarding", task_id="credit", run_id="killed_credit_run", try_number=2)
        )
    assert [e for e in sandbox.admin.userlog() if e["type"] == "credits"] == []
    assert sandbox.admin.stats()["requests"]["/backoffice/credit-add.php"] == 1
    assert sandbox.admin.credit(DEMO) == "100.0000"
    assert ledger_rows(ledger_db, job) == {"credit_add:1001:1:7.5000": "sending"}
