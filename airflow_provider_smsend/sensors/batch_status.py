"""SmSendBatchStatusSensor: wait until the messages of one or more requests reach a success rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_smsend.client.batch_rules import (
    FETCH_CONCURRENCY,
    FinalReports,
    describe_request_ids,
    evaluate,
    normalize_request_ids,
    parse_success_rule,
    poll_log,
    validate_concurrency,
    validate_report_type,
)
from airflow_provider_smsend.client.errors import SmSendError, SmSendValidationError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.sensors._base import SmSendBaseSensor, is_templated

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

    from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

#: Failed rows written to the log at most (the XCom summary has them all).
LOGGED_FAILED_ROWS = 10
#: The task state store key holding the final reports (:meth:`FinalReports.to_json`).
STATE_KEY = "smsend_batch_status_final"


class SmSendBatchStatusSensor(SmSendBaseSensor):
    """Wait until the batch-status reports of one or more request ids satisfy a success rule.

    Each poke reads, ``concurrency`` at a time, the ``queue``, ``notify`` or ``mnc`` report of
    every request id whose report is not final yet (one request each), and applies
    :func:`~airflow_provider_smsend.client.batch_rules.evaluate`; the trigger of deferrable mode
    applies the very same function. A final report (rows, none pending) never changes: it is kept
    as a :class:`~airflow_provider_smsend.client.batch_rules.FinalReports` entry (its counts per
    status code and its failed rows, numbers masked) and not read again, in every mode:

    - poke mode: on the sensor, for the next pokes of the same process;
    - reschedule mode: every poke is a new process, so the pokes share the state through the
      task instance's state store (``context["task_state_store"]``, Airflow 3.3 and later; key
      :data:`STATE_KEY`), written whenever a report became final and read by the next poke.
      XCom would not do: Airflow clears a task's XCom at the start of every reschedule-mode
      poke. The state is kept ``[state_store] default_retention_days`` and serves a retry too (a
      final report stays final); for 10,000 request ids it takes about 1.8 KB plus about 70 bytes
      per failed row. With no state store (Airflow before 3.3) every poke reads every report;
    - deferrable mode: the trigger gets the state of the first poke in its kwargs, so a triggerer
      restart re-creates it with those ids left out. What the trigger learns later cannot go
      back into its kwargs (Airflow stores them once, at deferral): after a restart it reads the
      reports that became final since once more.

    The poke and deferrable modes write the state store too, when there is one, so a retry of
    any mode starts from the reports already final.

    Each poke logs one line: delivered, pending and failed rows of the total, request ids fetched
    and already final, the rule's verdict. The sensor returns (pushes to XCom) the summary of
    :func:`~airflow_provider_smsend.client.batch_rules.summarize`, the same in every mode:
    ``total``, ``pending``, ``delivered``, ``delivered_ratio``, ``by_class``, ``by_status``,
    ``failed`` rows (request id, id, dest masked, status, status_text) and the rule's ``outcome``.

    Non-retryable gateway errors (credentials, IP not enabled, invalid id) fail at once; retryable
    ones are logged and polled again; the timeout raises ``AirflowSensorTimeout`` (a skip with
    ``soft_fail``), in every mode.

    :param request_ids: request id(s) the gateway answered at send (``return_id=1``): one id, ids
        separated by commas, a list, or an upstream XCom (templated).
    :param report_type: ``queue`` (accepted by the network), ``notify`` (delivered to the phone,
        the default) or ``mnc`` (number check) (templated).
    :param success_rule: ``"all_delivered"`` (default), ``"all_terminal"`` (nothing pending) or a
        minimum delivered ratio such as ``0.95`` (templated; 2xx counts as delivered).
    :param fail_fast: fail as soon as the rule can no longer hold (a 3xx row under
        ``all_delivered``, too many failures for the ratio). False: fail only once every row is final.
    :param concurrency: reports fetched at once at each poke, in every mode: an integer from 1
        to 64 (default 16); each holds a connection to the gateway.
    :param smsend_conn_id: the Airflow connection id (templated).
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param max_poll_interval: backoff cap: intervals start at ``poke_interval`` and double up to it.

    Example::

        from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor

        wait_delivery = SmSendBatchStatusSensor(
            task_id="wait_delivery",
            request_ids="{{ ti.xcom_pull(task_ids='send_alert', key='request_ids') }}",
            report_type="notify",
            success_rule=0.95,
            concurrency=16,
            poke_interval=30,
            max_poll_interval=600,
            timeout=2 * 3600,
            deferrable=True,
        )
    """

    template_fields: Sequence[str] = ("request_ids", "report_type", "success_rule", "smsend_conn_id")
    ui_color = "#c9ebd1"

    def __init__(
        self,
        *,
        request_ids: str | Sequence[str] | Any,
        report_type: str = "notify",
        success_rule: str | float = "all_delivered",
        fail_fast: bool = True,
        concurrency: int = FETCH_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_ids = request_ids
        self.report_type = report_type
        self.success_rule = success_rule
        self.fail_fast = fail_fast
        self.concurrency = validate_concurrency(concurrency)
        self._final: FinalReports | None = None
        # Fail at DAG parse time on values that are already known.
        if not is_templated(report_type):
            validate_report_type(report_type)
        if not is_templated(success_rule):
            parse_success_rule(success_rule)

    def _settings(self) -> tuple[list[str], str, str | float]:
        """The rendered arguments, validated (a bad value fails the task, it will not fix itself)."""

        ids = normalize_request_ids(self.request_ids)
        return ids, validate_report_type(self.report_type), parse_success_rule(self.success_rule)

    def prepare(self, context: Context) -> None:
        """Validate the rendered request ids, report type and rule before the first poke."""
        self._settings()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Read the reports not final yet, keep the ones that became final, apply the rule once."""
        ids, report_type, rule = self._settings()
        final = self._final_reports(context, ids, report_type)
        todo = final.pending()
        already_final = len(final)
        try:
            frame = self._fetch(todo, report_type)
        except SmSendError as exc:
            self.handle_gateway_error(
                exc, f"reading the {report_type} batch status of {describe_request_ids(ids)}"
            )
            return False
        if final.absorb(frame):
            self._keep(context, final)
        verdict = evaluate(frame, rule, final=final, fail_fast=self.fail_fast)
        self.log.info(*poll_log(verdict, fetched=len(todo), already_final=already_final))
        if verdict.state == "satisfied":
            return PokeReturnValue(is_done=True, xcom_value=verdict.summary)
        if verdict.state == "failed":
            from airflow.sdk.exceptions import AirflowFailException

            self.log_failure(verdict.summary)
            raise AirflowFailException(f"Batch status rule failed: {verdict.reason}")
        return False

    def _fetch(self, request_ids: list[str], report_type: str) -> pd.DataFrame:
        """The batch-status rows of ``request_ids`` (no request when there is none)."""
        if not request_ids:
            from airflow_provider_smsend.client.reports import read_batch_status

            return read_batch_status([], report_type)
        return self.hook.client.batch_status_frame(request_ids, report_type, concurrency=self.concurrency)

    def _final_reports(self, context: Context, ids: list[str], report_type: str) -> FinalReports:
        """This batch's final reports: the ones this process knows, else the task state store's."""
        final = self._final
        if final is not None and final.request_ids == ids and final.report_type == report_type:
            return final
        final = FinalReports(ids, report_type)
        store = context.get("task_state_store")
        if store is not None:
            stored = store.get(STATE_KEY)
            if stored is not None:
                try:
                    final = FinalReports.from_json(stored, ids, report_type)
                except SmSendValidationError as exc:
                    self.log.warning("Not using the task state %r: %s", STATE_KEY, exc)
        elif self.reschedule:
            self.log.warning(
                "No task state store (Airflow 3.3 and later have one): this reschedule-mode poke reads "
                "every request id's report, final or not."
            )
        self._final = final
        return final

    def _keep(self, context: Context, final: FinalReports) -> None:
        """Write the final reports to the task state store, for the next poke's process."""
        store = context.get("task_state_store")
        if store is not None:
            store.set(STATE_KEY, final.to_json())

    def make_trigger(self, end_time: float) -> SmSendBatchStatusTrigger:
        """The trigger watching the same ids with the same rule, until ``end_time``, with the
        reports already final (the first poke's) left out."""
        from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

        ids, report_type, rule = self._settings()
        final = self._final
        carried = None
        if final is not None and len(final) and (final.request_ids, final.report_type) == (ids, report_type):
            carried = final.to_json()
        return SmSendBatchStatusTrigger(
            request_ids=ids,
            report_type=report_type,
            success_rule=rule,
            fail_fast=self.fail_fast,
            concurrency=self.concurrency,
            final=carried,
            smsend_conn_id=self.smsend_conn_id,
            poll_interval=self.poke_interval,
            max_poll_interval=self.max_poll_interval,
            end_time=end_time,
        )

    def complete(self, context: Context, xcom: Any) -> Any:
        """Log the deferred run's final counts and return the summary."""
        if isinstance(xcom, dict):
            self.log.info(
                "smSend batch done: %s delivered of %s (ratio %s).",
                xcom.get("delivered"),
                xcom.get("total"),
                xcom.get("delivered_ratio"),
            )
        return xcom

    def log_failure(self, summary: Any) -> None:
        """Log the undelivered rows, numbers masked."""
        if not isinstance(summary, dict):
            return
        failed = summary.get("failed") or []
        for row in failed[:LOGGED_FAILED_ROWS]:
            self.log.error(
                "Not delivered: request %s id %s to %s: %s %s",
                row.get("request_id"),
                row.get("id"),
                mask_number(str(row.get("dest", ""))),
                row.get("status"),
                row.get("status_text"),
            )
        if len(failed) > LOGGED_FAILED_ROWS:
            self.log.error("... and %d more undelivered row(s).", len(failed) - LOGGED_FAILED_ROWS)
