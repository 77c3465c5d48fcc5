"""operators/base.py: the one error policy, the base operator (hook, ledger, act under the policy),
argument checks and the ledger key of a task's sends."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_smsend.client.errors import (
    SmSendAmbiguousOutcomeError,
    SmSendAuthError,
    SmSendClaimedError,
    SmSendInsufficientCreditError,
    SmSendLedgerError,
    SmSendTemporaryError,
    SmSendTimeoutError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.ledger import MemoryLedger
from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.operators import base
from airflow_provider_smsend.operators.base import (
    SmSendBaseOperator,
    airflow_error,
    check_int,
    job_key,
    ledger_for,
    open_ledger,
    smsend_errors,
)
from airflow_provider_smsend.sql.ledger import DbApiLedger
from airflow_provider_smsend.sql.loader import TableLayoutError

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.mark.parametrize(
    "error",
    [
        SmSendTimeoutError("no answer"),
        SmSendTemporaryError("KO Impossibile accodare"),
        SmSendLedgerError("database down"),
        SmSendClaimedError("another try holds it"),
        AirflowException("Airflow's own"),
        RuntimeError("not ours"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_may_pass_later_and_what_is_not_ours_go_to_airflow_as_they_are(error: BaseException) -> None:
    assert airflow_error(error) is error


@pytest.mark.parametrize(
    "error",
    [
        SmSendAuthError("KO Utente non abilitato"),
        SmSendInsufficientCreditError("KO Credito insufficiente"),
        SmSendValidationError("bad number"),
        SmSendAmbiguousOutcomeError("may have been sent"),
        TableLayoutError("the table lacks column dest"),
        ValueError("concurrency must be from 1 to 64"),
        TypeError("concurrency must be an integer"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_retrying_cannot_fix_fails_the_task_without_burning_a_retry(error: BaseException) -> None:
    failed = airflow_error(error, what="reading the batch status of HTTP1")
    assert isinstance(failed, AirflowFailException)
    assert str(failed) == (
        f"Reading the batch status of HTTP1 failed and will not succeed by retrying: {type(error).__name__}: {error}"
    )
    assert str(airflow_error(error)) == f"{type(error).__name__}: {error}"


def test_smsend_errors_translates_at_the_boundary_and_keeps_the_cause() -> None:
    auth = SmSendAuthError("KO Utente non abilitato")
    with pytest.raises(AirflowFailException) as info, smsend_errors():
        raise auth
    assert info.value.__cause__ is auth
    timeout = SmSendTimeoutError("no answer")
    with pytest.raises(SmSendTimeoutError) as raised, smsend_errors():
        raise timeout
    assert raised.value is timeout
    with smsend_errors():
        pass  # nothing raised, nothing changed


def test_check_int() -> None:
    assert check_int(5, name="n", low=1, high=5) == 5 and check_int(10**6, name="n", low=0) == 10**6
    for value in (True, 2.0, "3", None):
        with pytest.raises(TypeError, match=r"n must be an integer, got"):
            check_int(value, name="n", low=1)
    with pytest.raises(ValueError, match="n must be from 1 to 5, got 6"):
        check_int(6, name="n", low=1, high=5)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_int(0, name="n", low=1)


def test_the_ledger_key_is_the_task_run_unless_given(make_context: Callable[..., Any]) -> None:
    context = make_context(dag_id="d", task_id="t", run_id="r", map_index=3, try_number=2)
    assert (
        job_key(context)
        == "d/t/r/3"
        == job_key(make_context(dag_id="d", task_id="t", run_id="r", map_index=3))
    )
    assert job_key({"ti": SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=None)}) == "d/t/r/-1"
    assert job_key(context, " campaign/2026-01-15 ") == "campaign/2026-01-15"
    assert job_key(context, "k" * 255) == "k" * 255


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("", "non-empty text"),
        ("   ", "non-empty text"),
        (42, "non-empty text"),
        ("campaign/{{ ds }}", "was not rendered"),
        ("{% if x %}y{% endif %}", "was not rendered"),
        ("k" * 256, "256 characters long; at most 255"),
    ],
)
def test_a_bad_ledger_key_is_refused(make_context: Callable[..., Any], key: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        job_key(make_context(), key)


def test_the_ledger_lives_on_a_sql_connection(ledger_conn_id: str) -> None:
    ledger = ledger_for(ledger_conn_id)
    try:
        assert isinstance(ledger, DbApiLedger)
        assert ledger.claim("j", ["+393331234567"], owner="A") == {"+393331234567"}
    finally:
        ledger.close()
    again = ledger_for(ledger_conn_id)  # a new connection sees what the first committed
    try:
        assert again.load("j")["+393331234567"].owner == "A"
    finally:
        again.close()


def test_a_missing_ledger_connection_is_explained() -> None:
    with pytest.raises(AirflowFailException, match=r"'no_such_ledger' does not exist.*ledger_conn_id=None"):
        ledger_for("no_such_ledger")


def test_a_ledger_connection_that_is_not_a_sql_database_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", "smsend://user:pass@gateway.test")
    with pytest.raises(AirflowFailException, match="'not_sql' \\(smsend\\) is not a SQL database"):
        ledger_for("not_sql").claim("j", ["+393331234567"], owner="A")


def test_no_ledger_connection_is_a_memory_ledger_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=base.__name__):
        assert isinstance(open_ledger(None, "t"), MemoryLedger)
    assert "may repeat what an earlier try did" in caplog.text


class Recorder(SmSendBaseOperator):
    """A base operator whose act returns or raises what the test gives it."""

    def __init__(self, *, outcome: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome = outcome

    def act(self, context: Any) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_execute_runs_act_under_the_one_policy(make_context: Callable[..., Any]) -> None:
    assert Recorder(task_id="ok", outcome={"sent": 1}).execute(make_context()) == {"sent": 1}
    with pytest.raises(AirflowFailException, match="SmSendAuthError: KO Utente non abilitato"):
        Recorder(task_id="auth", outcome=SmSendAuthError("KO Utente non abilitato")).execute(make_context())
    with pytest.raises(SmSendTimeoutError):
        Recorder(task_id="slow", outcome=SmSendTimeoutError("no answer")).execute(make_context())
    with pytest.raises(NotImplementedError):
        SmSendBaseOperator(task_id="bare").execute(make_context())


def test_the_hook_is_built_on_first_use_for_the_templated_connection(
    monkeypatch: pytest.MonkeyPatch, render: Callable[..., Any], make_context: Callable[..., Any]
) -> None:
    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no connection lookup before the hook is used")

    monkeypatch.setattr(SmSendHook, "get_connection", no_lookup)
    task = Recorder(task_id="t", smsend_conn_id="smsend_{{ params.env }}")
    assert SmSendBaseOperator.template_fields == ("smsend_conn_id",)
    render(task, make_context(params={"env": "prod"}))
    assert task.smsend_conn_id == "smsend_prod"
    assert isinstance(task.hook, SmSendHook) and task.hook.smsend_conn_id == "smsend_prod"
    assert task.hook is task.hook  # one hook per task
    assert Recorder(task_id="d").smsend_conn_id == SmSendHook.default_conn_name


def test_open_ledger_closes_the_ledger_after_the_block(
    ledger_conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[object] = []
    monkeypatch.setattr(DbApiLedger, "close", lambda self: closed.append(self))
    task = Recorder(task_id="t")
    with pytest.raises(RuntimeError), task.open_ledger(ledger_conn_id) as ledger:
        raise RuntimeError("the block failed")
    assert closed == [ledger]


def test_each_try_has_its_own_owner_id(make_context: Callable[..., Any]) -> None:
    first = SmSendBaseOperator.ledger_owner(make_context(try_number=2))
    second = SmSendBaseOperator.ledger_owner(make_context(try_number=2))
    assert first != second and first.startswith("try 2 ") and second.startswith("try 2 ")
