"""Reply workflow: ask a customer a question by SMS, wait for the answer, branch on it.

1. ``ask`` sends "Confermi l'appuntamento di domani? Rispondi SI o NO" to the customer, with
   the reception number as sender so the reply comes back to it;
2. ``wait_reply`` waits (deferred in the triggerer, no worker slot held) for an inbound SMS from
   that customer on the reception number and share code, whose text starts with SI or NO;
   messages received before the question are ignored;
3. ``decide`` branches on the answer alone (the sensor's ``include_groups``: the regex's named
   groups, never the text): ``confirm`` or ``cancel``.

Params: the customer's ``customer_id`` in the warehouse table ``customers`` (``id``, ``number``,
``name``), and the reception number + share code of the account (created once with
``SmSendAddReceptionOperator``). The customer's number is read from the warehouse when the tasks
run (``recipients_sql``, ``sender_sql``): it never becomes a DAG-run conf, a rendered template
field, an XCom or a log line. Connections: ``smsend_default`` (the receiveSms service answers on
the ``receive_host`` extra, default the same host) and ``warehouse`` (any SQL database).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.operators.sms import SmSendSmsOperator
from airflow_provider_smsend.sensors.inbound import SmSendInboundSmsSensor

POLL_SECONDS = float(os.environ.get("SMSEND_EXAMPLE_POLL_SECONDS", "20"))

with DAG(
    dag_id="smsend_reply_workflow",
    description="Ask by SMS, wait for the reply, branch on it",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
    params={
        "customer_id": Param(1, type="integer", description="the customer's id in the table customers"),
        "reception_number": Param("+393400000001", type="string"),
        "sharecode": Param("001", type="string"),
    },
) as dag:
    customer_number = "SELECT number FROM customers WHERE id = {{ params.customer_id | int }}"
    ask = SmSendSmsOperator(
        task_id="ask",
        recipients_sql=customer_number,
        recipients_conn_id="warehouse",
        text="Confermi l'appuntamento di domani? Rispondi SI o NO",
        sender="{{ params.reception_number }}",
    )

    # [START howto_sensor_smsend_inbound]
    wait_reply = SmSendInboundSmsSensor(
        task_id="wait_reply",
        rcpt="{{ params.reception_number }}",
        sharecode="{{ params.sharecode }}",
        sender_sql=customer_number,
        sender_conn_id="warehouse",
        text_pattern=r"^\s*(?P<answer>si|sì|no)\b",
        include_groups=True,  # decide() reads the answer, the one named group; the text stays out of XCom
        poke_interval=POLL_SECONDS,
        max_poll_interval=4 * POLL_SECONDS,
        timeout=24 * 3600,
        deferrable=True,
    )
    # [END howto_sensor_smsend_inbound]

    @task.branch
    def decide(reply: dict) -> str:
        """Route on the customer's answer."""
        answer = (reply["named_groups"].get("answer") or "").lower()
        return "confirm" if answer in ("si", "sì") else "cancel"

    @task
    def confirm(reply: dict) -> str:
        print(f"Appointment confirmed by SMS {reply['id']} at {reply['received_at']}")
        return "confirmed"

    @task
    def cancel(reply: dict) -> str:
        print(f"Appointment cancelled by SMS {reply['id']} at {reply['received_at']}")
        return "cancelled"

    ask >> wait_reply
    decide(wait_reply.output) >> [confirm(wait_reply.output), cancel(wait_reply.output)]
