"""Faults: a 1,000-recipient bulk send while the gateway misbehaves loses and duplicates nothing."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import TYPE_CHECKING, Any

import requests
from _shared import numbers

from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.sql.ledger import DbApiLedger

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

RECIPIENTS = numbers(1000, start=4000000)
FAULTS = {
    "latency_ms": 1,
    "jitter_ms": 6,
    "ko_queue_rate": 0.10,
    "http500_rate": 0.05,
    "drop_rate": 0.02,
    "seed": 20261128,
}


def _sender(sandbox: Any, ledger_path: Path) -> BulkSender:
    client = SmSendClient(
        base_url=sandbox.url,
        username="demo",
        password="demo-pass",
        default_sender="ACME",
        timeout=(2.0, 10.0),
    )
    ledger = DbApiLedger(lambda: sqlite3.connect(ledger_path), dialect="sqlite", placeholder="?")
    return BulkSender(
        client,
        ledger=ledger,
        job_key="reliability/faults/run-1/-1",
        concurrency=16,
        chunk_size=100,
        queue_retries=1,
        queue_retry_wait=0.01,
    )


def test_thousand_recipients_under_faults_none_missing_none_twice(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every request leaves by the session's HTTPAdapter once: urllib3 retries none of them itself.
    adapter_sends: list[str | None] = []
    send = requests.adapters.HTTPAdapter.send
    monkeypatch.setattr(
        requests.adapters.HTTPAdapter,
        "send",
        lambda self, request, **kwargs: (
            adapter_sends.append(request.path_url) or send(self, request, **kwargs)
        ),
    )
    sandbox.admin.set_faults(**FAULTS)
    ledger_path = tmp_path / "ledger.db"
    messages = [BulkMessage(n, "Saldi di fine stagione: -30%") for n in RECIPIENTS]

    result = _sender(sandbox, ledger_path).run(messages)

    # Every recipient has exactly one outcome, in input order: none missing, none invented.
    assert [o.recipient for o in result.outcomes] == RECIPIENTS
    by_status: dict[str, set[str]] = {"accepted": set(), "rejected": set(), "unknown": set()}
    for outcome in result.outcomes:
        by_status[outcome.status].add(outcome.recipient)
        if outcome.status == "accepted":
            assert outcome.cost is not None and outcome.request_id, outcome
        else:
            assert outcome.error_code and outcome.error, outcome  # a reason, always
    assert sum(map(len, by_status.values())) == 1000

    counts = sandbox.admin.counts(kind="sms")
    injected = sandbox.admin.faults()["injected"]
    # The faults really happened, in the proportions asked for (seeded: the same every run).
    assert injected["ko_queue"] >= 60 and injected["http500"] >= 25 and injected["drop"] >= 8, injected
    # At most once per recipient at the gateway; accepted ones exactly once.
    assert set(counts) <= set(RECIPIENTS)
    assert max(counts.values()) == 1
    assert all(counts.get(r) == 1 for r in by_status["accepted"])
    # Unknown are exactly the ambiguous cases: the gateway processed the request, the answer was lost
    # (an HTML 500 page or a dropped connection). Each such fault made one recipient unknown.
    processed_not_accepted = {r for r, c in counts.items() if c and r not in by_status["accepted"]}
    assert by_status["unknown"] == processed_not_accepted
    assert len(by_status["unknown"]) == injected["http500"] + injected["drop"]
    # Rejected ones never reached a queue: "KO Impossibile accodare" twice in a row (retry exhausted).
    assert not by_status["rejected"] & set(counts)
    assert {o.error_code for o in result.outcomes if o.status == "rejected"} == {"queue_unavailable"}
    assert all(o.retryable for o in result.outcomes if o.status == "rejected")
    # Totals and cost agree with the outcomes.
    assert result.totals == {
        "accepted": len(by_status["accepted"]),
        "rejected": len(by_status["rejected"]),
        "unknown": len(by_status["unknown"]),
        "suppressed": 0,
        "capped": 0,
        "total": 1000,
    }

    assert adapter_sends.count("/sms/send.php") == sandbox.admin.stats()["requests"]["/sms/send.php"]

    # The retried job (faults gone) sends only the rejected ones; unknown stay unknown, never resent.
    sandbox.admin.set_faults(ko_queue_rate=0, http500_rate=0, drop_rate=0, latency_ms=0, jitter_ms=0)
    before = sandbox.admin.stats()["requests"].get("/sms/send.php", 0)
    retry = _sender(sandbox, ledger_path).run(messages)
    sent_by_retry = sandbox.admin.stats()["requests"].get("/sms/send.php", 0) - before
    assert sent_by_retry == len(by_status["rejected"])
    final = Counter(sandbox.admin.counts(kind="sms"))
    assert max(final.values()) == 1
    retry_status = {o.recipient: o.status for o in retry.outcomes}
    assert {r for r, s in retry_status.items() if s == "unknown"} == by_status["unknown"]
    assert {r for r, s in retry_status.items() if s == "accepted"} == set(RECIPIENTS) - by_status["unknown"]
    assert all(final[r] == 1 for r in RECIPIENTS)  # the unknown ones were processed once, too
