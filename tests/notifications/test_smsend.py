"""SmSendNotifier: default text and its fitting, sending through the sandbox, never raising."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_smsend.client.encoding import analyse_text
from airflow_provider_smsend.notifications.smsend import (
    SmSendNotifier,
    default_text,
    fit_text,
    send_smsend_notification,
    shorten_run_id,
)

RCPT = "+393331234567"
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


def test_missing_connection_and_bad_number_are_logged(
    smsend_conn_id: str, sandbox: Any, make_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        SmSendNotifier(recipients=[RCPT], sender="ETL", smsend_conn_id="does_not_exist")(make_context())
        SmSendNotifier(recipients=["12", RCPT], sender="ETL")(make_context())
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
    notifier = SmSendNotifier(recipients=RCPT, sender="ETL", text="DAG {{ dag.dag_id }} failed ({{ run_id }})")
    notifier(context)
    assert sms_texts(sandbox) == [(RCPT, "DAG etl failed (manual__x)")]
