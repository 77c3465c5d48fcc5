"""A campaign across workers: one audience split into mapped send tasks sharing one ledger.

The pattern for a campaign too big for one task, or for one worker:

1. ``plan_shards`` counts the audience table in the warehouse and returns one descriptor per
   shard: the query of its recipients (``... WHERE id % 8 = 3``) and its concurrency, plus how
   many recipients each shard has. Only queries and counts go to XCom: no number, no name;
2. ``send_shard`` is ``SmSendSmsOperator.partial(...).expand_kwargs(...)`` over the
   descriptors: one mapped task per shard, which any worker of the CeleryExecutor may run, each
   reading its own recipients with ``recipients_sql`` when it runs. Every shard writes to one
   shared ledger (``ledger_conn_id``: PostgreSQL in production, any SQL database works), each
   under its own ledger job (``dag_id/task_id/run_id/map_index``). A worker killed mid-shard
   (out of memory, a lost host) leaves at most ``concurrency`` of its recipients ``sending``;
   Airflow retries the shard, on any worker, and the retry sends only the recipients the ledger
   has no outcome for. The interrupted ones are reported as ``unknown`` (their request left, the
   answer was lost: they may have had the SMS) and never resent (``resend_unknown=False``), so
   no one is texted twice. A shard succeeds with at most 1% of its recipients not accepted
   (``fail_on=0.01``): with only the interrupted recipients unknown, the retry succeeds and says
   how many there are;
3. ``add_up`` sums the totals of every map index (their XCom return values) and checks that each
   shard accounted for every recipient planned for it (its outcomes: accepted + rejected +
   unknown, and any other the operator reports, = its total = planned):
   the campaign's one line a human reads, with the unknown ones to check by hand.

The audience is a warehouse table with an integer ``id``, a ``number`` and a ``name`` column
(``params.audience_table``, default ``campaign_audience``); the demo fills a small one. Its
numbers must be unique, in their normalised (E.164) form: give the table a UNIQUE constraint
on the normalised number. The shards split on ``id``, and each shard's ledger job only knows its
own recipients, so one number on two rows (``333 123 4567`` and ``+393331234567``) can land in
two shards and be texted twice (one task drops a repeat as ``duplicate_recipient``; two shards
cannot see each other's). Params
choose the shards, the concurrency per shard and the connections:

    AIRFLOW_CONN_SMSEND_DEFAULT='smsend://demo:demo-pass@127.0.0.1:8765/?scheme=http'
    AIRFLOW_CONN_SMSEND_LEDGER='postgresql://airflow@db.example.com:5432/campaigns'
    AIRFLOW_CONN_WAREHOUSE='{"conn_type": "sqlite", "host": "/tmp/warehouse.db"}'

``SMSEND_EXAMPLE_RETRY_SECONDS`` (default 60) is the wait before a shard's retry.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.operators.sms import SmSendSmsOperator

RETRY_SECONDS = float(os.environ.get("SMSEND_EXAMPLE_RETRY_SECONDS", "60"))
#: A SQL name: the audience table is written into the shards' queries, so only a plain name passes.
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"

with DAG(
    dag_id="smsend_campaign_sharded",
    description="One campaign, mapped shards on any worker, one shared ledger, totals that add up",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
    params={
        "audience_table": Param("campaign_audience", type="string", pattern=TABLE_NAME),
        "shards": Param(4, type="integer", minimum=1, maximum=256, description="mapped send tasks"),
        "concurrency": Param(16, type="integer", minimum=1, maximum=64, description="requests per shard"),
        "warehouse_conn_id": Param("warehouse", type="string", description="SQL connection of the audience"),
        "ledger_conn_id": Param("smsend_ledger", type="string", description="the one shared ledger"),
        "sender": Param("ACME", type="string", maxLength=11),
    },
) as dag:

    @task
    def plan_shards(params: dict[str, Any], ti: Any = None) -> list[dict[str, Any]]:
        """One descriptor per shard (its query and concurrency); each shard's recipient count is
        pushed under the XCom key ``planned``."""
        from airflow.sdk import BaseHook

        table, shards = params["audience_table"], int(params["shards"])
        warehouse = BaseHook.get_connection(params["warehouse_conn_id"]).get_hook()
        counts = dict(
            warehouse.get_records(f"SELECT id % {shards}, COUNT(*) FROM {table} GROUP BY id % {shards}")
        )
        ti.xcom_push(key="planned", value=[int(counts.get(shard, 0)) for shard in range(shards)])
        return [
            {
                "recipients_sql": f"SELECT number, name FROM {table} WHERE id % {shards} = {shard}",
                "concurrency": int(params["concurrency"]),
            }
            for shard in range(shards)
        ]

    plan = plan_shards()

    # [START howto_operator_smsend_sms_sharded]
    send_shard = SmSendSmsOperator.partial(
        task_id="send_shard",
        recipients_conn_id="{{ params.warehouse_conn_id }}",
        ledger_conn_id="{{ params.ledger_conn_id }}",
        text="Ciao {{ recipient.name }}, i saldi iniziano sabato. Rispondi STOP per non ricevere altri SMS.",
        sender="{{ params.sender }}",
        fail_on=0.01,
        retries=3,
        retry_delay=dt.timedelta(seconds=RETRY_SECONDS),
    ).expand_kwargs(plan)
    # [END howto_operator_smsend_sms_sharded]

    @task(multiple_outputs=False)  # one XCom: the summary dict
    def add_up(results: Any, planned: list[int]) -> dict[str, Any]:
        """The campaign's totals: the sum over every map index, each shard checked against its plan."""
        from airflow.sdk.exceptions import AirflowFailException

        shards = list(results)  # the XCom return values of send_shard, by map index
        if len(shards) != len(planned):
            raise AirflowFailException(f"{len(shards)} shard results for {len(planned)} shards planned.")
        sums: dict[str, int] = {}
        cost = Decimal(0)
        for index, (result, expected) in enumerate(zip(shards, planned, strict=True)):
            totals = result["totals"]  # accepted, rejected, unknown (and any other outcome), total
            outcomes = sum(count for key, count in totals.items() if key != "total")
            if not outcomes == totals["total"] == expected:
                raise AirflowFailException(
                    f"Shard {index}: {outcomes} outcomes, totals {totals}, {expected} recipients planned: "
                    "they do not add up."
                )
            for key, count in totals.items():
                sums[key] = sums.get(key, 0) + count
            cost += Decimal(result["total_cost"])
        summary = {**sums, "shards": len(shards), "cost_eur": str(cost)}
        print(f"Campaign totals over {len(shards)} shards: {summary}")
        if sums.get("unknown"):
            print(
                f"{sums['unknown']} recipient(s) unknown: a worker stopped while their SMS was being sent; "
                "they may have received it and were not resent. Their ledger entries are in state 'sending'."
            )
        return summary

    add_up(send_shard.output, plan["planned"])
