"""SmSendBatchStatusTrigger in a real event loop against the sandbox gateway."""

from __future__ import annotations

import asyncio
import json
import re
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_provider_smsend.client.async_http import SmSendAsyncClient
from airflow_provider_smsend.client.batch_rules import FinalReports
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.reports import read_batch_status
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook
from airflow_provider_smsend.triggers import _base
from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

GOOD = ("+393331234567", "+393471234567")
UNKNOWN = "+393331230000"  # sandbox: notify 300 Unknown subscriber
PENDING = "+393331230002"  # sandbox: stays pending forever


def trigger(ids, **kwargs) -> SmSendBatchStatusTrigger:
    settings = {"poll_interval": 0.1, "end_time": time.time() + 10}
    settings.update(kwargs)
    return SmSendBatchStatusTrigger(request_ids=ids, **settings)


def test_serialize_round_trips_exactly_and_holds_no_secret(gateway, helpers):
    original = trigger(
        ["HTTP1", "HTTP2"],
        report_type="mnc",
        success_rule=0.9,
        fail_fast=False,
        concurrency=4,
        smsend_conn_id="smsend_default",
        max_poll_interval=60,
        end_time=1_800_000_000.5,
    )
    path, kwargs = original.serialize()
    assert path == "airflow_provider_smsend.triggers.batch_status.SmSendBatchStatusTrigger"
    assert SmSendBatchStatusTrigger(**kwargs).serialize() == (path, kwargs)
    assert helpers.reinstantiate(original).serialize() == (path, kwargs)
    assert kwargs == {
        "request_ids": ["HTTP1", "HTTP2"],
        "report_type": "mnc",
        "success_rule": 0.9,
        "fail_fast": False,
        "concurrency": 4,
        "final": None,
        "smsend_conn_id": "smsend_default",
        "poll_interval": 0.1,
        "max_poll_interval": 60.0,
        "end_time": 1_800_000_000.5,
    }
    dumped = json.dumps(kwargs)
    assert not [secret for secret in helpers.secrets if secret in dumped]


def test_delivered_batch_yields_success_with_summary(gateway, helpers):
    ids = helpers.send(gateway, *GOOD)
    event = helpers.first_event(helpers.reinstantiate(trigger(ids)))
    assert event.payload["status"] == "success"
    summary = event.payload["xcom"]
    assert summary["request_ids"] == ids
    assert (summary["total"], summary["delivered"], summary["pending"]) == (2, 2, 0)
    assert summary["delivered_ratio"] == 1.0
    json.dumps(event.payload)  # the event must be JSON-able


def test_sandbox_clock_moves_a_slow_batch_to_delivered(gateway, helpers):
    gateway.admin.set_settings(delivery_delay=3600)
    ids = helpers.send(gateway, GOOD[0])

    async def go():
        task = asyncio.ensure_future(_first(trigger(ids, poll_interval=0.05)))
        await asyncio.sleep(0.3)
        assert not task.done()  # still pending an hour of sandbox time
        await asyncio.to_thread(gateway.admin.advance, 2 * 3600 + 1)  # notify: twice the delay
        return await asyncio.wait_for(task, 10)

    event = asyncio.run(go())
    assert event.payload["status"] == "success"


async def _first(trig):
    async for event in trig.run():
        return event
    return None


def test_fail_fast_on_a_3xx_row(gateway, helpers):
    ids = helpers.send(gateway, GOOD[0], UNKNOWN)
    event = helpers.first_event(trigger(ids, end_time=time.time() + 30))
    assert event.payload["status"] == "failed"  # decided at once, not a timeout 30 s later
    assert "all_delivered cannot hold" in event.payload["message"]
    assert [row["dest"] for row in event.payload["summary"]["failed"]] == [mask_number(UNKNOWN)]
    assert not [number for number in (GOOD[0], UNKNOWN) if number in json.dumps(event.payload)]


def test_ratio_satisfied_with_a_failure(gateway, helpers):
    ids = helpers.send(gateway, *GOOD, UNKNOWN)
    event = helpers.first_event(trigger(ids, success_rule=0.6))
    assert event.payload["status"] == "success"
    assert event.payload["xcom"]["failed_count"] == 1


def test_end_time_yields_timeout(gateway, helpers):
    ids = helpers.send(gateway, PENDING)
    end_time = time.time() + 0.5
    event = helpers.first_event(trigger(ids, end_time=end_time))
    assert event.payload["status"] == "timeout"
    by = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end_time))
    assert f"not satisfied by the end time {by}" in event.payload["message"]
    assert gateway.admin.stats()["requests"]["/sms/batch-status.php"] >= 1  # it polled before giving up


def test_wrong_password_is_a_non_retryable_error_event(gateway, helpers):
    ids = helpers.send(gateway, GOOD[0])
    event = helpers.first_event(trigger(ids, smsend_conn_id="smsend_bad"))
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "SmSendAuthError"
    assert event.payload["code"] in ("user_not_enabled", "bad_credentials")
    assert "wrong-pass" not in json.dumps(event.payload)


def test_missing_connection_is_an_error_event(gateway):
    event = asyncio.run(_first(trigger(["HTTP1"], smsend_conn_id="no_such_connection")))
    assert event.payload["status"] == "error"
    assert "no_such_connection" in event.payload["message"]


def test_retryable_errors_are_polled_again(monkeypatch):
    answers = [
        httpx.Response(200, text="KO Errore interno."),
        httpx.Response(503, text="busy"),
        httpx.Response(200, text="id,dest,status,status_text\n1,+393331234567,200,Delivered\n"),
    ]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers[min(len(calls), len(answers)) - 1]

    async def fake_client(self, *, shared_pool=False):
        return SmSendAsyncClient(
            username="u",
            password="p",
            base_url="http://gw.test",
            retry=RetryPolicy(attempts=1),
            transport=httpx.MockTransport(handler),
            shared_pool=shared_pool,
        )

    monkeypatch.setattr(SmSendAsyncHook, "get_async_client", fake_client)
    event = asyncio.run(_first(trigger(["HTTP1"], poll_interval=0.01)))
    assert event.payload["status"] == "success"
    assert len(calls) == 3


def test_backoff_doubles_to_the_cap_and_stops_at_the_end_time(monkeypatch):
    clock = [1_000_000.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    fake_time = SimpleNamespace(time=lambda: clock[0], strftime=time.strftime, gmtime=time.gmtime)
    answers: list = [None] * 5 + [{"status": "success", "xcom": 1}]

    async def fake_poll(self):
        return answers.pop(0) if answers else None

    async def fake_setup(self, hook):
        return None

    # Only the trigger's module sees the fake sleep: patching asyncio.sleep itself would make
    # every event loop of the process (the sandbox servers of other tests) spin on it.
    fake_asyncio = SimpleNamespace(sleep=fake_sleep, timeout=asyncio.timeout)
    monkeypatch.setattr(_base, "asyncio", fake_asyncio)
    monkeypatch.setattr(_base, "time", fake_time)
    monkeypatch.setattr(SmSendBatchStatusTrigger, "poll", fake_poll)
    monkeypatch.setattr(SmSendBatchStatusTrigger, "setup", fake_setup)
    event = asyncio.run(_first(trigger(["HTTP1"], poll_interval=5, max_poll_interval=30, end_time=None)))
    assert event.payload == {"status": "success", "xcom": 1}
    assert sleeps == [5, 10, 20, 30, 30, 30]

    sleeps.clear()
    event = asyncio.run(
        _first(trigger(["HTTP1"], poll_interval=5, max_poll_interval=30, end_time=clock[0] + 50))
    )
    assert event.payload["status"] == "timeout"
    assert sleeps == [5, 10, 20, 15]  # the last wait is clipped to the end time, never past it


def test_final_reports_are_not_fetched_again(gateway, helpers, monkeypatch):
    """A campaign has one request id per message: polls ask only for the reports still moving."""
    gateway.admin.set_settings(delivery_delay=0)
    ids = helpers.send(gateway, *GOOD, PENDING)
    polls = []
    original = SmSendBatchStatusTrigger.poll

    async def counting_poll(self):
        polls.append(1)
        return await original(self)

    monkeypatch.setattr(SmSendBatchStatusTrigger, "poll", counting_poll)
    gateway.admin.reset_stats()
    event = helpers.first_event(trigger(ids, poll_interval=0.05, end_time=time.time() + 1.5))
    assert event.payload["status"] == "timeout"
    assert len(polls) >= 2
    fetched = gateway.admin.stats()["requests"]["/sms/batch-status.php"]
    # First poll: the three reports; every later poll: only the one still pending.
    assert fetched == 3 + (len(polls) - 1)


def test_triggers_of_one_connection_share_one_pool_per_loop(gateway, helpers, monkeypatch):
    """A triggerer's triggers of one connection borrow one pool, closed when the last one ends."""
    from airflow_provider_smsend.client import async_http

    monkeypatch.setattr(async_http, "SHARED_POOL_MAX_CONNECTIONS", 2)
    built: list[httpx.AsyncClient] = []
    real = httpx.AsyncClient

    def capture(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(httpx, "AsyncClient", capture)
    ids = helpers.send(gateway, *GOOD)

    async def run_all() -> list:
        good = [trigger(ids) for _ in range(10)]
        bad = [trigger(ids, smsend_conn_id="smsend_bad") for _ in range(3)]
        return await asyncio.gather(*(_first(t) for t in good + bad))

    events = asyncio.run(run_all())
    assert [e.payload["status"] for e in events] == ["success"] * 10 + ["error"] * 3
    # Two pools (the wrong password is another connection), each of at most 2 connections.
    assert 2 <= len(built) <= 4
    assert all(http.is_closed for http in built)

    before = len(built)
    event = helpers.first_event(trigger(ids))  # a new loop: a new pool, closed with its trigger
    assert event.payload["status"] == "success"
    assert 1 <= len(built) - before <= 2 and all(http.is_closed for http in built)


def test_polls_under_an_end_time_run_in_the_trigger_task(monkeypatch):
    """The end-time bound on a poll adds no task per poll (the triggerer runs thousands of polls)."""
    tasks = []
    answers: list = [None, None, {"status": "success", "xcom": 1}]

    async def fake_poll(self):
        tasks.append(asyncio.current_task())
        return answers.pop(0)

    async def fake_setup(self, hook):
        return None

    monkeypatch.setattr(SmSendBatchStatusTrigger, "poll", fake_poll)
    monkeypatch.setattr(SmSendBatchStatusTrigger, "setup", fake_setup)

    async def go():
        event = await _first(trigger(["HTTP1"], poll_interval=0.01, end_time=time.time() + 10))
        return event, asyncio.current_task()

    event, runner = asyncio.run(go())
    assert event.payload == {"status": "success", "xcom": 1}
    assert tasks == [runner] * 3


def test_a_failed_fetch_stops_the_other_fetches_of_its_poll():
    """One request id's non-retryable error ends the poll; the other fetches are cancelled, so none
    runs on (and leases a pool again) after the trigger's teardown."""
    from airflow_provider_smsend.client.errors import SmSendAuthError

    cancelled: list[str] = []

    async def batch_status_body(rid: str, report_type: str) -> object:
        if rid == "BAD":
            await asyncio.sleep(0.01)
            raise SmSendAuthError("KO Accesso non consentito.")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(rid)
            raise
        raise AssertionError("never answered")

    async def go() -> None:
        async with asyncio.timeout(5):
            await poll_once()

    async def poll_once() -> None:
        polling = trigger(["SLOW1", "BAD", "SLOW2"])
        client = SmSendAsyncClient(username="u", password="p", base_url="http://gw.test")
        client.batch_status_body = batch_status_body  # type: ignore[method-assign]
        polling._client = client
        try:
            await polling.poll()
        except SmSendAuthError:
            pass
        else:
            raise AssertionError("the poll must fail")
        finally:
            await client.aclose()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == []  # nothing left running

    asyncio.run(go())
    assert sorted(cancelled) == ["SLOW1", "SLOW2"]


# ---------------------------------------------------------------- final reports across restarts


def frame(statuses: dict[str, tuple[int, ...]]) -> Any:
    """A notify batch-status frame: request id -> the statuses of its rows."""
    bodies = [
        (
            rid,
            "\n".join(
                ["id,dest,status,status_text"]
                + [f"{i},+39333123{i:04d},{s},text {s}" for i, s in enumerate(rows, start=1)]
                + [""]
            ).encode(),
            None,
        )
        for rid, rows in statuses.items()
    ]
    return read_batch_status(bodies, "notify")


class FakeAsyncClient:
    """The async client's ``batch_status_frame`` over a timeline: the n-th call sees the n-th state."""

    def __init__(self, timeline: list[dict[str, tuple[int, ...]]]) -> None:
        self.timeline = timeline
        self.calls: list[list[str]] = []
        self.answered = asyncio.Event()

    async def batch_status_frame(self, request_ids: list[str], report_type: str, *, concurrency: int) -> Any:
        assert concurrency == 3
        now = self.timeline[min(len(self.calls), len(self.timeline) - 1)]
        self.calls.append(list(request_ids))
        self.answered.set()
        return frame({rid: now[rid] for rid in request_ids})

    async def aclose(self) -> None:
        return None


#: The gateway at each poll: A final first (with a failed row), then B, then C.
TIMELINE = [
    {"A": (200, 300), "B": (100,), "C": (100,)},
    {"A": (200, 300), "B": (200,), "C": (100,)},
    {"A": (200, 300), "B": (200,), "C": (200,)},
]


def run_with(
    trig: SmSendBatchStatusTrigger, client: FakeAsyncClient, monkeypatch: Any, polls: int | None = None
):
    """Run the trigger's poll loop on ``client``; stop after ``polls`` polls (a triggerer restart)."""

    async def fake_setup(self, hook):
        self._client = client

    monkeypatch.setattr(SmSendBatchStatusTrigger, "setup", fake_setup)
    if polls is None:
        return asyncio.run(_first(trig))

    async def some_polls() -> None:
        client.answered = asyncio.Event()  # of this loop
        task = asyncio.ensure_future(_first(trig))
        while len(client.calls) < polls:
            await client.answered.wait()
            client.answered.clear()
        task.cancel()  # before the next poll: the trigger sleeps a poll interval first
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(some_polls())
    return None


def deferred_kwargs() -> dict[str, Any]:
    """The kwargs the sensor defers with after a first poke that saw the report of A final."""
    final = FinalReports(["A", "B", "C"], "notify")
    final.absorb(frame(TIMELINE[0]))
    sensor_made = trigger(
        ["A", "B", "C"], success_rule="all_terminal", concurrency=3, final=final.to_json(), poll_interval=0.01
    )
    return json.loads(json.dumps(sensor_made.serialize()[1]))  # what the triggerer reads back


def test_final_reports_of_the_kwargs_are_never_fetched_and_restarts_resume_from_them(monkeypatch):
    kwargs = deferred_kwargs()
    client = FakeAsyncClient(TIMELINE[1:])
    event = run_with(SmSendBatchStatusTrigger(**kwargs), client, monkeypatch)
    assert client.calls == [["B", "C"], ["C"]]  # A never; B not once it is final
    assert event.payload["status"] == "success"
    summary = event.payload["xcom"]
    assert (summary["total"], summary["delivered"], summary["failed_count"]) == (4, 3, 1)
    assert summary["failed"] == [
        {"request_id": "A", "id": 2, "dest": "+39333****002", "status": 300, "status_text": "text 300"}
    ]

    # A triggerer restart after the first poll: Airflow re-creates the trigger from the kwargs stored
    # at deferral, which know A only: B is read again once, A still never.
    first = FakeAsyncClient(TIMELINE[1:])
    run_with(SmSendBatchStatusTrigger(**kwargs), first, monkeypatch, polls=1)
    again = FakeAsyncClient(TIMELINE[2:])
    restarted = run_with(SmSendBatchStatusTrigger(**kwargs), again, monkeypatch)
    assert (first.calls, again.calls) == ([["B", "C"]], [["B", "C"]])
    assert restarted.payload == event.payload  # the same summary, whichever poll saw what final


def test_serialize_gives_what_the_trigger_knows_now(monkeypatch, helpers):
    kwargs = deferred_kwargs()
    live = SmSendBatchStatusTrigger(**kwargs)
    run_with(live, FakeAsyncClient(TIMELINE[1:]), monkeypatch, polls=1)
    path, now = live.serialize()
    assert now["final"] != kwargs["final"]
    assert helpers.reinstantiate(live).final.pending() == ["C"]
    assert SmSendBatchStatusTrigger(**json.loads(json.dumps(now))).serialize() == (path, now)


def test_final_state_of_another_batch_is_refused():
    kwargs = deferred_kwargs()
    with pytest.raises(ValueError, match="another set of request ids"):
        SmSendBatchStatusTrigger(**{**kwargs, "request_ids": ["A", "B", "D"]})
    with pytest.raises(ValueError, match="another set of request ids"):
        SmSendBatchStatusTrigger(**{**kwargs, "report_type": "queue"})


def test_one_log_line_per_poll_and_no_number_in_full(gateway, helpers, capfd):
    gateway.admin.set_settings(delivery_delay=0)
    ids = helpers.send(gateway, GOOD[0], UNKNOWN, PENDING)
    capfd.readouterr()
    event = helpers.first_event(
        trigger(ids, success_rule="all_terminal", poll_interval=0.05, end_time=time.time() + 0.6)
    )
    logged = capfd.readouterr()
    assert event.payload["status"] == "timeout"
    lines = [line for line in logged.out.splitlines() if "request id(s) fetched" in line]
    assert len(lines) >= 2
    assert re.search(r"3 request id\(s\) fetched, 0 already final", lines[0])
    assert all(re.search(r"1 request id\(s\) fetched, 2 already final", line) for line in lines[1:])
    assert not [n for n in (GOOD[0], UNKNOWN, PENDING) if n in logged.out + logged.err]
