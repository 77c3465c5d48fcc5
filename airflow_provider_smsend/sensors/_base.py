"""What the smSend sensors share: poke/defer plumbing, gateway-error policy, trigger events.

Poke, reschedule and deferrable modes behave alike:

- a non-retryable gateway error (bad credentials, IP not enabled, invalid parameter...) fails the
  task at once with ``AirflowFailException`` instead of waiting out the timeout;
- a retryable one (transport, ``KO Errore interno``...) is logged and polled again;
- the timeout raises ``AirflowSensorTimeout``; ``soft_fail``/``never_fail`` turn timeouts and
  failures into a skip, as Airflow's own sensors do.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from airflow_provider_smsend.hooks.smsend import SmSendHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_smsend.client.errors import SmSendError

#: Seconds Airflow's own deferral timeout trails the trigger's end time: the trigger's ``timeout``
#: event is the normal path, Airflow's timeout only the backstop for a lost trigger.
DEFER_GRACE = 60.0


def is_templated(value: object) -> bool:
    """True if ``value`` will only be known once rendered (Jinja text or an XComArg)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return not isinstance(value, int | float | list | tuple | dict | type(None))


class SmSendBaseSensor(BaseSensorOperator):
    """Base of the smSend sensors (see the module docstring for the shared behaviour).

    :param smsend_conn_id: the Airflow connection id (default ``smsend_default``).
    :param deferrable: wait in the triggerer instead of a worker slot; default from the
        ``[operators] default_deferrable`` option.
    :param max_poll_interval: exponential backoff cap in seconds: the interval starts at
        ``poke_interval`` and doubles up to this (deferrable mode; in poke/reschedule mode it sets
        Airflow's ``exponential_backoff`` with ``max_wait``). None: a constant ``poke_interval``.
    """

    template_fields: Sequence[str] = ("smsend_conn_id",)
    ui_color = "#dff5e3"

    def __init__(
        self,
        *,
        smsend_conn_id: str = SmSendHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        if max_poll_interval is not None:
            kwargs.setdefault("exponential_backoff", True)
            kwargs.setdefault("max_wait", max_poll_interval)
        super().__init__(**kwargs)
        if max_poll_interval is not None and max_poll_interval < 0:
            raise ValueError(f"max_poll_interval must be >= 0 seconds, got {max_poll_interval!r}.")
        self.smsend_conn_id = smsend_conn_id
        self.deferrable = deferrable
        self.max_poll_interval = max_poll_interval

    @cached_property
    def hook(self) -> SmSendHook:
        """The hook of ``smsend_conn_id`` (poke and reschedule modes)."""
        return SmSendHook(smsend_conn_id=self.smsend_conn_id)

    # ------------------------------------------------------------------ to implement
    def prepare(self, context: Context) -> None:
        """Validate rendered arguments and record state before the first poke (override)."""

    def make_trigger(self, end_time: float) -> BaseTrigger:
        """The trigger to defer to, ending at the absolute ``end_time`` (UTC epoch seconds)."""
        raise NotImplementedError

    def complete(self, context: Context, xcom: Any) -> Any:
        """Turn a ``success`` event's ``xcom`` into the task's return value (override to log)."""
        return xcom

    # ------------------------------------------------------------------ shared plumbing
    def handle_gateway_error(self, exc: SmSendError, what: str) -> None:
        """Apply the one error policy (:func:`~airflow_provider_smsend.operators.base.airflow_error`):
        fail at once on a final error; log a passing one (the caller pokes again)."""
        from airflow_provider_smsend.operators.base import airflow_error

        translated = airflow_error(exc, what=what)
        if translated is not exc:
            raise translated from exc
        self.log.warning("Retryable smSend error while %s: %s; poking again", what, exc)

    def execute(self, context: Context) -> Any:
        """Poke (poke/reschedule modes), or poke once and defer (deferrable mode).

        Runs under the one error policy: invalid arguments fail the task at once.
        """
        from airflow_provider_smsend.operators.base import smsend_errors

        with smsend_errors():
            return self._execute(context)

    def _execute(self, context: Context) -> Any:
        self.prepare(context)
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        result = self._first_poke(context)
        if result:
            self.log.info("Success criteria met before deferring. Exiting.")
            return result.xcom_value if isinstance(result, PokeReturnValue) else None
        self.defer(
            trigger=self.make_trigger(end_time),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFER_GRACE),
        )

    def _first_poke(self, context: Context) -> bool | PokeReturnValue:
        """One poke with the exception policy of ``BaseSensorOperator.execute``."""
        try:
            return self.poke(context)
        except (AirflowSensorTimeout, AirflowFailException) as exc:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"Skipping: {exc}") from exc
            raise
        except AirflowSkipException:
            raise
        except Exception as exc:
            if self.silent_fail:
                self.log.exception("Sensor poke failed; the trigger will poke again")
                return False
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: return its value, or raise as poke mode would.

        ``soft_fail``/``never_fail`` are applied by ``BaseSensorOperator.resume_execution``,
        which wraps this method.
        """
        if not isinstance(event, dict):
            raise AirflowFailException(f"The smSend trigger sent no usable event: {event!r}.")
        status = event.get("status")
        message = str(event.get("message") or f"smSend trigger ended with status {status!r}.")
        if status == "success":
            return self.complete(context, event.get("xcom"))
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "failed":
            self.log_failure(event.get("summary"))
        raise AirflowFailException(message)

    def log_failure(self, summary: Any) -> None:
        """Log what made the condition fail (override)."""
