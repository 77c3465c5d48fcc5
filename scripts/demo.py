"""The offline demo: the example DAGs against the local sandbox gateway, with embedded SQLite.

Run by ``make demo``. It starts the sandbox on a free port, builds a throw-away Airflow home under
``.demo/`` (SQLite metadata, connections and variables from environment variables), runs every
example DAG with ``airflow dags test`` in the order a reseller's day would have them, prints a
short summary and stops the sandbox. Nothing leaves this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
VENV_BIN = Path(sys.executable).parent
CUSTOMER = "+393471239876"
RECEPTION = "+393400000001"
ONCALL = "+393331112233"
CONSENT_OPT_OUT = "+393336433012"  # Anna, of dags_examples/data/customers.csv: opted out earlier
OPT_OUT = "+393489990001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin(url: str, route: str, body: dict | None = None, method: str | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}/_sandbox/{route}",
        data=data,
        method=method or ("POST" if data else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


class Demo:
    def __init__(self) -> None:
        shutil.rmtree(WORK, ignore_errors=True)
        (WORK / "logs").mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.warehouse = WORK / "warehouse.db"
        self.ledger = WORK / "ledger.db"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(WORK / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_SMSEND_DEFAULT": (
                f"smsend://demo:demo-pass@127.0.0.1:{self.port}/?scheme=http"
                "&reseller_username=reseller&reseller_password=reseller-pass&timeout=10"
                "&mms_id=C00000_001&mms_password=mms-pass"
            ),
            "AIRFLOW_CONN_SMSEND_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(self.ledger)}),
            "AIRFLOW_CONN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(self.warehouse)}),
            "AIRFLOW_VAR_SMSEND_NEW_CLIENT_PASSWORD": "Demo-Client-Pass-1",
            "SMSEND_EXAMPLE_POLL_SECONDS": "1",
        }
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.results: dict[str, str] = {}

    def step(self, text: str) -> None:
        print(f"==> {text}", flush=True)

    def start_sandbox(self) -> None:
        self.step(f"starting the sandbox gateway on {self.url}")
        log = open(WORK / "logs" / "sandbox.log", "wb")  # noqa: SIM115 - closed with the process
        self.sandbox = subprocess.Popen(
            [
                str(VENV_BIN / "python"),
                "-m",
                "airflow_provider_smsend.sandbox",
                "--port",
                str(self.port),
                "--delivery-delay",
                "2",
                "--seed",
                "7",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                admin(self.url, "health")
                return
            except OSError:
                if self.sandbox.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start; see .demo/logs/sandbox.log") from None
                time.sleep(0.2)

    def stop_sandbox(self) -> None:
        if self.sandbox is not None and self.sandbox.poll() is None:
            self.sandbox.terminate()
            try:
                self.sandbox.wait(10)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()

    def airflow(self, *args: str, log_name: str) -> subprocess.CompletedProcess[str]:
        with open(WORK / "logs" / f"{log_name}.log", "w") as log:
            return subprocess.run(
                [str(VENV_BIN / "airflow"), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=300,
                check=False,
            )

    def dag_test(
        self,
        dag_id: str,
        *,
        date: str | None = None,
        conf: dict | None = None,
        log_name: str | None = None,
        expect: str = "success",
    ) -> str:
        name = log_name or dag_id
        args = ["dags", "test", dag_id]
        if date:
            args.append(date)
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        started = time.monotonic()
        self.airflow(*args, log_name=name)
        text = (WORK / "logs" / f"{name}.log").read_text(errors="replace")
        finished = re.findall(r"DagRun Finished: .*?, state=(\w+)", text)
        state = finished[-1] if finished else "unknown"
        mark = "ok" if state == expect else "UNEXPECTED"
        self.step(
            f"{name}: run {state} in {time.monotonic() - started:.0f} s ({mark}; log .demo/logs/{name}.log)"
        )
        self.results[name] = mark
        return text

    def manual_run(self, dag_id: str, *, log_name: str) -> None:
        """One run with no logical date, as the REST API or ``airflow dags trigger`` make them:
        ``DAG.test(logical_date=None)`` (``airflow dags test`` always sets one)."""
        script = (
            "import os, sys\n"
            "from airflow.dag_processing.dagbag import DagBag\n"
            "bag = DagBag(dag_folder=os.environ['AIRFLOW__CORE__DAGS_FOLDER'])\n"
            f"run = bag.get_dag({dag_id!r}).test(logical_date=None)\n"
            "print(f'Manual run finished: logical_date={run.logical_date}, state={run.state}')\n"
        )
        started = time.monotonic()
        with open(WORK / "logs" / f"{log_name}.log", "w") as log:
            subprocess.run(
                [str(VENV_BIN / "python"), "-c", script], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                text=True, timeout=300, check=False,
            )  # fmt: skip
        text = (WORK / "logs" / f"{log_name}.log").read_text(errors="replace")
        found = re.findall(r"Manual run finished: logical_date=(\S+), state=(\S+)", text)
        ok = bool(found) and found[-1] == ("None", "success")
        mark = "ok" if ok else "UNEXPECTED"
        self.step(
            f"{log_name}: run without a logical date {found[-1][1] if found else 'unknown'} in "
            f"{time.monotonic() - started:.0f} s ({mark}; log .demo/logs/{log_name}.log)"
        )
        self.results[log_name] = mark

    def suppress(self, number: str, reason: str, *, log_name: str) -> None:
        """Add ``number`` to the warehouse's suppression list as a user would: ``SuppressionList`` over
        the ``warehouse`` connection's own ``SqliteHook``, in a process with the demo's environment."""
        script = (
            "import sys\n"
            "from datetime import UTC, datetime\n"
            "from airflow.providers.sqlite.hooks.sqlite import SqliteHook\n"
            "from airflow_provider_smsend.sql.suppression import SuppressionList\n"
            "optouts = SuppressionList(SqliteHook(sqlite_conn_id='warehouse'))\n"
            "optouts.ensure()\n"
            "optouts.add([(sys.argv[1], sys.argv[2])], since=datetime.now(UTC))\n"
            "print('Suppression list updated')\n"
        )
        with open(WORK / "logs" / f"{log_name}.log", "w") as log:
            done = subprocess.run(
                [str(VENV_BIN / "python"), "-c", script, number, reason], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, text=True, timeout=120, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"Could not update the suppression list (log .demo/logs/{log_name}.log)")

    def seed_audience(self, size: int = 40) -> None:
        """The sharded campaign's audience in the warehouse: ``size`` customers with an integer id."""
        with sqlite3.connect(self.warehouse) as db:
            db.execute("DROP TABLE IF EXISTS campaign_audience")
            db.execute("CREATE TABLE campaign_audience (id INTEGER PRIMARY KEY, number TEXT, name TEXT)")
            db.executemany(
                "INSERT INTO campaign_audience VALUES (?, ?, ?)",
                [(i, f"+39347555{1000 + i:04d}", f"Cliente {i}") for i in range(1, size + 1)],
            )

    def seed_customer(self) -> int:
        """The reply workflow's customer in the warehouse table ``customers``; returns its id."""
        with sqlite3.connect(self.warehouse) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, number TEXT, name TEXT)"
            )
            db.execute("INSERT OR REPLACE INTO customers VALUES (1, ?, 'Cliente demo')", (CUSTOMER,))
        return 1

    def inject_reply_when_asked(self, sharecode: str) -> threading.Thread:
        def worker() -> None:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                messages = admin(self.url, f"messages?rcpt=%2B{CUSTOMER[1:]}")["messages"]  # type: ignore[index]
                if any("Confermi" in str(m.get("text")) for m in messages):
                    time.sleep(2)  # the customer takes a moment to answer
                    admin(
                        self.url,
                        "inbound",
                        {
                            "rcpt": RECEPTION,
                            "sharecode": sharecode,
                            "sender": CUSTOMER,
                            "text": "Si, grazie!",
                        },
                    )
                    return
                time.sleep(0.5)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        return thread

    def opt_out(self, sharecode: str) -> None:
        """The opt-out DAG's task on two replies, STOP and a question (a run without asset events:
        it loads every SMS listed); the STOP sender must end up in the suppression list, the other not."""
        self.env["SMSEND_OPT_OUT_RECEPTION"] = RECEPTION
        self.env["SMSEND_OPT_OUT_SHARECODE"] = sharecode
        for sender, text in ((OPT_OUT, "Stop"), (ONCALL, "A che ora aprite?")):
            admin(
                self.url,
                "inbound",
                {"rcpt": RECEPTION, "sharecode": sharecode, "sender": sender, "text": text},
            )
        self.dag_test("smsend_opt_out")
        with sqlite3.connect(self.warehouse) as db:
            suppressed = [row[0] for row in db.execute("SELECT number FROM smsend_suppression")]
            loaded = db.execute("SELECT COUNT(*) FROM smsend_inbound").fetchone()[0]
        if OPT_OUT not in suppressed or ONCALL in suppressed:
            self.results["smsend_opt_out"] = "UNEXPECTED"
        self.step(
            f"opt-outs: {len(suppressed)} number(s) in smsend_suppression, {loaded} received SMS in smsend_inbound"
        )

    def consent_campaign(self) -> None:
        """The consent campaign twice (issue 19): one customer already opted out (suppressed); the
        window opens 2 minutes after the step starts (the first run defers, then sends); the second run finds
        everyone texted this week (capped) and sends nothing. No SMS may leave before the window."""
        import ast
        from zoneinfo import ZoneInfo

        rome = ZoneInfo("Europe/Rome")
        self.suppress(CONSENT_OPT_OUT, "STOP reply", log_name="consent-opt-out")
        opens = datetime.now(rome) + timedelta(seconds=120)  # airflow dags test takes a while to start
        self.env["SMSEND_WINDOW_START"] = opens.strftime("%H:%M:%S")
        self.env["SMSEND_WINDOW_END"] = (opens + timedelta(hours=3)).strftime("%H:%M:%S")
        self.env["SMSEND_WINDOW_DAYS"] = "mon-sun"
        found, deferred = [], False
        for name in ("consent-first-run", "consent-second-run"):
            text = self.dag_test("smsend_consent_campaign", log_name=name)
            summary = re.findall(r"Consent campaign summary: (\{.*?\})", text)
            found.append(ast.literal_eval(summary[-1]) if summary else {})
            if name == "consent-first-run":
                deferred = "deferring until it opens" in text
        early = [
            m
            for m in admin(self.url, "messages?kind=sms")["messages"]  # type: ignore[index]
            if "questa settimana" in str(m.get("text"))
            and datetime.fromisoformat(str(m["created_at"])) < opens.replace(microsecond=0)
        ]
        first, second = found
        ok = (
            first.get("accepted", 0) > 0
            and first.get("suppressed") == 1
            and second.get("accepted") == 0
            and second.get("capped") == first.get("accepted")
            and not early
        )
        if not ok:
            self.results["consent-campaign"] = "UNEXPECTED"
        self.step(
            f"consent campaign: first run {first} ({'deferred to the window' if deferred else 'window already open'}), "
            f"second run {second}; {len(early)} SMS before the window opened ({'ok' if ok else 'UNEXPECTED'})"
        )

    def sharecode(self) -> str:
        from airflow_provider_smsend.client import SmSendClient

        client = SmSendClient(
            base_url=self.url,
            username="demo",
            password="demo-pass",
            reseller_username="reseller",
            reseller_password="reseller-pass",
        )
        entries = [e for e in client.userlog_get("recv_add", u_id=1001) if e.dest == RECEPTION]
        if not entries:
            raise RuntimeError("the onboarding DAG opened no reception number")
        return str(entries[-1].sharecode)

    def run(self) -> int:
        started = time.monotonic()
        self.start_sandbox()
        try:
            self.step("creating the Airflow metadata database (SQLite)")
            if self.airflow("db", "migrate", log_name="db-migrate").returncode != 0:
                raise RuntimeError("airflow db migrate failed; see .demo/logs/db-migrate.log")
            today = time.strftime("%Y-%m-%d")
            tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
            self.dag_test("smsend_reseller_billing", date=today, log_name="billing-baseline")
            self.dag_test("smsend_reseller_onboarding")
            # the load emits an asset event for its table; the report DAG reads it (issue 18, item 6)
            self.dag_test("smsend_warehouse_load", date=today)
            self.dag_test("smsend_warehouse_report")
            self.dag_test("smsend_pipeline_alerts", log_name="alerts-success")
            self.dag_test(
                "smsend_pipeline_alerts", conf={"fail": True}, log_name="alerts-failure", expect="failed"
            )
            self.dag_test("smsend_campaign")
            self.manual_run("smsend_mapped_reminders", log_name="mapped-manual-run")
            self.seed_audience()
            self.dag_test("smsend_campaign_sharded")
            self.consent_campaign()
            sharecode = self.sharecode()
            replier = self.inject_reply_when_asked(sharecode)
            reply_log = self.dag_test(
                "smsend_reply_workflow",
                conf={
                    "customer_id": self.seed_customer(),
                    "reception_number": RECEPTION,
                    "sharecode": sharecode,
                },
            )
            replier.join(5)
            self.opt_out(sharecode)
            billing_log = self.dag_test(
                "smsend_reseller_billing", date=tomorrow, log_name="billing-reconcile"
            )
            self.dag_test(
                "smsend_mms_offer"
            )  # after the reconciliation: an MMS spends the demo account's credit
            self.summary(reply_log, billing_log, time.monotonic() - started)
        finally:
            self.stop_sandbox()
        return 0 if all(v == "ok" for v in self.results.values()) else 1

    def summary(self, reply_log: str, billing_log: str, seconds: float) -> None:
        messages = admin(self.url, "messages?kind=sms")["messages"]  # type: ignore[index]
        by_status: dict[str, int] = {}
        for message in messages:
            by_status[str(message.get("notify_text") or message.get("status"))] = (
                by_status.get(str(message.get("notify_text") or message.get("status")), 0) + 1
            )
        alerts = [m for m in messages if m.get("sender") == "ALERTS"]
        with sqlite3.connect(self.warehouse) as db:
            delivery = db.execute("SELECT status_class, COUNT(*) FROM sms_delivery GROUP BY 1").fetchall()
            userlog = db.execute("SELECT COUNT(*) FROM smsend_userlog").fetchone()[0]
            snapshots = db.execute("SELECT COUNT(*) FROM smsend_credit_snapshot").fetchone()[0]
            reconciliation = db.execute(
                "SELECT day, u_id, consumption, assigned_log, status FROM smsend_reconciliation ORDER BY day, u_id"
            ).fetchall()
        cost = sum((Decimal(str(m.get("cost") or 0)) for m in messages), Decimal(0))
        answer = (
            "confirmed"
            if "Appointment confirmed" in reply_log
            else "cancelled"
            if "cancelled" in reply_log
            else "?"
        )
        print()
        print("=" * 72)
        print("smSend provider demo: summary")
        print("=" * 72)
        print(f"SMS sent through the gateway : {len(messages)} (cost {cost} EUR), by status: {by_status}")
        summaries = [a for a in alerts if "rows loaded" in str(a.get("text"))]
        print(
            f"Pipeline alerts (ALERTS)     : {len(alerts) - len(summaries)} failure alert(s) (task + DAG), "
            f"{len(summaries)} success summary"
        )
        print(f"Delivery report in warehouse : {dict(delivery)} rows by status class (table sms_delivery)")
        print(f"Reseller operation log rows  : {userlog} (table smsend_userlog)")
        print(f"Balance snapshot rows        : {snapshots} (table smsend_credit_snapshot)")
        for day, u_id, consumption, assigned, status in reconciliation:
            print(
                f"Reconciliation {day} client {u_id}: assigned {assigned}, consumed {consumption}, {status}"
            )
        print(f"Reply workflow               : customer answered, appointment {answer}")
        print(
            f"DAG runs as expected         : {sum(v == 'ok' for v in self.results.values())}/{len(self.results)}"
        )
        print(f"Demo time                    : {seconds:.0f} s; logs and databases in .demo/")


if __name__ == "__main__":
    sys.exit(Demo().run())
