"""MMS offer: send a picture with a subject and a text to the customers chosen in the warehouse.

1. ``send_offer`` sends one MMS (the sendMms SOAP service) with ``data/offer.gif`` to the
   customers the query selects in the warehouse table ``customers`` (``id``, ``number``,
   ``name``). Everything is checked before the gateway is asked: subject and text length and
   character set, each number, the image's size and type (from its content). The numbers are
   read when the task runs (``recipients_sql``): they never become a rendered template field, an
   XCom or a log line (the log masks them). An MMS is charged, so a retried task never sends it
   twice (the ``smsend_ledger`` ledger).
2. ``report`` logs the cost, the only XCom.

Connections: ``smsend_default`` with the MMS account's ``mms_id`` and ``mms_password`` extras
(``mms_auth=md5`` if the account uses MD5 tickets), ``smsend_ledger`` and ``warehouse`` (any SQL
database). Against the local sandbox::

    AIRFLOW_CONN_SMSEND_DEFAULT='smsend://demo:demo-pass@127.0.0.1:8765/?scheme=http&mms_id=C00000_001&mms_password=mms-pass'
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsend.operators.mms import SmSendMmsOperator

OFFER_IMAGE = str(Path(__file__).parent / "data" / "offer.gif")

with DAG(
    dag_id="smsend_mms_offer",
    description="A picture offer by MMS to customers chosen in the warehouse",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
    params={
        "max_customer_id": Param(
            1, type="integer", description="customers with an id up to this get the offer"
        ),
        "image": Param(
            OFFER_IMAGE, type="string", description="the picture: JPEG, GIF or PNG, at most 100 kB"
        ),
    },
) as dag:
    # [START howto_operator_smsend_mms]
    send_offer = SmSendMmsOperator(
        task_id="send_offer",
        subject="Offerta {{ dag_run.run_after | ds }}",
        text="Mostra questa immagine in cassa: sconto del 10% fino a domenica.",
        recipients_sql="SELECT number FROM customers WHERE id <= {{ params.max_customer_id | int }}",
        recipients_conn_id="warehouse",
        image="{{ params.image }}",
    )
    # [END howto_operator_smsend_mms]

    @task
    def report(sent: dict[str, Any]) -> None:
        logging.getLogger(__name__).info(
            "MMS offer summary: %s recipient(s), %s EUR%s",
            sent["recipients"], sent["cost"], " (sent by an earlier try)" if sent["resumed"] else "",
        )  # fmt: skip

    report(send_offer.output)
