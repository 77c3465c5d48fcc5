"""The real shape of the work: a 1,000-recipient campaign's 1,000 one-row reports, fetched concurrently
over HTTP from the suite's sandbox (with latency) and loaded in one transaction, on SQLite, PostgreSQL,
MariaDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from smsend_test_support.sandbox import reset_sandbox
from transfer_helpers import SqlTarget, context

from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

if TYPE_CHECKING:
    from airflow_provider_smsend.sandbox.testing import SandboxServer

RECIPIENTS = 1_000
LATENCY_MS = 40
CONCURRENCY = 32


@pytest.fixture(scope="module")
def campaign(sandbox_server: SandboxServer) -> Iterator[tuple[SandboxServer, list[str]]]:
    """The suite's sandbox with latency, and the request ids of a 1,000-recipient campaign sent
    through it: sent once for the module's tests (the sandbox is reset before and after them)."""
    sandbox = reset_sandbox(sandbox_server)
    try:
        sandbox.admin.set_faults(latency_ms=LATENCY_MS)
        client = SmSendClient(
            base_url=sandbox.url, username="demo", password="demo-pass", default_sender="ACME"
        )
        client.ensure_pool(CONCURRENCY)
        numbers = [f"+39347{i:06d}5" for i in range(RECIPIENTS)]  # none of the special patterns (0000-0003)
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            ids = [r.request_id for r in pool.map(lambda n: client.send(n, "Promo"), numbers)]
        client.close()
        assert len(set(ids)) == RECIPIENTS and all(ids)
        yield sandbox, [str(i) for i in ids]
    finally:
        reset_sandbox(sandbox_server)


class InFlight:
    """Counts the batch-status fetches running at once (wraps the client's fetch of one answer)."""

    def __init__(self) -> None:
        self.now = self.peak = self.calls = 0
        self.lock = threading.Lock()

    def wrap(self, fetch: Any) -> Any:
        def counted(client: SmSendClient, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.now += 1
                self.calls += 1
                self.peak = max(self.peak, self.now)
            try:
                return fetch(client, *args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1

        return counted


def test_a_campaign_of_one_row_reports_loads_concurrently_in_one_transaction(
    campaign: tuple[SandboxServer, list[str]], target: SqlTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, ids = campaign
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_CAMPAIGN", sandbox.connection_uri)
    in_flight = InFlight()
    monkeypatch.setattr(SmSendClient, "batch_status_body", in_flight.wrap(SmSendClient.batch_status_body))
    before = sandbox.admin.stats()["requests"].get("/sms/batch-status.php", 0)
    table = target.table("camp")

    result = SmSendBatchStatusToSqlOperator(
        task_id="load", request_ids=ids, report_type="notify", table=table, conn_id=target.conn_id,
        smsend_conn_id="smsend_campaign", concurrency=CONCURRENCY,
    ).execute(context())  # fmt: skip

    after = sandbox.admin.stats()["requests"].get("/sms/batch-status.php", 0)
    assert result["rows"] == RECIPIENTS and result["requests"] == RECIPIENTS
    assert after - before == RECIPIENTS == in_flight.calls  # one request per id, none repeated
    assert CONCURRENCY // 2 <= in_flight.peak <= CONCURRENCY  # fetched concurrently, bounded
    rows = target.rows(table, "request_id, dest, status_class", order="request_id")
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert {r[2] for r in rows} == {"success"} and all(r[1].startswith("+39347") for r in rows)


def test_a_failed_fetch_in_the_middle_writes_nothing(
    campaign: tuple[SandboxServer, list[str]], target: SqlTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    sandbox, ids = campaign
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_CAMPAIGN", sandbox.connection_uri)
    table = target.table("campfail")
    with pytest.raises(AirflowFailException, match="id"):
        SmSendBatchStatusToSqlOperator(
            task_id="load", request_ids=[*ids[:500], "HTTP99999999999", *ids[500:]], table=table,
            conn_id=target.conn_id, smsend_conn_id="smsend_campaign", concurrency=CONCURRENCY,
        ).execute(context())  # fmt: skip
    assert not target.exists(table) or target.count(table) == 0


def test_the_client_fetches_every_id_once_whatever_the_order_of_answers(
    campaign: tuple[SandboxServer, list[str]],
) -> None:
    sandbox, ids = campaign
    hook_client = SmSendClient(base_url=sandbox.url, username="demo", password="demo-pass")
    frame = hook_client.batch_status_frame(ids[:200], "notify", concurrency=8)
    hook_client.close()
    assert sorted(frame["request_id"]) == sorted(ids[:200])
