"""The batch-status sensor in reschedule mode in a real Airflow 3 deployment (LocalExecutor).

Every reschedule-mode poke is a new task process, so the reports already final can only reach the
next poke through the task instance's state store (``task_state_store`` in the metadata database,
through the api-server's Execution API). The test sends six SMS itself, two at a time, moving the
sandbox clock between the sends, so the three pairs reach their final notify status one after the
other, and only when the test moves the clock again:

- pair A is final before the first poke; the test moves the clock once it sees a poke end (a new
  ``task_reschedule`` row), so pair B becomes final before the second poke and pair C before the
  third, which succeeds;
- the sensor (``mode="reschedule"``, DAG written into the deployment's dags folder, run triggered
  without a logical date with the request ids in its conf) reads the gateway through a recording
  proxy in this process, which tells which request id each batch-status request was for.

Asserted: the run succeeds in try 1 after two reschedules; the first poke fetches all six ids, the
second only B and C, the third only C, each once (no final id is read again), as both the proxy
and the sandbox's own request counter say; the task state store row holds, after each poke, the
ids final so far; the task log has one summary line per poke (not one per id).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from e2e_deployment import json_lines, tail

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2e_deployment import Deployment

DAG_ID = "smsend_e2e_reschedule_sensor"
TASK_ID = "wait_delivery"
CONN_ID = "smsend_recorded"
STATE_KEY = "smsend_batch_status_final"
BATCH_STATUS = "/sms/batch-status.php"
#: Seconds between pokes: each poke is a new task process started by the LocalExecutor. More than
#: the ~6 s the executor's "success" event of a poke that rescheduled may take to reach the
#: scheduler (the supervisor notices its task's exit within ``[workers] min_heartbeat_interval``,
#: 5 s): Airflow 3.3 fails a task whose next poke is queued before that event was handled.
POKE_INTERVAL = 15
#: What the scheduler logs when it fails the task so (Airflow's race, not the sensor's fault).
LATE_EVENT = "finished with state success, but the task instance's state attribute is running"
#: Three pairs of recipients (none ends in the sandbox's special 0000-0003).
PAIRS = {
    "A": ("+393331230011", "+393471230012"),
    "B": ("+393281230021", "+393511230022"),
    "C": ("+393661230031", "+393391230032"),
}
#: The harness's sandbox delivers (notify 200) 2 x its delivery delay (600 s) after a send, on its
#: clock: a third of that between the sends, and again after each poke, makes one pair final a time.
STEP = 400.0

DAG_SOURCE = f'''
"""Written by tests/e2e/test_reschedule_sensor.py: the batch-status sensor in reschedule mode."""

from airflow.sdk import DAG

from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor

with DAG(dag_id="{DAG_ID}", schedule=None, catchup=False, tags=["e2e"]):
    SmSendBatchStatusSensor(
        task_id="{TASK_ID}",
        request_ids="{{{{ dag_run.conf['request_ids'] }}}}",
        report_type="notify",
        success_rule="all_delivered",
        mode="reschedule",
        poke_interval={POKE_INTERVAL},
        timeout=150,
        smsend_conn_id="{CONN_ID}",
    )
'''


class RecordingProxy:
    """An HTTP proxy to the sandbox in this process: forwards each request as it came and records
    its path and ``id`` field (query or form body), in order."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.calls: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path, _, query = self.path.partition("?")
                fields = urllib.parse.parse_qs(query)
                fields.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
                with proxy._lock:
                    proxy.calls.append((path, (fields.get("id") or [None])[0]))
                request = urllib.request.Request(
                    proxy.target + self.path,
                    data=body if self.command == "POST" else None,
                    method=self.command,
                    headers={"Content-Type": self.headers.get("Content-Type") or "text/plain"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, payload, kind = answer.status, answer.read(), answer.headers["Content-Type"]
                except urllib.error.HTTPError as exc:
                    status, payload, kind = exc.code, exc.read(), exc.headers["Content-Type"]
                self.send_response(status)
                self.send_header("Content-Type", kind or "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="smsend-proxy", daemon=True)
        self.thread.start()

    def batch_status_ids(self) -> list[str | None]:
        with self._lock:
            return [rid for path, rid in self.calls if path == BATCH_STATUS]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def final_positions(airflow: Deployment, run_id: str) -> set[int]:
    """The positions (in the request ids' order) the task state store row marks final."""
    rows = airflow.query(
        "SELECT value FROM task_state_store WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = %s",
        DAG_ID,
        run_id,
        TASK_ID,
        STATE_KEY,
    )
    if not rows:
        return set()
    value = rows[0]["value"]
    state = json.loads(value) if isinstance(value, str) else value
    if isinstance(state, str):  # a JSON value stored as JSON text
        state = json.loads(state)
    bits = base64.b64decode(state["final"])
    return {i for i in range(len(bits) * 8) if bits[i >> 3] >> (i & 7) & 1}


def reschedule_count(airflow: Deployment, ti_id: object) -> int:
    """Rows of ``task_reschedule`` of the task instance: one per poke that ended in a reschedule."""
    return int(airflow.query("SELECT count(*) AS n FROM task_reschedule WHERE ti_id = %s", ti_id)[0]["n"])


@pytest.mark.e2e
@pytest.mark.timeout(480)
def test_reschedule_pokes_fetch_only_the_pending_request_ids(deployment: Callable[..., Deployment]) -> None:
    from airflow_provider_smsend.client import SmSendClient

    started = time.monotonic()
    airflow = deployment("LocalExecutor")
    sandbox = airflow.sandbox
    assert sandbox is not None
    proxy = RecordingProxy(sandbox.url)
    try:
        (airflow.dags / f"{DAG_ID}.py").write_text(DAG_SOURCE)
        airflow.wait_for("the api-server", lambda: airflow.api("monitor/health"), 120)
        airflow.api(
            "connections",
            {
                "connection_id": CONN_ID,
                "conn_type": "smsend",
                "host": "127.0.0.1",
                "port": proxy.port,
                "login": "demo",
                "password": "demo-pass",
                "extra": json.dumps({"scheme": "http", "timeout": 10, "retries": 0}),
            },
        )

        # Six request ids, two sent at a time, STEP seconds apart on the sandbox clock; then one more
        # STEP: pair A is delivered (2 x 600 s old), B and C are still waiting.
        client = SmSendClient(base_url=sandbox.url, username="demo", password="demo-pass")
        group: dict[str, str] = {}
        ids: list[str] = []
        for name, numbers in PAIRS.items():
            for number in numbers:
                rid = client.send(number, f"Reschedule e2e {name}", sender="SmSendTest").request_id
                assert rid, f"no request id for the send to {number[-4:]}"
                ids.append(rid)
                group[rid] = name
            sandbox.advance(STEP)
        of = {name: [rid for rid in ids if group[rid] == name] for name in PAIRS}
        batch_before = int(sandbox.admin("stats")["requests"].get(BATCH_STATUS, 0))
        assert batch_before == 0 and not proxy.calls, "nothing may read a batch status before the sensor"

        airflow.wait_for(
            f"the DAG {DAG_ID!r} to be parsed",
            lambda: airflow.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID),
            120,
        )
        run_id = airflow.api(
            f"dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"request_ids": ",".join(ids)}}
        )["dag_run_id"]
        triggered = time.monotonic()

        # After each poke that ends in a reschedule: what it fetched (the proxy's record and the
        # sandbox's counter), what the state store holds; then move the clock for the next pair.
        pokes: list[list[str | None]] = []
        sandbox_counts: list[int] = []
        stored: list[set[int]] = []
        seen_proxy = seen_sandbox = 0
        deadline = time.monotonic() + 150
        while True:
            airflow.check_alive()
            ti = airflow.query(
                "SELECT id, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s "
                "AND task_id = %s",
                DAG_ID,
                run_id,
                TASK_ID,
            )
            reschedules = reschedule_count(airflow, ti[0]["id"]) if ti else 0
            if reschedules > len(pokes):
                assert reschedules == len(pokes) + 1, (
                    f"poke {len(pokes) + 2} ended before the test saw poke {len(pokes) + 1} end"
                )
                calls = proxy.batch_status_ids()
                counter = int(sandbox.admin("stats")["requests"].get(BATCH_STATUS, 0))
                pokes.append(calls[seen_proxy:])
                sandbox_counts.append(counter - seen_sandbox)
                seen_proxy, seen_sandbox = len(calls), counter
                stored.append(final_positions(airflow, run_id))
                if len(pokes) <= 2:
                    sandbox.advance(STEP)  # the next pair is delivered now
                    assert len(proxy.batch_status_ids()) == seen_proxy, (
                        "the next poke started before the sandbox clock moved: the test raced it"
                    )
            state = airflow.query(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", DAG_ID, run_id
            )[0]["state"]
            if state in ("success", "failed"):
                break
            if time.monotonic() > deadline:
                airflow.fail(f"the run {run_id!r} did not finish in 150 s (state {state!r}, pokes {pokes})")
            time.sleep(0.2)
        run_seconds = time.monotonic() - triggered
        calls = proxy.batch_status_ids()
        pokes.append(calls[seen_proxy:])
        sandbox_counts.append(int(sandbox.admin("stats")["requests"].get(BATCH_STATUS, 0)) - seen_sandbox)
    finally:
        proxy.close()

    (ti,) = airflow.query(
        "SELECT id, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
        DAG_ID,
        run_id,
        TASK_ID,
    )
    log_path = (
        airflow.home
        / "logs"
        / f"dag_id={DAG_ID}"
        / f"run_id={run_id}"
        / f"task_id={TASK_ID}"
        / "attempt=1.log"
    )
    if state != "success":
        if LATE_EVENT in (airflow.logs / "scheduler.log").read_text(errors="replace"):
            airflow.fail(
                f"Airflow failed the sensor: the executor event of a rescheduled poke reached the "
                f"scheduler after the next poke was queued ({LATE_EVENT!r}); POKE_INTERVAL "
                f"{POKE_INTERVAL} s is too short for this machine. Pokes {pokes}"
            )
        airflow.fail(
            f"the run ended {state!r}: {ti}; pokes {pokes}\n----- task log -----\n{tail(log_path, 80)}"
        )
    assert ti["state"] == "success" and ti["try_number"] == 1, (
        f"the sensor was retried, not rescheduled: {ti}"
    )
    reschedules = airflow.query(
        "SELECT start_date, end_date, reschedule_date FROM task_reschedule WHERE ti_id = %s ORDER BY id",
        ti["id"],
    )
    assert len(reschedules) == 2, f"expected two reschedules (three pokes), got {reschedules}"

    # Each poke read exactly the ids still pending, each once; none that was final already.
    expected = [ids, of["B"] + of["C"], of["C"]]
    named = [[group.get(rid or "", rid) for rid in poke] for poke in pokes]
    assert [Counter(poke) for poke in pokes] == [Counter(want) for want in expected], (
        f"batch-status requests per poke (by pair): {named}; expected 6 (A, B, C), 4 (B, C), 2 (C)"
    )
    assert sandbox_counts == [6, 4, 2], f"the sandbox counted {sandbox_counts} batch-status requests per poke"
    # The real task state store kept the final ones between the pokes' processes.
    positions = {name: {ids.index(rid) for rid in of[name]} for name in PAIRS}
    assert stored == [positions["A"], positions["A"] | positions["B"]], (
        f"task_state_store {STATE_KEY!r} final positions after pokes 1 and 2: {stored}"
    )

    # One summary line per poke (not one per id), with what it fetched and what was final already.
    events = [str(e.get("event", "")) for e in json_lines(log_path)]
    polls = [e for e in events if "request id(s) fetched" in e]
    assert len(polls) == 3, f"expected 3 poll lines in {log_path}, got {len(polls)}:\n" + "\n".join(polls)
    for line, (fetched, final) in zip(polls, [(6, 0), (4, 2), (2, 4)], strict=True):
        assert f"{fetched} request id(s) fetched, {final} already final" in line, line
        assert line.startswith(f"smSend batch 6 requests ({', '.join(ids[:3])}, ...)"), line
    assert "satisfied" in polls[-1] and all("satisfied" not in line for line in polls[:2]), polls
    assert not [e for e in events if ids[-1] in e], "a log line names a single request id beyond the first 3"
    summary = airflow.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
        DAG_ID,
        run_id,
        TASK_ID,
    )
    assert summary, "the sensor pushed no summary"
    value = summary[0]["value"]
    value = json.loads(value) if isinstance(value, str) else value
    assert value["delivered"] == value["total"] == 6 and value["pending"] == 0, value
    print(
        f"reschedule sensor e2e: run {run_seconds:.0f} s, whole test {time.monotonic() - started:.0f} s; "
        f"batch-status requests per poke {sandbox_counts}; reschedules at "
        + ", ".join(str(r["reschedule_date"]) for r in reschedules)
    )
