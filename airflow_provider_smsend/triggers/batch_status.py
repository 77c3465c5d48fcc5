"""SmSendBatchStatusTrigger: the deferrable half of SmSendBatchStatusSensor."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.batch_rules import (
    FETCH_CONCURRENCY,
    ReportCache,
    describe_request_ids,
    evaluate,
    normalize_request_ids,
    parse_success_rule,
    validate_report_type,
)
from airflow_provider_smsend.triggers._base import FAILED, SUCCESS, SmSendPollingTrigger

if TYPE_CHECKING:
    from airflow_provider_smsend.client.async_http import SmSendAsyncClient
    from airflow_provider_smsend.client.reports import BatchStatusReport
    from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook


class SmSendBatchStatusTrigger(SmSendPollingTrigger):
    """Poll batch-status reports asynchronously until a success rule holds, fails, or time is up.

    Decides with :func:`~airflow_provider_smsend.client.batch_rules.evaluate`, exactly as the
    sensor does in poke mode. Its kwargs hold no secret: the triggerer resolves the connection.

    :param request_ids: the request ids to watch.
    :param report_type: ``queue``, ``notify`` or ``mnc``.
    :param success_rule: ``"all_terminal"``, ``"all_delivered"`` or a ratio in ``(0, 1]``.
    :param fail_fast: end with ``failed`` as soon as the rule can no longer hold.
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
        self._client: SmSendAsyncClient | None = None
        self._cache = ReportCache()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs; ``cls(**kwargs)`` serializes identically. No credentials inside."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "request_ids": list(self.request_ids),
                "report_type": self.report_type,
                "success_rule": self.success_rule,
                "fail_fast": self.fail_fast,
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
        """Fetch every request id's report concurrently and apply the rule."""
        client = self._client
        assert client is not None, "setup() opens the client"
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(rid: str) -> BatchStatusReport:
            async with limit:
                return await client.batch_status(rid, self.report_type)

        tasks = [asyncio.ensure_future(fetch(rid)) for rid in self._cache.missing(self.request_ids)]
        try:
            fetched = await asyncio.gather(*tasks)
        except BaseException:
            # One failed (or the poll was cancelled): stop the others before the trigger ends, so
            # none is left running after teardown gave the client back.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self._cache.store(fetched)
        reports = self._cache.reports(self.request_ids, fetched)
        verdict = evaluate(reports, self.success_rule, fail_fast=self.fail_fast)
        summary = verdict.summary
        self.log.info(
            "smSend batch %s (%s): %s delivered, %s pending, %s failed of %s: %s",
            describe_request_ids(self.request_ids),
            self.report_type,
            summary["delivered"],
            summary["pending"],
            summary["failed_count"],
            summary["total"],
            verdict.state,
        )
        if verdict.state == "satisfied":
            return {"status": SUCCESS, "xcom": summary}
        if verdict.state == "failed":
            return {
                "status": FAILED,
                "message": f"Batch status rule failed: {verdict.reason}",
                "summary": summary,
            }
        return None
