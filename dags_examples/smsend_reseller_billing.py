"""Nightly reseller billing reconciliation: operation log + balances -> warehouse -> checks -> SMS alert.

For the day before the run's logical date (``day``), per client of the reseller:

1. ``load_credit_log`` loads the gateway's log of credit assignments (userlog-get ``credits``);
2. ``snapshot_balances`` stores every client's balance in a dated snapshot table;
3. ``reconcile`` computes, to the cent of a cent, per client:

   - ``assigned_log``: credit the gateway says it assigned that day;
   - ``assigned_ledger``: credit this Airflow assigned (``SmSendAssignCreditOperator``'s ledger);
   - ``consumption`` = previous balance + ``assigned_log`` - balance: what the client spent;
   - ``sms_spend``: cost of the SMS this Airflow sent that day for the clients in
     ``ledger_clients`` (the send ledger records the gateway's cost of every accepted message);

   and flags a client when ``assigned_log != assigned_ledger`` (an assignment missing or made
   twice), when ``consumption < 0`` (credit appeared from nowhere), or when
   ``consumption < sms_spend`` (the gateway charged less than it reported). Results go to the
   table ``smsend_reconciliation``;
4. ``alert`` sends an SMS to the billing team if any client does not match.

The first run has no previous snapshot: it records the baseline and checks only the assignments.

Connections: ``smsend_default`` (with ``reseller_username``/``reseller_password`` extras),
``warehouse`` and ``smsend_ledger`` (any SQL databases; the demo uses SQLite for both).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.operators.sms import SmSendSmsOperator
from airflow_provider_smsend.transfers.credits_to_sql import SmSendCreditsToSqlOperator
from airflow_provider_smsend.transfers.userlog_to_sql import SmSendUserlogToSqlOperator

DAY = "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}"

with DAG(
    dag_id="smsend_reseller_billing",
    description="Reseller: credit log + balances -> warehouse -> reconciliation -> SMS alert",
    schedule="30 1 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example", "reseller"],
    render_template_as_native_obj=True,
    params={
        "clients": Param([1001, 1002], type="array", description="client ids (u_id) of the reseller"),
        "ledger_clients": Param([1001], type="array", description="clients whose sends use this Airflow"),
        "billing_team": Param("+393331112244", type="string"),
    },
) as dag:
    # [START howto_transfer_smsend_userlog_to_sql]
    load_credit_log = SmSendUserlogToSqlOperator(
        task_id="load_credit_log",
        log_type="credits",
        date_from=DAY,
        date_to=DAY,
        conn_id="warehouse",
        table="smsend_userlog",
    )
    # [END howto_transfer_smsend_userlog_to_sql]

    # [START howto_transfer_smsend_credits_to_sql]
    snapshot_balances = SmSendCreditsToSqlOperator(
        task_id="snapshot_balances",
        u_ids="{{ params.clients }}",
        snapshot_date=DAY,
        conn_id="warehouse",
        table="smsend_credit_snapshot",
    )
    # [END howto_transfer_smsend_credits_to_sql]

    @task
    def reconcile(day: str, clients: list[int], ledger_clients: list[int]) -> dict[str, Any]:
        """Compare the gateway's log, the balances and this Airflow's ledgers, exactly."""
        from airflow.sdk import BaseHook

        from airflow_provider_smsend.client.reports import ROME
        from airflow_provider_smsend.operators.base import ledger_for

        warehouse = BaseHook.get_connection("warehouse").get_hook()
        ledger = ledger_for("smsend_ledger")
        p = warehouse.placeholder
        the_day = dt.date.fromisoformat(day)
        previous_day = (the_day - dt.timedelta(days=1)).isoformat()

        def balances(on: str) -> dict[int, Decimal]:
            rows = warehouse.get_records(
                f"SELECT u_id, credit FROM smsend_credit_snapshot WHERE snapshot_date = {p}", parameters=(on,)
            )
            return {int(u): Decimal(str(c)) for u, c in rows}

        def rome_day(timestamp: str) -> dt.date:
            return dt.datetime.fromisoformat(timestamp).astimezone(ROME).date()

        today, before = balances(day), balances(previous_day)
        assigned_log: dict[int, Decimal] = {}
        for u_id, credit in warehouse.get_records(
            f"SELECT u_id, credit FROM smsend_userlog WHERE report_type = 'credits' AND date_from = {p}",
            parameters=(day,),
        ):
            assigned_log[int(u_id)] = assigned_log.get(int(u_id), Decimal(0)) + Decimal(str(credit or 0))
        assigned_ledger: dict[int, Decimal] = {}
        sms_spend = Decimal(0)
        for entry in ledger.entries(state="accepted"):
            if rome_day(entry.updated_at) != the_day:
                continue
            if entry.item.startswith("credit_add:"):
                _, u_id, _bill_id, amount = entry.item.split(":", 3)
                if amount:
                    assigned_ledger[int(u_id)] = assigned_ledger.get(int(u_id), Decimal(0)) + Decimal(amount)
            elif entry.item.startswith("+") and entry.cost:
                sms_spend += Decimal(entry.cost)
        ledger.close()

        results = []
        for u_id in clients:
            row: dict[str, Any] = {
                "day": day,
                "u_id": u_id,
                "previous_balance": before.get(u_id),
                "balance": today.get(u_id),
                "assigned_log": assigned_log.get(u_id, Decimal(0)),
                "assigned_ledger": assigned_ledger.get(u_id, Decimal(0)),
                "sms_spend": sms_spend if u_id in ledger_clients else None,
                "consumption": None,
            }
            problems = []
            if row["assigned_log"] != row["assigned_ledger"]:
                problems.append("assignments differ")
            if row["balance"] is None:
                problems.append("no balance")
            elif row["previous_balance"] is not None:
                row["consumption"] = row["previous_balance"] + row["assigned_log"] - row["balance"]
                if row["consumption"] < 0:
                    problems.append("credit grew without an assignment")
                if row["sms_spend"] is not None and row["consumption"] < row["sms_spend"]:
                    problems.append("charged less than the SMS sent")
            row["status"] = "; ".join(problems) or (
                "ok" if row["previous_balance"] is not None else "baseline"
            )
            results.append(row)

        warehouse.run(
            "CREATE TABLE IF NOT EXISTS smsend_reconciliation (day VARCHAR(10), u_id BIGINT, previous_balance "
            "VARCHAR(32), balance VARCHAR(32), assigned_log VARCHAR(32), assigned_ledger VARCHAR(32), "
            "sms_spend VARCHAR(32), consumption VARCHAR(32), status VARCHAR(255))"
        )
        columns = list(results[0]) if results else []
        statements = [f"DELETE FROM smsend_reconciliation WHERE day = {p}"]
        parameters: list[tuple[Any, ...]] = [(day,)]
        for row in results:
            statements.append(
                f"INSERT INTO smsend_reconciliation ({', '.join(columns)}) VALUES ({', '.join([p] * len(columns))})"
            )
            parameters.append(tuple(None if row[c] is None else str(row[c]) for c in columns))
        with warehouse.get_conn() as conn:  # one transaction: the day's rows are replaced whole
            cursor = conn.cursor()
            for sql, params in zip(statements, parameters, strict=True):
                cursor.execute(sql, params)
            conn.commit()
        mismatches = [r for r in results if r["status"] not in ("ok", "baseline")]
        summary = {
            "day": day,
            "clients": len(results),
            "mismatches": [{"u_id": r["u_id"], "status": r["status"]} for r in mismatches],
            "rows": [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in r.items()} for r in results],
        }
        print(f"Reconciliation {day}: {len(results)} client(s), {len(mismatches)} mismatch(es)")
        return summary

    @task.short_circuit
    def anything_wrong(summary: dict[str, Any]) -> bool:
        """Continue to the alert only when a client does not match."""
        return bool(summary["mismatches"])

    result = reconcile(DAY, "{{ params.clients }}", "{{ params.ledger_clients }}")
    [load_credit_log, snapshot_balances] >> result

    alert = SmSendSmsOperator(
        task_id="alert",
        recipients="{{ params.billing_team }}",
        text="Billing {{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}: {{ ti.xcom_pull(task_ids='reconcile')['mismatches'] | length }} "
        "client(s) do not reconcile. See smsend_reconciliation.",
        sender="BILLING",
    )
    anything_wrong(result) >> alert
