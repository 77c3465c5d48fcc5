"""Warehouse loads as assets: a load emits an asset event for its table; a downstream DAG runs on it.

Two DAGs:

1. ``smsend_warehouse_load`` loads the reseller's operation log of the day (userlog-get
   ``credits``) into the warehouse table ``smsend_operation_log``. The load task has
   ``outlets=[OPERATION_LOG]``: each successful load emits an asset event, whose ``extra`` says
   what was loaded: ``{"table": ..., "rows": ..., "load_mode": ...}`` (no row data).
2. ``smsend_warehouse_report`` is scheduled on that asset: Airflow starts it after every load.
   It reads the event(s) that triggered it (run by hand: the asset's latest event, through
   ``inlets``) and sums the table's credit per client.

With the ``apache-airflow-providers-openlineage`` package installed, the load also reports its
lineage: input ``smsend://<gateway host>`` named ``userlog-get/credits``, output the table
(``sqlite://<file>`` ``smsend_operation_log`` in the demo).

Connections: ``smsend_default`` (with ``reseller_username``/``reseller_password`` extras) and
``warehouse`` (any SQL database; the demo uses SQLite).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Asset, task

from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

TABLE = "smsend_operation_log"
#: The warehouse table as an asset: the load is its producer, the report its consumer.
OPERATION_LOG = Asset(name=TABLE, uri=f"warehouse://{TABLE}", group="smsend")
DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="smsend_warehouse_load",
    description="Reseller operation log -> warehouse table (an asset event per load)",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example", "assets"],
):
    # [START howto_transfer_smsend_asset_outlet]
    load_operation_log = SmSendUserlogToSqlOperator(
        task_id="load_operation_log",
        log_type="credits",
        date_from=DAY,
        date_to=DAY,
        conn_id="warehouse",
        table=TABLE,
        outlets=[OPERATION_LOG],
    )
    # [END howto_transfer_smsend_asset_outlet]


with DAG(
    dag_id="smsend_warehouse_report",
    description="Runs after every load of the operation log: credit assigned per client",
    schedule=[OPERATION_LOG],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example", "assets"],
):

    @task(inlets=[OPERATION_LOG])
    def credit_per_client(triggering_asset_events: Any = None, inlet_events: Any = None) -> dict[str, Any]:
        """Sum the loaded table's credit per client; report what the triggering load said it loaded."""
        from decimal import Decimal

        from airflow.sdk import BaseHook

        events = list(triggering_asset_events[OPERATION_LOG]) if triggering_asset_events else []
        if not events:  # started by hand, not by a load: the asset's latest event
            events = list(inlet_events[OPERATION_LOG].ascending(False).limit(1))
        loads = [event.extra for event in events]
        print(f"Triggered by {len(loads)} load(s) of {OPERATION_LOG.name}: {loads}")

        warehouse = BaseHook.get_connection("warehouse").get_hook()
        totals: dict[str, Decimal] = {}
        for u_id, credit in warehouse.get_records(
            f"SELECT u_id, credit FROM {TABLE} WHERE report_type = 'credits' ORDER BY u_id"
        ):  # summed here, exactly (SQLite would sum NUMERIC as floating point)
            totals[str(u_id)] = totals.get(str(u_id), Decimal(0)) + Decimal(str(credit or 0))
        print(f"Credit assigned per client: {totals}")
        rows_loaded = sum(load.get("rows") or 0 for load in loads)
        return {
            "loads": len(loads),
            "rows_loaded": rows_loaded,
            "clients": {k: str(v) for k, v in totals.items()},
        }

    credit_per_client()
