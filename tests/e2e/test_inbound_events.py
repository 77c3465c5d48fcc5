"""Inbound SMS start DAG runs under a real triggerer (issue 19, item 1): the opt-out example DAG.

A LocalExecutor deployment (tests/e2e/e2e_deployment.py) parses ``dags_examples/smsend_opt_out.py``:
its asset is watched by :class:`SmSendInboundSmsEventTrigger` (cursor in the deployment's SQLite
warehouse). The test injects SMS through the sandbox's admin API, one at a time, and restarts the
triggerer (SIGTERM, then a new one) between them: one while no SMS is waiting, one with an SMS
arrived while no triggerer ran. Each SMS must start exactly one run, whose task loads it and
records the STOP sender in the suppression list; no triggerer log may hold a sender's full number.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from e2e_deployment import ROOT, _signal_group

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2e_deployment import Deployment

DAG_ID = "smsend_opt_out"
OPT_OUT_DAG = ROOT / "dags_examples" / f"{DAG_ID}.py"
RECEPTION = "+393400000001"
SENDERS = ("+393331230001", "+393471230002", "+393281230003")
TEXTS = ("STOP", "A che ora aprite?", "Cancèllami")


def runs(airflow: Deployment) -> list[dict[str, Any]]:
    return airflow.query("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = %s ORDER BY id", DAG_ID)


def fired_ids(airflow: Deployment) -> list[int]:
    """The message ids of the asset events the watcher fired (the trigger's payload in ``extra``)."""
    ids = []
    for row in airflow.query(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s ORDER BY e.id",
        "smsend_inbound_replies",
    ):
        extra = row["extra"] if isinstance(row["extra"], dict) else json.loads(row["extra"])
        ids.append(int(extra["payload"]["id"]))
    return ids


def cursor_started(warehouse: Path) -> bool:
    try:
        with sqlite3.connect(warehouse) as db:
            return bool(db.execute("SELECT COUNT(*) FROM smsend_inbound_cursor").fetchone()[0])
    except sqlite3.OperationalError:  # no file or no table yet
        return False


def restart_triggerer(airflow: Deployment, number: int, between: Callable[[], None] | None = None) -> None:
    """Stop the triggerer as a deployment stops it (SIGTERM to its group), run ``between``, start a new one."""
    (old,) = [c for c in airflow.components if c.name == "triggerer"]
    _signal_group(old.popen.pid, signal.SIGTERM)
    old.popen.wait(60)
    airflow.components.remove(old)
    old.log.rename(old.log.with_name(f"triggerer-{number}.log"))
    if between is not None:
        between()
    airflow.launch("triggerer", "triggerer", "--skip-serve-logs")


@pytest.mark.e2e
@pytest.mark.timeout(480)
def test_each_inbound_sms_starts_one_run_across_triggerer_restarts(
    deployment: Callable[..., Deployment],
) -> None:
    from airflow_provider_smsend.client import SmSendClient

    started = time.monotonic()
    airflow = deployment("LocalExecutor")
    sandbox = airflow.sandbox
    assert sandbox is not None
    backoffice = SmSendClient(
        base_url=sandbox.url, username="demo", password="demo-pass",
        reseller_username="reseller", reseller_password="reseller-pass",
    )  # fmt: skip
    # The example's default share code: the first one a fresh sandbox assigns.
    assert backoffice.recv_add(1001, RECEPTION, 1) == ["001"]
    shutil.copy(OPT_OUT_DAG, airflow.dags / OPT_OUT_DAG.name)
    airflow.wait_for(
        "the watcher's first poll (its cursor row)", lambda: cursor_started(airflow.warehouse), 180
    )
    # Tasks call the api-server's Execution API: an event fired before it answers would fail its run.
    airflow.wait_for("the api-server", lambda: airflow.api("monitor/health"), 180)
    timings = {"watching": time.monotonic() - started}

    def inject(n: int) -> None:
        sandbox.admin(
            "inbound", {"rcpt": RECEPTION, "sharecode": "001", "sender": SENDERS[n], "text": TEXTS[n]}
        )

    def runs_done(count: int) -> Callable[[], bool]:
        return lambda: len(runs(airflow)) >= count and all(r["state"] == "success" for r in runs(airflow))

    inject(0)
    airflow.wait_for("the run of SMS 1", runs_done(1), 120)
    timings["run 1"] = time.monotonic() - started
    restart_triggerer(airflow, 1, between=lambda: inject(1))  # SMS 2 arrives while no triggerer runs
    airflow.wait_for("the run of SMS 2", runs_done(2), 150)
    timings["run 2"] = time.monotonic() - started
    restart_triggerer(airflow, 2)
    inject(2)
    airflow.wait_for("the run of SMS 3", runs_done(3), 150)
    timings["run 3"] = time.monotonic() - started
    time.sleep(8)  # the watcher polls every second: a repeated event would have started a run by now

    found = runs(airflow)
    assert len(found) == 3, found
    assert {r["run_type"] for r in found} == {"asset_triggered"} and {r["state"] for r in found} == {
        "success"
    }
    injected = [int(m["id"]) for m in sandbox.admin("inbound")["inbound"]]
    assert sorted(fired_ids(airflow)) == sorted(injected) and len(injected) == 3
    with sqlite3.connect(airflow.warehouse) as db:
        suppressed = {row[0] for row in db.execute("SELECT number FROM smsend_suppression")}
        loaded = db.execute("SELECT COUNT(*) FROM smsend_inbound").fetchone()[0]
    assert suppressed == {SENDERS[0], SENDERS[2]} and loaded == 3
    logs = "".join(p.read_text(errors="replace") for p in airflow.logs.glob("triggerer*.log"))
    assert logs.count("Trigger fired event") >= 3, "the triggerer logs each event it fires"
    assert not [s for s in SENDERS if s in logs], "a sender's full number is in a triggerer log"
    every_log = logs + "".join(
        p.read_text(errors="replace")
        for p in [*airflow.logs.glob("*.log"), *(airflow.home / "logs").rglob("*.log")]
        if p.is_file()
    )
    assert not [n for n in (*SENDERS, RECEPTION) if n in every_log], (
        "a full number in a component's or task's log"
    )
    assert not [t for t in TEXTS if f"'{t}'" in logs or f'"{t}"' in logs], (
        "a message text is in a triggerer log"
    )
    print(f"inbound events e2e timings (s): {', '.join(f'{k} {v:.0f}' for k, v in timings.items())}")
