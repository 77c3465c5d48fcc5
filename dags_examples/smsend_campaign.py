"""Campaign: recipients from a CSV -> number check -> bulk send -> wait for delivery -> warehouse.

The whole life of an SMS campaign in one DAG:

1. ``check_numbers`` asks the gateway's mobile number check (MNC) for every number of the CSV
   (invalid numbers are left out and reported, never sent);
2. ``wait_number_check`` waits, deferred in the triggerer, until 90% of the checks are answered;
3. ``select_recipients`` keeps the customers whose number the network knows (MNC 2xx) and writes
   them to the warehouse table ``campaign_recipients`` (keyed by the DAG run): customers are
   personal data, so they travel through the warehouse, never through XCom;
4. ``send_campaign`` reads them back with ``recipients_sql`` and sends each one a personalised SMS
   in one task (bounded concurrency, rate limit, ledger: a retried task never sends a message
   twice); neither the recipients nor the texts land in XCom or the Rendered Templates;
5. ``wait_delivery`` waits, deferred, until 80% are delivered (or the rest failed);
6. ``load_delivery_report`` loads the delivery report into the warehouse table ``sms_delivery``
   (idempotent: a re-run replaces the rows of the same request ids);
7. ``load_outcomes`` loads what the send did for each recipient (accepted, rejected, unknown, cost,
   request id; numbers masked, a keyed pseudonym to join on) from the ledger into the warehouse
   table ``smsend_outcomes``, as soon as the send ends;
8. ``summary`` reports counts and cost.

Connections: ``smsend_default`` (the gateway), ``smsend_ledger`` (any SQL database, for retry
safety) and ``warehouse`` (any SQL database). Against the local sandbox::

    AIRFLOW_CONN_SMSEND_DEFAULT='smsend://demo:demo-pass@127.0.0.1:8765/?scheme=http'
    AIRFLOW_CONN_SMSEND_LEDGER='{"conn_type": "sqlite", "host": "/tmp/smsend-ledger.db"}'
    AIRFLOW_CONN_WAREHOUSE='{"conn_type": "sqlite", "host": "/tmp/warehouse.db"}'
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.operators.mnc import SmSendMncOperator
from airflow_provider_smsend.operators.sms import SmSendSmsOperator
from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator
from airflow_provider_smsend.transfers.outcomes_to_sql import SmSendOutcomesToSqlOperator

CUSTOMERS_CSV = os.environ.get("SMSEND_CUSTOMERS_CSV", str(Path(__file__).parent / "data" / "customers.csv"))
POLL_SECONDS = float(os.environ.get("SMSEND_EXAMPLE_POLL_SECONDS", "30"))

with DAG(
    dag_id="smsend_campaign",
    description="CSV -> MNC -> bulk SMS -> delivery -> warehouse",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
    params={
        "customers_csv": Param(CUSTOMERS_CSV, type="string", description="CSV with number,name,... columns"),
        "sender": Param("ACME", type="string", maxLength=11),
    },
) as dag:
    # [START howto_operator_smsend_mnc]
    check_numbers = SmSendMncOperator(
        task_id="check_numbers",
        csv_path="{{ params.customers_csv }}",
        csv_column="number",
        on_invalid="skip",
    )
    # [END howto_operator_smsend_mnc]

    # [START howto_sensor_smsend_batch_status_mnc]
    wait_number_check = SmSendBatchStatusSensor(
        task_id="wait_number_check",
        request_ids=check_numbers.output["request_ids"],
        report_type="mnc",
        success_rule=0.9,  # a few numbers may stay unanswered: don't hold the campaign for them
        fail_fast=False,
        poke_interval=POLL_SECONDS,
        max_poll_interval=4 * POLL_SECONDS,
        timeout=3600,
        deferrable=True,
    )
    # [END howto_sensor_smsend_batch_status_mnc]

    @task
    def select_recipients(customers_csv: str, number_check: dict[str, Any], run_id: str | None = None) -> int:
        """Customers whose number the network knows (MNC 2xx), with their CSV fields, written to the
        warehouse table ``campaign_recipients`` for this run; returns how many (the only XCom)."""
        from airflow.sdk import BaseHook

        from airflow_provider_smsend.client.errors import SmSendValidationError
        from airflow_provider_smsend.client.numbers import normalize_number
        from airflow_provider_smsend.hooks.smsend import SmSendHook

        # every mnc report at once: fetched concurrently, parsed into one pandas DataFrame
        checks = SmSendHook().client.batch_status_frame(number_check["request_ids"], "mnc", concurrency=8)
        known = set(checks.loc[checks["status"] // 100 == 2, "dest"])
        chosen = []
        with open(customers_csv, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    number = normalize_number(row["number"])
                except SmSendValidationError:
                    continue  # reported by check_numbers, never sent
                if number in known:
                    chosen.append((run_id, number, row["name"], row["city"]))
        warehouse = BaseHook.get_connection("warehouse").get_hook()
        warehouse.run(
            "CREATE TABLE IF NOT EXISTS campaign_recipients "
            "(run_id VARCHAR(250), number VARCHAR(32), name VARCHAR(255), city VARCHAR(255))"
        )
        mark = getattr(warehouse, "placeholder", "%s")  # "?" for SQLite, "%s" for most others
        warehouse.run(f"DELETE FROM campaign_recipients WHERE run_id = {mark}", parameters=(run_id,))
        warehouse.insert_rows(
            "campaign_recipients", chosen, target_fields=["run_id", "number", "name", "city"]
        )
        return len(chosen)

    recipients = select_recipients(
        "{{ params.customers_csv }}", wait_number_check.output
    )  # run_id: from the context

    # [START howto_operator_smsend_sms]
    send_campaign = SmSendSmsOperator(
        task_id="send_campaign",
        recipients_sql="SELECT number, name, city FROM campaign_recipients WHERE run_id = '{{ run_id }}'",
        recipients_conn_id="warehouse",
        text="Ciao {{ recipient.name }}! Solo per i clienti di {{ recipient.city }}: -20% fino a domenica.",
        sender="{{ params.sender }}",
        concurrency=8,
        rate_limit=50,
        fail_on=0.2,
    )
    # [END howto_operator_smsend_sms]

    # [START howto_sensor_smsend_batch_status]
    wait_delivery = SmSendBatchStatusSensor(
        task_id="wait_delivery",
        request_ids=send_campaign.output["request_ids"],
        report_type="notify",
        success_rule=0.8,
        poke_interval=POLL_SECONDS,
        max_poll_interval=4 * POLL_SECONDS,
        timeout=6 * 3600,
        deferrable=True,
    )
    # [END howto_sensor_smsend_batch_status]

    # [START howto_transfer_smsend_batch_status_to_sql]
    load_delivery_report = SmSendBatchStatusToSqlOperator(
        task_id="load_delivery_report",
        request_ids=send_campaign.output["request_ids"],
        report_type="notify",
        conn_id="warehouse",
        table="sms_delivery",
    )
    # [END howto_transfer_smsend_batch_status_to_sql]

    # [START howto_transfer_smsend_outcomes_to_sql]
    load_outcomes = SmSendOutcomesToSqlOperator(
        task_id="load_outcomes",
        send_task_id="send_campaign",
        conn_id="warehouse",
    )
    # [END howto_transfer_smsend_outcomes_to_sql]

    @task
    def summary(sent: dict[str, Any], delivery: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
        """One line a human reads: sent, delivered, cost, rows loaded."""
        result = {
            "accepted": sent["totals"]["accepted"],
            "rejected": sent["totals"]["rejected"],
            "unknown": sent["totals"]["unknown"],
            "cost_eur": sent["total_cost"],
            "delivered": delivery["delivered"],
            "delivered_ratio": delivery["delivered_ratio"],
            "rows_loaded": loaded["rows"],
        }
        print(f"Campaign summary: {result}")
        return result

    recipients >> send_campaign >> load_outcomes
    wait_delivery >> load_delivery_report
    summary(send_campaign.output, wait_delivery.output, load_delivery_report.output)
