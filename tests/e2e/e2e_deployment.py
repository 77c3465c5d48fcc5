"""A real Airflow 3 deployment for the end-to-end tests, and the campaign run they both assert.

One :class:`Deployment` is a throw-away ``AIRFLOW_HOME`` with a PostgreSQL metadata database
(cloned from a template migrated once per session), the smSend sandbox as a subprocess, and the
Airflow components as subprocesses, each in its own process group with its own log file:
``api-server`` (which also serves the Execution API the workers call), ``scheduler``,
``dag-processor``, ``triggerer`` and, for the CeleryExecutor, ``celery worker`` processes.

The sandbox runs with a long delivery delay, so nothing the sensors wait for can happen until the
test moves the sandbox clock, and the test moves it only once it has seen the sensor's task
instance ``deferred`` in the metadata database with its trigger claimed by the triggerer (and the
scheduler has handled the deferring run's exit, see :meth:`Deployment.scheduler_saw_exit`). The
sensors therefore really defer, and only the triggerer's polling can resume them.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import psycopg

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
CAMPAIGN_DAG = ROOT / "dags_examples" / "smsend_campaign.py"
MAPPED_DAG = ROOT / "dags_examples" / "smsend_mapped_reminders.py"
REPLY_DAG = ROOT / "dags_examples" / "smsend_reply_workflow.py"
SHARDED_DAG = ROOT / "dags_examples" / "smsend_campaign_sharded.py"
CUSTOMERS_CSV = ROOT / "dags_examples" / "data" / "customers.csv"

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: The Celery workers of the shared CeleryExecutor deployment (tests/e2e/conftest.py).
CELERY_WORKERS = ("worker1", "worker2")
#: Redis database of the Celery broker; each deployment also has its own queue name in it.
REDIS_DB = int(os.environ.get("SMSEND_E2E_REDIS_DB", "7"))

DAG_ID = "smsend_campaign"
SENSORS = ("wait_number_check", "wait_delivery")
TRIGGER_CLASSPATH = "airflow_provider_smsend.triggers.batch_status.SmSendBatchStatusTrigger"
#: Sandbox delivery delay (s): statuses stay "waiting" until the test advances the sandbox clock.
DELIVERY_DELAY = 600.0
#: How far to move the sandbox clock once each sensor is deferred: MNC answers come after one
#: delay, delivery receipts after two (docs/sandbox.md, "Status times").
CLOCK_ADVANCE = {"wait_number_check": DELIVERY_DELAY + 5, "wait_delivery": 2 * DELIVERY_DELAY + 5}
#: Number endings the sandbox never lets through the campaign: 0000 unknown subscriber, 0001
#: temporary failure, 0002 pending forever (all excluded by the MNC check), 0003 refused by send.php.
EXCLUDED_ENDINGS = ("0000", "0001", "0002", "0003")

#: Seconds to wait for the scheduler to handle a deferring task's exit before moving the clock anyway.
EXIT_EVENT_WAIT = 60.0
TAIL_LINES = 40


# ---------------------------------------------------------------------------------------- services
def require_services(*services: str) -> None:
    """Skip (or, with ``SMSEND_REQUIRE_SERVICES=1``, fail) unless the named services answer."""
    missing = []
    for service in services:
        try:
            if service == "postgres":
                with pg_connect("postgres") as conn:
                    conn.execute("SELECT 1")
            elif service == "redis":
                import redis

                redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=3).ping()
            else:
                raise ValueError(f"unknown service {service!r}")
        except ValueError:
            raise
        except Exception as exc:
            missing.append(f"{service} ({type(exc).__name__}: {exc})")
    if missing:
        reason = "end-to-end test needs " + ", ".join(missing)
        if os.environ.get("SMSEND_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; SMSEND_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(reason)


def pg_connect(dbname: str) -> psycopg.Connection[Any]:
    """An autocommit connection to ``dbname`` on the local PostgreSQL."""
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True, connect_timeout=5
    )


def sqlalchemy_url(dbname: str) -> str:
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def create_database(name: str, template: str | None = None) -> None:
    with pg_connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def drop_database(name: str) -> None:
    with pg_connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, body: object = None, method: str | None = None, timeout: float = 10) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method or ("POST" if data else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read() or b"null")


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text[-lines:])


def clean_environ() -> dict[str, str]:
    """This process's environment without any Airflow setting (other tests may have set some)."""
    return {key: value for key, value in os.environ.items() if not key.lstrip("_").startswith("AIRFLOW")}


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log file (Airflow's task and trigger logs)."""
    try:
        return [
            json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")
        ]
    except FileNotFoundError:
        raise AssertionError(f"missing log file {path}") from None


def migrate(airflow_home: Path, dbname: str) -> None:
    """``airflow db migrate`` into ``dbname`` (used once per session, for the template)."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = {
        **clean_environ(),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(dbname),
    }
    log = airflow_home / "db-migrate.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=240,
            check=False,
        )
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed (exit {done.returncode}):\n{tail(log)}", pytrace=False)


# --------------------------------------------------------------------------------------- processes
@dataclass
class Component:
    """One subprocess, leader of its own process group, logging to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None


def start_process(name: str, argv: list[str], env: dict[str, str], log: Path) -> Component:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=log.parent,
        )
    return Component(name, popen, log)


def stop_processes(components: Iterable[Component], marker: str, grace: float = 20.0) -> None:
    """SIGTERM every process group, SIGKILL what is left after ``grace`` seconds.

    Then sweep any straggler (a task process that left its group) by the unique ``marker`` in its
    environment: only processes this deployment started carry it.
    """
    components = list(components)
    for component in components:
        if component.alive():
            _signal_group(component.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for component in components:
        try:
            component.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for component in components:
        _signal_group(component.popen.pid, signal.SIGKILL)  # the group may outlive its leader
        try:
            component.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
    for pid in _pids_with_marker(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children, their children...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _zombie(pid: int) -> bool:
    """True when ``pid`` is gone or a zombie (dead, not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _pids_with_marker(marker: str) -> list[int]:
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# ----------------------------------------------------------------------------------------- sandbox
class Sandbox:
    """The smSend sandbox gateway as a subprocess on a free port."""

    def __init__(self, workdir: Path, marker: str) -> None:
        self.log = workdir / "sandbox.log"
        env = {**os.environ, "SMSEND_E2E_MARKER": marker}
        self.component = start_process(
            "sandbox",
            [
                sys.executable,
                "-m",
                "airflow_provider_smsend.sandbox",
                "--port",
                "0",
                "--delivery-delay",
                str(DELIVERY_DELAY),
                "--seed",
                "7",
            ],
            env,
            self.log,
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("smSend sandbox listening on "):
                    return line.rsplit(" ", 1)[-1]
            if not self.component.alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"the sandbox did not start:\n{tail(self.log)}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[-1])

    def admin(self, route: str, body: object = None) -> Any:
        return http_json(f"{self.url}/_sandbox/{route}", body)

    def advance(self, seconds: float) -> None:
        self.admin("clock/advance", {"seconds": seconds})

    def sms_counts(self) -> dict[str, int]:
        return dict(self.admin("messages/counts?kind=sms")["counts"])


# ------------------------------------------------------------------------------------- deployment
@dataclass
class CampaignRun:
    """What the test saw while the campaign ran, and the final metadata-database state."""

    run_id: str
    state: str
    seconds: float
    #: task_id -> every state observed, in order (consecutive duplicates collapsed)
    states: dict[str, list[str]] = field(default_factory=dict)
    #: sensor task_id -> (trigger classpath, triggerer job id) seen while it was deferred
    deferrals: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: task_id -> final row of task_instance
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None


class Deployment:
    """A running Airflow 3 deployment (see the module docstring)."""

    def __init__(self, workdir: Path, *, template_db: str, executor: str, name: str) -> None:
        self.workdir = workdir
        self.executor = executor
        self.home = workdir / "airflow"
        self.dags = workdir / "dags"
        self.logs = workdir / "logs"
        for directory in (self.home, self.dags / "data", self.logs):
            directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(CAMPAIGN_DAG, self.dags / CAMPAIGN_DAG.name)
        shutil.copy(MAPPED_DAG, self.dags / MAPPED_DAG.name)
        shutil.copy(REPLY_DAG, self.dags / REPLY_DAG.name)
        shutil.copy(SHARDED_DAG, self.dags / SHARDED_DAG.name)
        shutil.copy(CUSTOMERS_CSV, self.dags / "data" / CUSTOMERS_CSV.name)
        self.marker = f"smsend-e2e-{os.getpid()}-{name}"
        self.db_name = f"airflow_e2e_{os.getpid()}_{name}"
        #: A PostgreSQL database for a test's own tables (connection ``campaign_db``), created by
        #: the test that uses it (:meth:`create_campaign_db`), dropped with the deployment.
        self.campaign_db = f"{self.db_name}_campaign"
        self.queue = f"smsend-e2e-{os.getpid()}-{name}"
        self.warehouse = workdir / "warehouse.db"
        self.ledger = workdir / "ledger.db"
        self.secret = secrets.token_hex(32)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.components: list[Component] = []
        #: Settings added to every component's environment (set before :meth:`start`).
        self.extra_env: dict[str, str] = {}
        #: Celery workers killed by :meth:`kill_worker` (their components, for the report).
        self.killed: list[Component] = []
        self.sandbox: Sandbox | None = None
        self.started_at = time.monotonic()
        #: seconds from the start of the deployment to each milestone, for the test's report
        self.timings: dict[str, float] = {}
        create_database(self.db_name, template=template_db)
        self._hostname_module()

    # -------------------------------------------------------------------- configuration
    def _hostname_module(self) -> None:
        """A ``hostname_callable`` that names each worker, so task_instance.hostname says which ran it."""
        (self.workdir / "pylib").mkdir(exist_ok=True)
        (self.workdir / "pylib" / "smsend_e2e_hostname.py").write_text(
            "import os\nimport socket\n\n\ndef hostname():\n"
            "    return os.environ.get('SMSEND_E2E_HOSTNAME') or socket.getfqdn()\n"
        )

    def env(self, **extra: str) -> dict[str, str]:
        assert self.sandbox is not None
        metadata = sqlalchemy_url(self.db_name)
        env = clean_environ()
        env.update(
            {
                "SMSEND_E2E_MARKER": self.marker,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(self.workdir / "pylib"), os.environ.get("PYTHONPATH")])
                ),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "smsend_e2e_hostname.hostname",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.api_url,
                # Shared by every component (the api-server checks the tokens the scheduler signs).
                "AIRFLOW__API__SECRET_KEY": self.secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": self.secret,
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_SMSEND_DEFAULT": (
                    f"smsend://demo:demo-pass@127.0.0.1:{self.sandbox.port}/?scheme=http"
                    "&reseller_username=reseller&reseller_password=reseller-pass&timeout=10"
                ),
                "AIRFLOW_CONN_SMSEND_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(self.ledger)}),
                "AIRFLOW_CONN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(self.warehouse)}),
                "AIRFLOW_CONN_CAMPAIGN_DB": json.dumps(
                    {
                        "conn_type": "postgres",
                        "host": PG_HOST,
                        "port": PG_PORT,
                        "login": PG_USER,
                        "schema": self.campaign_db,
                    }
                ),
                "SMSEND_EXAMPLE_POLL_SECONDS": "1",
            }
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    # -------------------------------------------------------------------- life cycle
    def start(self, workers: int = 0) -> None:
        """Start the sandbox, the Airflow components and ``workers`` Celery workers."""
        self.started_at = time.monotonic()
        self.sandbox = Sandbox(self.logs, self.marker)
        self.components.append(self.sandbox.component)
        self.launch(
            "api-server", "api-server", "--port", str(self.api_port), "--host", "127.0.0.1", "--workers", "1"
        )
        self.launch("scheduler", "scheduler", "--skip-serve-logs")
        self.launch("dag-processor", "dag-processor")
        self.launch("triggerer", "triggerer", "--skip-serve-logs")
        for number in range(1, workers + 1):
            self.launch_worker(f"worker{number}")

    def launch_worker(self, name: str) -> Component:
        """Start the Celery worker ``name`` (concurrency 2); every process it starts carries
        ``SMSEND_E2E_HOSTNAME=<marker>-<name>`` in its environment and names itself so."""
        return self.launch(
            name,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@{self.marker}",
            "--concurrency",
            "2",
            "--queues",
            self.queue,
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
            env=self.env(SMSEND_E2E_HOSTNAME=f"{self.marker}-{name}"),
        )

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL the Celery worker ``name`` and every process it started, task processes
        included (they lead process groups of their own): a lost host. Returns the pids killed."""
        (component,) = [c for c in self.components if c.name == name]
        pids = [component.popen.pid, *_descendants(component.popen.pid)]
        for pid in pids:  # stopped first, so that none starts another process while the others die
            _signal(pid, signal.SIGSTOP)
        pids = [component.popen.pid, *_descendants(component.popen.pid)]
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        component.popen.wait(10)
        deadline = time.monotonic() + 10
        while any(not _zombie(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of {name} outlived SIGKILL: {pids}")
            time.sleep(0.05)
        self.components.remove(component)
        self.killed.append(component)
        return pids

    def restart_worker(self, name: str) -> Component:
        """Start the killed worker ``name`` again (its old log kept as ``<name>-killed.log``)."""
        log = self.logs / f"{name}.log"
        if log.exists():
            log.rename(self.logs / f"{name}-killed.log")
        self.killed = [c for c in self.killed if c.name != name]
        return self.launch_worker(name)

    def create_campaign_db(self) -> None:
        """Create (empty) the database of the ``campaign_db`` connection."""
        create_database(self.campaign_db)

    def seed_audience(self, rows: Iterable[tuple[int, str, str]]) -> None:
        """The ``campaign_db`` database, new, with the sharded example's audience table
        ``campaign_audience`` of ``rows`` (id, number, name)."""
        self.create_campaign_db()
        with pg_connect(self.campaign_db) as conn:
            conn.execute(
                "CREATE TABLE campaign_audience (id INTEGER PRIMARY KEY, number TEXT NOT NULL, name TEXT)"
            )
            with (
                conn.cursor() as cursor,
                cursor.copy("COPY campaign_audience (id, number, name) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)

    def launch(self, name: str, *args: str, env: dict[str, str] | None = None) -> Component:
        component = start_process(name, [AIRFLOW, *args], env or self.env(), self.logs / f"{name}.log")
        self.components.append(component)
        return component

    def stop(self) -> None:
        stopping = time.monotonic()
        try:
            stop_processes(reversed(self.components), self.marker)
            self.timings["stop"] = time.monotonic() - stopping
        finally:
            drop_database(self.db_name)
            drop_database(self.campaign_db)
            if self.executor == "CeleryExecutor":
                self._clean_broker()

    def _clean_broker(self) -> None:
        try:
            import redis

            client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=3)
            keys = [key for key in client.scan_iter(match=f"*{self.queue}*")]
            if keys:
                client.delete(*keys)
        except Exception as exc:  # cleanup must not hide the test's own outcome
            print(f"e2e: could not clean the Redis broker: {exc}")

    # -------------------------------------------------------------------- observing
    def report(self) -> str:
        """The tail of every component's log, for a failure message."""
        parts = []
        for component in self.components:
            status = "running" if component.alive() else f"exited {component.popen.returncode}"
            parts.append(f"----- {component.name} ({status}), {component.log} -----\n{tail(component.log)}")
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.report()}", pytrace=False)

    def check_alive(self) -> None:
        dead = [c.name for c in self.components if not c.alive()]
        if dead:
            self.fail(f"component(s) exited early: {', '.join(dead)}")

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float) -> Any:
        """Poll ``predicate`` until it returns something truthy; fail with every log tail if not."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                value = predicate()
                if value:
                    return value
            except Exception as exc:  # not ready yet (connection refused, table empty...)
                last_error = exc
            time.sleep(0.5)
        self.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})")

    def query(self, sql: str, *params: object) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with pg_connect(self.db_name) as conn, conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def scheduler_saw_exit(self, run_id: str, task_id: str) -> bool:
        """True once the scheduler processed the executor's event for the task's exit after deferring.

        Airflow 3.3 fails a resumed task if the executor's "success" event of the run that deferred
        reaches the scheduler only after the resumed run is already queued or running (it handles
        that late event only while the task is still 'scheduled'). A busy scheduler can lag that
        much behind a trigger that fires within a second, so the test lets the condition come true
        only after that event was handled, as it would be with any real delivery time.
        """
        needle = (
            f"Received executor event with state success for task instance TaskInstanceKey("
            f"dag_id='{DAG_ID}', task_id='{task_id}', run_id='{run_id}'"
        )
        return needle in (self.logs / "scheduler.log").read_text(errors="replace")

    def worker_ready(self, name: str) -> bool:
        """True once the Celery worker ``name`` logged that it consumes from the broker."""
        return (
            re.search(
                rf"\b{re.escape(name)}@\S+ ready\.", (self.logs / f"{name}.log").read_text(errors="replace")
            )
            is not None
        )

    def task_log(self, run_id: str, task_id: str, attempt: int = 1) -> Path:
        """The task's log file (Airflow's default ``log_filename_template``)."""
        return (
            self.home
            / "logs"
            / f"dag_id={DAG_ID}"
            / f"run_id={run_id}"
            / f"task_id={task_id}"
            / f"attempt={attempt}.log"
        )

    def api(self, path: str, body: object = None, method: str | None = None) -> Any:
        return http_json(f"{self.api_url}/api/v2/{path}", body, method)

    # -------------------------------------------------------------------- the campaign
    def run_campaign(self, timeout: float = 150) -> CampaignRun:
        """Trigger the campaign DAG through the REST API and drive the sandbox clock until it ends."""
        assert self.sandbox is not None
        self.wait_for("the api-server", lambda: self.api("monitor/health"), 120)
        self.timings["api-server up"] = time.monotonic() - self.started_at
        self.wait_for(
            f"the DAG {DAG_ID!r} to be parsed",
            lambda: self.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID),
            120,
        )
        self.timings["DAG parsed"] = time.monotonic() - self.started_at
        run_id = self.api(f"dags/{DAG_ID}/dagRuns", {"logical_date": None})["dag_run_id"]
        run = CampaignRun(run_id=run_id, state="queued", seconds=0.0)
        started = time.monotonic()
        deadline = started + timeout
        deferred_since: dict[str, float] = {}
        while True:
            self.check_alive()
            rows = self.query(
                "SELECT ti.task_id, ti.state, t.classpath, t.triggerer_id "
                "FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s",
                DAG_ID,
                run_id,
            )
            for row in rows:
                seen = run.states.setdefault(row["task_id"], [])
                if row["state"] and (not seen or seen[-1] != row["state"]):
                    seen.append(row["state"])
                sensor = row["task_id"]
                if (
                    sensor in SENSORS
                    and row["state"] == "deferred"
                    and row["triggerer_id"] is not None
                    and sensor not in run.deferrals
                ):
                    # The sensor waits in the triggerer: only now may its condition come true.
                    deferred_since.setdefault(sensor, time.monotonic())
                    if (
                        self.scheduler_saw_exit(run_id, sensor)
                        or time.monotonic() - deferred_since[sensor] > EXIT_EVENT_WAIT
                    ):
                        run.deferrals[sensor] = (row["classpath"], row["triggerer_id"])
                        self.sandbox.advance(CLOCK_ADVANCE[sensor])
            run.state = self.query(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", DAG_ID, run_id
            )[0]["state"]
            if run.state in ("success", "failed"):
                break
            if time.monotonic() > deadline:
                self.fail(
                    f"the campaign run {run_id!r} did not finish in {timeout:.0f} s; "
                    f"state {run.state!r}, task states seen {run.states}"
                )
            time.sleep(0.5)
        run.seconds = time.monotonic() - started
        self.timings["campaign run"] = run.seconds
        for row in self.query(
            "SELECT task_id, state, try_number, hostname, external_executor_id, next_method, trigger_id "
            "FROM task_instance WHERE dag_id = %s AND run_id = %s",
            DAG_ID,
            run_id,
        ):
            run.final[row["task_id"]] = row
        summary = self.query(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'summary' "
            "AND key = 'return_value'",
            DAG_ID,
            run_id,
        )
        run.summary = summary[0]["value"] if summary else None
        return run

    def run_dag(
        self, dag_id: str, timeout: float = 120, conf: dict[str, Any] | None = None
    ) -> tuple[str, str, dict[str, list[str]]]:
        """Trigger ``dag_id`` through the REST API without a logical date (with ``conf``), wait for
        it to end; returns (run id, final state, task states by task id and map index)."""
        self.wait_for(
            f"the DAG {dag_id!r} to be parsed",
            lambda: self.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", dag_id),
            120,
        )
        body: dict[str, Any] = {"logical_date": None, **({"conf": conf} if conf is not None else {})}
        run_id = self.api(f"dags/{dag_id}/dagRuns", body)["dag_run_id"]
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            state = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)[
                0
            ]["state"]
            if state in ("success", "failed"):
                break
            if time.monotonic() > deadline:
                self.fail(
                    f"the run {run_id!r} of {dag_id!r} did not finish in {timeout:.0f} s (state {state!r})"
                )
            time.sleep(0.5)
        tasks: dict[str, list[str]] = {}
        for row in self.query(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = %s AND run_id = %s "
            "ORDER BY task_id, map_index",
            dag_id,
            run_id,
        ):
            tasks.setdefault(row["task_id"], []).append(row["state"])
        return run_id, state, tasks


# ------------------------------------------------------------------------------------- assertions
def expected_recipients(csv_path: Path = CUSTOMERS_CSV) -> set[str]:
    """The CSV's numbers that are valid and that the sandbox's network knows (docs/sandbox.md)."""
    from airflow_provider_smsend.client.errors import SmSendValidationError
    from airflow_provider_smsend.client.numbers import normalize_number

    expected = set()
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                number = normalize_number(row["number"])
            except SmSendValidationError:
                continue
            if not number.endswith(EXCLUDED_ENDINGS):
                expected.add(number)
    return expected


def assert_campaign_succeeded(deployment: Deployment, run: CampaignRun) -> None:
    """The assertions both executors share: success, real deferral, exactly-once sends, warehouse."""
    assert deployment.sandbox is not None
    if run.state != "success":
        deployment.fail(
            f"the campaign run ended {run.state!r}; task states seen {run.states}; final {run.final}"
        )
    not_ok = {task: row["state"] for task, row in run.final.items() if row["state"] != "success"}
    assert not not_ok, f"tasks not successful: {not_ok}"

    # Deferred and resumed by the triggerer, for each sensor:
    # - the metadata DB showed its task instance 'deferred' on a SmSendBatchStatusTrigger claimed
    #   by a TriggererJob, and nothing it waits for could happen before (the clock moved then);
    # - that triggerer wrote the trigger's log beside the task's, with the trigger's success event;
    # - the task log has the deferral before the trigger fired and the resumed run after it, and
    #   the task ended 'success' in try 1 (resumed, not retried).
    for sensor in SENSORS:
        assert sensor in run.deferrals, (
            f"{sensor} was never seen deferred; states seen {run.states.get(sensor)}"
        )
        classpath, triggerer_id = run.deferrals[sensor]
        assert classpath == TRIGGER_CLASSPATH, classpath
        job = deployment.query("SELECT job_type FROM job WHERE id = %s", triggerer_id)
        assert job and job[0]["job_type"] == "TriggererJob", f"trigger of {sensor} held by job {job}"
        states = run.states[sensor]
        assert states.index("deferred") < len(states) - 1 and states[-1] == "success", states
        assert run.final[sensor]["try_number"] == 1, f"{sensor} was retried, not resumed: {run.final[sensor]}"
        assert run.final[sensor]["trigger_id"] is None, run.final[sensor]

        task_log = deployment.task_log(run.run_id, sensor)
        trigger_log = task_log.with_name(f"{task_log.name}.trigger.{triggerer_id}.log")
        fired = [e for e in json_lines(trigger_log) if e.get("event") == "Trigger fired event"]
        assert len(fired) == 1 and "'status': 'success'" in str(fired[0].get("result")), (
            f"triggerer {triggerer_id} logged no single success event for {sensor}:\n{tail(trigger_log)}"
        )
        task_events = json_lines(task_log)
        paused = [e for e in task_events if str(e.get("event")).startswith("Pausing task as DEFERRED")]
        resumed = [e for e in task_events if e.get("timestamp", "") > fired[0]["timestamp"]]
        assert len(paused) == 1 and paused[0]["timestamp"] < fired[0]["timestamp"] and resumed, (
            f"{sensor}: expected a deferral before the trigger fired and a resumed run after it in "
            f"{task_log}:\n{tail(task_log)}"
        )

    # Exactly one SMS per valid, known recipient; nobody else.
    counts = deployment.sandbox.sms_counts()
    expected = expected_recipients()
    assert len(expected) >= 20, f"the example CSV should have at least 20 reachable customers: {expected}"
    assert set(counts) == expected, (
        f"recipients differ: unexpected {sorted(set(counts) - expected)}, missing {sorted(expected - set(counts))}"
    )
    duplicates = {number: count for number, count in counts.items() if count != 1}
    assert not duplicates, f"numbers sent more than once: {duplicates}"

    # The campaign's own summary agrees, and the warehouse holds one row per accepted message.
    assert run.summary is not None, "the summary task pushed no XCom"
    assert run.summary["accepted"] == len(expected), run.summary
    assert run.summary["rejected"] == 0 and run.summary["unknown"] == 0, run.summary
    with sqlite3.connect(deployment.warehouse) as warehouse:
        dests = [dest for (dest,) in warehouse.execute("SELECT dest FROM sms_delivery")]
    assert len(dests) == len(expected) and set(dests) == expected, f"sms_delivery rows: {sorted(dests)}"
    assert run.summary["rows_loaded"] == len(expected), run.summary
