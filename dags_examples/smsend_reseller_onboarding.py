"""Reseller onboarding: create a client, give it credit, top up an existing one, open a reception.

The new client's password comes from the Variable ``smsend_new_client_password`` (masked by
Airflow, as every Variable whose name says "password"). Every back-office call is retry-safe:
the ledger makes sure a retried task never creates the client twice, never assigns the same credit
twice (an ambiguous assignment is resolved by reading the gateway's operation log), and never
opens a second reception.

Connections: ``smsend_default`` with the reseller's credentials in the ``reseller_username`` /
``reseller_password`` extras, and ``smsend_ledger`` (any SQL database).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from airflow_provider_smsend.operators.backoffice import (
    SmSendAddReceptionOperator,
    SmSendAssignCreditOperator,
    SmSendCreateClientOperator,
    SmSendCreditCheckOperator,
)

with DAG(
    dag_id="smsend_reseller_onboarding",
    description="Reseller: new client, credit, top-up, reception number",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example", "reseller"],
    params={
        "client_name": Param("Pizzeria Da Gino", type="string"),
        "client_username": Param("pizzeria-gino", type="string"),
        "initial_credit": Param("25.0000", type="string"),
        "topup_client": Param(1001, type="integer"),
        "topup_credit": Param("10.5000", type="string"),
        "reception_number": Param("+393400000001", type="string"),
    },
) as dag:
    # [START howto_operator_smsend_backoffice]
    create_client = SmSendCreateClientOperator(
        task_id="create_client",
        name="{{ params.client_name }}",
        username="{{ params.client_username }}",
        password="{{ var.value.smsend_new_client_password }}",
        client_email="billing@example.com",
    )

    initial_credit = SmSendAssignCreditOperator(
        task_id="initial_credit",
        u_id=create_client.output["client_id"],
        bill_id=1,
        credit="{{ params.initial_credit }}",
    )

    topup = SmSendAssignCreditOperator(
        task_id="topup",
        u_id="{{ params.topup_client }}",
        bill_id=1,
        credit="{{ params.topup_credit }}",
    )

    check_topup = SmSendCreditCheckOperator(
        task_id="check_topup",
        u_id="{{ params.topup_client }}",
        min_credit="{{ params.topup_credit }}",
        mode="fail",
    )

    open_reception = SmSendAddReceptionOperator(
        task_id="open_reception",
        u_id="{{ params.topup_client }}",
        dest="{{ params.reception_number }}",
        num=1,
    )
    # [END howto_operator_smsend_backoffice]

    create_client >> initial_credit
    topup >> check_topup >> open_reception
