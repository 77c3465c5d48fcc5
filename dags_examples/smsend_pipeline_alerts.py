"""Pipeline alerts: a small ETL whose failures page the on-call engineer by SMS.

``SmSendNotifier`` sits on every task's ``on_failure_callback`` (through ``default_args``) and on
the DAG's own ``on_failure_callback``; the default text names the DAG, the task, the run, the try
and a short log link, fitted to one SMS. When the load succeeds, ``report_success`` sends a
one-line summary with the row count.

Trigger with ``{"fail": true}`` (``airflow dags test smsend_pipeline_alerts --conf '{"fail": true}'``)
to see the alert path. Connection: ``smsend_default``; the on-call number is the DAG param
``oncall``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.notifications.smsend import SmSendNotifier
from airflow_provider_smsend.operators.sms import SmSendSmsOperator

ONCALL = "+393331112233"

with DAG(
    dag_id="smsend_pipeline_alerts",
    description="ETL with SMS alerts on failure and a success summary",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
    params={"fail": Param(False, type="boolean"), "oncall": Param(ONCALL, type="string")},
    # [START howto_notifier_smsend]
    default_args={
        "retries": 0,
        "on_failure_callback": SmSendNotifier(recipients="{{ params.oncall }}", sender="ALERTS"),
    },
    on_failure_callback=SmSendNotifier(
        recipients="{{ params.oncall }}",
        sender="ALERTS",
        text="DAG {{ dag.dag_id }} failed (run {{ run_id }}).",
    ),
    # [END howto_notifier_smsend]
) as dag:

    @task
    def extract(**context) -> list[dict[str, int]]:
        """Pretend to read yesterday's orders."""
        return [{"order_id": i, "amount_cents": 1000 + i} for i in range(250)]

    @task
    def transform(rows: list[dict[str, int]], **context) -> int:
        """Validate the rows; fails on purpose when the run's conf says so."""
        if context["params"]["fail"]:
            raise ValueError("Order 42 has a negative amount: refusing to load.")
        return len(rows)

    loaded = transform(extract())

    report_success = SmSendSmsOperator(
        task_id="report_success",
        recipients="{{ params.oncall }}",
        text="ETL {{ dag.dag_id }} {{ dag_run.run_after | ds }}: {{ ti.xcom_pull(task_ids='transform') }} rows loaded.",
        sender="ALERTS",
        ledger_conn_id="smsend_ledger",
    )
    loaded >> report_success
