"""Reminders with dynamic task mapping: one send task per customer group, texts per recipient.

Airflow's dynamic task mapping with the SMS operator, the two ways users write it:

1. ``remind`` — ``SmSendSmsOperator.partial(text=...).expand(recipients=...)`` over a list of
   customer dicts: each mapped task gets one customer (a dict is one recipient) and fills
   ``{{ recipient.name }}`` for them;
2. ``remind_by_city`` — ``.expand_kwargs(...)`` over one dict of arguments per city: each mapped
   task sends its own text to its own list.

Each mapped task instance has its own ledger job (its map index is in the key), so a retry of
one instance resends nothing the others sent. No template uses ``ds``: a run triggered without
a logical date (the REST API, ``airflow dags trigger``) works the same.

Connections: ``smsend_default`` and ``smsend_ledger``, as for the campaign example.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider_smsend.operators.sms import SmSendSmsOperator

with DAG(
    dag_id="smsend_mapped_reminders",
    description="Dynamic task mapping: .partial().expand() and .expand_kwargs() with per-recipient texts",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["smsend", "example"],
) as dag:

    @task(show_return_value_in_logs=False)  # customers are personal data: not in the task log
    def customers_due() -> list[dict[str, str]]:
        """The customers with an appointment tomorrow (a query of your CRM, in real life)."""
        return [
            {"number": "+393331112341", "name": "Anna"},
            {"number": "+393331112342", "name": "Bruno"},
        ]

    # [START howto_operator_smsend_sms_mapped]
    SmSendSmsOperator.partial(
        task_id="remind",
        text="Ciao {{ recipient.name }}, ti aspettiamo domani. Rispondi STOP per non ricevere promemoria.",
        sender="ACME",
    ).expand(recipients=customers_due())

    @task(show_return_value_in_logs=False)
    def city_messages() -> list[dict[str, object]]:
        """One set of arguments per city: its recipients and its text."""
        return [
            {"recipients": ["+393331112343"], "text": "Roma: il negozio apre alle 10."},
            {"recipients": ["+393331112344", "+393331112345"], "text": "Milano: il negozio apre alle 9."},
        ]

    SmSendSmsOperator.partial(task_id="remind_by_city", sender="ACME").expand_kwargs(city_messages())
    # [END howto_operator_smsend_sms_mapped]
