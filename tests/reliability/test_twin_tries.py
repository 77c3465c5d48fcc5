"""Two tries of one task instance running at once send each recipient at most once (issue 15, item 2).

Airflow 3 can run two tries of one task instance at the same time (a worker cut off from the API
server keeps running after its heartbeat lapsed, and the scheduler starts the next try). Both use
the same ledger job key; the ledger's claims let only one of them send to each recipient. Tried in
threads and in processes, on SQLite, PostgreSQL and MariaDB ledgers; the sandbox's own record is
the judge. No raw driver error may reach the user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from smsend_test_support.operator_fixtures import build_context
from smsend_test_support.services import require_service

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.operators.sms import SmSendSmsOperator

RECIPIENTS = [f"+39348{i:06d}1" for i in range(300)]
CONCURRENCY = 8
RAW_DRIVER_ERRORS = ("UniqueViolation", "IntegrityError", "OperationalError", "database is locked")

TRY = textwrap.dedent(
    f"""
    import json, os, sys
    from airflow_provider_smsend.operators.sms import SmSendSmsOperator

    class TI:
        dag_id, task_id, run_id, map_index = "campaign", "send", "twins", -1
        try_number = int(os.environ["TRY_NUMBER"])
        def xcom_push(self, key, value):
            pass

    op = SmSendSmsOperator(task_id="send", recipients=json.loads(os.environ["RECIPIENTS"]), text="x",
                           sender="ACME", concurrency={CONCURRENCY}, fail_on="all",
                           ledger_table=os.environ["LEDGER_TABLE"])
    sys.stdin.readline()  # both tries start together
    result = op.execute({{"ti": TI()}})
    print(json.dumps(result["totals"]), flush=True)
    """
)


def _probe_postgres() -> None:
    import psycopg

    psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()


def _probe_mariadb() -> None:
    import MySQLdb

    MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db="test", connect_timeout=3).close()


def _drop(kind: str, uri: str, table: str) -> None:
    if kind == "postgres":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    elif kind == "mysql":
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db="test")
        try:
            conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            conn.close()


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def twin_ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """A ledger connection (``smsend_ledger``) of each kind and a fresh table name; dropped after."""
    kind = request.param
    if kind == "sqlite":
        uri = f"sqlite://{tmp_path / 'ledger.db'}"
    elif kind == "postgres":
        require_service("PostgreSQL on 127.0.0.1:5432", _probe_postgres)
        uri = "postgres://postgres@127.0.0.1:5432/test"
    else:
        require_service("MariaDB on 127.0.0.1:3306", _probe_mariadb)
        uri = "mysql://root@127.0.0.1:3306/test"
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_LEDGER", uri)
    table = f"smsend_twins_{uuid.uuid4().hex[:10]}"
    yield kind, table
    _drop(kind, uri, table)


def _next_try(table: str, try_number: int) -> dict[str, Any]:
    op = SmSendSmsOperator(
        task_id="send", recipients=RECIPIENTS, text="x", sender="ACME", fail_on="all", ledger_table=table
    )
    return op.execute(build_context(dag_id="campaign", task_id="send", run_id="twins", try_number=try_number))


def _assert_once_then_complete(sandbox: Any, table: str) -> None:
    received = sandbox.admin.counts(kind="sms")
    assert received and max(received.values()) == 1, "no recipient may get the message twice"
    # A third try, alone, finds every recipient accepted or sends the rest: all 300, each once.
    after = _next_try(table, 3)
    received = sandbox.admin.counts(kind="sms")
    assert max(received.values()) == 1 and set(received) == set(RECIPIENTS)
    assert after["totals"]["accepted"] == len(RECIPIENTS), after["totals"]


def test_two_tries_in_threads_send_each_recipient_once(
    sandbox: Any, smsend_conn_id: str, twin_ledger: Any
) -> None:
    _, table = twin_ledger
    sandbox.admin.set_faults(latency_ms=15)
    barrier = threading.Barrier(2)
    results: dict[int, dict[str, Any]] = {}
    errors: dict[int, BaseException] = {}

    def run(try_number: int) -> None:
        op = SmSendSmsOperator(
            task_id="send", recipients=RECIPIENTS, text="x", sender="ACME", concurrency=CONCURRENCY,
            fail_on="all", ledger_table=table,
        )  # fmt: skip
        context = build_context(dag_id="campaign", task_id="send", run_id="twins", try_number=try_number)
        barrier.wait()
        try:
            results[try_number] = op.execute(context)
        except BaseException as exc:
            errors[try_number] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for exc in errors.values():  # a try may fail (everything was the other's), never on a raw driver error
        assert isinstance(exc, AirflowFailException | SmSendError), repr(exc)
        assert not any(name in repr(exc) for name in RAW_DRIVER_ERRORS), repr(exc)
    sent_by = [r["totals"]["accepted"] for r in results.values()]
    print(f"\naccepted by each try: {sent_by}; failed tries: {len(errors)}")
    sandbox.admin.set_faults(latency_ms=0)
    _assert_once_then_complete(sandbox, table)


def test_two_tries_in_processes_send_each_recipient_once(
    sandbox: Any, smsend_conn_id: str, twin_ledger: Any
) -> None:
    _, table = twin_ledger
    sandbox.admin.set_faults(latency_ms=15)
    env = {**os.environ, "RECIPIENTS": json.dumps(RECIPIENTS), "LEDGER_TABLE": table}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRY],
            env={**env, "TRY_NUMBER": str(n)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    try:
        for proc in procs:  # release both once both have imported everything
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert not any(name in err for name in RAW_DRIVER_ERRORS), err[-2000:]
        print(f"\ntry exit {proc.returncode}: {out.strip()[-200:]}")
    sandbox.admin.set_faults(latency_ms=0)
    _assert_once_then_complete(sandbox, table)
