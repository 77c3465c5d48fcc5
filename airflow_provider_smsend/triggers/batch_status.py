"""SmSendBatchStatusTrigger: the deferrable half of SmSendBatchStatusSensor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.batch_rules import (
    FETCH_CONCURRENCY,
    FinalReports,
    evaluate,
    normalize_request_ids,
    parse_success_rule,
    poll_log,
    validate_concurrency,
    validate_report_type,
)
from airflow_provider_smsend.triggers._base import FAILED, SUCCESS, SmSendPollingTrigger

if TYPE_CHECKING:
    from airflow_provider_smsend.client.async_http import SmSendAsyncClient
    from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook


class SmSendBatchStatusTrigger(SmSendPollingTrigger):
    """Poll batch-status reports asynchronously until a success rule holds, fails, or time is up.

    Each poll reads, ``concurrency`` at a time, the reports not final yet and decides with
    :func:`~airflow_provider_smsend.client.batch_rules.evaluate`, exactly as the sensor does in
    poke mode, and logs one line of counts. Its kwargs hold no secret (the triggerer resolves the
    connection) and no phone number in full: ``final`` is the
    :meth:`~airflow_provider_smsend.client.batch_rules.FinalReports.to_json` state the sensor
    knew when it deferred, so a trigger re-created from its kwargs (a triggerer restart) does not
    read those reports again. Reports that become final while it runs are skipped by its later
    polls, but Airflow keeps the kwargs of deferral: after a restart they are read once more.

    :param request_ids: the request ids to watch.
    :param report_type: ``queue``, ``notify`` or ``mnc``.
    :param success_rule: ``"all_terminal"``, ``"all_delivered"`` or a ratio in ``(0, 1]``.
    :param fail_fast: end with ``failed`` as soon as the rule can no longer hold.
    :param concurrency: reports fetched at once, from 1 to 64.
    :param final: the reports already final (``FinalReports.to_json()`` of these request ids and
        report type), or None.
    :param smsend_conn_id: the Airflow connection id.
    :param poll_interval: first interval in seconds, doubled at each poll ...
    :param max_poll_interval: ... up to this cap (None: constant interval).
    :param end_time: absolute deadline (UTC epoch seconds); then a ``timeout`` event.

    Example (what :class:`~airflow_provider_smsend.sensors.batch_status.SmSendBatchStatusSensor`
    defers with)::

        self.defer(
            trigger=SmSendBatchStatusTrigger(
                request_ids=["HTTP00000000111"],
                report_type="notify",
                success_rule="all_delivered",
                concurrency=16,
                smsend_conn_id="smsend_default",
                poll_interval=30,
                max_poll_interval=600,
                end_time=time.time() + 3600,
            ),
            method_name="execute_complete",
        )
    """

    description = "the smSend batch status"

    def __init__(
        self,
        *,
        request_ids: list[str],
        report_type: str = "notify",
        success_rule: str | float = "all_delivered",
        fail_fast: bool = True,
        concurrency: int = FETCH_CONCURRENCY,
        final: dict[str, Any] | None = None,
        smsend_conn_id: str = "smsend_default",
        poll_interval: float = 60.0,
        max_poll_interval: float | None = None,
        end_time: float | None = None,
    ) -> None:
        super().__init__(
            smsend_conn_id=smsend_conn_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            end_time=end_time,
        )
        self.request_ids = normalize_request_ids(request_ids)
        self.report_type = validate_report_type(report_type)
        self.success_rule = parse_success_rule(success_rule)
        self.fail_fast = bool(fail_fast)
        self.concurrency = validate_concurrency(concurrency)
        self.final = (
            FinalReports(self.request_ids, self.report_type)
            if final is None
            else FinalReports.from_json(final, self.request_ids, self.report_type)
        )
        self._client: SmSendAsyncClient | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs; ``cls(**kwargs)`` serializes identically. No credentials inside.

        ``final`` is what the trigger knows now (None while no report is final).
        """
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "request_ids": list(self.request_ids),
                "report_type": self.report_type,
                "success_rule": self.success_rule,
                "fail_fast": self.fail_fast,
                "concurrency": self.concurrency,
                "final": self.final.to_json() if len(self.final) else None,
                **self._base_kwargs(),
            },
        )

    async def setup(self, hook: SmSendAsyncHook) -> None:
        """Resolve the connection in the triggerer; the HTTP client borrows the loop's pool of it."""
        self._client = await hook.get_async_client(shared_pool=True)

    async def teardown(self) -> None:
        """Close the HTTP client (give back its lease on the shared pool)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def poll(self) -> dict[str, Any] | None:
        """Fetch the reports not final yet concurrently, keep the final ones, apply the rule."""
        client = self._client
        assert client is not None, "setup() opens the client"
        final = self.final
        todo = final.pending()
        already_final = len(final)
        if todo:
            frame = await client.batch_status_frame(todo, self.report_type, concurrency=self.concurrency)
        else:
            from airflow_provider_smsend.client.reports import read_batch_status

            frame = read_batch_status([], self.report_type)
        final.absorb(frame)
        verdict = evaluate(frame, self.success_rule, final=final, fail_fast=self.fail_fast)
        self.log.info(*poll_log(verdict, fetched=len(todo), already_final=already_final))
        if verdict.state == "satisfied":
            return {"status": SUCCESS, "xcom": verdict.summary}
        if verdict.state == "failed":
            return {
                "status": FAILED,
                "message": f"Batch status rule failed: {verdict.reason}",
                "summary": verdict.summary,
            }
        return None
