"""SmSendMmsOperator against the sandbox gateway's sendMms SOAP service, over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendTemporaryError, SmSendTransportError
from airflow_provider_smsend.client.mms import build_mms_message
from airflow_provider_smsend.operators.base import job_key, ledger_for
from airflow_provider_smsend.operators.mms import SmSendMmsOperator, ledger_item

pytestmark = pytest.mark.usefixtures("smsend_conn_id", "ledger_conn_id")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
MP3 = b"ID3" + b"\x00" * 200
RCPT = "+393331234567"
SEND_MMS = "/sms-gw/index.php"


def templated(names: Any) -> dict[str, Any]:
    return {name: f"{{{{ ds }}}}-{name}" for name in names}


def mms_calls(sandbox: Any) -> int:
    return sandbox.admin.stats()["requests"].get(SEND_MMS, 0)


def crm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """A SQLite table ``customers`` of ``columns`` holding ``rows``, as the connection ``crm``."""
    import sqlite3

    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE customers ({columns})")
        db.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * len(columns.split(',')))})", rows)
    monkeypatch.setenv("AIRFLOW_CONN_CRM", f"sqlite://{path}")


def test_every_template_field_renders(make_context: Any, render: Any) -> None:
    # recipients and recipients_sql exclude each other: one instance renders each
    for left_out in ("recipients_sql", "recipients"):
        names = [n for n in SmSendMmsOperator.template_fields if n != left_out]
        task = SmSendMmsOperator(task_id="mms", **templated(names))
        render(task, make_context())
        for name in names:
            assert getattr(task, name) == f"2026-01-15-{name}"


def test_recipients_from_sql_stay_out_of_the_rendered_fields(
    sandbox: Any, make_context: Any, render: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm(tmp_path, monkeypatch, "phone TEXT, vip INTEGER", [(RCPT, 1), ("3331234568", 1), ("3331234569", 0)])
    task = SmSendMmsOperator(
        task_id="mms", subject="Offer", text="See the picture", image=PNG, number_field="phone",
        recipients_sql="SELECT phone FROM customers WHERE vip = 1", recipients_conn_id="crm",
    )  # fmt: skip
    context = make_context(task_id="mms")
    render(task, context)
    assert "3331234568" not in str({name: getattr(task, name) for name in task.template_fields})
    assert task.execute(context)["recipients"] == 2
    assert sorted(m["rcpt"] for m in sandbox.admin.messages(kind="mms")) == [RCPT, "+393331234568"]


def test_recipients_or_recipients_sql(sandbox: Any, make_context: Any) -> None:
    with pytest.raises(ValueError, match="not both"):
        SmSendMmsOperator(task_id="m", subject="S", text="T", recipients=RCPT, recipients_sql="SELECT 1")
    with pytest.raises(ValueError, match="not both"):
        SmSendMmsOperator(task_id="m", subject="S", text="T")
    with pytest.raises(ValueError, match="recipients_conn_id"):
        SmSendMmsOperator(task_id="m", subject="S", text="T", recipients_sql="SELECT 1")


def test_send_with_image_bytes_and_sound_path(sandbox: Any, make_context: Any, tmp_path: Path) -> None:
    sound = tmp_path / "jingle.bin"  # the type comes from the content, not the name
    sound.write_bytes(MP3)
    task = SmSendMmsOperator(
        task_id="mms",
        subject="Offer",
        text="See the picture",
        recipients=[RCPT, "3331234568"],
        image=PNG,
        sound=str(sound),
    )
    assert task.execute(make_context(task_id="mms"))["cost"] == "0.7400"
    sent = sandbox.admin.messages(kind="mms")
    assert sorted(m["rcpt"] for m in sent) == [RCPT, "+393331234568"]
    assert mms_calls(sandbox) == 1


def test_too_large_image_fails_before_any_request(sandbox: Any, make_context: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * 102_400)
    task = SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients=RCPT, image=str(big))
    with pytest.raises(AirflowFailException, match="at most 100 kB"):
        task.execute(make_context(task_id="mms"))
    assert sandbox.admin.stats()["total"] == 0


def test_wrong_attachment_type_fails_before_any_request(sandbox: Any, make_context: Any) -> None:
    task = SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients=RCPT, image=MP3)
    with pytest.raises(AirflowFailException, match="pass it as sound="):
        task.execute(make_context(task_id="mms"))
    assert sandbox.admin.stats()["total"] == 0


def test_md5_ticket_auth_end_to_end(sandbox: Any, make_context: Any, add_smsend_connection: Any) -> None:
    conn_id = add_smsend_connection(
        "smsend_md5", mms_id="C00000_002", mms_password="mms-md5-pass", mms_auth="md5"
    )
    task = SmSendMmsOperator(
        task_id="mms", subject="Ticket", text="MD5 auth", recipients=RCPT, smsend_conn_id=conn_id
    )
    assert task.execute(make_context(task_id="mms"))["cost"] == "0.3700"
    assert len(sandbox.admin.messages(kind="mms")) == 1


def test_md5_wrong_password_fails_without_retry(
    sandbox: Any, make_context: Any, add_smsend_connection: Any
) -> None:
    conn_id = add_smsend_connection(
        "smsend_md5bad", mms_id="C00000_002", mms_password="nope-nope", mms_auth="md5"
    )
    task = SmSendMmsOperator(
        task_id="mms", subject="Ticket", text="MD5 auth", recipients=RCPT, smsend_conn_id=conn_id
    )
    with pytest.raises(AirflowFailException, match="SmSendAuthError"):
        task.execute(make_context(task_id="mms"))
    assert sandbox.admin.messages(kind="mms") == []


def test_no_credit_fails_and_carrier_problem_is_retryable(sandbox: Any, make_context: Any) -> None:
    sandbox.admin.set_credit(1001, "0.1")
    with pytest.raises(AirflowFailException, match="No credit left"):
        SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients=RCPT).execute(
            make_context(task_id="a")
        )
    sandbox.admin.set_credit(1001, "10")
    with pytest.raises(SmSendTemporaryError):  # KO 109: Airflow's retries apply
        SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients="+393330000003").execute(
            make_context(task_id="b")
        )


def test_retry_after_success_sends_nothing(sandbox: Any, make_context: Any) -> None:
    task = SmSendMmsOperator(task_id="mms", subject="Once", text="only once", recipients=RCPT, image=PNG)
    first = task.execute(make_context(task_id="mms", try_number=1))["cost"]
    second = task.execute(make_context(task_id="mms", try_number=2))["cost"]
    assert first == second == "0.3700"
    assert mms_calls(sandbox) == 1


def test_a_retry_with_the_recipients_in_another_order_or_set_sends_nothing(
    sandbox: Any, make_context: Any
) -> None:
    second = "+393331234568"
    first_try = SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients=[RCPT, second], image=PNG)
    assert first_try.execute(make_context(task_id="mms", try_number=1))["resumed"] is False
    # a query without ORDER BY may give its rows in another order on the retry: the same MMS
    reordered = SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients=[second, RCPT], image=PNG)
    assert reordered.execute(make_context(task_id="mms", try_number=2))["resumed"] is True
    # rows added between the tries: another MMS, which would text the first two again: refused
    grown = SmSendMmsOperator(
        task_id="mms", subject="S", text="T", recipients=[RCPT, second, "+393331234569"], image=PNG
    )
    with pytest.raises(AirflowFailException, match="nothing was sent now, so that nobody gets it twice"):
        grown.execute(make_context(task_id="mms", try_number=3))
    assert mms_calls(sandbox) == 1


def test_a_query_that_finds_nobody_sends_nothing(
    sandbox: Any, make_context: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm(tmp_path, monkeypatch, "number TEXT", [])
    task = SmSendMmsOperator(
        task_id="mms",
        subject="S",
        text="T",
        recipients_sql="SELECT number FROM customers",
        recipients_conn_id="crm",
    )
    with pytest.raises(AirflowFailException, match="recipients_sql found no recipient"):
        task.execute(make_context(task_id="mms"))
    assert sandbox.admin.stats()["total"] == 0


def test_lost_answer_then_retry_fails_with_advice(sandbox: Any, make_context: Any) -> None:
    task = SmSendMmsOperator(task_id="mms", subject="Lost", text="answer lost", recipients=RCPT)
    sandbox.admin.set_faults(http500_rate=1.0, record_on_failure=True)
    with pytest.raises(SmSendTransportError):
        task.execute(make_context(task_id="mms", try_number=1))
    sandbox.admin.set_faults(http500_rate=0.0)
    with pytest.raises(AirflowFailException, match="resend_unknown=True"):
        task.execute(make_context(task_id="mms", try_number=2))
    assert len(sandbox.admin.messages(kind="mms")) == 1
    assert mms_calls(sandbox) == 1


def test_left_sending_then_resend_unknown(sandbox: Any, make_context: Any, ledger_conn_id: str) -> None:
    context = make_context(task_id="mms", try_number=2)
    message = build_mms_message("Killed", "worker died", [RCPT])
    ledger_for(ledger_conn_id).claim(job_key(context), [ledger_item(message)], owner="earlier try")
    with pytest.raises(AirflowFailException, match="outcome is unknown"):
        SmSendMmsOperator(task_id="mms", subject="Killed", text="worker died", recipients=RCPT).execute(
            context
        )
    assert mms_calls(sandbox) == 0
    task = SmSendMmsOperator(
        task_id="mms", subject="Killed", text="worker died", recipients=RCPT, resend_unknown=True
    )
    assert task.execute(make_context(task_id="mms", try_number=3))["cost"] == "0.3700"
    assert mms_calls(sandbox) == 1


def test_connection_without_mms_account(sandbox: Any, make_context: Any, add_smsend_connection: Any) -> None:
    conn_id = add_smsend_connection("smsend_nomms", mms_id=None, mms_password=None)
    task = SmSendMmsOperator(task_id="mms", subject="S", text="T", recipients=RCPT, smsend_conn_id=conn_id)
    with pytest.raises(AirflowFailException, match="no MMS account"):
        task.execute(make_context(task_id="mms"))
    assert sandbox.admin.stats()["total"] == 0


def test_a_query_without_the_number_column_sends_nothing(
    sandbox: Any, make_context: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm(tmp_path, monkeypatch, "phone TEXT", [(RCPT,)])
    task = SmSendMmsOperator(
        task_id="mms",
        subject="S",
        text="T",
        recipients_sql="SELECT phone FROM customers",
        recipients_conn_id="crm",
    )
    with pytest.raises(
        AirflowFailException, match=r"recipients_sql returns no column 'number' \(columns: \['phone'\]\)"
    ):
        task.execute(make_context(task_id="mms"))
    assert sandbox.admin.stats()["total"] == 0
