"""SmSendNotifier: default text and its fitting, sending through the sandbox, never raising."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import sqlite3
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_smsend.client.encoding import analyse_text
from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.notifications.smsend import (
    SmSendNotifier,
    default_text,
    fit_text,
    send_smsend_notification,
    shorten_run_id,
)

RCPT = "+393331234567"
RCPT2 = "+393331234568"
LONG_DAG = "warehouse_nightly_" + "x" * 60
LONG_TASK = "load_customer_dimension_" + "y" * 30
LONG_RUN = "scheduled__2026-01-15T08:30:00.123456+00:00_with_a_rather_long_suffix_for_tests"


def sms_texts(sandbox: Any) -> list[tuple[str, str]]:
    return [(m["rcpt"], m["text"]) for m in sandbox.admin.messages(kind="sms")]


def test_alias() -> None:
    assert send_smsend_notification is SmSendNotifier


def test_every_template_field_renders(make_context: Any, render: Any) -> None:
    kwargs: dict[str, Any] = {name: f"{{{{ ds }}}}-{name}" for name in SmSendNotifier.template_fields}
    notifier = SmSendNotifier(**kwargs)
    render(notifier, make_context())
    for name in SmSendNotifier.template_fields:
        assert getattr(notifier, name) == f"2026-01-15-{name}"


def test_default_text_has_everything_when_it_fits(make_context: Any) -> None:
    context = make_context(dag_id="etl", task_id="load", try_number=2, state="failed")
    text = default_text(context, max_segments=3)
    assert text.splitlines() == [
        "Airflow task FAILED",
        "DAG: etl",
        "Task: load",
        "Run: manual__2026-01-15T08:30:00+00:00",
        "Try: 2",
        f"Log: {context['ti'].log_url}",
    ]


def test_default_text_one_segment_cuts_log_url_first(make_context: Any) -> None:
    context = make_context(dag_id="etl", task_id="load", try_number=2, state="failed")
    text = default_text(context, max_segments=1)
    assert analyse_text(text).segments == 1
    assert "Log:" not in text
    assert "DAG: etl" in text and "Task: load" in text and "Try: 2" in text and "Run: " in text


def test_long_ids_fit_one_segment_and_ids_are_kept(make_context: Any) -> None:
    context = make_context(dag_id=LONG_DAG, task_id=LONG_TASK, run_id=LONG_RUN, map_index=3, state="failed")
    text = default_text(context, max_segments=1)
    assert analyse_text(text).segments == 1
    assert LONG_DAG in text and f"{LONG_TASK}[3]" in text


def test_ids_longer_than_the_limit_are_never_cut(make_context: Any) -> None:
    dag_id = "d" * 120
    task_id = "t" * 60
    text = default_text(make_context(dag_id=dag_id, task_id=task_id, state="failed"), max_segments=1)
    assert dag_id in text and task_id in text


def test_run_id_is_shortened_before_it_is_dropped(make_context: Any) -> None:
    assert shorten_run_id("scheduled__2026-01-15T08:30:00+00:00") == "sch 2026-01-15T08:30"
    dag_id = "d" * 85  # the full run id no longer fits, the shortened one does
    text = default_text(
        make_context(
            dag_id=dag_id, task_id="load", run_id="scheduled__2026-01-15T08:30:00+00:00", state="failed"
        ),
        max_segments=1,
    )
    assert "Run: sch 2026-01-15T08:30" in text


def test_dag_callback_context_without_ti(make_context: Any) -> None:
    context = {
        "dag": SimpleNamespace(dag_id="etl"),
        "dag_run": SimpleNamespace(dag_id="etl", run_id="manual__x", state="failed"),
        "reason": "task_failure",
    }
    assert default_text(context).splitlines() == ["Airflow DAG run FAILED", "DAG: etl", "Run: manual__x"]


def test_fit_text_cuts_a_long_user_text() -> None:
    text = fit_text("word " * 100, 1)
    assert analyse_text(text).segments == 1 and text.endswith("..") and len(text) > 150
    assert fit_text("short", 1) == "short"


def test_sends_through_the_gateway(sandbox: Any, smsend_conn_id: str, make_context: Any) -> None:
    context = make_context(dag_id="etl", task_id="load", state="failed", exception=RuntimeError("boom"))
    notifier = SmSendNotifier(recipients=f"{RCPT}, 3331234568", sender="ETL")
    notifier(context)
    expected = notifier.build_text(context)
    assert sorted(sms_texts(sandbox)) == [(RCPT, expected), ("+393331234568", expected)]


def test_templated_text(sandbox: Any, smsend_conn_id: str, make_context: Any) -> None:
    notifier = SmSendNotifier(recipients=[RCPT], sender="ETL", text="{{ ti.task_id }} failed on {{ ds }}")
    notifier(make_context(task_id="load"))
    assert sms_texts(sandbox) == [(RCPT, "load failed on 2026-01-15")]


def test_gateway_refusal_is_logged_not_raised(
    sandbox: Any, add_smsend_connection: Any, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conn_id = add_smsend_connection("smsend_badpass", password="wrong-password")
    notifier = SmSendNotifier(recipients=[RCPT], sender="ETL", smsend_conn_id=conn_id)
    with caplog.at_level(logging.ERROR):
        notifier(make_context())  # must not raise
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("not sent" in e and "KO " in e for e in errors), errors
    assert all(RCPT not in e for e in errors)
    assert "+39333****567" in " ".join(errors)
    assert sms_texts(sandbox) == []


def test_missing_connection_and_bad_templated_number_are_logged(
    smsend_conn_id: str, sandbox: Any, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        SmSendNotifier(recipients=[RCPT], sender="ETL", smsend_conn_id="does_not_exist")(make_context())
        SmSendNotifier(recipients=["{{ params.bad }}", RCPT], sender="ETL")(
            make_context(params={"bad": "12"})
        )
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "does_not_exist" in errors
    assert "Invalid phone number" in errors and "reached 1 of 2" in errors
    assert [rcpt for rcpt, _ in sms_texts(sandbox)] == [RCPT]


def test_async_notify(sandbox: Any, smsend_conn_id: str, make_context: Any) -> None:
    context = make_context(dag_id="etl", task_id="load", state="failed")
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", context=context)

    async def run() -> None:
        await notifier

    asyncio.run(run())
    assert sms_texts(sandbox) == [(RCPT, notifier.build_text(context))]


def test_async_notify_failure_is_logged_not_raised(
    sandbox: Any, add_smsend_connection: Any, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conn_id = add_smsend_connection("smsend_badpass2", password="wrong-password")
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", smsend_conn_id=conn_id)
    with caplog.at_level(logging.ERROR):
        asyncio.run(notifier.async_notify(make_context()))
    assert any("not sent" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_max_segments_is_checked() -> None:
    with pytest.raises(ValueError, match="max_segments"):
        SmSendNotifier(recipients=RCPT, max_segments=0)


def test_broken_text_template_falls_back_to_default_text(
    sandbox: Any, smsend_conn_id: str, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    context = make_context(dag_id="etl", task_id="load", state="failed")
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", text="{{ ti.task_id | no_such_filter }}")
    with caplog.at_level(logging.ERROR):
        notifier(context)
    assert any("failed to render" in r.getMessage() for r in caplog.records)
    assert sms_texts(sandbox) == [(RCPT, default_text(context))]


def test_dag_callback_with_a_dag_without_jinja_env(sandbox: Any, smsend_conn_id: str) -> None:
    """``airflow dags test`` hands DAG callbacks a SerializedDAG, which has no get_template_env."""
    serialized_dag_like = SimpleNamespace(dag_id="etl", render_template_as_native_obj=False)
    context = {
        "dag": serialized_dag_like,
        "dag_run": SimpleNamespace(dag_id="etl", run_id="manual__x", state="failed"),
        "run_id": "manual__x",
        "reason": "task_failure",
    }
    notifier = SmSendNotifier(
        recipients=RCPT, sender="ETL", text="DAG {{ dag.dag_id }} failed ({{ run_id }})"
    )
    notifier(context)
    assert sms_texts(sandbox) == [(RCPT, "DAG etl failed (manual__x)")]


# ---------------------------------------------------------------- one instance, many calls


def test_one_instance_renders_each_call_on_its_own(
    sandbox: Any, smsend_conn_id: str, make_context: Any
) -> None:
    """The dag-processor reuses one notifier for runs that fail close together."""
    notifier = SmSendNotifier(recipients="{{ params.to }}", sender="ETL", text="{{ ti.task_id }} failed")
    notifier(make_context(task_id="extract", params={"to": RCPT}))
    notifier(make_context(task_id="load", params={"to": RCPT2}))
    assert sms_texts(sandbox) == [(RCPT, "extract failed"), (RCPT2, "load failed")]
    assert (notifier.recipients, notifier.text) == ("{{ params.to }}", "{{ ti.task_id }} failed")


def test_a_rendering_error_leaves_the_instance_usable(
    sandbox: Any, smsend_conn_id: str, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", text="code {{ params.code.upper() }}")
    first = make_context(task_id="extract")  # params.code is undefined: the default text goes out
    with caplog.at_level(logging.ERROR):
        notifier(first)
    notifier(make_context(task_id="load", params={"code": "e42"}))
    assert sms_texts(sandbox) == [(RCPT, default_text(first)), (RCPT, "code E42")]
    assert any("failed to render" in r.getMessage() for r in caplog.records)


def test_async_calls_render_a_copy_too(sandbox: Any, smsend_conn_id: str, make_context: Any) -> None:
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", text="{{ ti.task_id }} failed")
    for task_id in ("extract", "load"):
        notifier.context = make_context(task_id=task_id)

        async def run() -> None:
            await notifier

        asyncio.run(run())
    assert sms_texts(sandbox) == [(RCPT, "extract failed"), (RCPT, "load failed")]


# ---------------------------------------------------------------- checked when the DAG is parsed


@pytest.mark.parametrize(
    "recipients",
    ["+3933312", "12", "333-CALL-ME", [RCPT, "+1555"], f"{RCPT}, 0039333"],
    ids=["short-international", "two-digits", "letters", "one-bad-in-a-list", "one-bad-in-a-text"],
)
def test_an_invalid_literal_recipient_fails_at_construction(recipients: Any) -> None:
    with pytest.raises(ValueError, match="recipient") as caught:
        SmSendNotifier(recipients=recipients, sender="ETL")
    assert "1 invalid" in str(caught.value)
    assert RCPT not in str(caught.value)  # numbers are masked, even in an import error


@pytest.mark.parametrize("sender", ["A_SENDER_TOO_LONG", "Àcme", "+39 12", ""])
def test_an_invalid_literal_sender_fails_at_construction(sender: str) -> None:
    with pytest.raises(ValueError, match="sender"):
        SmSendNotifier(recipients=RCPT, sender=sender)


@pytest.mark.parametrize("recipients", ["", " , ", []])
def test_recipients_given_empty_fail_at_construction(recipients: Any) -> None:
    with pytest.raises(ValueError, match="default_recipients"):
        SmSendNotifier(recipients=recipients, sender="ETL")


def test_literal_quality_and_conn_ids_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="quality"):
        SmSendNotifier(recipients=RCPT, sender="ETL", quality="x")
    with pytest.raises(ValueError, match="smsend_conn_id"):
        SmSendNotifier(recipients=RCPT, sender="ETL", smsend_conn_id="")


def test_valid_literals_and_templates_are_accepted() -> None:
    SmSendNotifier(
        recipients=[RCPT, "0039 333 123 4568", "333 123 4569"], sender="+393331234567", quality="n"
    )
    SmSendNotifier(
        recipients=["{{ params.to }}", RCPT], sender="{{ params.sender }}", quality="{{ params.q }}"
    )
    SmSendNotifier()  # everything from the connection


def test_templated_recipient_and_sender_are_checked_when_rendered(
    sandbox: Any, smsend_conn_id: str, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        SmSendNotifier(recipients="{{ params.to }}", sender="ETL")(
            make_context(params={"to": "+390000000000"})
        )
        SmSendNotifier(recipients=RCPT, sender="{{ params.s }}")(make_context(params={"s": "NOT A SENDER"}))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("Invalid phone number '+39000****000'" in e for e in errors), errors
    assert any("Invalid sender 'NOT A SENDER'" in e for e in errors), errors
    assert sms_texts(sandbox) == []


# ---------------------------------------------------------------- recipients from the connection


@pytest.mark.parametrize("extra", [f"{RCPT}, {RCPT2}", f'["{RCPT}", "{RCPT2}"]'], ids=["commas", "json"])
def test_recipients_from_the_connection(
    sandbox: Any, add_smsend_connection: Any, make_context: Any, extra: str
) -> None:
    conn_id = add_smsend_connection("smsend_oncall", default_recipients=extra, default_sender="ONCALL")
    assert SmSendHook(smsend_conn_id=conn_id).default_recipients == [RCPT, RCPT2]
    notifier = SmSendNotifier(smsend_conn_id=conn_id, text="disk full")
    notifier(make_context())
    assert sorted(sms_texts(sandbox)) == [(RCPT, "disk full"), (RCPT2, "disk full")]
    assert {m["sender"] for m in sandbox.admin.messages(kind="sms")} == {"ONCALL"}


def test_recipients_given_win_over_the_connection(
    sandbox: Any, add_smsend_connection: Any, make_context: Any
) -> None:
    conn_id = add_smsend_connection("smsend_oncall", default_recipients=RCPT2)
    SmSendNotifier(recipients=RCPT, sender="ETL", smsend_conn_id=conn_id, text="x")(make_context())
    assert sms_texts(sandbox) == [(RCPT, "x")]


def test_no_recipient_anywhere_is_logged(
    sandbox: Any, smsend_conn_id: str, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        SmSendNotifier(sender="ETL")(make_context())
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "no recipient" in errors and "default_recipients" in errors
    assert sms_texts(sandbox) == []


# ---------------------------------------------------------------- privacy


def test_numbers_are_masked_and_the_text_is_not_logged_at_info(
    sandbox: Any, smsend_conn_id: str, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="airflow_provider_smsend.notifications"):
        SmSendNotifier(recipients=RCPT, sender="ETL", text="secret diagnosis 42")(make_context())
    assert sms_texts(sandbox) == [(RCPT, "secret diagnosis 42")]
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "+39333****567" in logged
    assert RCPT not in logged and "secret diagnosis" not in logged


# ---------------------------------------------------------------- human-in-the-loop


def test_a_hitl_operator_texts_the_link_to_its_pending_action(
    sandbox: Any, smsend_conn_id: str, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hitl = pytest.importorskip("airflow.providers.standard.operators.hitl")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    requests: list[dict[str, Any]] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kwargs: requests.append(kwargs))
    operator = hitl.ApprovalOperator(
        task_id="approve_release",
        subject="Release 2.4 to production?",
        notifiers=[SmSendNotifier(recipients=RCPT, sender="ETL", max_segments=2)],
    )
    context = make_context(dag_id="release", task_id="approve_release", task=operator)
    context["ti"].id = "0195f0f2-5c7e-7d4a-9d6a-0c9b1e6f4a10"
    with pytest.raises(BaseException) as caught:  # the task now waits for its human
        operator.execute(context)
    assert type(caught.value).__name__ in ("TaskAwaitingInput", "TaskDeferred")  # Airflow 3.3+, 3.1-3.2
    assert requests and requests[0]["subject"] == "Release 2.4 to production?"
    link = (
        "https://airflow.example.com/dags/release/runs/manual__2026-01-15T08:30:00+00:00"
        "/tasks/approve_release/required_actions?map_index=-1"
    )
    ((rcpt, text),) = sms_texts(sandbox)
    assert rcpt == RCPT
    assert link in text and "Release 2.4 to production?" in text
    assert analyse_text(text).segments <= 2


def test_the_hitl_link_is_never_cut(make_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hitl = pytest.importorskip("airflow.providers.standard.operators.hitl")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    operator = hitl.HITLOperator(
        task_id="choose", subject="Which " + "very " * 40 + "long question?", options=["a"]
    )
    context = make_context(dag_id="d" * 40, task_id="choose", task=operator)
    text = default_text(context, max_segments=1)
    assert operator.generate_link_to_ui(task_instance=context["ti"]) in text
    assert "d" * 40 in text


# ---------------------------------------------------------------- deadline alerts


def deadline_context(
    dag_id: str = "etl", run_id: str = "scheduled__2026-01-15T06:00:00+00:00"
) -> dict[str, Any]:
    """What the scheduler hands an async Deadline Alert callback (Deadline.handle_miss)."""
    return {
        "dag_run": {
            "dag_run_id": run_id,
            "dag_id": dag_id,
            "state": "running",
            "run_type": "scheduled",
            "logical_date": "2026-01-15T06:00:00Z",
        },
        "deadline": {
            "id": "0195f0f2-5c7e-7d4a-9d6a-0c9b1e6f4a11",
            "deadline_time": dt.datetime(2026, 1, 15, 7, 30, tzinfo=dt.UTC),
        },
    }


def test_a_deadline_alert_callback_texts_the_missed_deadline(sandbox: Any, smsend_conn_id: str) -> None:
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
    from airflow.triggers.callback import CallbackTrigger

    callback = SmSendNotifier.deadline_callback(recipients=RCPT, sender="ETL")
    assert isinstance(callback, AsyncCallback)
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=1), callback=callback
    )
    stored = json.loads(json.dumps(callback.serialize()))  # what the DAG's serialization keeps

    async def run_in_the_triggerer() -> list[dict[str, Any]]:
        kwargs = {**stored["kwargs"], "context": deadline_context()}
        return [event.payload async for event in CallbackTrigger(stored["path"], kwargs).run()]

    events = asyncio.run(run_in_the_triggerer())
    assert events[-1]["state"] == "success", events
    assert sms_texts(sandbox) == [
        (
            RCPT,
            "Airflow deadline missed\nDAG: etl\nRun: scheduled__2026-01-15T06:00:00+00:00\nDeadline: 2026-01-15 07:30 UTC",
        )
    ]


def test_a_deadline_callback_is_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="recipient"):
        SmSendNotifier.deadline_callback(recipients="+3933312", sender="ETL")


def test_a_deadline_text_can_be_templated(sandbox: Any, smsend_conn_id: str) -> None:
    notifier = SmSendNotifier(
        recipients=RCPT, sender="ETL", text="{{ dag_run.dag_id }} late", context=deadline_context()
    )

    async def run() -> None:
        await notifier

    asyncio.run(run())
    assert sms_texts(sandbox) == [(RCPT, "etl late")]


# ---------------------------------------------------------------- storm collapse


def failed(make_context: Any, task_id: str, run_id: str = "scheduled__2026-01-15T06:00:00+00:00") -> Any:
    return make_context(dag_id="etl", task_id=task_id, run_id=run_id, state="failed")


def test_storm_collapse_sends_one_sms_per_run_per_window(
    sandbox: Any,
    smsend_conn_id: str,
    ledger_conn_id: str,
    ledger_db: Any,
    make_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = SmSendNotifier(
        recipients=RCPT, sender="ETL", text="{{ ti.task_id }} {{ run_id }}", collapse_minutes=10
    )
    with caplog.at_level(logging.INFO):
        for task_id in ("extract", "transform", "load"):
            notifier(failed(make_context, task_id))
        notifier(failed(make_context, "extract", run_id="manual__2"))  # another run: its own window
        dag_callback = {
            "dag": SimpleNamespace(dag_id="etl", render_template_as_native_obj=False),
            "dag_run": SimpleNamespace(dag_id="etl", run_id="manual__2", state="failed"),
            "reason": "task_failure",
        }
        SmSendNotifier(recipients=RCPT, sender="ETL", collapse_minutes=10)(
            dag_callback
        )  # same run, same phone
    assert [text for _, text in sms_texts(sandbox)] == [
        "extract scheduled__2026-01-15T06:00:00+00:00",
        "extract manual__2",
    ]
    assert sum("collapsed" in r.getMessage() for r in caplog.records) == 3

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    monkeypatch.setattr("airflow_provider_smsend.notifications.smsend._utcnow", lambda: later)
    notifier(failed(make_context, "publish"))
    assert [text for _, text in sms_texts(sandbox)][-1] == "publish scheduled__2026-01-15T06:00:00+00:00"

    with sqlite3.connect(ledger_db) as db:  # the ledger holds no phone number
        rows = db.execute("SELECT job_key, item, state FROM smsend_send_ledger").fetchall()
    assert rows and all(RCPT not in " ".join(map(str, row)) and "3331234567" not in str(row) for row in rows)
    assert {row[0] for row in rows} == {
        "smsend-notifier/etl/scheduled__2026-01-15T06:00:00+00:00",
        "smsend-notifier/etl/manual__2",
    }


def test_storm_collapse_is_atomic_across_simultaneous_failures(
    sandbox: Any, smsend_conn_id: str, ledger_conn_id: str, make_context: Any
) -> None:
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", collapse_minutes=10)
    start = threading.Barrier(12)

    def fail(index: int) -> None:
        context = failed(make_context, f"task_{index}")
        start.wait()
        notifier(context)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        list(pool.map(fail, range(12)))
    assert len(sms_texts(sandbox)) == 1


def test_storm_collapse_keeps_other_recipients_apart(
    sandbox: Any, smsend_conn_id: str, ledger_conn_id: str, make_context: Any
) -> None:
    for rcpt in (RCPT, RCPT2, RCPT):
        SmSendNotifier(recipients=rcpt, sender="ETL", collapse_minutes=10)(failed(make_context, "load"))
    assert sorted(rcpt for rcpt, _ in sms_texts(sandbox)) == [RCPT, RCPT2]


def test_a_window_whose_sms_reached_nobody_does_not_hold_back_the_next(
    sandbox: Any, smsend_conn_id: str, add_smsend_connection: Any, ledger_conn_id: str, make_context: Any
) -> None:
    broken = add_smsend_connection("smsend_broken", password="wrong-password")
    SmSendNotifier(recipients=RCPT, sender="ETL", smsend_conn_id=broken, collapse_minutes=10)(
        failed(make_context, "extract")
    )
    SmSendNotifier(recipients=RCPT, sender="ETL", collapse_minutes=10)(failed(make_context, "load"))
    assert len(sms_texts(sandbox)) == 1


def test_the_storm_guard_sends_when_its_ledger_is_unreachable(
    sandbox: Any, smsend_conn_id: str, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SmSendNotifier(
        recipients=RCPT, sender="ETL", collapse_minutes=10, ledger_conn_id="no_such_ledger"
    )
    with caplog.at_level(logging.ERROR):
        notifier(failed(make_context, "load"))
    assert len(sms_texts(sandbox)) == 1
    assert any("storm guard" in r.getMessage() and "no_such_ledger" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("minutes", [0, -5, True, "15", float("inf")])
def test_collapse_minutes_is_checked(minutes: Any) -> None:
    with pytest.raises(ValueError, match="collapse_minutes"):
        SmSendNotifier(recipients=RCPT, collapse_minutes=minutes)


def test_a_hitl_request_is_never_collapsed(
    sandbox: Any, smsend_conn_id: str, ledger_conn_id: str, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hitl = pytest.importorskip("airflow.providers.standard.operators.hitl")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", collapse_minutes=10, max_segments=3)
    notifier(failed(make_context, "extract"))
    operator = hitl.ApprovalOperator(task_id="approve", subject="Load anyway?")
    notifier(
        make_context(
            dag_id="etl", task_id="approve", run_id="scheduled__2026-01-15T06:00:00+00:00", task=operator
        )
    )
    texts = [text for _, text in sms_texts(sandbox)]
    assert len(texts) == 2 and "required_actions" in texts[1]
