"""Shared fixtures of the operator tests: Airflow connections to the sandbox, a ledger, a task Context.

Everything runs over real HTTP against the suite's sandbox (the ``sandbox`` fixture of
``tests/conftest.py``: one gateway for the session, reset before each test; use ``sandbox.admin``
to inspect it: ``stats()["requests"]``, ``messages(kind=...)``, ``userlog()``, ``credit(u_id)``,
``set_faults(...)``). Connections are given to Airflow the way a deployment would, through
``AIRFLOW_CONN_*`` environment variables.

Fixtures
--------
``smsend_conn_id`` (function)
    Sets ``AIRFLOW_CONN_SMSEND_DEFAULT`` to the sandbox (client ``demo``/1001, reseller
    ``reseller``/900, plain-password MMS account ``C00000_001``) and returns ``"smsend_default"``.
``add_smsend_connection`` (function)
    ``add_smsend_connection(conn_id, login=..., password=..., **extras)`` registers another
    sandbox connection with some values changed (e.g. the MD5 MMS account, a wrong password)
    and returns ``conn_id``. An extra set to None is removed.
``ledger_conn_id`` (function)
    Sets ``AIRFLOW_CONN_SMSEND_LEDGER`` to a fresh SQLite file (``ledger_db`` is its path) and
    returns ``"smsend_ledger"`` (the operators' default ledger connection).
``make_context`` (function)
    ``make_context(dag_id=..., task_id=..., run_id=..., map_index=-1, try_number=1, **extra)``
    builds a task Context: ``ti``/``task_instance`` is a :class:`FakeTaskInstance` (dag_id,
    task_id, run_id, map_index, try_number, state, log_url, xcom_push/xcom_pull kept in memory),
    plus ``ds``, ``ds_nodash``, ``ts``, ``logical_date``, ``run_id``, ``dag_run``, ``params``
    and ``dag``; ``extra`` entries are added (or override). Two contexts with the same ids have
    the same :func:`~airflow_provider_smsend.operators.base.job_key`: that is how a test
    plays a retry (``try_number=2``).
``render`` (function)
    ``render(task, context)`` renders the task's template fields like Airflow does before
    ``execute`` and returns the task.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from airflow.sdk import DAG

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import Context

    from airflow_provider_smsend.sandbox.testing import SandboxServer

DEFAULT_DAG_ID = "smsend_test_dag"
DEFAULT_TASK_ID = "smsend_task"
DEFAULT_RUN_ID = "manual__2026-01-15T08:30:00+00:00"
DEFAULT_LOGICAL_DATE = dt.datetime(2026, 1, 15, 8, 30, tzinfo=dt.UTC)


@dataclass
class FakeTaskInstance:
    """The parts of a RuntimeTaskInstance the operators and notifier use."""

    dag_id: str = DEFAULT_DAG_ID
    task_id: str = DEFAULT_TASK_ID
    run_id: str = DEFAULT_RUN_ID
    map_index: int = -1
    try_number: int = 1
    state: str | None = "running"
    base_url: str = "http://localhost:8080"
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def log_url(self) -> str:
        mapped = f"/mapped/{self.map_index}" if self.map_index >= 0 else ""
        return (
            f"{self.base_url}/dags/{self.dag_id}/runs/{quote(self.run_id)}/tasks/{self.task_id}{mapped}"
            f"?try_number={self.try_number}"
        )

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get((task_ids or self.task_id, key))


def build_context(
    *,
    dag_id: str = DEFAULT_DAG_ID,
    task_id: str = DEFAULT_TASK_ID,
    run_id: str = DEFAULT_RUN_ID,
    map_index: int = -1,
    try_number: int = 1,
    state: str | None = "running",
    logical_date: dt.datetime = DEFAULT_LOGICAL_DATE,
    **extra: Any,
) -> Context:
    """Build a task Context (see the module docstring); ``extra`` adds or overrides entries."""
    ti = FakeTaskInstance(dag_id, task_id, run_id, map_index, try_number, state)
    context: dict[str, Any] = {
        "ti": ti,
        "task_instance": ti,
        "ds": logical_date.date().isoformat(),
        "ds_nodash": logical_date.strftime("%Y%m%d"),
        "ts": logical_date.isoformat(),
        "logical_date": logical_date,
        "run_id": run_id,
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id, logical_date=logical_date, state="running"),
        "dag": DAG(dag_id=dag_id, schedule=None),
        "params": {},
    }
    context.update(extra)
    return cast("Context", context)


def _with_changes(uri: str, login: str | None, password: str | None, extras: dict[str, Any]) -> str:
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    for key, value in extras.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    user = quote(login if login is not None else (parts.username or ""), safe="")
    secret = quote(password if password is not None else (parts.password or ""), safe="")
    return f"{parts.scheme}://{user}:{secret}@{parts.hostname}:{parts.port}/?{urlencode(query)}"


@pytest.fixture
def smsend_conn_id(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_DEFAULT", sandbox.connection_uri)
    return "smsend_default"


@pytest.fixture
def add_smsend_connection(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    def add(conn_id: str, *, login: str | None = None, password: str | None = None, **extras: Any) -> str:
        uri = _with_changes(sandbox.connection_uri, login, password, extras)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
        return conn_id

    return add


@pytest.fixture
def ledger_db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger_conn_id(ledger_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_LEDGER", f"sqlite://{ledger_db}")
    return "smsend_ledger"


@pytest.fixture
def make_context() -> Callable[..., Context]:
    return build_context


@pytest.fixture
def render() -> Callable[[Any, Context], Any]:
    def do(task: Any, context: Context) -> Any:
        task.render_template_fields(context)
        return task

    return do
