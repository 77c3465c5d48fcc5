"""The campaign DAG in a real Airflow 3 deployment with the CeleryExecutor and two workers.

Redis as the broker, the PostgreSQL metadata database as the Celery result backend; the same
components as the LocalExecutor test plus two ``airflow celery worker`` processes (concurrency 2
each), which name themselves in ``task_instance.hostname``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from e2e_deployment import assert_campaign_succeeded, require_services

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2e_deployment import Deployment

WORKERS = ("worker1", "worker2")


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_campaign_with_celery_executor(deployment: Callable[..., Deployment]) -> None:
    require_services("redis")
    airflow = deployment("CeleryExecutor", workers=len(WORKERS))
    for worker in WORKERS:  # each worker connected to the broker and consumes the deployment's queue
        airflow.wait_for(f"{worker} to be ready", lambda w=worker: airflow.worker_ready(w), 120)

    run = airflow.run_campaign()
    print(f"campaign run {run.run_id}: {run.state} in {run.seconds:.0f} s; states {run.states}")
    assert_campaign_succeeded(airflow, run)

    # Every task ran on one of the two Celery workers: each worker stamps its own name as the
    # hostname, and the executor recorded the Celery task id of every task instance.
    hostnames = {task: row["hostname"] for task, row in run.final.items()}
    workers = {f"{airflow.marker}-{worker}" for worker in WORKERS}
    assert set(hostnames.values()) <= workers, hostnames
    assert all(row["external_executor_id"] for row in run.final.values()), run.final
    used = sorted({name.rsplit("-", 1)[-1] for name in hostnames.values()})
    print(
        f"tasks per worker: { {w: sum(h.endswith(w) for h in hostnames.values()) for w in WORKERS} } (used {used})"
    )
