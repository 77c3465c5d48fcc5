"""Example DAGs in a real Airflow 3 deployment with the LocalExecutor.

PostgreSQL metadata database, api-server (with the Execution API), scheduler, dag-processor and
triggerer as separate processes; the smSend sandbox as the gateway. The campaign DAG's run under
the LocalExecutor (:func:`e2e_deployment.assert_campaign_succeeded`) is in tests/e2e/test_privacy.py,
which searches that deployment for personal data afterwards: one deployment for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2e_deployment import Deployment


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_mapped_sends_under_a_real_scheduler(deployment: Callable[..., Deployment]) -> None:
    """.partial().expand() and .expand_kwargs() of the SMS operator, scheduled for real, on a run
    triggered without a logical date: every mapped instance fills its recipient's text."""
    airflow = deployment("LocalExecutor")
    airflow.wait_for("the api-server", lambda: airflow.api("monitor/health"), 120)
    run_id, state, tasks = airflow.run_dag("smsend_mapped_reminders")
    assert state == "success", f"{run_id}: {tasks}\n{airflow.report()}"
    assert tasks["remind"] == ["success", "success"] and tasks["remind_by_city"] == ["success", "success"], (
        tasks
    )
    assert airflow.sandbox is not None
    texts = {m["rcpt"]: m["text"] for m in airflow.sandbox.admin("messages?kind=sms")["messages"]}
    assert texts["+393331112341"].startswith("Ciao Anna,") and texts["+393331112342"].startswith(
        "Ciao Bruno,"
    )
    assert texts["+393331112344"] == texts["+393331112345"] == "Milano: il negozio apre alle 9."
