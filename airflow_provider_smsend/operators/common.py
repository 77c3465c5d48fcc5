"""Airflow wiring shared by the operators: error translation, ledgers, job keys."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.ledger import DEFAULT_TABLE, MemoryLedger
from airflow_provider_smsend.sql.dialect import dialect_for
from airflow_provider_smsend.sql.ledger import DbApiLedger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsend.client.errors import SmSendError
    from airflow_provider_smsend.client.ledger import Ledger

log = logging.getLogger(__name__)

#: The default connection of the send ledger (any common-sql database).
DEFAULT_LEDGER_CONN_ID = "smsend_ledger"


def airflow_error(exc: SmSendError) -> Exception:
    """Translate an SmSend error for Airflow.

    A non-retryable gateway error (auth, IP, invalid parameter, insufficient credit) becomes
    ``AirflowFailException`` so that Airflow does not burn retries; a retryable one is returned
    as is, and Airflow's retries apply.
    """
    if exc.retryable:
        return exc
    return AirflowFailException(f"{type(exc).__name__}: {exc}")


#: The longest ledger key (the ledger's key column is VARCHAR(255) on MySQL).
MAX_LEDGER_KEY = 255


def job_key(context: Context, ledger_key: object = None) -> str:
    """The ledger key of a task's sends: ``ledger_key`` as rendered, else the task run's
    ``dag_id/task_id/run_id/map_index`` (stable across its tries, new for every run).

    :raises ValueError: a ``ledger_key`` that is empty, not text, over 255 characters, or still a template.
    """
    if ledger_key is not None:
        if not isinstance(ledger_key, str) or not ledger_key.strip():
            raise ValueError(f"ledger_key must be a non-empty text, got {ledger_key!r}.")
        key = ledger_key.strip()
        if "{{" in key or "{%" in key:
            raise ValueError(
                f"ledger_key {key!r} was not rendered: pass it to an operator's ledger_key argument."
            )
        if len(key) > MAX_LEDGER_KEY:
            raise ValueError(
                f"ledger_key is {len(key)} characters long; at most {MAX_LEDGER_KEY} fit the ledger."
            )
        return key
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    if map_index is None:
        map_index = -1
    return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{map_index}"


def ledger_for(conn_id: str, table: str = DEFAULT_TABLE) -> DbApiLedger:
    """Build the send ledger on the SQL connection ``conn_id`` (created on first use).

    :raises AirflowFailException: if the connection does not exist or is not a SQL database.
    """
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise AirflowFailException(
            f"The send ledger connection {conn_id!r} does not exist. Retry safety needs a SQL database "
            f"(any common-sql connection, e.g. AIRFLOW_CONN_{conn_id.upper()}='sqlite:////shared/smsend.db' or "
            "your warehouse); pass ledger_conn_id=... to use another one, or ledger_conn_id=None to send "
            "without retry safety."
        ) from exc
    hook: Any = conn.get_hook()
    if not hasattr(hook, "get_conn"):
        raise AirflowFailException(f"Connection {conn_id!r} is not a SQL database; the ledger needs one.")
    placeholder = getattr(hook, "placeholder", "%s") or "%s"
    return DbApiLedger(
        hook.get_conn, dialect=dialect_for(conn.conn_type).name, table=table, placeholder=placeholder
    )


def close_ledger(ledger: Any) -> None:
    """Close a ledger's connection if it has one."""
    close = getattr(ledger, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # closing must never hide the task's own outcome
            log.debug("Closing the ledger failed", exc_info=True)


def open_ledger(ledger_conn_id: str | None, table: str) -> Ledger:
    """The ledger on ``ledger_conn_id``; ``None`` gives a memory ledger (no safety across tries)."""
    if ledger_conn_id is None:
        log.warning("ledger_conn_id=None: a retry of this task may repeat what an earlier try did.")
        return MemoryLedger()
    return ledger_for(ledger_conn_id, table)
