"""Consent campaign: only customers who did not opt out, at most once a week each, in shop hours.

A marketing SMS campaign with the three rules of issue 19 on :class:`SmSendSmsOperator`
(README, "Consent before sending", "Frequency cap" and "Quiet hours"):

1. ``send_offer`` reads the customers from a CSV path (no customer in the Rendered Templates)
   and skips, before anything is estimated, sent or charged:

   - every number on the suppression list ``smsend_suppression`` in the warehouse (filled by the
     ``smsend_opt_out`` DAG when a customer replies STOP), reported ``suppressed``;
   - every number that already had one SMS of the campaign ``weekly-offer`` in the last 7 days, in
     any run (``max_per_recipient`` counts the ledger's accepted sends of the campaign), reported
     ``capped``;

   and sends only inside the send window (09:00-20:00, Monday to Saturday, Rome time): started
   outside it, the task defers (no worker slot held) until it opens; if the window closes mid-send
   it stops starting requests, defers to the next opening and resumes with the customers not yet
   texted (the ledger keeps the progress).
2. ``summary`` prints the totals: accepted, suppressed, capped, cost.

Connections: ``smsend_default``, ``smsend_ledger`` (any SQL database: it is also the cap's history)
and ``warehouse`` (any SQL database, holding ``smsend_suppression``). The window's hours can be set
with ``SMSEND_WINDOW_START``, ``SMSEND_WINDOW_END`` and ``SMSEND_WINDOW_DAYS`` (the demo opens it a
few seconds after it starts, to show the deferral). The triggerer must run for the deferral
(``airflow triggerer``; ``airflow dags test`` runs it in-process).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.client.window import SendWindow
from airflow_provider_smsend.operators.sms import SmSendSmsOperator

CUSTOMERS_CSV = os.environ.get("SMSEND_CUSTOMERS_CSV", str(Path(__file__).parent / "data" / "customers.csv"))

with DAG(
    dag_id="smsend_consent_campaign",
    description="Suppression list, frequency cap and quiet hours on one campaign",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
    params={
        "customers_csv": Param(CUSTOMERS_CSV, type="string", description="CSV with number,name,... columns"),
        "sender": Param("ACME", type="string", maxLength=11),
    },
) as dag:
    # [START howto_operator_smsend_sms_consent]
    send_offer = SmSendSmsOperator(
        task_id="send_offer",
        recipients="{{ params.customers_csv }}",
        text="Ciao {{ recipient.name }}, questa settimana -20% per te. Rispondi STOP per non ricevere altri SMS.",
        sender="{{ params.sender }}",
        suppression_conn_id="warehouse",
        suppression_table="smsend_suppression",
        campaign="weekly-offer",
        max_per_recipient=(1, dt.timedelta(days=7)),
        send_window=SendWindow(
            start=os.environ.get("SMSEND_WINDOW_START", "09:00"),
            end=os.environ.get("SMSEND_WINDOW_END", "20:00"),
            days=os.environ.get("SMSEND_WINDOW_DAYS", "mon-sat"),
            tz="Europe/Rome",
        ),
        fail_on=0.2,
    )
    # [END howto_operator_smsend_sms_consent]

    @task
    def summary(sent: dict[str, Any]) -> dict[str, Any]:
        """One line a human reads: who was texted, who was skipped and why, the cost."""
        totals = sent["totals"]
        result = {key: totals[key] for key in ("accepted", "rejected", "suppressed", "capped", "total")}
        result["cost_eur"] = sent["total_cost"]
        print(f"Consent campaign summary: {result}")
        return result

    summary(send_offer.output)
