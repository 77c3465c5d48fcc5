"""The operators' base and the one error policy of the Airflow layer.

- :func:`airflow_error` / :func:`smsend_errors`: the one place where an error of the layers below
  (the client's typed ``SmSend…Error``, the SQL room's :class:`~airflow_provider_smsend.sql.loader.TableLayoutError`)
  becomes fail-fast or retry for Airflow. Operators, sensors and transfers translate there, once.
- :class:`SmSendBaseOperator`: the hook of ``smsend_conn_id`` as a cached property, the ledger as
  a context manager, argument checks.
- :func:`job_key`: the ledger key of a task's sends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import SmSendError
from airflow_provider_smsend.client.ledger import DEFAULT_TABLE, MemoryLedger, new_owner
from airflow_provider_smsend.hooks.smsend import SmSendHook
from airflow_provider_smsend.sql.dialect import dialect_for
from airflow_provider_smsend.sql.ledger import DbApiLedger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsend.client.http import SmSendClient
    from airflow_provider_smsend.client.ledger import Ledger

log = logging.getLogger(__name__)

#: The default connection of the send ledger (any common-sql database).
DEFAULT_LEDGER_CONN_ID = "smsend_ledger"


def airflow_error(exc: BaseException, *, what: str | None = None) -> BaseException:
    """The one error policy: what Airflow gets for an error of the layers below.

    - a retryable ``SmSendError`` (a timeout, ``KO Impossibile accodare``, a ledger database
      down, another try holding the action) as is: Airflow's retries apply;
    - a final one (auth, IP, invalid input, insufficient credit, an ambiguous outcome), a table
      that does not fit the report (``TableLayoutError``), and ``ValueError``/``TypeError`` from the
      operators' own argument checks, as ``AirflowFailException``: retrying cannot help, so no
      retry is burnt;
    - anything else (Airflow's own exceptions included) as is.

    :param what: what was being done, for the message (``"reading the batch status of …"``).
    """
    from airflow_provider_smsend.sql.loader import TableLayoutError

    final = (isinstance(exc, SmSendError) and not exc.retryable) or (
        not isinstance(exc, SmSendError) and isinstance(exc, TableLayoutError | ValueError | TypeError)
    )
    if not final:
        return exc
    head = f"{what[0].upper()}{what[1:]} failed and will not succeed by retrying: " if what else ""
    return AirflowFailException(f"{head}{type(exc).__name__}: {exc}")


@contextmanager
def smsend_errors() -> Iterator[None]:
    """Apply :func:`airflow_error` to what the block raises (the boundary of an ``execute``/``poke``)."""
    try:
        yield
    except Exception as exc:
        translated = airflow_error(exc)
        if translated is exc:
            raise
        raise translated from exc


def check_int(value: object, *, name: str, low: int, high: int | None = None) -> int:
    """An integer argument between ``low`` and ``high``; a clear ``TypeError``/``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}.")
    return value


class SmSendBaseOperator(BaseOperator):
    """Base of the smSend operators: the connection's hook, the send ledger, one error policy.

    Subclasses implement :meth:`act` (``execute`` runs it under the one error policy, so an
    error is translated once, here), open the ledger with :meth:`open_ledger`, and list
    ``smsend_conn_id`` (and ``ledger_conn_id`` where they have one) in ``template_fields``.

    :param smsend_conn_id: the smSend connection.

    Example::

        class SmSendCreditOperator(SmSendBaseOperator):
            template_fields: Sequence[str] = ("smsend_conn_id",)

            def act(self, context):
                return str(self.client.credit("credit"))
    """

    template_fields: Sequence[str] = ("smsend_conn_id",)

    def __init__(self, *, smsend_conn_id: str = SmSendHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.smsend_conn_id = smsend_conn_id

    def execute(self, context: Context) -> Any:
        """Run :meth:`act` under the one error policy (:func:`airflow_error`)."""
        with smsend_errors():
            return self.act(context)

    def act(self, context: Context) -> Any:
        """Do the operator's work; raise typed errors (``SmSend…Error``, ``ValueError``...)."""
        raise NotImplementedError

    @cached_property
    def hook(self) -> SmSendHook:
        """The smSend hook of ``smsend_conn_id``."""
        return SmSendHook(smsend_conn_id=self.smsend_conn_id)

    @property
    def client(self) -> SmSendClient:
        """The HTTP client of the hook (built on first use)."""
        return self.hook.client

    @contextmanager
    def open_ledger(self, ledger_conn_id: str | None, table: str = DEFAULT_TABLE) -> Iterator[Ledger]:
        """The send ledger on ``ledger_conn_id`` for the block, closed after it (see :func:`open_ledger`)."""
        ledger = open_ledger(ledger_conn_id, table)
        try:
            yield ledger
        finally:
            close_ledger(ledger)

    @staticmethod
    def ledger_owner(context: Context) -> str:
        """This try's owner id in the ledger: ``try N`` and a random part (new for every try)."""
        return new_owner(f"try {getattr(context['ti'], 'try_number', '?')}")


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
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook: Any = conn.get_hook()
    if not isinstance(hook, DbApiHook):
        raise AirflowFailException(
            f"Connection {conn_id!r} ({conn.conn_type}) is not a SQL database (no common-sql hook); the ledger "
            "needs one: SQLite, PostgreSQL, MySQL/MariaDB or another common-sql connection."
        )
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
