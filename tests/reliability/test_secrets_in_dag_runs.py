"""Secrets and personal data: example DAGs run with ``airflow dags test`` leak no password and no
full phone number of the campaign's customers; the MMS operator leaks neither password nor ticket.

Like scripts/demo.py: the sandbox in a subprocess, a throw-away AIRFLOW_HOME with SQLite
metadata, connections and variables from environment variables. The metadata database is
migrated once and copied, so the DAG runs go in parallel, each in its own AIRFLOW_HOME. Then
every task log (``airflow dags test`` prints the task logs; AIRFLOW_HOME/logs is searched too),
every XCom value (table ``xcom``), every rendered template field (``rendered_task_instance_fields``)
and the command output are searched.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _shared import ROOT

from airflow_provider_smsend.client.mms import mms_ticket
from airflow_provider_smsend.operators.mms import SmSendMmsOperator
from airflow_provider_smsend.sandbox.testing import AdminClient

# Four Airflow processes on a shared CI machine: minutes under load (about one on an idle 2-core box).
pytestmark = pytest.mark.timeout(900)
AIRFLOW = str(Path(sys.executable).parent / "airflow")
EXAMPLES = ROOT / "dags_examples"
CUSTOMERS_CSV = EXAMPLES / "data" / "customers.csv"
CLIENT_PASSWORD = "Onboarding-Client-Pass-7"
MMS = {
    "id": "C00000_002",
    "password": "mms-md5-pass",
    "rcpt": "+393331234567",
    "subject": "Promo",
    "text": "Nuova collezione",
}
TICKET = mms_ticket(MMS["id"], MMS["rcpt"], MMS["subject"], MMS["text"], MMS["password"])
SECRETS = {
    "connection password": "demo-pass",
    "reseller password": "reseller-pass",
    "MMS password (plain account)": "mms-pass",
    "MMS password (md5 account)": "mms-md5-pass",
    "MMS ticket": TICKET,
    "new client's password (Variable)": CLIENT_PASSWORD,
}


@dataclass
class Run:
    name: str
    dag_id: str
    expect: str
    conf: dict[str, Any] | None = None


RUNS = [
    Run("alerts-failure", "smsend_pipeline_alerts", "failed", {"fail": True}),
    Run("campaign", "smsend_campaign", "success"),
    Run("onboarding", "smsend_reseller_onboarding", "success"),
    Run("mapped", "smsend_mapped_reminders", "success"),  # dynamic task mapping, no logical date used
]


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = (tmp_path_factory.mktemp("sandbox") / "sandbox.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_smsend.sandbox", "--port", "0", "--delivery-delay", "0.2"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"the sandbox did not start: {line!r}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def base_env(url: str, work: Path) -> dict[str, str]:
    port = url.rsplit(":", 1)[1]
    return {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_SMSEND_DEFAULT": (
            f"smsend://demo:demo-pass@127.0.0.1:{port}/?scheme=http&reseller_username=reseller"
            "&reseller_password=reseller-pass&mms_id=C00000_001&mms_password=mms-pass&timeout=10"
        ),
        "AIRFLOW_CONN_SMSEND_MD5": (
            f"smsend://demo:demo-pass@127.0.0.1:{port}/?scheme=http&mms_id={MMS['id']}"
            f"&mms_password={MMS['password']}&mms_auth=md5&timeout=10"
        ),
        "AIRFLOW_CONN_SMSEND_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(work / "ledger.db")}),
        "AIRFLOW_CONN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(work / "warehouse.db")}),
        "AIRFLOW_VAR_SMSEND_NEW_CLIENT_PASSWORD": CLIENT_PASSWORD,
        "SMSEND_EXAMPLE_POLL_SECONDS": "0.5",
    }


def home_env(env: dict[str, str], home: Path, dags_folder: Path) -> dict[str, str]:
    return {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


@pytest.fixture(scope="module")
def dag_runs(sandbox_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Run, Path, str]]:
    """Run every DAG of RUNS; return, by name, the run, its AIRFLOW_HOME and its command output."""
    work = tmp_path_factory.mktemp("dag-runs")
    env = base_env(sandbox_url, work)
    template = work / "template-home"
    template.mkdir()
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"],
        env=home_env(env, template, EXAMPLES),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    procs = {}
    for run in RUNS:
        home = work / run.name
        home.mkdir()
        shutil.copy(template / "airflow.db", home / "airflow.db")
        args = [AIRFLOW, "dags", "test", run.dag_id] + (["--conf", json.dumps(run.conf)] if run.conf else [])
        output = (home / "dags-test.out").open("w")
        procs[run.name] = (
            run,
            home,
            output,
            subprocess.Popen(
                args, env=home_env(env, home, EXAMPLES), stdout=output, stderr=subprocess.STDOUT, text=True
            ),
        )
    results = {}
    deadline = time.monotonic() + 600
    for name, (run, home, output, proc) in procs.items():
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            output.close()
        results[name] = (run, home, (home / "dags-test.out").read_text(errors="replace"))
    return results


def _final_state(output: str) -> str:
    states = re.findall(r"DagRun Finished: .*?, state=(\w+)", output)
    return states[-1] if states else "none"


def _metadata_texts(home: Path) -> dict[str, list[str]]:
    with sqlite3.connect(home / "airflow.db") as db:
        xcoms = [str(v) for (v,) in db.execute("SELECT value FROM xcom")]
        rendered = [
            str(v) for (v,) in db.execute("SELECT rendered_fields FROM rendered_task_instance_fields")
        ]
    return {"xcom": xcoms, "rendered_task_instance_fields": rendered}


def _log_files(home: Path) -> dict[str, str]:
    logs = home / "logs"
    return (
        {str(p): p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()}
        if logs.exists()
        else {}
    )


def test_dag_runs_end_as_expected(dag_runs: dict[str, tuple[Run, Path, str]], sandbox_url: str) -> None:
    for run, _, output in dag_runs.values():
        assert _final_state(output) == run.expect, f"{run.name}: {output[-3000:]}"
    admin = AdminClient(sandbox_url)
    assert any(m.get("sender") == "ALERTS" for m in admin.messages(kind="sms")), "the failure alert was sent"


def test_no_secret_in_logs_xcom_rendered_fields_or_output(dag_runs: dict[str, tuple[Run, Path, str]]) -> None:
    searched: dict[str, str] = {}
    for name, (_, home, output) in dag_runs.items():
        searched[f"{name}: command output (task logs)"] = output
        for path, text in _log_files(home).items():
            searched[f"{name}: {path}"] = text
        metadata = _metadata_texts(home)
        assert metadata["rendered_task_instance_fields"], f"{name}: no rendered fields recorded"
        for table, values in metadata.items():
            searched[f"{name}: table {table}"] = "\n".join(values)
    assert any(metadata_values for metadata_values in searched.values()), "nothing to search"
    leaks = [
        f"{what} in {where}"
        for where, text in searched.items()
        for what, secret in SECRETS.items()
        if secret in text
    ]
    assert leaks == []


def test_mapped_sends_fill_each_recipients_text(
    dag_runs: dict[str, tuple[Run, Path, str]], sandbox_url: str
) -> None:
    """.partial(text=...).expand(recipients=[dict, dict]) and .expand_kwargs(...) under `airflow dags test`:
    each customer got one SMS with their own name (a dict is one recipient, ``recipient`` is defined)."""
    run, _, output = dag_runs["mapped"]
    assert _final_state(output) == "success", output[-3000:]
    texts = {m["rcpt"]: m["text"] for m in AdminClient(sandbox_url).messages(kind="sms")}
    assert texts["+393331112341"].startswith("Ciao Anna,") and texts["+393331112342"].startswith(
        "Ciao Bruno,"
    )
    assert texts["+393331112343"] == "Roma: il negozio apre alle 10."
    assert texts["+393331112344"] == texts["+393331112345"] == "Milano: il negozio apre alle 9."


def test_phone_numbers_masked_in_task_logs(dag_runs: dict[str, tuple[Run, Path, str]]) -> None:
    with CUSTOMERS_CSV.open(newline="", encoding="utf-8") as handle:
        numbers = [row["number"] for row in csv.DictReader(handle) if row["number"].startswith("+39")]
    assert len(numbers) >= 20
    _, home, output = dag_runs["campaign"]
    logs = "\n".join([output, *_log_files(home).values()])
    assert "Sent " in logs and "accepted" in logs, "the send task's log lines are there"
    assert "+****" in logs or re.search(r"\+39\d+\*{4}\d+", logs), "numbers appear masked"
    assert [n for n in numbers if n in logs] == []
    # Nor in the metadata database: the recipients travel through the warehouse (recipients_sql),
    # so no XCom and no rendered template field holds a customer's number or name.
    metadata = "\n".join(v for values in _metadata_texts(home).values() for v in values)
    assert [n for n in numbers if n in metadata] == []
    with CUSTOMERS_CSV.open(newline="", encoding="utf-8") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    assert [n for n in names if re.search(rf"\b{re.escape(n)}\b", metadata)] == []


def test_mms_ticket_and_password_stay_out_of_logs_and_xcom(
    sandbox: Any,
    add_smsend_connection: Any,
    ledger_conn_id: str,
    make_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The MMS operator with an MD5 account, every logger at DEBUG (zeep logs whole envelopes)."""
    conn_id = add_smsend_connection(
        "smsend_md5", mms_id=MMS["id"], mms_password=MMS["password"], mms_auth="md5"
    )
    task = SmSendMmsOperator(
        task_id="mms",
        subject=MMS["subject"],
        text=MMS["text"],
        recipients=[MMS["rcpt"]],
        smsend_conn_id=conn_id,
    )
    context = make_context(task_id="mms")
    with caplog.at_level(logging.DEBUG):
        cost = task.execute(context)
    (sent,) = sandbox.admin.messages(kind="mms")
    assert sent["rcpt"] == MMS["rcpt"] and cost
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert re.search(r"<ticket[^>]*>\*\*\*</ticket>", logged), "the envelope was logged, its ticket redacted"
    kept = json.dumps([logged, cost, context["ti"].xcoms], default=str)
    assert [what for what, secret in SECRETS.items() if secret in kept] == []
