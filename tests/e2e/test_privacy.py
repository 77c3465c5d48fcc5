"""Personal data in a real Airflow 3 deployment (issue 17, item 6; README, "Reliability").

One LocalExecutor deployment (PostgreSQL metadata database, api-server, scheduler, dag-processor,
triggerer; the smSend sandbox as the gateway) runs the campaign DAG (the assertions every
executor shares, :func:`e2e_deployment.assert_campaign_succeeded`) and then the reply workflow
DAG for one of the campaign's customers, whose reply the triggerer waits for, deferred. Then
every file under ``AIRFLOW_HOME/logs`` (task, trigger and dag-processor logs), every component's
own output (``logs/*.log``: api-server, scheduler, dag-processor, triggerer, sandbox) and every
row of every table of the metadata database (``xcom``, ``rendered_task_instance_fields``,
``trigger``, ``task_instance``, ``dag_run`` with its conf, ``log``, ``asset_event`` ... each row
as PostgreSQL's text of the whole row) are searched for each customer's number (the CSV's and
the warehouse's ``campaign_recipients``), in full or as its national digits, each customer's
name (a whole word) and the reply's text. Masked numbers (``+39333****012``) are allowed.

This test also carries the campaign assertions that used to be a test of their own, so the
suite boots one LocalExecutor deployment for both.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2e_deployment import CUSTOMERS_CSV, REPLY_DAG, assert_campaign_succeeded, http_json

from airflow_provider_smsend.client.numbers import mask_number

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from e2e_deployment import Deployment

REPLY_DAG_ID = REPLY_DAG.stem
#: The account's own reception number (not a customer's) and its owner in the sandbox.
RECEPTION = "+393400000001"
CLIENT_ID = 1001
RESELLER = {"smsusername": "reseller", "smspassword": "reseller-pass"}
#: The customer's reply: ASCII, so a JSON-escaped copy would still be found.
REPLY_TEXT = "SI grazie, ci vediamo alle 15 in via Verdi 12"
#: Tables of Airflow's metadata that must exist and be searched (every other table is too).
REQUIRED_TABLES = ("xcom", "rendered_task_instance_fields", "trigger", "task_instance", "dag_run", "log")
#: The DAG files as their author wrote them (source and serialized form), not searched: an example's
#: default param may be a customer's number (the reply DAG's is Paolo's) and the mapped-reminders
#: example names Anna and Bruno in its code; what runs leave is in every other table.
DAG_SOURCE_TABLES = ("dag_code", "serialized_dag")


@dataclass(frozen=True)
class Needle:
    """A value that must not be found; ``shown`` is what a failure may print of it."""

    kind: str
    pattern: re.Pattern[str]
    shown: str


def needles(customers: Iterable[tuple[str, str]], texts: Iterable[str]) -> list[Needle]:
    """A number in full or as its national digits (any prefix or format around them), a name as a
    whole word, a text as it is."""
    found: list[Needle] = []
    for number, name in customers:
        digits = re.sub(r"\D", "", number)
        national = digits[2:] if digits.startswith("39") else digits
        # an invalid entry ("+39 12") is searched as written: its few digits are anywhere
        value = national if len(national) >= 7 else number
        found.append(Needle("number", re.compile(re.escape(value)), mask_number(number)))
        found.append(Needle("name", re.compile(rf"\b{re.escape(name)}\b"), name[:1] + "***"))
    for text in texts:
        found.append(Needle("text", re.compile(re.escape(text)), f"{text[:3]}... ({len(text)} characters)"))
    return found


def search(where: str, text: str, looking_for: list[Needle]) -> list[str]:
    """Findings in ``text``: where, what kind, the value masked, and the context masked."""
    hits = []
    for needle in looking_for:
        match = needle.pattern.search(text)
        if match:
            hits.append(f"{where}: {needle.kind} {needle.shown}")
    return hits


def csv_customers() -> list[tuple[str, str]]:
    with CUSTOMERS_CSV.open(newline="", encoding="utf-8") as handle:
        return [(row["number"], row["name"]) for row in csv.DictReader(handle)]


def warehouse_customers(deployment: Deployment) -> list[tuple[str, str]]:
    with sqlite3.connect(deployment.warehouse) as warehouse:
        return [
            (str(n), str(name))
            for n, name in warehouse.execute("SELECT number, name FROM campaign_recipients")
        ]


def log_files(deployment: Deployment) -> list[Path]:
    """Every file under AIRFLOW_HOME/logs and every component's output."""
    roots = (deployment.home / "logs", deployment.logs)
    return sorted(path for root in roots for path in root.rglob("*") if path.is_file())


def search_deployment(
    deployment: Deployment, looking_for: list[Needle], snapshots: dict[str, str]
) -> tuple[list[str], dict[str, int]]:
    """Search every log file, every metadata table and the ``snapshots`` taken while runs were going
    on (rows deleted since: a trigger's); returns the findings and the coverage."""
    findings: list[str] = []
    for where, text in snapshots.items():
        findings += search(where, text, looking_for)
    coverage = {"files": 0, "bytes": 0, "tables": 0, "rows": 0}
    for path in log_files(deployment):
        text = path.read_text(errors="replace")
        coverage["files"] += 1
        coverage["bytes"] += len(text)
        findings += search(str(path.relative_to(deployment.workdir)), text, looking_for)
    tables = [
        row["table_name"]
        for row in deployment.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
    ]
    missing = [table for table in REQUIRED_TABLES if table not in tables]
    assert not missing, f"metadata tables not found: {missing}"
    for table in tables:
        if table in DAG_SOURCE_TABLES:
            continue
        rows = deployment.query(f'SELECT t::text AS row FROM "{table}" t')
        coverage["tables"] += 1
        coverage["rows"] += len(rows)
        findings += search(f"table {table}", "\n".join(row["row"] for row in rows), looking_for)
    return findings, coverage


# ------------------------------------------------------------------------------ the reply workflow
def add_reception(deployment: Deployment) -> str:
    """Give the demo account the reception number; returns its share code."""
    assert deployment.sandbox is not None
    body = urllib.parse.urlencode({**RESELLER, "u_id": CLIENT_ID, "dest": RECEPTION, "num": 1}).encode()
    with urllib.request.urlopen(
        f"{deployment.sandbox.url}/backoffice/recv-add.php", body, timeout=10
    ) as answer:
        text = answer.read().decode()
    assert text.startswith("OK "), text
    return text.split()[1].split(",")[0]


def scheduler_handled_exit(deployment: Deployment, dag_id: str, run_id: str, task_id: str) -> bool:
    """The scheduler processed the deferring try's exit (see :meth:`Deployment.scheduler_saw_exit`)."""
    needle = (
        "Received executor event with state success for task instance TaskInstanceKey("
        f"dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}'"
    )
    return needle in (deployment.logs / "scheduler.log").read_text(errors="replace")


def add_customers(deployment: Deployment) -> list[tuple[int, str, str]]:
    """The warehouse table ``customers`` the reply DAG reads: the campaign's recipients, by id."""
    with sqlite3.connect(deployment.warehouse) as warehouse:
        warehouse.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, number TEXT, name TEXT)")
        warehouse.execute(
            "INSERT INTO customers (number, name) SELECT number, name FROM campaign_recipients ORDER BY number"
        )
        return [(int(i), str(n), str(name)) for i, n, name in warehouse.execute("SELECT * FROM customers")]


def run_reply_workflow(
    deployment: Deployment, customer: tuple[int, str, str], snapshots: dict[str, str], timeout: float = 120
) -> dict[str, str]:
    """Trigger the reply DAG for the ``customer`` (id, number, name) by its id, reply once its sensor
    waits in the triggerer (the trigger's row, deleted once it fired, copied into ``snapshots``
    first); the final state of each task."""
    assert deployment.sandbox is not None
    customer_id, number, _ = customer
    sharecode = add_reception(deployment)
    deployment.wait_for(
        f"the DAG {REPLY_DAG_ID!r} to be parsed",
        lambda: deployment.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", REPLY_DAG_ID),
        120,
    )
    conf = {"customer_id": customer_id, "reception_number": RECEPTION, "sharecode": sharecode}
    run_id = deployment.api(f"dags/{REPLY_DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})[
        "dag_run_id"
    ]
    replied_at: float | None = None
    deadline = time.monotonic() + timeout
    while True:
        deployment.check_alive()
        [sensor] = deployment.query(
            "SELECT ti.state, t.triggerer_id FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'wait_reply'",
            REPLY_DAG_ID,
            run_id,
        ) or [{"state": None, "triggerer_id": None}]
        if (
            replied_at is None
            and sensor["state"] == "deferred"
            and sensor["triggerer_id"] is not None
            and scheduler_handled_exit(deployment, REPLY_DAG_ID, run_id, "wait_reply")
        ):
            rows = deployment.query("SELECT t::text AS row FROM trigger t")
            snapshots["table trigger, while the reply sensor was deferred"] = "\n".join(
                r["row"] for r in rows
            )
            http_json(
                f"{deployment.sandbox.url}/_sandbox/inbound",
                {"rcpt": RECEPTION, "sharecode": sharecode, "sender": number, "text": REPLY_TEXT},
            )
            replied_at = time.monotonic()
        [run] = deployment.query(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", REPLY_DAG_ID, run_id
        )
        if run["state"] in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            deployment.fail(f"the reply run {run_id!r} did not end in {timeout:.0f} s (sensor {sensor})")
        time.sleep(0.5)
    assert replied_at is not None, "the reply run ended before its sensor waited in the triggerer"
    rows = deployment.query(
        "SELECT task_id, state FROM task_instance WHERE dag_id = %s AND run_id = %s", REPLY_DAG_ID, run_id
    )
    return {row["task_id"]: row["state"] for row in rows}


@pytest.mark.e2e
@pytest.mark.timeout(420)
def test_campaign_and_reply_leave_no_personal_data(deployment: Callable[..., Deployment]) -> None:
    airflow = deployment("LocalExecutor")
    run = airflow.run_campaign()
    print(f"campaign run {run.run_id}: {run.state} in {run.seconds:.0f} s; states {run.states}")
    assert_campaign_succeeded(airflow, run)

    customers = warehouse_customers(airflow)
    assert customers, "the campaign wrote no campaign_recipients"
    started = time.monotonic()
    snapshots: dict[str, str] = {}
    tasks = run_reply_workflow(airflow, add_customers(airflow)[0], snapshots)
    airflow.timings["reply run"] = time.monotonic() - started
    assert tasks == {
        "ask": "success",
        "wait_reply": "success",
        "decide": "success",
        "confirm": "success",
        "cancel": "skipped",
    }, tasks

    started = time.monotonic()
    looking_for = needles({*csv_customers(), *customers}, [REPLY_TEXT])
    findings, coverage = search_deployment(airflow, looking_for, snapshots)
    assert snapshots and all(snapshots.values()), "the trigger table was empty while the sensor waited"
    airflow.timings["search"] = time.monotonic() - started
    print(f"privacy search: {len(looking_for)} values in {coverage}")
    assert coverage["files"] >= 20 and coverage["rows"] > 0, coverage
    assert findings == [], "personal data found:\n" + "\n".join(findings)
