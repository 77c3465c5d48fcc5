"""SmSendSmsOperator against the sandbox: single, bulk, templating, policies, cost guard, retry safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from airflow.sdk.exceptions import AirflowFailException
from smsend_test_support.operator_fixtures import build_context

from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.ledger import LedgerEntry, MemoryLedger
from airflow_provider_smsend.operators.sms import SmSendPartialFailure, SmSendSmsOperator
from airflow_provider_smsend.sql.ledger import DbApiLedger


def numbers(count: int, start: int = 1000000) -> list[str]:
    """Valid Italian mobile numbers that the sandbox delivers (none ends in 0000-0003)."""
    out = []
    n = start
    while len(out) < count:
        candidate = f"+39333{n:07d}"
        if candidate[-4:] not in ("0000", "0001", "0002", "0003"):
            out.append(candidate)
        n += 1
    return out


def make_context(**kwargs: Any) -> Any:
    """A task Context (the shared fake task instance records XComs in ``ti.xcoms``)."""
    return build_context(ds="2026-11-28", **kwargs)


def pushed(context: Any, key: str) -> Any:
    return context["ti"].xcom_pull(key=key)


@pytest.fixture
def gateway(sandbox, smsend_conn_id, ledger_conn_id):
    """The sandbox (reset, no faults) with the smsend_default and smsend_ledger connections."""
    return sandbox


def sent_counts(sandbox) -> dict[str, int]:
    return sandbox.admin.counts(kind="sms")


def test_single_send(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients="3331234567",
        text="Pipeline failed",
        sender="ACME",
    )
    context = make_context()
    result = op.execute(context)
    assert result["totals"] == {
        "accepted": 1,
        "rejected": 0,
        "unknown": 0,
        "suppressed": 0,
        "capped": 0,
        "total": 1,
    }
    assert result["request_count"] == 1
    outcome = result["outcomes_list"][0]
    assert outcome["recipient"] == "+393331234567"
    assert outcome["status"] == "accepted"
    assert Decimal(result["total_cost"]) == Decimal(outcome["cost"]) > 0
    assert pushed(context, "request_ids") == [outcome["request_id"]]
    assert sent_counts(gateway) == {"+393331234567": 1}


def test_bulk_thousand_recipients_each_sent_once(gateway):
    recipients = numbers(1000)
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=recipients,
        text="Saldi!",
        sender="ACME",
        concurrency=16,
    )
    context = make_context()
    result = op.execute(context)
    assert result["totals"]["accepted"] == 1000
    counts = sent_counts(gateway)
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert len(pushed(context, "request_ids")) == result["request_count"] == 1000
    assert Decimal(result["total_cost"]) == sum(Decimal(o["cost"]) for o in result["outcomes_list"])


def test_per_recipient_templating(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=[{"number": "+393331111111", "name": "Anna"}, {"number": "+393331111112"}],
        text="Ciao {{ recipient.name | default('cliente') }}, ordine del {{ ds }}",
        sender="ACME",
    )
    op.render_template_fields(make_context())
    op.execute(make_context())
    texts = {m["rcpt"]: m["text"] for m in gateway.admin.messages()}
    assert texts == {
        "+393331111111": "Ciao Anna, ordine del 2026-11-28",
        "+393331111112": "Ciao cliente, ordine del 2026-11-28",
    }


def test_per_recipient_blocks_and_context(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=[{"number": "+393331111111", "vip": "1"}, {"number": "+393331111112", "vip": ""}],
        text="{% if recipient.vip %}VIP {% endif %}{{ ds }}",
        sender="ACME",
    )
    op.render_template_fields(make_context())
    op.execute(make_context())
    texts = {m["rcpt"]: m["text"] for m in gateway.admin.messages()}
    assert texts == {"+393331111111": "VIP 2026-11-28", "+393331111112": "2026-11-28"}


def test_missing_field_fails_before_sending(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=[{"number": "+393331111111"}],
        text="Ciao {{ recipient.name }}",
        sender="ACME",
    )
    with pytest.raises(AirflowFailException, match="Nothing was sent"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_csv_recipients(gateway, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("number,name\n+393331111111,Anna\n3331111112,Bo\n", encoding="utf-8")
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=str(path),
        text="Hi {{ recipient.name }}",
        sender="ACME",
    )
    result = op.execute(make_context())
    assert result["totals"]["accepted"] == 2
    assert {m["text"] for m in gateway.admin.messages()} == {"Hi Anna", "Hi Bo"}


def test_invalid_numbers_reported_never_sent(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=["+393331111111", "12", "not a number"],
        text="x",
        sender="ACME",
        fail_on="all",
    )
    result = op.execute(make_context())
    statuses = [(o["status"], o["error_code"]) for o in result["outcomes_list"]]
    assert statuses == [("accepted", None), ("rejected", "invalid_number"), ("rejected", "invalid_number")]
    assert sent_counts(gateway) == {"+393331111111": 1}


@pytest.mark.parametrize(
    ("fail_on", "should_fail"),
    [("any", True), ("all", False), (0.5, False), (0.2, True)],
)
def test_partial_failure_policies(gateway, fail_on, should_fail):
    # Numbers ending in 0003 are refused by the sandbox with "KO Operatore sconosciuto." (not retryable).
    recipients = [*numbers(3), "+393339990003"]
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=recipients,
        text="x",
        sender="ACME",
        fail_on=fail_on,
    )
    context = make_context()
    if should_fail:
        with pytest.raises(AirflowFailException, match="1 of 4 recipient"):
            op.execute(context)
        partial = pushed(context, "partial_result")
        assert partial["totals"]["accepted"] == 3
        assert partial["outcomes_list"][3]["error_code"] == "unknown_operator"
    else:
        result = op.execute(context)
        assert result["totals"] == {
            "accepted": 3,
            "rejected": 1,
            "unknown": 0,
            "suppressed": 0,
            "capped": 0,
            "total": 4,
        }


def test_retryable_partial_failure_lets_airflow_retry(gateway):
    gateway.admin.set_faults(ko_queue_rate=1.0)
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(2),
        text="x",
        sender="ACME",
        queue_retries=0,
    )
    with pytest.raises(SmSendPartialFailure):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_cost_guard_max_segments(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(2),
        text="x" * 200,
        sender="ACME",
        max_segments=1,
    )
    with pytest.raises(AirflowFailException, match="max_segments=1"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_cost_guard_min_credit(gateway):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(2),
        text="x",
        sender="ACME",
        min_credit="100000",
    )
    with pytest.raises(AirflowFailException, match="below min_credit"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_cost_guard_check_credit(gateway):
    gateway.admin.set_credit(1001, "0.0100")
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(3),
        text="x",
        sender="ACME",
        check_credit=True,
    )
    with pytest.raises(AirflowFailException, match="segments"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_auth_error_fails_at_once(gateway, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_DEFAULT", gateway.connection_uri.replace("demo-pass", "wrong"))
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(5),
        text="x",
        sender="ACME",
    )
    with pytest.raises(AirflowFailException, match="stopped early"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_missing_ledger_connection_is_explained(gateway, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMSEND_LEDGER")
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(1),
        text="x",
        sender="ACME",
    )
    with pytest.raises(AirflowFailException, match="ledger_conn_id=None"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}


def test_retried_task_sends_nothing_twice(gateway):
    recipients = numbers(50)
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=recipients,
        text="x",
        sender="ACME",
    )
    first_context, second_context = make_context(try_number=1), make_context(try_number=2)
    first = op.execute(first_context)
    second = op.execute(second_context)
    assert first["totals"]["accepted"] == second["totals"]["accepted"] == 50
    assert all(o["previous_try"] for o in second["outcomes_list"])
    # each try says what it did itself: the second sent and spent nothing
    assert first["this_try"]["accepted"] == 50 and first["this_try"]["cost"] == first["total_cost"]
    assert second["this_try"] == {
        "accepted": 0,
        "rejected": 0,
        "unknown": 0,
        "suppressed": 0,
        "capped": 0,
        "cost": "0",
    }
    assert pushed(second_context, "request_ids") == pushed(first_context, "request_ids")
    assert set(sent_counts(gateway).values()) == {1}
    # Another run of the DAG is another job: it sends again.
    op.execute(make_context(run_id="manual__2"))
    assert set(sent_counts(gateway).values()) == {2}


def test_ambiguous_outcome_reported_unknown_not_resent(gateway):
    ledger = MemoryLedger()
    client = SmSendClient(base_url=gateway.url, username="demo", password="demo-pass", default_sender="ACME")
    gateway.admin.set_faults(http500_rate=1.0)  # the sandbox records the message, then answers 500
    first = BulkSender(client, ledger=ledger, job_key="j").run([BulkMessage("+393331111111", "x")])
    assert first.outcomes[0].status == "unknown"
    gateway.admin.set_faults(http500_rate=0.0)
    second = BulkSender(client, ledger=ledger, job_key="j").run([BulkMessage("+393331111111", "x")])
    assert second.outcomes[0].status == "unknown" and second.outcomes[0].previous_try
    assert sent_counts(gateway) == {"+393331111111": 1}
    third = BulkSender(client, ledger=ledger, job_key="j", resend_unknown=True).run(
        [BulkMessage("+393331111111", "x")]
    )
    assert third.outcomes[0].status == "accepted"
    assert sent_counts(gateway) == {"+393331111111": 2}


KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from airflow_provider_smsend.operators.sms import SmSendSmsOperator

    class TI:
        dag_id, task_id, run_id, map_index = "campaign", "send", "killed_run", -1
        def xcom_push(self, key, value):
            pass

    recipients = json.loads(os.environ["RECIPIENTS"])
    op = SmSendSmsOperator(include_outcomes=True, mask_outcomes=False, task_id="send", recipients=recipients, text="x", sender="ACME", concurrency=4,
                           chunk_size=8)
    print("started", flush=True)
    op.execute({"ti": TI()})
    print("finished", flush=True)
    """
)


def test_sigkill_mid_send_then_retry_never_sends_twice(gateway):
    recipients = numbers(300)
    gateway.admin.set_faults(latency_ms=20)
    env = {**os.environ, "RECIPIENTS": json.dumps(recipients)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while sum(sent_counts(gateway).values()) < 60:
            assert time.monotonic() < deadline, "the send did not progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = sent_counts(gateway)
    assert 0 < sum(before.values()) < 300, "the kill must land mid-send"
    gateway.admin.set_faults(latency_ms=0)

    retry = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=recipients,
        text="x",
        sender="ACME",
        fail_on="all",
    )
    result = retry.execute(make_context(dag_id="campaign", task_id="send", run_id="killed_run", try_number=2))

    after = sent_counts(gateway)
    assert max(after.values()) == 1, "no recipient may get the message twice"
    by_status: dict[str, set[str]] = {}
    for outcome in result["outcomes_list"]:
        by_status.setdefault(outcome["status"], set()).add(outcome["recipient"])
    # Every recipient is accounted for; those never reaching the gateway were sent by the retry;
    # those left in flight by the kill are reported unknown (at most two chunks of 8), not resent.
    assert set(recipients) == by_status.get("accepted", set()) | by_status.get("unknown", set())
    assert by_status.get("accepted", set()) <= set(after)
    assert len(by_status.get("unknown", set())) <= 16
    assert {r for r in recipients if after.get(r, 0) == 0} <= by_status.get("unknown", set())
    assert all(after.get(r) == 1 for r in by_status["accepted"])


def test_sqlite_ledger_survives_reopen(tmp_path):
    import sqlite3

    path = tmp_path / "l.db"
    ledger = DbApiLedger(lambda: sqlite3.connect(path), dialect="sqlite", placeholder="?")
    ledger.claim("job", ["+393331111111", "+393331111112"], owner="earlier try")
    ledger.close()
    reopened = DbApiLedger(lambda: sqlite3.connect(path), dialect="sqlite", placeholder="?")
    assert {k: v.state for k, v in reopened.load("job").items()} == {
        "+393331111111": "sending",
        "+393331111112": "sending",
    }
    reopened.record(
        [LedgerEntry("job", "+393331111111", "accepted", cost="0.0850", request_id="HTTP1")],
        owner="earlier try",
    )
    assert [(e.item, e.cost) for e in reopened.entries(state="accepted")] == [("+393331111111", "0.0850")]
    assert len(reopened.entries()) == 2


def test_template_fields_render():
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients="{{ params.number }}",
        text="{{ ds }}",
        sender="{{ params.sender }}",
        quality="{{ params.quality }}",
        operation="{{ params.operation }}",
        url="{{ params.url }}",
        ledger_table="{{ params.table }}",
        ledger_key="campaign/{{ ds }}",
        ledger_conn_id="{{ params.env }}_ledger",
        suppression_conn_id="{{ params.env }}_warehouse",
        suppression_table="optouts_{{ params.env }}",
        campaign="spring/{{ params.env }}",
        smsend_conn_id="smsend_{{ params.env }}",
    )
    params = {
        "number": "+393331111111",
        "sender": "ACME",
        "quality": "h",
        "operation": "WAPPUSH",
        "url": "https://x.example",
        "table": "ledger_x",
        "env": "prod",
    }
    op.render_template_fields({"ds": "2026-11-28", "params": params})
    # text is not a template field: the operator renders it at run time, with the context
    assert op.text == "{{ ds }}"
    assert [m.text for m in op.messages({"ds": "2026-11-28", "params": params})] == ["2026-11-28"]
    assert (op.recipients, op.sender, op.quality, op.operation, op.url, op.ledger_table) == (
        "+393331111111",
        "ACME",
        "h",
        "WAPPUSH",
        "https://x.example",
        "ledger_x",
    )
    assert (op.ledger_key, op.ledger_conn_id, op.smsend_conn_id) == (
        "campaign/2026-11-28",
        "prod_ledger",
        "smsend_prod",
    )
    assert (op.suppression_conn_id, op.suppression_table, op.campaign) == (
        "prod_warehouse",
        "optouts_prod",
        "spring/prod",
    )
    assert set(SmSendSmsOperator.template_fields) == {
        "recipients",
        "recipients_sql",
        "recipients_conn_id",
        "sender",
        "quality",
        "operation",
        "url",
        "ledger_table",
        "ledger_key",
        "ledger_conn_id",
        "suppression_conn_id",
        "suppression_table",
        "campaign",
        "smsend_conn_id",
    }


def test_fail_on_validation():
    with pytest.raises(ValueError, match="fail_on"):
        SmSendSmsOperator(
            include_outcomes=True,
            mask_outcomes=False,
            task_id="send",
            recipients="x",
            text="x",
            fail_on="some",
        )


def test_simple_namespace_ti_map_index_none(gateway):
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=None, xcom_push=lambda **kw: None)
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(1),
        text="x",
        sender="ACME",
    )
    assert op.execute({"ti": ti})["totals"]["accepted"] == 1


def test_a_rerun_sends_again_by_default_and_once_with_a_date_ledger_key(gateway):
    """The default ledger key is the task run's: a manual re-run of the same date is a new job and
    sends again. A ledger_key of the date makes every run of that date one job."""
    recipients = numbers(5)

    def run(run_id: str, **kwargs: Any) -> dict[str, Any]:
        op = SmSendSmsOperator(
            include_outcomes=True,
            mask_outcomes=False,
            task_id="send",
            recipients=recipients,
            text="Promo",
            sender="ACME",
            **kwargs,
        )
        context = make_context(run_id=run_id)
        op.render_template_fields(context)
        return op.execute(context)

    run("scheduled__2026-11-28")
    run("manual__2026-11-28T10:00")  # default key: the re-run is a new job
    assert set(sent_counts(gateway).values()) == {2}

    keyed = {"ledger_key": "{{ ti.dag_id }}/{{ ti.task_id }}/{{ ds }}"}
    first = run("scheduled__2026-11-28b", **keyed)
    second = run("manual__2026-11-28T11:00", **keyed)
    assert set(sent_counts(gateway).values()) == {3}  # the keyed runs sent once between them
    assert first["totals"]["accepted"] == 5 and second["totals"]["accepted"] == 5
    assert second["this_try"]["accepted"] == 0  # reported from the ledger, not sent again
    assert second["outcomes_list"] == [{**o, "previous_try": True} for o in first["outcomes_list"]]


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "{{ ds }}", 42])
def test_a_bad_ledger_key_is_refused_before_anything_is_sent(gateway, key):
    op = SmSendSmsOperator(
        include_outcomes=True,
        mask_outcomes=False,
        task_id="send",
        recipients=numbers(1),
        text="Promo",
        sender="ACME",
        ledger_key=key,
    )
    with pytest.raises(AirflowFailException, match="ValueError: ledger_key"):  # fails at once, no retry
        op.execute(make_context())
    assert sent_counts(gateway) == {}


# ---------------------------------------------------------------- the campaign API (issue 16)


def test_zero_recipients_push_an_empty_request_id_list(gateway):
    """A normal day for a campaign DAG: `request_ids=send.output["request_ids"]` must not hit XComNotFound."""
    context = make_context()
    result = SmSendSmsOperator(task_id="send", recipients=[], text="x", sender="ACME").execute(context)
    assert pushed(context, "request_ids") == []
    assert result["totals"]["total"] == 0 and result["request_count"] == 0
    assert sent_counts(gateway) == {}


def test_a_dict_is_one_recipient(gateway):
    """What `.expand(recipients=[{...}, {...}])` hands each mapped task: one dict, one recipient."""
    op = SmSendSmsOperator(
        task_id="send", recipients={"number": "+393331234567", "name": "Zoe"}, text="Ciao {{ recipient.name }}",
        sender="ACME",
    )  # fmt: skip
    assert op.execute(make_context())["totals"] == {
        "accepted": 1,
        "rejected": 0,
        "unknown": 0,
        "suppressed": 0,
        "capped": 0,
        "total": 1,
    }
    (message,) = gateway.admin.messages(kind="sms")
    assert (message["rcpt"], message["text"]) == ("+393331234567", "Ciao Zoe")


@pytest.mark.parametrize("value", [3331234590.0, float("nan"), True], ids=["float", "nan", "bool"])
def test_a_float_nan_or_bool_recipient_is_refused_never_turned_into_digits(gateway, value):
    op = SmSendSmsOperator(
        task_id="send", recipients=[{"number": value}], text="x", sender="ACME", include_outcomes=True,
        fail_on="all",
    )  # fmt: skip
    with pytest.raises(AirflowFailException):
        op.execute(make_context())
    assert sent_counts(gateway) == {}  # +3933312345900 (a stranger) got nothing


def test_a_landline_is_refused_unless_allowed(gateway):
    landline = "+390612345678"  # Rome, fixed line
    op = SmSendSmsOperator(
        task_id="send", recipients=[landline, "+393331234567"], text="x", sender="ACME", fail_on="all",
        include_outcomes=True, mask_outcomes=False,
    )  # fmt: skip
    outcomes = {o["recipient"]: o for o in op.execute(make_context())["outcomes_list"]}
    assert outcomes[landline]["status"] == "rejected" and "allow_landlines" in outcomes[landline]["error"]
    assert sent_counts(gateway) == {"+393331234567": 1}
    allowed = SmSendSmsOperator(
        task_id="send", recipients=[landline], text="x", sender="ACME", allow_landlines=True
    )
    assert allowed.execute(make_context(run_id="r2"))["totals"]["accepted"] == 1


def test_a_cp1252_csv_needs_its_encoding(gateway, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes("number,name\n+393331234567,Zoë\n".encode("cp1252"))
    op = SmSendSmsOperator(
        task_id="send", recipients=str(path), text="Ciao {{ recipient.name }}", sender="ACME"
    )
    with pytest.raises(AirflowFailException, match="not 'utf-8-sig' text.*encoding='cp1252'"):
        op.execute(make_context())
    assert sent_counts(gateway) == {}
    op = SmSendSmsOperator(
        task_id="send",
        recipients=str(path),
        text="Ciao {{ recipient.name }}",
        sender="ACME",
        encoding="cp1252",
    )
    op.execute(make_context())
    (message,) = gateway.admin.messages(kind="sms")
    assert message["text"] == "Ciao Zoë"


def test_the_xcom_result_is_small_whatever_the_number_of_recipients(gateway):
    """Outcomes stay in the ledger: the return value is the same few hundred bytes for 10 or 1,000."""
    sizes = []
    for count, run_id in ((10, "small"), (1000, "big")):
        op = SmSendSmsOperator(
            task_id="send", recipients=numbers(count), text="x", sender="ACME", concurrency=32
        )
        result = op.execute(make_context(run_id=run_id))
        assert result["totals"]["accepted"] == count and result["request_count"] == count
        sizes.append(len(json.dumps(result)))
    assert sizes[1] < 2048 and sizes[1] - sizes[0] < 40, sizes


# ---------------------------------------------------------------- cost known before, capped, explained (issue 16, item 4)

#: 95 characters: one GSM segment, two UCS-2 ones (over 70).
ORDER_READY = (
    "Ciao {{ recipient.name }}, il tuo ordine del 28 novembre è pronto: ritiralo in negozio entro sabato!"
)
CUSTOMERS = ["Anna", "Zoë", "Bruno", "Chloë", "Carla", "Noël", "Dario", "Elena", "Fabio", "Gina"]


def customers(count: int = 10) -> list[dict[str, str]]:
    return [{"number": n, "name": name} for n, name in zip(numbers(count), CUSTOMERS[:count], strict=True)]


def log_lines(capfd) -> list[str]:
    """What the task logged since the last read (the operator's logger prints through structlog)."""
    return capfd.readouterr().out.splitlines()


def send_requests(sandbox) -> int:
    return sandbox.admin.stats()["requests"].get("/sms/send.php", 0)


def test_the_estimate_of_a_mixed_campaign_is_logged_and_in_the_xcom_before_sending(gateway, capfd):
    op = SmSendSmsOperator(task_id="send", recipients=customers(), text=ORDER_READY, sender="ACME")
    context = make_context()
    capfd.readouterr()
    result = op.execute(context)
    lines = log_lines(capfd)
    expected = {
        "messages": 10,
        "segments": 13,
        "by_encoding": {"GSM": {"messages": 7, "segments": 7}, "UCS2": {"messages": 3, "segments": 6}},
        "ucs2_characters": {"ë": 3},
        "ucs2_extra": {"messages": 3, "segments": 3},
        "price_per_segment": "0.0850",  # credit.php: 100.0000 EUR buy 1176 SMS at quality h
        "price_source": "gateway",
        "estimated_cost": "1.1050",
    }
    assert result["estimate"] == pushed(context, "estimate") == expected
    assert result["total_cost"] == "1.1050"  # what the sandbox charged: the estimate was exact
    (line,) = [line for line in lines if "Estimate before sending" in line]
    assert "10 message(s), 13 segment(s)" in line and "1.1050 EUR at 0.0850 EUR per segment (gateway)" in line
    (warning,) = [line for line in lines if "UCS-2 raises the cost" in line]
    assert "warn" in warning.lower() and "3 of 10 message(s): 3 segment(s) more" in warning
    assert "'ë' 3" in warning and "transliterate=True" in warning
    log = "\n".join(lines)
    for name in CUSTOMERS:
        assert name not in log
    assert not any(n in log or n[-4:] in warning for n in numbers(10))


def test_max_cost_refuses_a_send_whose_estimate_exceeds_it_before_any_request(gateway):
    op = SmSendSmsOperator(
        task_id="send", recipients=customers(), text=ORDER_READY, sender="ACME", max_cost="1.00"
    )
    context = make_context()
    with pytest.raises(AirflowFailException, match=r"max_cost=1.00 EUR.*1.1050 EUR.*Nothing was sent"):
        op.execute(context)
    assert pushed(context, "estimate")["estimated_cost"] == "1.1050"  # pushed before refusing
    assert send_requests(gateway) == 0 and sent_counts(gateway) == {}
    assert gateway.admin.credit(1001) == "100.0000"


def test_max_cost_stops_a_send_whose_spend_reaches_it_and_its_retry_too(gateway, add_smsend_connection):
    # A price set too low in the connection: the estimate (10 x 0.04) fits, the gateway charges 0.085.
    conn_id = add_smsend_connection("smsend_cheap", price_per_segment="0.0400")
    op = SmSendSmsOperator(
        task_id="send", recipients=numbers(10), text="Saldi", sender="ACME", max_cost="0.50", concurrency=1,
        smsend_conn_id=conn_id,
    )  # fmt: skip
    with pytest.raises(
        AirflowFailException, match=r"5 of them were not sent because max_cost=0.50 EUR was reached"
    ):
        op.execute(make_context(try_number=1))
    assert sum(sent_counts(gateway).values()) == 5  # 5 x 0.085 = 0.425; a sixth would make 0.51
    assert Decimal(gateway.admin.credit(1001)) == Decimal("100.0000") - Decimal("0.4250")
    # The retry counts what the first try spent: the 5 left would pass the cap, nothing more is sent.
    with pytest.raises(AirflowFailException, match=r"max_cost=0.50 EUR.*spent or may have spent 0.4250 EUR"):
        op.execute(make_context(try_number=2))
    assert sum(sent_counts(gateway).values()) == 5 and send_requests(gateway) == 5


def test_transliterate_keeps_a_name_with_a_non_gsm_letter_single_segment_gsm(gateway, capfd):
    op = SmSendSmsOperator(
        task_id="send", recipients=customers(2), text=ORDER_READY, sender="ACME", transliterate=True,
    )  # fmt: skip
    capfd.readouterr()
    result = op.execute(make_context())
    log = "\n".join(log_lines(capfd))
    sent = {m["rcpt"]: m for m in gateway.admin.messages(kind="sms")}
    zoe = sent[numbers(2)[1]]
    assert zoe["text"].startswith("Ciao Zoe, il tuo ordine") and (zoe["operation"], zoe["segments"]) == (
        "TEXT",
        1,
    )
    assert result["estimate"]["by_encoding"] == {
        "GSM": {"messages": 2, "segments": 2},
        "UCS2": {"messages": 0, "segments": 0},
    }
    assert result["total_cost"] == "0.1700"  # two single-segment messages at 0.085
    assert "1 of 2 message(s) take GSM 03.38 look-alikes" in log and "'ë' 1" in log and "Zoë" not in log


def test_the_price_per_segment_of_the_connection_replaces_credit_php(gateway, add_smsend_connection):
    conn_id = add_smsend_connection("smsend_priced", price_per_segment='{"h": "0.0900", "l": "0.0600"}')
    op = SmSendSmsOperator(
        task_id="send", recipients=numbers(3), text="Saldi", sender="ACME", smsend_conn_id=conn_id
    )
    result = op.execute(make_context())
    price = (result["estimate"]["price_per_segment"], result["estimate"]["price_source"])
    assert price == ("0.0900", "connection")
    assert result["estimate"]["estimated_cost"] == "0.2700"
    assert gateway.admin.stats()["requests"].get("/sms/credit.php", 0) == 0  # no credit call needed


def test_recipients_from_sql_stay_out_of_the_rendered_fields(gateway, tmp_path, monkeypatch):
    """recipients_sql: the rows are read when the task runs; only the query is a template field."""
    import sqlite3

    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (number TEXT, name TEXT)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?)", [("+393331234567", "Anna"), ("+393331234568", "Bo")]
        )
    monkeypatch.setenv("AIRFLOW_CONN_CRM", f"sqlite://{path}")
    op = SmSendSmsOperator(
        task_id="send", recipients_sql="SELECT number, name FROM customers ORDER BY name", recipients_conn_id="crm",
        text="Ciao {{ recipient.name }}", sender="ACME",
    )  # fmt: skip
    context = make_context()
    op.render_template_fields(context)
    rendered = {name: getattr(op, name) for name in op.template_fields}
    assert "+393331234567" not in str(rendered) and "Anna" not in str(rendered)
    assert op.execute(context)["totals"]["accepted"] == 2
    texts = {m["rcpt"]: m["text"] for m in gateway.admin.messages(kind="sms")}
    assert texts == {"+393331234567": "Ciao Anna", "+393331234568": "Ciao Bo"}
    with pytest.raises(ValueError, match="not both"):
        SmSendSmsOperator(task_id="s", recipients=["+393331234567"], recipients_sql="SELECT 1", text="x")


# ----------------------------------------------------------------- consent and frequency (issue 19)


@pytest.fixture
def optouts(tmp_path, monkeypatch):
    """A suppression list in a SQLite warehouse (connection ``warehouse``)."""
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    from airflow_provider_smsend.sql.suppression import SuppressionList

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"sqlite://{tmp_path / 'warehouse.db'}")
    made = SuppressionList(SqliteHook(sqlite_conn_id="warehouse"))
    made.ensure()
    return made


def test_suppressed_numbers_are_skipped_before_the_estimate_the_cost_cap_and_any_request(
    gateway, optouts, ledger_db, capfd
):
    import datetime as dt

    everyone = numbers(10)
    blocked = everyone[2:5]
    # written in national form in the list: the same normalisation as the operator's
    optouts.add([(n.removeprefix("+39"), "STOP reply") for n in blocked], since=dt.datetime.now(dt.UTC))

    def send() -> SmSendSmsOperator:
        # 10 messages would cost 0.85 EUR: over max_cost; the 7 with consent cost 0.595.
        return SmSendSmsOperator(
            task_id="send", recipients=everyone, text="Saldi", sender="ACME", max_cost="0.60",
            suppression_conn_id="warehouse", include_outcomes=True,
        )  # fmt: skip

    context = make_context()
    capfd.readouterr()
    result = send().execute(context)
    log = "\n".join(log_lines(capfd))
    assert result["totals"] == {
        "accepted": 7, "rejected": 0, "unknown": 0, "suppressed": 3, "capped": 0, "total": 10,
    }  # fmt: skip
    assert result["estimate"]["messages"] == 7 and result["total_cost"] == "0.5950"
    assert set(sent_counts(gateway)) == set(everyone) - set(blocked)
    assert "3 recipient(s) on the suppression list" in log
    assert not any(n in log or n.removeprefix("+39") in log for n in blocked)
    statuses = [o["status"] for o in result["outcomes_list"]]
    assert statuses == ["accepted"] * 2 + ["suppressed"] * 3 + ["accepted"] * 5
    assert not any(n in json.dumps(result) for n in everyone)  # masked in the XCom
    ledger = DbApiLedger(lambda: sqlite3.connect(ledger_db), dialect="sqlite", placeholder="?")
    assert {e.item: (e.state, e.error_code) for e in ledger.entries() if e.item in blocked} == dict.fromkeys(
        blocked, ("suppressed", "suppressed")
    )
    # The retry checks the list again: still suppressed, nothing sent, the totals unchanged.
    again = send().execute(make_context(try_number=2))
    assert again["totals"] == result["totals"] and again["this_try"]["suppressed"] == 3
    assert again["this_try"]["accepted"] == 0 and sum(sent_counts(gateway).values()) == 7


def test_an_ambiguous_recipient_resent_with_resend_unknown_is_checked_against_the_suppression_list(
    gateway, optouts
):
    import datetime as dt

    x, other = numbers(2)

    def send(**kwargs: Any) -> SmSendSmsOperator:
        return SmSendSmsOperator(
            task_id="send", recipients=[x, other], text="Saldi", sender="ACME",
            suppression_conn_id="warehouse", **kwargs,
        )  # fmt: skip

    gateway.admin.set_faults(http500_rate=1.0)  # the sandbox records the messages, then answers 500
    with pytest.raises(AirflowFailException):
        send().execute(make_context())
    gateway.admin.set_faults(http500_rate=0.0)
    assert sent_counts(gateway) == {x: 1, other: 1}  # both left unknown in the ledger
    optouts.add([(x, "STOP reply")], since=dt.datetime.now(dt.UTC))  # x opts out meanwhile
    result = send(resend_unknown=True, include_outcomes=True, mask_outcomes=False).execute(
        make_context(try_number=2)
    )
    assert sent_counts(gateway) == {x: 1, other: 2}  # the opted-out x is not texted again
    by_number = {o["recipient"]: o["status"] for o in result["outcomes_list"]}
    assert by_number == {x: "suppressed", other: "accepted"}


def test_the_frequency_cap_counts_a_campaign_across_runs_and_ledger_keys(gateway):
    import datetime as dt

    a, b, c, d = numbers(4)
    now = [dt.datetime.now(dt.UTC)]

    def run(run_id: str, recipients: list[str], campaign: str = "spring", **kwargs: Any) -> dict[str, Any]:
        op = SmSendSmsOperator(
            task_id="send", recipients=recipients, text="Saldi", sender="ACME", campaign=campaign,
            max_per_recipient=(2, dt.timedelta(days=7)), clock=lambda: now[0], **kwargs,
        )  # fmt: skip
        return op.execute(make_context(run_id=run_id))

    run("r1", [a, b, c])
    run("r2", [a, b, d], ledger_key="spring/manual")  # another ledger key, the same campaign
    third = run("r3", [a, b, c, d])
    assert third["totals"] == {
        "accepted": 2, "rejected": 0, "unknown": 0, "suppressed": 0, "capped": 2, "total": 4,
    }  # fmt: skip
    assert sent_counts(gateway) == {a: 2, b: 2, c: 2, d: 2}
    # every one has had 2 now: a fourth run sends nothing; another campaign is counted apart
    assert run("r4", [a, b, c, d])["totals"]["capped"] == 4
    assert run("r5", [a], campaign="autumn")["totals"]["accepted"] == 1
    # eight days later the period holds none of them
    now[0] += dt.timedelta(days=8)
    assert run("r6", [a, b])["totals"]["accepted"] == 2
    assert sent_counts(gateway) == {a: 4, b: 3, c: 2, d: 2}


def test_the_frequency_cap_counts_a_send_left_unknown(gateway):
    import datetime as dt

    a, b = numbers(2)

    def send(run_id: str) -> SmSendSmsOperator:
        op = SmSendSmsOperator(
            task_id="send", recipients=[a, b], text="Saldi", sender="ACME", campaign="spring",
            max_per_recipient=(1, dt.timedelta(days=7)), fail_on="all",
        )  # fmt: skip
        return op.execute(make_context(run_id=run_id))

    gateway.admin.set_faults(http500_rate=1.0)  # the sandbox records the messages, then answers 500
    with pytest.raises(AirflowFailException):
        send("r1")
    gateway.admin.set_faults(http500_rate=0.0)
    assert sent_counts(gateway) == {a: 1, b: 1}  # both reached the phone, the ledger says unknown
    assert send("r2")["totals"]["capped"] == 2  # another run of the campaign: capped, not texted again
    assert sent_counts(gateway) == {a: 1, b: 1}


def test_the_frequency_cap_is_validated_and_needs_the_ledger():
    import datetime as dt

    for bad, error in [
        ((0, 60), ValueError),
        ((1, -5), ValueError),
        ((1, "week"), ValueError),
        (3, TypeError),
    ]:
        with pytest.raises(error, match="max_per_recipient"):
            SmSendSmsOperator(task_id="s", recipients=["+393331234567"], text="x", max_per_recipient=bad)
    with pytest.raises(ValueError, match="max_per_recipient needs the send ledger"):
        SmSendSmsOperator(
            task_id="s",
            recipients=["+393331234567"],
            text="x",
            max_per_recipient=(1, 60),
            ledger_conn_id=None,
        )
    for campaign in (None, "  "):  # counted under the run's ledger key, the cap would never bite
        with pytest.raises(ValueError, match="max_per_recipient needs a campaign name"):
            SmSendSmsOperator(
                task_id="s",
                recipients=["+393331234567"],
                text="x",
                max_per_recipient=(1, 60),
                campaign=campaign,
            )
    op = SmSendSmsOperator(
        task_id="s", recipients=["+393331234567"], text="x", max_per_recipient=[2, 3600.0], campaign="spring"
    )
    assert op.max_per_recipient == (2, dt.timedelta(hours=1))
    templated = SmSendSmsOperator(  # a templated name is checked once rendered (_campaign)
        task_id="s",
        recipients=["+393331234567"],
        text="x",
        max_per_recipient=(1, 60),
        campaign="{{ params.c }}",
    )
    with pytest.raises(ValueError, match="campaign must be a rendered"):
        templated._campaign("dag/task/run/-1")


# ----------------------------------------------------------------- quiet hours (issue 19)


def sandbox_now(sandbox, step: float = 0.0):
    """A clock reading the sandbox's own (which records each message's time); ``step`` seconds pass per read."""
    import datetime as dt

    def now() -> dt.datetime:
        answer = sandbox.admin.advance(step) if step else sandbox.admin.clock()
        return dt.datetime.fromtimestamp(answer["epoch"], dt.UTC)

    return now


def move_sandbox_to(sandbox, hour: int, minute: int, second: int) -> Any:
    """Advance the sandbox clock to the next HH:MM:SS.5 in Rome; return that instant (UTC)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    now = sandbox_now(sandbox)()
    local = now.astimezone(ZoneInfo("Europe/Rome"))
    target = dt.datetime.combine(local.date(), dt.time(hour, minute, second, 500000), tzinfo=local.tzinfo)
    target = target.replace(tzinfo=ZoneInfo("Europe/Rome"))
    if target <= now:
        target = dt.datetime.combine(
            local.date() + dt.timedelta(days=1),
            dt.time(hour, minute, second, 500000),
            tzinfo=ZoneInfo("Europe/Rome"),
        )
    sandbox.admin.advance((target - now).total_seconds())
    return target.astimezone(dt.UTC)


def rome_times(sandbox) -> list[Any]:
    """The local (Rome) times the sandbox recorded for its SMS."""
    import datetime as dt

    return [dt.datetime.fromisoformat(m["created_at"]) for m in sandbox.admin.messages(kind="sms")]


def test_a_send_started_outside_the_window_defers_to_the_opening_and_then_sends(gateway):
    import datetime as dt

    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_smsend.client.window import SendWindow

    start = move_sandbox_to(gateway, 8, 59, 30)
    op = SmSendSmsOperator(
        task_id="send", recipients=numbers(5), text="Saldi", sender="ACME", clock=sandbox_now(gateway),
        send_window=SendWindow(start="09:00", end="20:00", days="mon-sun", tz="Europe/Rome"),
    )  # fmt: skip
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.method_name == "execute_complete"
    opening = deferred.value.trigger.moment
    assert opening == start + dt.timedelta(seconds=29.5)  # 09:00:00 Rome
    assert send_requests(gateway) == 0 and gateway.admin.stats()["requests"].get("/sms/credit.php") is None
    gateway.admin.advance((opening - sandbox_now(gateway)()).total_seconds() + 0.1)
    result = op.execute_complete(context, {"status": "success"})
    assert result["totals"]["accepted"] == 5
    assert all(t.time() >= dt.time(9) for t in rome_times(gateway))


def test_a_campaign_that_reaches_the_windows_end_defers_and_resumes_where_it_stopped(gateway):
    """Verified on the sandbox's clock: two seconds pass per clock read; no request leaves at or after
    20:00 Rome; the rest leave after 09:00 the next day, each recipient once."""
    import datetime as dt

    from airflow.sdk.exceptions import TaskDeferred

    everyone = numbers(12)
    move_sandbox_to(gateway, 19, 59, 40)
    op = SmSendSmsOperator(
        task_id="send", recipients=everyone, text="Saldi", sender="ACME", concurrency=1,
        clock=sandbox_now(gateway, step=2.0), send_window={"start": "09:00", "end": "20:00", "tz": "Europe/Rome"},
    )  # fmt: skip
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    before = rome_times(gateway)
    assert 0 < len(before) < len(everyone)
    assert all(t.time() < dt.time(20) for t in before)  # none outside the window
    opening = deferred.value.trigger.moment
    assert opening.astimezone(ZoneInfo("Europe/Rome")).time() == dt.time(9)
    assert opening - sandbox_now(gateway)() < dt.timedelta(hours=14)  # the next morning
    gateway.admin.advance((opening - sandbox_now(gateway)()).total_seconds() + 0.1)
    result = op.execute_complete(context, {"status": "success"})
    assert result["totals"]["accepted"] == len(everyone)
    assert result["this_try"]["accepted"] == len(everyone) - len(before)
    assert sent_counts(gateway) == dict.fromkeys(everyone, 1)  # each once: resumed where it stopped
    after = rome_times(gateway)[len(before) :]
    assert all(dt.time(9) <= t.time() < dt.time(20) for t in after)


def test_the_send_window_is_validated_and_needs_the_ledger():
    with pytest.raises(ValueError, match="send_window needs the send ledger"):
        SmSendSmsOperator(
            task_id="s",
            recipients=["+393331234567"],
            text="x",
            send_window={"start": "09:00"},
            ledger_conn_id=None,
        )
    with pytest.raises(TypeError, match="send_window must be a SendWindow"):
        SmSendSmsOperator(task_id="s", recipients=["+393331234567"], text="x", send_window="09:00-20:00")
    with pytest.raises(ValueError, match="Unknown days"):
        SmSendSmsOperator(task_id="s", recipients=["+393331234567"], text="x", send_window={"days": "lun"})


def test_an_opt_out_that_arrives_while_the_send_waits_for_the_window_is_honoured(gateway, optouts):
    import datetime as dt

    from airflow.sdk.exceptions import TaskDeferred

    everyone = numbers(4)
    move_sandbox_to(gateway, 20, 30, 0)
    op = SmSendSmsOperator(
        task_id="send", recipients=everyone, text="Saldi", sender="ACME", clock=sandbox_now(gateway),
        suppression_conn_id="warehouse", send_window={"start": "09:00", "end": "20:00"},
    )  # fmt: skip
    context = make_context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    optouts.add([(everyone[1], "STOP reply")], since=dt.datetime.now(dt.UTC))  # a reply in the night
    gateway.admin.advance((deferred.value.trigger.moment - sandbox_now(gateway)()).total_seconds() + 0.1)
    result = op.execute_complete(context, {"status": "success"})
    assert (result["totals"]["accepted"], result["totals"]["suppressed"]) == (3, 1)
    assert set(sent_counts(gateway)) == set(everyone) - {everyone[1]}
