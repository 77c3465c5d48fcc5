"""SmSendBatchStatusSensor: wait until the messages of one or more requests reach a success rule."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_smsend.client.batch_rules import (
    FETCH_CONCURRENCY,
    ReportCache,
    describe_request_ids,
    evaluate,
    normalize_request_ids,
    parse_success_rule,
    validate_report_type,
)
from airflow_provider_smsend.client.errors import SmSendError, SmSendValidationError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.sensors._base import SmSendBaseSensor, is_templated

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

#: Failed rows written to the log at most (the XCom summary has them all).
LOGGED_FAILED_ROWS = 10


class SmSendBatchStatusSensor(SmSendBaseSensor):
    """Wait until the batch-status reports of one or more request ids satisfy a success rule.

    Each poke reads the ``queue``, ``notify`` or ``mnc`` report of every request id and applies
    :func:`~airflow_provider_smsend.client.batch_rules.evaluate`; the trigger of deferrable mode
    applies the very same function. The sensor returns (pushes to XCom) the summary of
    :func:`~airflow_provider_smsend.client.batch_rules.summarize`: ``total``, ``pending``,
    ``delivered``, ``delivered_ratio``, ``by_class``, ``by_status``, ``failed`` rows (request id,
    id, dest, status, status_text) and the rule's ``outcome``.

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_ids = request_ids
        self.report_type = report_type
        self.success_rule = success_rule
        self.fail_fast = fail_fast
        self._cache = ReportCache()
        # Fail at DAG parse time on values that are already known.
        if not is_templated(report_type):
            validate_report_type(report_type)
        if not is_templated(success_rule):
            parse_success_rule(success_rule)

    def _settings(self) -> tuple[list[str], str, str | float]:
        """The rendered arguments, validated (a bad value fails the task, it will not fix itself)."""
        from airflow.sdk.exceptions import AirflowFailException

        try:
            ids = normalize_request_ids(self.request_ids)
            return ids, validate_report_type(self.report_type), parse_success_rule(self.success_rule)
        except SmSendValidationError as exc:
            raise AirflowFailException(f"{self.task_id}: {exc}") from exc

    def prepare(self, context: Context) -> None:
        """Validate the rendered request ids, report type and rule before the first poke."""
        self._settings()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Read every request id's report and apply the success rule once."""
        ids, report_type, rule = self._settings()
        client = self.hook.client
        todo = self._cache.missing(ids)
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(FETCH_CONCURRENCY, len(todo)))) as pool:
                fetched = list(pool.map(lambda rid: client.batch_status(rid, report_type), todo))
        except SmSendError as exc:
            self.handle_gateway_error(exc, f"reading the {report_type} batch status of {describe_request_ids(ids)}")
            return False
        self._cache.store(fetched)
        reports = self._cache.reports(ids, fetched)
        verdict = evaluate(reports, rule, fail_fast=self.fail_fast)
        summary = verdict.summary
        self.log.info(
            "smSend batch %s (%s): %s delivered, %s pending, %s failed of %s (rule %s): %s",
            describe_request_ids(ids),
            report_type,
            summary["delivered"],
            summary["pending"],
            summary["failed_count"],
            summary["total"],
            rule,
            verdict.reason,
        )
        if verdict.state == "satisfied":
            return PokeReturnValue(is_done=True, xcom_value=summary)
        if verdict.state == "failed":
            from airflow.sdk.exceptions import AirflowFailException

            self.log_failure(summary)
            raise AirflowFailException(f"Batch status rule failed: {verdict.reason}")
        return False

    def make_trigger(self, end_time: float) -> SmSendBatchStatusTrigger:
        """The trigger watching the same ids with the same rule, until ``end_time``."""
        from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

        ids, report_type, rule = self._settings()
        return SmSendBatchStatusTrigger(
            request_ids=ids,
            report_type=report_type,
            success_rule=rule,
            fail_fast=self.fail_fast,
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
