"""Back-office operators against the sandbox gateway, over real HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_smsend.client.errors import SmSendTransportError
from airflow_provider_smsend.client.ledger import ACCEPTED, UNKNOWN
from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.operators.backoffice import (
    SmSendAddReceptionOperator,
    SmSendAssignCreditOperator,
    SmSendCreateClientOperator,
    SmSendCreditCheckOperator,
    SmSendRevokeReceptionOperator,
    SmSendSetClientStatusOperator,
)
from airflow_provider_smsend.operators.base import job_key, ledger_for

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

pytestmark = pytest.mark.usefixtures("smsend_conn_id", "ledger_conn_id")

DEMO = 1001
DEST = "+393331234567"


def _requests(sandbox: Any, path: str) -> int:
    return sandbox.admin.stats()["requests"].get(path, 0)


def _credits(sandbox: Any) -> list[dict[str, Any]]:
    return [e for e in sandbox.admin.userlog() if e["type"] == "credits"]


# ---------------------------------------------------------------- template fields

TEMPLATED: list[tuple[type[BaseOperator], dict[str, Any]]] = [
    (SmSendCreateClientOperator, {"name": "n", "username": "u", "password": "p"}),
    (SmSendAssignCreditOperator, {"u_id": 1, "bill_id": 1}),
    (SmSendSetClientStatusOperator, {"u_id": 1, "active": True}),
    (SmSendAddReceptionOperator, {"u_id": 1, "dest": DEST}),
    (SmSendRevokeReceptionOperator, {"u_id": 1, "dest": DEST, "sharecode": "001"}),
    (SmSendCreditCheckOperator, {}),
]


@pytest.mark.parametrize(("cls", "required"), TEMPLATED, ids=lambda v: getattr(v, "__name__", ""))
def test_every_template_field_renders(
    cls: type[BaseOperator], required: dict[str, Any], make_context: Any, render: Any
) -> None:
    kwargs = {name: f"{{{{ ds }}}}-{name}" for name in cls.template_fields}
    task = cls(task_id="t", **{**required, **kwargs})
    render(task, make_context())
    for name in cls.template_fields:
        assert getattr(task, name) == f"2026-01-15-{name}", name


# ---------------------------------------------------------------- create client


def test_create_client_returns_id_plain_client(sandbox: Any, make_context: Any) -> None:
    task = SmSendCreateClientOperator(
        task_id="create", name="ACME", username="acme", password="acme-secret-1", client_email="a@example.com"
    )
    client_id = task.execute(make_context(task_id="create"))["client_id"]
    accounts = {a["username"]: a for a in sandbox.admin.accounts()}
    assert accounts["acme"]["u_id"] == client_id
    assert accounts["acme"]["is_reseller"] is False
    assert accounts["acme"]["email"] == "a@example.com"


def test_create_client_retry_returns_stored_id(sandbox: Any, make_context: Any) -> None:
    task = SmSendCreateClientOperator(
        task_id="create", name="ACME", username="acme2", password="acme-secret-2"
    )
    first = task.execute(make_context(task_id="create", try_number=1))["client_id"]
    second = task.execute(make_context(task_id="create", try_number=2))["client_id"]
    assert first == second
    assert _requests(sandbox, "/backoffice/client-add.php") == 1


def test_create_client_taken_username_fails_without_retry(sandbox: Any, make_context: Any) -> None:
    task = SmSendCreateClientOperator(task_id="create", name="Dup", username="demo", password="whatever-1")
    with pytest.raises(AirflowFailException, match="username is taken"):
        task.execute(make_context(task_id="create"))


def test_create_client_after_ambiguous_try_explains(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    context = make_context(task_id="create")
    ledger = ledger_for(ledger_conn_id)
    ledger.claim(job_key(context), ["client_add:acme3"], owner="earlier try")
    SmSendHook().client.client_add("ACME", "acme3", "pw-acme-3")  # the earlier try's call went through
    task = SmSendCreateClientOperator(task_id="create", name="ACME", username="acme3", password="pw-acme-3")
    with pytest.raises(AirflowFailException, match="most likely created"):
        task.execute(context)


# ---------------------------------------------------------------- assign credit


def test_assign_credit_success(sandbox: Any, make_context: Any) -> None:
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit=Decimal("12.5"))
    credit_id = task.execute(make_context(task_id="credit"))["credit_id"]
    (entry,) = _credits(sandbox)
    assert entry["id"] == credit_id and entry["credit"] == "12.5000" and entry["u_id"] == DEMO
    assert sandbox.admin.credit(DEMO) == "112.5000"


def test_assign_credit_gateway_refusal_fails(sandbox: Any, make_context: Any, ledger_conn_id: str) -> None:
    context = make_context(task_id="credit")
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=99, credit="1")
    with pytest.raises(AirflowFailException, match="tariff"):
        task.execute(context)
    assert _credits(sandbox) == []
    (entry,) = ledger_for(ledger_conn_id).load(job_key(context)).values()
    assert entry.state == "rejected"


def test_assign_credit_float_refused_before_any_request(sandbox: Any, make_context: Any) -> None:
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit=1.5)  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="never a float"):
        task.execute(make_context(task_id="credit"))
    assert sandbox.admin.stats()["total"] == 0


def test_assign_credit_twice_same_job_assigns_once(sandbox: Any, make_context: Any) -> None:
    """(a) a retried task with the same job key never assigns credit twice."""
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="3,25")
    first = task.execute(make_context(task_id="credit", try_number=1))["credit_id"]
    second = task.execute(make_context(task_id="credit", try_number=2))["credit_id"]
    assert first == second
    assert len(_credits(sandbox)) == 1
    assert sandbox.admin.credit(DEMO) == "103.2500"
    assert _requests(sandbox, "/backoffice/credit-add.php") == 1


def test_a_rerun_with_a_date_ledger_key_assigns_credit_once(sandbox: Any, make_context: Any) -> None:
    """A manual re-run is a new job by default; a ledger_key of the date makes both runs one job."""
    task = SmSendAssignCreditOperator(
        task_id="credit", u_id=DEMO, bill_id=1, credit="2", ledger_key="credit/2026-01-15"
    )
    first = task.execute(make_context(task_id="credit", run_id="scheduled__2026-01-15"))["credit_id"]
    second = task.execute(make_context(task_id="credit", run_id="manual__2026-01-15T09:00"))["credit_id"]
    assert first == second and _requests(sandbox, "/backoffice/credit-add.php") == 1


def test_assign_credit_ambiguous_resolved_through_userlog(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    """(b) an earlier try marked the item and its credit-add went through: the retry finds it."""
    context = make_context(task_id="credit", try_number=2)
    ledger = ledger_for(ledger_conn_id)
    ledger.claim(job_key(context), ["credit_add:1001:1:7.0000"], owner="earlier try")
    credit_id = SmSendHook().client.credit_add(DEMO, 1, "7")
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="7")
    assert task.execute(context)["credit_id"] == credit_id
    assert len(_credits(sandbox)) == 1
    assert _requests(sandbox, "/backoffice/credit-add.php") == 1
    assert ledger.load(job_key(context))["credit_add:1001:1:7.0000"].state == ACCEPTED
    # and a third try reads the ledger only
    assert task.execute(make_context(task_id="credit", try_number=3))["credit_id"] == credit_id
    assert _requests(sandbox, "/backoffice/userlog-get.php") == 1


def test_assign_credit_http500_after_processing_then_retry(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    """The gateway assigns the credit but answers a 500 page: retryable error, then resolution."""
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="2")
    sandbox.admin.set_faults(http500_rate=1.0, record_on_failure=True)
    with pytest.raises(SmSendTransportError) as raised:
        task.execute(make_context(task_id="credit", try_number=1))
    assert raised.value.retryable
    entry = ledger_for(ledger_conn_id).load(job_key(make_context(task_id="credit")))[
        "credit_add:1001:1:2.0000"
    ]
    assert entry.state == UNKNOWN
    sandbox.admin.set_faults(http500_rate=0.0)
    credit_id = task.execute(make_context(task_id="credit", try_number=2))["credit_id"]
    (logged,) = _credits(sandbox)
    assert logged["id"] == credit_id
    assert _requests(sandbox, "/backoffice/credit-add.php") == 1


def test_assign_credit_ambiguous_without_userlog_entry_fails(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    """(c) marked but nothing in the userlog: fail with an actionable message, assign nothing."""
    context = make_context(task_id="credit", try_number=2)
    ledger_for(ledger_conn_id).claim(job_key(context), ["credit_add:1001:1:5.0000"], owner="earlier try")
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="5")
    with pytest.raises(AirflowFailException) as raised:
        task.execute(context)
    message = str(raised.value)
    assert "resend_unknown=True" in message and "userlog-get type=credits" in message
    assert _credits(sandbox) == []
    assert _requests(sandbox, "/backoffice/credit-add.php") == 0
    assert sandbox.admin.credit(DEMO) == "100.0000"


def test_assign_credit_ambiguous_ignores_other_amounts_and_resend_unknown(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    context = make_context(task_id="credit", try_number=2)
    ledger_for(ledger_conn_id).claim(job_key(context), ["credit_add:1001:1:5.0000"], owner="earlier try")
    SmSendHook().client.credit_add(DEMO, 1, "4")  # another amount: not this task's
    with pytest.raises(AirflowFailException):
        SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="5").execute(context)
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="5", resend_unknown=True)
    task.execute(make_context(task_id="credit", try_number=3))
    assert sorted(e["credit"] for e in _credits(sandbox)) == ["4.0000", "5.0000"]


# ---------------------------------------------------------------- client status


def test_set_client_status(sandbox: Any, make_context: Any) -> None:
    assert SmSendSetClientStatusOperator(task_id="s", u_id=DEMO, active="deactivate").execute(
        make_context()
    ) == {"u_id": DEMO, "active": False}
    assert {a["u_id"]: a["active"] for a in sandbox.admin.accounts()}[DEMO] is False
    assert SmSendSetClientStatusOperator(task_id="s", u_id=str(DEMO), active=True).execute(
        make_context()
    ) == {"u_id": DEMO, "active": True}


def test_set_client_status_unknown_client_fails(sandbox: Any, make_context: Any) -> None:
    with pytest.raises(AirflowFailException, match="Client not found"):
        SmSendSetClientStatusOperator(task_id="s", u_id=4242, active=False).execute(make_context())


# ---------------------------------------------------------------- reception


def test_add_reception_and_retry(sandbox: Any, make_context: Any) -> None:
    task = SmSendAddReceptionOperator(task_id="recv", u_id=DEMO, dest="333 123 4567", num=2)
    codes = task.execute(make_context(task_id="recv"))["sharecodes"]
    assert len(codes) == 2
    assert task.execute(make_context(task_id="recv", try_number=2))["sharecodes"] == codes
    assert _requests(sandbox, "/backoffice/recv-add.php") == 1


def test_add_reception_ambiguous_resolved(sandbox: Any, make_context: Any, ledger_conn_id: str) -> None:
    context = make_context(task_id="recv", try_number=2)
    ledger_for(ledger_conn_id).claim(job_key(context), [f"recv_add:1001:{DEST}:1"], owner="earlier try")
    created = SmSendHook().client.recv_add(DEMO, DEST, 1)
    assert (
        SmSendAddReceptionOperator(task_id="recv", u_id=DEMO, dest=DEST).execute(context)["sharecodes"]
        == created
    )
    assert _requests(sandbox, "/backoffice/recv-add.php") == 1


def test_add_reception_unknown_client_fails(sandbox: Any, make_context: Any) -> None:
    with pytest.raises(AirflowFailException, match="Client not found"):
        SmSendAddReceptionOperator(task_id="recv", u_id=4242, dest=DEST).execute(make_context(task_id="recv"))


def test_revoke_reception(sandbox: Any, make_context: Any) -> None:
    (code,) = SmSendHook().client.recv_add(DEMO, DEST, 1)
    SmSendRevokeReceptionOperator(task_id="del", u_id=DEMO, dest=DEST, sharecode=code).execute(make_context())
    with pytest.raises(AirflowFailException, match="share code is not assigned"):
        SmSendRevokeReceptionOperator(task_id="del", u_id=DEMO, dest=DEST, sharecode=code).execute(
            make_context()
        )
    SmSendRevokeReceptionOperator(
        task_id="del", u_id=DEMO, dest=DEST, sharecode=code, missing_ok=True
    ).execute(make_context())
    assert [e["sharecode"] for e in sandbox.admin.userlog() if e["type"] == "recv_del"] == [code]


# ---------------------------------------------------------------- credit check


def test_credit_check_account_and_client(sandbox: Any, make_context: Any) -> None:
    assert SmSendCreditCheckOperator(task_id="c").execute(make_context())["credit"] == "100.0000"
    assert (
        SmSendCreditCheckOperator(task_id="c", u_id=1002, min_credit="5").execute(make_context())["credit"]
        == "5.0000"
    )


def test_credit_check_below_minimum_fail_or_skip(sandbox: Any, make_context: Any) -> None:
    with pytest.raises(AirflowFailException, match="below the required 10"):
        SmSendCreditCheckOperator(task_id="c", u_id=1002, min_credit="10").execute(make_context())
    with pytest.raises(AirflowSkipException):
        SmSendCreditCheckOperator(task_id="c", u_id=1002, min_credit=Decimal("5.0001"), mode="skip").execute(
            make_context()
        )


def test_credit_check_wrong_password_fails(add_smsend_connection: Any, make_context: Any) -> None:
    conn_id = add_smsend_connection("smsend_bad", password="wrong-password")
    with pytest.raises(AirflowFailException, match="SmSendAuthError"):
        SmSendCreditCheckOperator(task_id="c", smsend_conn_id=conn_id).execute(make_context())


# ---------------------------------------------------------------- credit: whose credit is it (issue 15, item 2)


def _age_mark(ledger_db: Any, item: str, seconds: float) -> None:
    """Move an item's `sending` mark ``seconds`` into the past (an attempt long over)."""
    import datetime as dt
    import sqlite3

    when = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat(timespec="microseconds")
    with sqlite3.connect(ledger_db) as db:
        db.execute("UPDATE smsend_send_ledger SET updated_at = ? WHERE item = ?", (when, item))


def test_assign_credit_does_not_adopt_a_credit_another_task_recorded(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    """An earlier try died before its request left; meanwhile another task assigned the same credit
    and recorded it in the ledger: the retry must not take that credit for its own."""
    context = make_context(task_id="credit", try_number=2)
    ledger_for(ledger_conn_id).claim(job_key(context), ["credit_add:1001:1:5.0000"], owner="earlier try")
    other = SmSendAssignCreditOperator(task_id="other_credit", u_id=DEMO, bill_id=1, credit="5")
    other_id = other.execute(make_context(task_id="other_credit"))["credit_id"]
    task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="5")
    with pytest.raises(AirflowFailException, match="NOT done again automatically"):
        task.execute(context)
    assert [e["id"] for e in _credits(sandbox)] == [other_id]  # nothing more assigned
    assert _requests(sandbox, "/backoffice/credit-add.php") == 1


def test_assign_credit_does_not_adopt_a_credit_after_its_attempt_window(
    sandbox: Any, make_context: Any, ledger_conn_id: str, ledger_db: Any
) -> None:
    """A matching credit made (by hand, in the back-office) after the earlier attempt's longest call
    had ended cannot be that attempt's: not adopted, nothing assigned."""
    context = make_context(task_id="credit", try_number=2)
    item = "credit_add:1001:1:5.0000"
    ledger_for(ledger_conn_id).claim(job_key(context), [item], owner="earlier try")
    _age_mark(ledger_db, item, 3600)  # the attempt started an hour ago
    SmSendHook().client.credit_add(DEMO, 1, "5")  # someone else's, now
    with pytest.raises(AirflowFailException, match="resend_unknown=True"):
        SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="5").execute(context)
    assert len(_credits(sandbox)) == 1 and _requests(sandbox, "/backoffice/credit-add.php") == 1


def test_assign_credit_two_unexplained_matches_are_ambiguous(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    context = make_context(task_id="credit", try_number=2)
    ledger_for(ledger_conn_id).claim(job_key(context), ["credit_add:1001:1:5.0000"], owner="earlier try")
    client = SmSendHook().client
    client.credit_add(DEMO, 1, "5")
    client.credit_add(DEMO, 1, "5")
    with pytest.raises(AirflowFailException, match="2 matching credits"):
        SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="5").execute(context)
    assert len(_credits(sandbox)) == 2  # none assigned by the task


def test_assign_credit_two_tries_at_once_assign_one_credit(
    sandbox: Any, make_context: Any, ledger_conn_id: str
) -> None:
    """Two tries of one task instance at once (a worker cut off from the API server keeps running):
    one credit is assigned; each try returns its id or fails without assigning."""
    import threading

    from airflow_provider_smsend.client.errors import SmSendError

    sandbox.admin.set_faults(latency_ms=300)
    barrier = threading.Barrier(2)
    returned: list[int] = []
    failed: list[BaseException] = []

    def attempt(try_number: int) -> None:
        task = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="3")
        context = make_context(task_id="credit", try_number=try_number)
        barrier.wait()
        try:
            returned.append(task.execute(context)["credit_id"])
        except (AirflowFailException, SmSendError) as exc:
            failed.append(exc)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    (credit,) = _credits(sandbox)
    assert set(returned) <= {credit["id"]} and len(returned) + len(failed) == 2
    assert sandbox.admin.credit(DEMO) == "103.0000"
    sandbox.admin.set_faults(latency_ms=0)
    # a later try finds the one credit in the ledger or the log, and assigns nothing
    again = SmSendAssignCreditOperator(task_id="credit", u_id=DEMO, bill_id=1, credit="3")
    assert again.execute(make_context(task_id="credit", try_number=3))["credit_id"] == credit["id"]
    assert _requests(sandbox, "/backoffice/credit-add.php") == 1
