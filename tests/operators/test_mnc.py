"""SmSendMncOperator against the sandbox gateway, over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendTemporaryError
from airflow_provider_smsend.client.once_only import digest
from airflow_provider_smsend.operators.base import job_key, ledger_for
from airflow_provider_smsend.operators.mnc import SmSendMncOperator

pytestmark = pytest.mark.usefixtures("smsend_conn_id", "ledger_conn_id")


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+39333{n:07d}" for n in range(start, start + count)]


def mnc_calls(sandbox: Any) -> int:
    return sandbox.admin.stats()["requests"].get("/sms/mnc.php", 0)


def test_every_template_field_renders(make_context: Any, render: Any) -> None:
    task = SmSendMncOperator(task_id="mnc", numbers=[])
    for name in SmSendMncOperator.template_fields:  # numbers and csv_path exclude each other in __init__
        setattr(task, name, f"{{{{ ds }}}}-{name}")
    render(task, make_context())
    for name in SmSendMncOperator.template_fields:
        assert getattr(task, name) == f"2026-01-15-{name}"


def test_small_list_one_request(sandbox: Any, make_context: Any) -> None:
    context = make_context(task_id="mnc")
    result = SmSendMncOperator(
        task_id="mnc", numbers=["+393331234567", "3331234568", "+39 333 123 4569"]
    ).execute(context)
    assert len(result["request_ids"]) == 1
    assert result["numbers"] == 3 and result["chunks"] == 1 and result["invalid"] == 0
    checked = sandbox.admin.messages(kind="mnc")
    assert sorted(m["rcpt"] for m in checked) == ["+393331234567", "+393331234568", "+393331234569"]
    assert context["ti"].xcom_pull(key="request_ids") == result["request_ids"]


def test_chunking_1200_numbers_three_requests(sandbox: Any, make_context: Any) -> None:
    task = SmSendMncOperator(task_id="mnc", numbers=numbers(1200), chunk_size=500)
    result = task.execute(make_context(task_id="mnc"))
    assert len(result["request_ids"]) == 3 and len(set(result["request_ids"])) == 3
    assert mnc_calls(sandbox) == 3
    assert len(sandbox.admin.messages(kind="mnc")) == 1200
    # a retry of the same task run sends nothing and returns the same ids
    again = task.execute(make_context(task_id="mnc", try_number=2))
    assert again["request_ids"] == result["request_ids"] and again["resumed_chunks"] == 3
    assert mnc_calls(sandbox) == 3


def test_csv_column_and_skipped_invalid(sandbox: Any, make_context: Any, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "name,Mobile\nann,+393331111111\nbob,not-a-number\ncid,+393331111111\ndan,3331111112\neve,\n"
    )
    task = SmSendMncOperator(task_id="mnc", csv_path=str(path), csv_column="mobile", on_invalid="skip")
    result = task.execute(make_context(task_id="mnc"))
    assert (result["numbers"], result["invalid"], result["duplicates"]) == (2, 1, 1)
    assert sorted(m["rcpt"] for m in sandbox.admin.messages(kind="mnc")) == ["+393331111111", "+393331111112"]


def test_invalid_numbers_fail_before_any_request(sandbox: Any, make_context: Any, caplog: Any) -> None:
    task = SmSendMncOperator(task_id="mnc", numbers="+393331234567, 12, +393339876543")
    with pytest.raises(AirflowFailException, match="1 invalid phone number") as raised:
        task.execute(make_context(task_id="mnc"))
    assert "+393339876543" not in str(raised.value)
    assert sandbox.admin.stats()["total"] == 0


def test_missing_csv_column_fails(sandbox: Any, make_context: Any, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("phone\n+393331234567\n")
    with pytest.raises(AirflowFailException, match="no column 'number'"):
        SmSendMncOperator(task_id="mnc", csv_path=path).execute(make_context(task_id="mnc"))


def test_numbers_from_rendered_xcom(sandbox: Any, make_context: Any, render: Any) -> None:
    context = make_context(task_id="mnc")
    context["ti"].xcoms[("extract", "return_value")] = ["+393330000001", "+393330000002"]
    task = SmSendMncOperator(task_id="mnc", numbers="{{ ti.xcom_pull(task_ids='extract') }}")
    render(task, context)
    assert task.execute(context)["numbers"] == 2
    assert len(sandbox.admin.messages(kind="mnc")) == 2


def test_insufficient_credit_fails_without_retry(sandbox: Any, make_context: Any) -> None:
    sandbox.admin.set_credit(1001, "0")
    with pytest.raises(AirflowFailException, match="Insufficient credit"):
        SmSendMncOperator(task_id="mnc", numbers=numbers(3)).execute(make_context(task_id="mnc"))


def test_queue_refusal_is_retryable_and_resent(sandbox: Any, make_context: Any) -> None:
    task = SmSendMncOperator(task_id="mnc", numbers=numbers(4))
    sandbox.admin.set_faults(ko_queue_rate=1.0)
    with pytest.raises(SmSendTemporaryError):
        task.execute(make_context(task_id="mnc"))
    sandbox.admin.set_faults(ko_queue_rate=0.0)
    result = task.execute(make_context(task_id="mnc", try_number=2))
    assert result["sent_chunks"] == 1
    assert len(sandbox.admin.messages(kind="mnc")) == 4


def test_chunk_left_sending_is_reported_not_resent(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    all_numbers = numbers(25)
    context = make_context(task_id="mnc", try_number=2)
    ledger_for(ledger_conn_id).claim(
        job_key(context), [f"mnc:1:{digest(all_numbers[10:20])}"], owner="earlier try"
    )
    result = SmSendMncOperator(task_id="mnc", numbers=all_numbers, chunk_size=10).execute(context)
    assert result["unknown_chunks"] == [1]
    assert len(result["request_ids"]) == 2
    assert mnc_calls(sandbox) == 2
    resent = SmSendMncOperator(
        task_id="mnc", numbers=all_numbers, chunk_size=10, resend_unknown=True
    ).execute(make_context(task_id="mnc", try_number=3))
    assert len(resent["request_ids"]) == 3 and resent["resumed_chunks"] == 2 and resent["sent_chunks"] == 1
    assert mnc_calls(sandbox) == 3


def test_constructor_checks_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SmSendMncOperator(task_id="mnc")
    with pytest.raises(ValueError, match="chunk_size"):
        SmSendMncOperator(task_id="mnc", numbers=["+393331234567"], chunk_size=0)
