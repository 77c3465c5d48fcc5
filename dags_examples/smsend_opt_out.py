"""Opt-outs: every SMS received on the reception number starts a run; STOP / CANCELLAMI unsubscribes.

Event-driven scheduling (Airflow 3 ``AssetWatcher``): the asset ``smsend_inbound_replies`` is
watched by :class:`~airflow_provider_smsend.triggers.inbound_event.SmSendInboundSmsEventTrigger`,
which polls receiveSms in the triggerer and fires one asset event per new SMS, each once, even
across triggerer restarts (its cursor lives in the warehouse, table ``smsend_inbound_cursor``).
The event holds the message id and masked numbers, never the text. Each event schedules a run:

1. ``record_replies`` reads the messages of this run's events by id, loads them into
   ``smsend_inbound`` (numbers masked, no text) and adds the senders of the replies that are
   exactly ``STOP`` or ``CANCELLAMI`` (any case, accents, punctuation) to the suppression list
   ``smsend_suppression``, which the SMS operator skips (README, "Consent before sending").

A manual run (``airflow dags test smsend_opt_out``, as the demo does) has no events: it loads
every SMS listed, which is also how to catch up after an outage. The triggerer must run for the
watcher to fire (``airflow triggerer``).

Connections: ``smsend_default`` and ``warehouse`` (any SQL database). The reception number and
share code (created once with ``SmSendAddReceptionOperator``) come from the environment
variables ``SMSEND_OPT_OUT_RECEPTION`` and ``SMSEND_OPT_OUT_SHARECODE``: a watcher's trigger is
built when the DAG is parsed, so it cannot take a template or a param.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_smsend.transfers.inbound_to_sql import SmSendInboundToSqlOperator
from airflow_provider_smsend.triggers.inbound_event import SmSendInboundSmsEventTrigger

RECEPTION = os.environ.get("SMSEND_OPT_OUT_RECEPTION", "+393400000001")
SHARECODE = os.environ.get("SMSEND_OPT_OUT_SHARECODE", "001")
POLL_SECONDS = float(os.environ.get("SMSEND_EXAMPLE_POLL_SECONDS", "30"))

# [START howto_trigger_smsend_inbound_event]
replies = Asset(
    name="smsend_inbound_replies",
    watchers=[
        AssetWatcher(
            name="smsend_inbound_replies_watcher",
            trigger=SmSendInboundSmsEventTrigger(
                rcpt=RECEPTION,
                sharecode=SHARECODE,
                cursor_conn_id="warehouse",
                poll_interval=POLL_SECONDS,
            ),
        )
    ],
)
# [END howto_trigger_smsend_inbound_event]

with DAG(
    dag_id="smsend_opt_out",
    description="Each SMS received starts a run; STOP / CANCELLAMI adds the sender to the suppression list",
    schedule=[replies],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
) as dag:
    # [START howto_transfer_smsend_inbound_to_sql]
    record_replies = SmSendInboundToSqlOperator(
        task_id="record_replies",
        rcpt=RECEPTION,
        sharecode=SHARECODE,
        conn_id="warehouse",
        table="smsend_inbound",
        opt_out_keywords=["STOP", "CANCELLAMI"],
        suppression_table="smsend_suppression",
    )
    # [END howto_transfer_smsend_inbound_to_sql]
