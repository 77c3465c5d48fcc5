"""The campaign DAG in a real Airflow 3 deployment with the CeleryExecutor and two workers.

Redis as the broker, the PostgreSQL metadata database as the Celery result backend; the same
components as the LocalExecutor test plus two ``airflow celery worker`` processes (concurrency 2
each), which name themselves in ``task_instance.hostname``. The deployment is the one
tests/e2e/test_campaign_workers.py also uses (fixture ``celery_deployment``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from e2e_deployment import CELERY_WORKERS as WORKERS
from e2e_deployment import assert_campaign_succeeded

if TYPE_CHECKING:
    from e2e_deployment import Deployment


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_campaign_with_celery_executor(celery_deployment: Deployment) -> None:
    airflow = celery_deployment  # shared (tests/e2e/conftest.py): both workers ready
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
