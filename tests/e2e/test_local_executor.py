"""The campaign DAG in a real Airflow 3 deployment with the LocalExecutor.

PostgreSQL metadata database, api-server (with the Execution API), scheduler, dag-processor and
triggerer as separate processes; the smSend sandbox as the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from e2e_deployment import assert_campaign_succeeded

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2e_deployment import Deployment


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_campaign_with_local_executor(deployment: Callable[..., Deployment]) -> None:
    airflow = deployment("LocalExecutor")
    run = airflow.run_campaign()
    print(f"campaign run {run.run_id}: {run.state} in {run.seconds:.0f} s; states {run.states}")
    assert_campaign_succeeded(airflow, run)
