"""A campaign across workers: 20,000 recipients in mapped shards, one worker SIGKILLed mid-shard.

The sharded campaign example (dags_examples/smsend_campaign_sharded.py) on the shared
CeleryExecutor deployment (tests/e2e/conftest.py: two workers, concurrency 2 each, so the four
shards run at once, two per worker). The audience, 20,000 customers, is a table in a PostgreSQL
database, and the one ledger every shard writes to is in the same database. Once a shard is well
under way, the worker running it is SIGKILLed with every process it started, task processes
included: a lost host. Its shards stop heartbeating, the scheduler fails them after
``task_instance_heartbeat_timeout`` (20 s here), and Airflow retries them on the surviving worker.

Afterwards, from the sandbox's own record of what it received and from the ledger:

- nobody was texted more than once;
- every recipient the killed tries had not started is sent by the retry (owner ``try 2``);
- the recipients the killed tries had in flight are left ``sending`` in the ledger (at most
  ``concurrency`` per shard). ``resend_unknown=False``: the retry does not resend them (the
  request left, the answer was lost, they may have had the SMS) and reports exactly them as
  ``unknown``; the sandbox has each of them once or not at all;
- every other recipient is accepted once, with the request id the sandbox gave its message;
- the totals of all map indexes add up (the example's ``add_up`` task, and again here).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from e2e_deployment import CELERY_WORKERS, pg_connect

if TYPE_CHECKING:
    from e2e_deployment import Deployment

DAG_ID = "smsend_campaign_sharded"
RECIPIENTS = 20_000
SHARDS = 4
CONCURRENCY = 16
#: Injected gateway latency (ms): requests take a while, so each shard keeps its requests in flight.
LATENCY_MS = 20
#: Kill the worker once one of its shards has this many recipients accepted (of 5,000).
KILL_AFTER = 500
PRICE = Decimal("0.0850")  # the demo account's tariff, quality h (docs/sandbox.md)
LEDGER = "smsend_send_ledger"


def audience() -> list[tuple[int, str, str]]:
    """20,000 distinct mobile numbers; none ends in 0000-0003 (the sandbox's special endings)."""
    return [(i, f"+39347{i:06d}5", f"Cliente {i}") for i in range(1, RECIPIENTS + 1)]


def ledger_rows(airflow: Deployment, run_id: str) -> dict[int, dict[str, dict[str, Any]]]:
    """The ledger by shard (map index), then item (the number)."""
    prefix = f"{DAG_ID}/send_shard/{run_id}/"
    from psycopg.rows import dict_row

    with pg_connect(airflow.campaign_db) as conn, conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(
            f"SELECT job_key, item, state, request_id, owner FROM {LEDGER} WHERE job_key LIKE %s",
            (prefix + "%",),
        )
        rows = cursor.fetchall()
    shards: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows:
        shards.setdefault(int(row["job_key"].rsplit("/", 1)[1]), {})[row["item"]] = row
    return shards


def accepted_by_shard(airflow: Deployment, run_id: str) -> dict[int, int]:
    with pg_connect(airflow.campaign_db) as conn:
        rows = conn.execute(
            f"SELECT job_key, COUNT(*) FROM {LEDGER} WHERE job_key LIKE %s AND state = 'accepted' GROUP BY job_key",
            (f"{DAG_ID}/send_shard/{run_id}/%",),
        ).fetchall()
    return {int(key.rsplit("/", 1)[1]): count for key, count in rows}


def shard_instances(airflow: Deployment, run_id: str) -> dict[int, dict[str, Any]]:
    rows = airflow.query(
        "SELECT map_index, state, try_number, hostname FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s AND task_id = 'send_shard'",
        DAG_ID,
        run_id,
    )
    return {row["map_index"]: row for row in rows}


def run_state(airflow: Deployment, run_id: str) -> str:
    return str(
        airflow.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", DAG_ID, run_id)[0][
            "state"
        ]
    )


@pytest.mark.e2e
@pytest.mark.timeout(600)  # the shared deployment's start (about a minute) is counted here when first
def test_campaign_across_workers_survives_a_killed_worker(celery_deployment: Deployment) -> None:
    airflow = celery_deployment
    assert airflow.sandbox is not None
    sandbox = airflow.sandbox
    airflow.seed_audience(audience())
    sandbox.admin("accounts/1001/credit", {"credit": "5000"})  # 20,000 x 0.0850 EUR = 1,700 EUR
    sandbox.admin("faults", {"latency_ms": LATENCY_MS})
    numbers = {number for _, number, _ in audience()}
    killed_worker = ""
    try:
        airflow.wait_for("the api-server", lambda: airflow.api("monitor/health"), 120)
        airflow.wait_for(
            f"the DAG {DAG_ID!r} to be parsed",
            lambda: airflow.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID),
            120,
        )
        conf = {
            "warehouse_conn_id": "campaign_db",
            "ledger_conn_id": "campaign_db",
            "shards": SHARDS,
            "concurrency": CONCURRENCY,
        }
        run_id = airflow.api(f"dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]
        started = time.monotonic()

        # Wait until a shard is well under way on some worker, then kill that worker. Every shard must
        # have started by then: a shard a worker has taken from the broker but not started yet would
        # be lost with it until the broker's visibility timeout (hours), Celery's matter, not the
        # provider's (seen once, on a loaded machine).
        def under_way() -> tuple[str, list[int]] | None:
            progress = accepted_by_shard(airflow, run_id)
            instances = shard_instances(airflow, run_id)
            if len(instances) < SHARDS or any(
                t["state"] not in ("running", "success") for t in instances.values()
            ):
                return None
            for index, accepted in progress.items():
                ti = instances.get(index)
                if ti and ti["state"] == "running" and KILL_AFTER <= accepted < RECIPIENTS // SHARDS:
                    worker = str(ti["hostname"]).rsplit("-", 1)[-1]
                    on_it = [
                        i
                        for i, t in instances.items()
                        if t["state"] == "running" and t["hostname"] == ti["hostname"]
                    ]
                    return worker, on_it
            return None

        found = airflow.wait_for("a shard to be under way", under_way, 180)
        assert found is not None
        killed_worker, killed_shards = found  # the shard seen under way, and any other on that worker
        progress_at_kill = accepted_by_shard(airflow, run_id)
        pids = airflow.kill_worker(killed_worker)
        killed_at = time.monotonic() - started
        # The killed tries' processes are gone: what the ledger holds for their shards now is final.
        at_kill = ledger_rows(airflow, run_id)
        survivor = next(w for w in CELERY_WORKERS if w != killed_worker)
        print(
            f"killed {killed_worker} ({len(pids)} processes) at {killed_at:.0f} s, shards {killed_shards} "
            f"(accepted then: {progress_at_kill})"
        )

        deadline = time.monotonic() + 240
        restarted = False
        while run_state(airflow, run_id) not in ("success", "failed"):
            airflow.check_alive()
            if not restarted and all(
                t["try_number"] == 2 and t["state"] == "running"
                for i, t in shard_instances(airflow, run_id).items()
                if i in killed_shards
            ):
                # The retries run on the survivor: the lost host comes back (it boots meanwhile).
                airflow.restart_worker(killed_worker)
                restarted = True
            if time.monotonic() > deadline:
                airflow.fail(f"the run {run_id!r} did not end in 240 s: {shard_instances(airflow, run_id)}")
            time.sleep(1)
        seconds = time.monotonic() - started
        state = run_state(airflow, run_id)
        instances = shard_instances(airflow, run_id)
        if state != "success":
            airflow.fail(f"the sharded campaign ended {state!r}: {instances}")
        print(
            f"{RECIPIENTS:,} recipients in {seconds:.0f} s, a worker killed at {killed_at:.0f} s "
            f"({RECIPIENTS / seconds:.0f} msg/s over the whole run, kill and retry included)"
        )

        final = ledger_rows(airflow, run_id)
        summary = airflow.query(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'add_up' AND key = 'return_value'",
            DAG_ID,
            run_id,
        )[0]["value"]
        messages = sandbox.admin("messages?kind=sms")["messages"]
        private = airflow.query(
            "SELECT value::text AS v FROM xcom WHERE dag_id = %s AND run_id = %s UNION ALL "
            "SELECT rendered_fields::text FROM rendered_task_instance_fields WHERE dag_id = %s AND run_id = %s",
            DAG_ID,
            run_id,
            DAG_ID,
            run_id,
        )
    finally:
        # The shared deployment's next test finds the sandbox as it started: no message, no latency.
        sandbox.admin("reset", {})
        sandbox.admin("faults", {"latency_ms": 0})
        if killed_worker:  # the shared deployment goes on with both workers
            if killed_worker not in {c.name for c in airflow.components}:
                airflow.restart_worker(killed_worker)
            airflow.wait_for(
                f"{killed_worker} to be ready again", lambda: airflow.worker_ready(killed_worker), 120
            )

    # The killed worker's shards were retried, once, on the other worker; the rest ran once.
    assert killed_shards, instances
    for index, ti in instances.items():
        assert ti["state"] == "success", instances
        if index in killed_shards:
            assert ti["try_number"] == 2 and ti["hostname"] == f"{airflow.marker}-{survivor}", instances
        else:
            assert ti["try_number"] == 1, instances

    # Nobody texted twice, and nobody outside the audience.
    received: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        received.setdefault(message["rcpt"], []).append(message)
    twice = {number: len(got) for number, got in received.items() if len(got) > 1}
    assert not twice, f"{len(twice)} numbers texted more than once, e.g. {list(twice.items())[:5]}"
    assert set(received) <= numbers, sorted(set(received) - numbers)[:5]

    # The ledger: every recipient once, in its shard; accepted with the sandbox's request id.
    assert sorted(final) == list(range(SHARDS)), sorted(final)
    items = [item for shard in final.values() for item in shard]
    assert len(items) == len(set(items)) == RECIPIENTS and set(items) == numbers
    unknown: set[str] = set()
    for index, entries in final.items():
        for number, entry in entries.items():
            if entry["state"] == "accepted":
                got = received.get(number)
                assert got and got[0]["request_id"] == entry["request_id"], (number[-4:], entry, got)
            else:
                assert entry["state"] == "sending", entry  # nothing else: no fault was injected
                unknown.add(number)
        if index not in killed_shards:
            assert all(e["state"] == "accepted" for e in entries.values()), index

    # The killed tries: what they had in flight is exactly what is unknown now, never resent; what
    # they had not started, the retry sent; what they had accepted stayed as it was.
    in_flight: set[str] = set()
    for index in killed_shards:
        before = at_kill.get(index, {})
        assert {e["state"] for e in before.values()} <= {"accepted", "sending"}, index
        sending = {n for n, e in before.items() if e["state"] == "sending"}
        assert len(sending) <= CONCURRENCY, (index, len(sending))
        assert sum(e["state"] == "accepted" for e in before.values()) < len(final[index]), index
        for number, entry in before.items():
            if entry["state"] == "accepted":
                assert final[index][number]["request_id"] == entry["request_id"], number[-4:]
        for number, entry in final[index].items():
            if number not in before:
                assert entry["state"] == "accepted" and str(entry["owner"]).startswith("try 2 "), entry
        in_flight |= sending
    assert unknown == in_flight, (len(unknown), len(in_flight))
    assert 1 <= len(unknown) <= CONCURRENCY * len(killed_shards), len(unknown)
    missing = numbers - set(received)
    assert missing <= unknown, f"{len(missing - unknown)} recipients never texted and not reported unknown"
    print(
        f"unknown after the retry: {len(unknown)} (in flight when the worker died); of them the sandbox "
        f"received {len(unknown) - len(missing)}, never received {len(missing)}"
    )

    # The totals of all map indexes add up: the example's add_up, and the ledger agrees.
    accepted = RECIPIENTS - len(unknown)
    expected = {
        "accepted": accepted,
        "unknown": len(unknown),
        "total": RECIPIENTS,
        "shards": SHARDS,
        "cost_eur": str(PRICE * accepted),
    }
    others = {key: value for key, value in summary.items() if key not in expected}
    assert {key: summary.get(key) for key in expected} == expected, summary
    assert others and set(others.values()) == {0}, summary  # rejected (suppressed, capped): none

    # No customer's number in XCom or the rendered template fields of the run.
    leaked = [row["v"][:80] for row in private if "+39347" in row["v"]]
    assert not leaked, leaked
