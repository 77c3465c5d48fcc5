"""SmSendInboundSmsEventTrigger in a real event loop against the sandbox's receiveSms, with its
cursor in SQLite: each message fires once across restarts and twin triggerers, events are masked,
filters pass what they do not fire, a stop between claim and event gives the claim back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_smsend.client.soap import ROME, ReceivedSms
from airflow_provider_smsend.sql.cursor import InboundCursor
from airflow_provider_smsend.sql.dialect import dialect_for
from airflow_provider_smsend.triggers.inbound_event import SmSendInboundSmsEventTrigger

RECEPTION = "+393400000001"
CUSTOMER = "+393331234567"


@pytest.fixture
def cursor_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cursor.db"
    monkeypatch.setenv("AIRFLOW_CONN_INBOUND_CURSOR", f"sqlite://{path}")
    return path


@pytest.fixture
def sharecode(gateway: Any, helpers: Any) -> str:
    return str(helpers.sync_client(gateway).recv_add(1001, RECEPTION, 1)[0])


def trigger(sharecode: str, **kwargs: Any) -> SmSendInboundSmsEventTrigger:
    settings: dict[str, Any] = {
        "rcpt": RECEPTION,
        "sharecode": sharecode,
        "cursor_conn_id": "inbound_cursor",
        "poll_interval": 0.05,
    }
    settings.update(kwargs)
    return SmSendInboundSmsEventTrigger(**settings)


def cursor_row(path: Path, key: str) -> tuple[int, str] | None:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT last_id, owner FROM smsend_inbound_cursor WHERE cursor_key = ?", (key,)
        ).fetchone()


async def collect(
    trig: SmSendInboundSmsEventTrigger, count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """The first ``count`` events of ``trig.run()``, then the trigger is stopped (as the triggerer does)."""
    events: list[dict[str, Any]] = []

    async def go() -> None:
        async for event in trig.run():
            events.append(event.payload)
            if len(events) == count:
                return

    await asyncio.wait_for(go(), timeout)
    return events


async def started(path: Path, key: str) -> None:
    """Wait until the trigger's first poll has started its cursor (SMS injected after it count)."""
    for _ in range(400):
        if path.exists() and await asyncio.to_thread(_has_row, path, key):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the trigger never started its cursor")


def _has_row(path: Path, key: str) -> bool:
    try:
        return cursor_row(path, key) is not None
    except sqlite3.OperationalError:  # no table yet
        return False


def test_serialize_round_trips_and_the_cursor_key_follows_the_settings(helpers: Any) -> None:
    original = trigger("001", sender=CUSTOMER, text_pattern=r"^\s*stop\b", messages=20, poll_interval=10)
    path, kwargs = original.serialize()
    assert path == "airflow_provider_smsend.triggers.inbound_event.SmSendInboundSmsEventTrigger"
    again = helpers.reinstantiate(original)
    assert again.serialize() == (path, kwargs)
    assert again.key == original.key and len(original.key) == 40
    assert trigger("001", sender=CUSTOMER, text_pattern=r"^\s*stop\b", messages=20).key == original.key
    assert trigger("001", cursor_key="opt-outs").key == "opt-outs"
    assert not [s for s in helpers.secrets if s in json.dumps(kwargs)]
    same = {"messages": 20, "poll_interval": 10}
    assert original.shared_stream_key() == trigger("001", text_pattern="x", **same).shared_stream_key()
    assert original.shared_stream_key() != trigger("002", **same).shared_stream_key()
    assert original.shared_stream_key() != trigger("001", rcpt="+393400000002", **same).shared_stream_key()
    assert RECEPTION not in str(original.shared_stream_key())  # the triggerer logs the key
    assert CUSTOMER not in repr(original) and RECEPTION not in repr(original)
    assert "+39333****567" in repr(original)


def test_the_cursor_key_hashes_only_what_selects_the_messages() -> None:
    """A new poll_interval, messages, region, cursor table or fire_existing keeps the cursor (a new one
    would skip what arrived in between); the number written nationally is the same number; a new
    filter, number, share code or connection is a new cursor."""
    base = trigger("001", sender=CUSTOMER, text_pattern="stop", poll_interval=30, messages=50)
    kept = [
        trigger("001", sender=CUSTOMER, text_pattern="stop", poll_interval=5, messages=200),
        trigger("001", sender="3331234567", text_pattern="stop", rcpt="3400000001"),
        trigger("001", sender=CUSTOMER, text_pattern="stop", cursor_table="other", fire_existing=True),
        trigger("001", sender=CUSTOMER, text_pattern="stop", region="SM"),
    ]
    assert {t.key for t in kept} == {base.key}
    changed = [
        trigger("001", sender=CUSTOMER, text_pattern="STOP"),
        trigger("001", sender=CUSTOMER, text_pattern="stop", ignore_case=False),
        trigger("001", sender="+393479999999", text_pattern="stop"),
        trigger("001", text_pattern="stop"),
        trigger("002", sender=CUSTOMER, text_pattern="stop"),
        trigger("001", sender=CUSTOMER, text_pattern="stop", rcpt="+393400000002"),
        trigger("001", sender=CUSTOMER, text_pattern="stop", smsend_conn_id="other"),
    ]
    assert len({t.key for t in changed} | {base.key}) == len(changed) + 1


def test_subscribers_with_other_messages_or_poll_interval_do_not_share_a_poll() -> None:
    """The shared poll lists ``messages`` every ``poll_interval``: a trigger asking for more, or more
    often, gets its own poll instead of silently the first subscriber's settings."""
    base = trigger("001", messages=50, poll_interval=30)
    assert trigger("001", text_pattern="x", messages=50, poll_interval=30).shared_stream_key() == (
        base.shared_stream_key()
    )
    assert trigger("001", messages=200, poll_interval=30).shared_stream_key() != base.shared_stream_key()
    assert trigger("001", messages=50, poll_interval=5).shared_stream_key() != base.shared_stream_key()
    assert trigger("001", rcpt="3400000001", messages=50, poll_interval=30).shared_stream_key() == (
        base.shared_stream_key()
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"sharecode": 1}, "sharecode"),
        ({"messages": 0}, "messages"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"cursor_key": "x" * 65}, "cursor_key"),
        ({"text_pattern": "("}, "not a valid regular expression"),
        ({"sender": CUSTOMER, "sender_sql": "SELECT 1", "sender_conn_id": "c"}, "not both"),
        ({"sender_sql": "SELECT 1"}, "sender_conn_id"),
    ],
)
def test_bad_settings_are_refused_when_the_dag_is_parsed(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        trigger(**{"sharecode": "001", **bad})


def test_each_new_sms_fires_once_masked_and_a_restart_fires_only_newer_ones(
    gateway: Any, sharecode: str, cursor_db: Path
) -> None:
    gateway.admin.inject_inbound(RECEPTION, sharecode, "+393479999999", "before the watcher")
    first = trigger(sharecode)

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        task = asyncio.ensure_future(collect(first, 2))
        await started(cursor_db, first.key)
        for text in ("STOP", "ciao"):
            await asyncio.to_thread(gateway.admin.inject_inbound, RECEPTION, sharecode, CUSTOMER, text)
        fired = await task
        # The triggerer restarts: the same trigger again (a new instance from the same kwargs).
        await asyncio.to_thread(gateway.admin.inject_inbound, RECEPTION, sharecode, CUSTOMER, "third")
        again = await collect(trigger(sharecode), 1)
        return fired, again

    fired, again = asyncio.run(go())
    ids = [e["id"] for e in fired + again]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    dumped = json.dumps(fired + again)
    assert CUSTOMER not in dumped and RECEPTION not in dumped and "STOP" not in dumped
    assert fired[0]["sender"] == "+39333****567" and fired[0]["sharecode"] == sharecode
    assert fired[0]["cursor_key"] == first.key
    assert datetime.fromisoformat(fired[0]["received_at"]).utcoffset() == datetime.now(ROME).utcoffset()
    assert cursor_row(cursor_db, first.key)[0] == ids[-1]  # type: ignore[index]


def test_two_triggerers_running_the_same_trigger_fire_each_sms_once(
    gateway: Any, sharecode: str, cursor_db: Path
) -> None:
    a, b = trigger(sharecode), trigger(sharecode)

    async def go() -> list[dict[str, Any]]:
        fired: list[dict[str, Any]] = []

        async def run(trig: SmSendInboundSmsEventTrigger) -> None:
            async for event in trig.run():
                fired.append(event.payload)

        tasks = [asyncio.ensure_future(run(a)), asyncio.ensure_future(run(b))]
        await started(cursor_db, a.key)
        for n in range(6):
            await asyncio.to_thread(gateway.admin.inject_inbound, RECEPTION, sharecode, CUSTOMER, f"msg {n}")
            await asyncio.sleep(0.02)
        for _ in range(400):
            if len({e["id"] for e in fired}) == 6:
                break
            await asyncio.sleep(0.025)
        await asyncio.sleep(0.3)  # both poll a few more times: nothing fires twice
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return fired

    fired = asyncio.run(go())
    assert len(fired) == 6 and len({e["id"] for e in fired}) == 6


def listing(*items: tuple[int, str, str]) -> tuple[ReceivedSms, ...]:
    at = datetime(2026, 5, 1, 9, 0, tzinfo=ROME)
    return tuple(ReceivedSms(id=i, sender=s, text=t, received_at=at) for i, s, t in items)


async def stream(*listings: tuple[ReceivedSms, ...]) -> AsyncIterator[tuple[ReceivedSms, ...]]:
    """A shared stream of the given listings (what the triggerer fans out of one poll)."""
    for item in listings:
        yield item


def test_siblings_on_one_shared_stream_keep_their_own_filters_and_cursors(cursor_db: Path) -> None:
    """One poll, two triggers: the STOP watcher fires only STOP (and passes the rest), the catch-all
    fires everything; fire_existing fires what the first listing holds."""
    stops = trigger("001", text_pattern=r"^\s*stop\s*$", fire_existing=True)
    every = trigger("001", fire_existing=True)
    listings = (
        listing((1, CUSTOMER, "Stop"), (2, CUSTOMER, "ciao")),
        listing((1, CUSTOMER, "Stop"), (2, CUSTOMER, "ciao"), (3, "+393479999999", "STOP")),
    )

    async def fired(trig: SmSendInboundSmsEventTrigger) -> list[int]:
        return [e.payload["id"] async for e in trig.filter_shared_stream(stream(*listings))]

    assert asyncio.run(fired(stops)) == [1, 3]
    assert asyncio.run(fired(every)) == [1, 2, 3]
    assert cursor_row(cursor_db, stops.key)[0] == 3  # type: ignore[index]
    # Non-matching messages are passed: a later listing with only them fires nothing and moves on.
    later = trigger("001", text_pattern=r"^\s*stop\s*$", fire_existing=True)
    more = listing((3, "+393479999999", "STOP"), (4, CUSTOMER, "grazie"))

    async def rest() -> list[int]:
        return [e.payload["id"] async for e in later.filter_shared_stream(stream(more))]

    assert asyncio.run(rest()) == []
    assert cursor_row(cursor_db, stops.key)[0] == 4  # type: ignore[index]


def test_sender_sql_reads_the_sender_in_the_triggerer_and_keeps_it_out_of_the_kwargs(cursor_db: Path) -> None:
    """The trigger table (its kwargs) and the cursor key hold the query, not the number; the
    sender is read at the first listing; while the query finds none nothing fires nor is passed."""
    with sqlite3.connect(cursor_db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, phone TEXT)")
    query = "SELECT phone FROM customers WHERE id = 7"
    trig = trigger("001", sender_sql=query, sender_conn_id="inbound_cursor", fire_existing=True)
    _, kwargs = trig.serialize()
    assert CUSTOMER not in json.dumps(kwargs) and kwargs["sender_sql"] == query
    assert trig.key == trigger("001", sender_sql=query, sender_conn_id="inbound_cursor").key
    assert trig.key != trigger("001").key
    first = listing((1, CUSTOMER, "STOP"), (2, "+393479999999", "STOP"))
    later = listing((1, CUSTOMER, "STOP"), (2, "+393479999999", "STOP"), (3, CUSTOMER, "again"))

    async def fired(*listings: tuple[ReceivedSms, ...]) -> list[int]:
        return [e.payload["id"] async for e in trig.filter_shared_stream(stream(*listings))]

    assert asyncio.run(fired(first)) == []  # no customer 7 yet: nothing fired, nothing passed
    assert not _has_row(cursor_db, trig.key)
    with sqlite3.connect(cursor_db) as conn:
        conn.execute("INSERT INTO customers VALUES (7, ?)", (CUSTOMER,))
    assert asyncio.run(fired(first, later)) == [1, 3]
    assert cursor_row(cursor_db, trig.key)[0] == 3  # type: ignore[index]


class SlowUpdates:
    """A SQLite connection whose UPDATEs wait for ``release`` (a claim the trigger is stopped in)."""

    def __init__(self, path: Path, entered: threading.Event, release: threading.Event) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self.entered, self.release = entered, release

    def cursor(self) -> Any:
        outer = self

        class Cursor:
            def __init__(self) -> None:
                self._cur = outer._conn.cursor()

            def execute(self, sql: str, params: Any = ()) -> Any:
                if sql.startswith("UPDATE") and not outer.release.is_set():
                    outer.entered.set()
                    outer.release.wait(10)
                return self._cur.execute(sql, params)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cur, name)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_trigger_stopped_during_its_claim_gives_it_back_and_the_next_run_fires_the_sms(
    cursor_db: Path,
) -> None:
    entered, release = threading.Event(), threading.Event()
    first = trigger("001")
    first._cursor = InboundCursor(
        lambda: SlowUpdates(cursor_db, entered, release), dialect=dialect_for("sqlite")
    )

    async def forever(*listings: tuple[ReceivedSms, ...]) -> AsyncIterator[tuple[ReceivedSms, ...]]:
        for item in listings:
            yield item
        await asyncio.Event().wait()

    async def go() -> list[int]:
        task = asyncio.ensure_future(
            anext(
                first.filter_shared_stream(
                    forever(
                        listing((5, CUSTOMER, "old")), listing((5, CUSTOMER, "old"), (6, CUSTOMER, "STOP"))
                    )
                )
            )
        )
        await asyncio.to_thread(entered.wait, 10)  # claiming 6: the UPDATE is running
        task.cancel()
        await asyncio.sleep(0.05)
        release.set()  # the UPDATE commits after the stop...
        with pytest.raises(asyncio.CancelledError):
            await task
        # ... and was given back: the next run (the restarted triggerer) fires 6.
        second = trigger("001")
        return [
            e.payload["id"]
            async for e in second.filter_shared_stream(
                stream(listing((5, CUSTOMER, "old"), (6, CUSTOMER, "STOP")))
            )
        ]

    assert asyncio.run(go()) == [6]
    assert cursor_row(cursor_db, first.key)[0] == 6  # type: ignore[index]


def test_a_database_failure_fires_nothing_and_the_next_listing_does(cursor_db: Path) -> None:
    """The cursor table cannot be reached at the first listing: no event, no crash; it can at the next."""
    trig = trigger("001", fire_existing=True)
    calls = {"n": 0}

    def connect() -> sqlite3.Connection:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("unable to open database file")
        return sqlite3.connect(cursor_db)

    trig._cursor = InboundCursor(connect, dialect=dialect_for("sqlite"))
    same = listing((1, CUSTOMER, "STOP"))

    async def go() -> list[int]:
        return [e.payload["id"] async for e in trig.filter_shared_stream(stream(same, same))]

    assert asyncio.run(go()) == [1]
    assert calls["n"] == 3  # the failed one, then the start and the claim at the second listing


class LostCommitAnswer:
    """A SQLite connection whose first commit after an UPDATE lands, then raises (the answer lost)."""

    def __init__(self, path: Path, lost: list[bool]) -> None:
        self._conn = sqlite3.connect(path)
        self._lost = lost
        self._updated = False

    def cursor(self) -> Any:
        outer = self

        class Cursor:
            def __init__(self) -> None:
                self._cur = outer._conn.cursor()

            def execute(self, sql: str, params: Any = ()) -> Any:
                outer._updated = outer._updated or sql.startswith("UPDATE")
                return self._cur.execute(sql, params)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cur, name)

        return Cursor()

    def commit(self) -> None:
        self._conn.commit()
        if self._updated and not self._lost:
            self._lost.append(True)
            raise sqlite3.OperationalError("server closed the connection unexpectedly")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_claim_whose_commit_answer_was_lost_still_fires_once(cursor_db: Path) -> None:
    """The UPDATE committed but the answer never came: the row names this run, so it fires (once)."""
    lost: list[bool] = []
    trig = trigger("001", fire_existing=True)
    trig._cursor = InboundCursor(lambda: LostCommitAnswer(cursor_db, lost), dialect=dialect_for("sqlite"))
    same = listing((1, CUSTOMER, "STOP"))

    async def go() -> list[int]:
        return [e.payload["id"] async for e in trig.filter_shared_stream(stream(same, same))]

    assert asyncio.run(go()) == [1]
    assert lost == [True] and cursor_row(cursor_db, trig.key) == (1, trig.owner)


class Clock:
    """A virtual clock for the poll's ``sleep`` seam: each pause is recorded and advances it; past
    ``until`` seconds it stops the poll (raises ``Stop``)."""

    class Stop(Exception):
        pass

    def __init__(self, until: float) -> None:
        self.until, self.now, self.pauses = until, 0.0, []

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        if self.now >= self.until:
            raise self.Stop


def test_a_wrong_password_backs_off_up_to_an_hour_and_fires_nothing(
    gateway: Any, sharecode: str, cursor_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal is no end (the triggerer would re-create the watcher and send the wrong password
    again at once): the poll keeps going, nothing fires, and the pause doubles from poll_interval
    up to an hour, so a day of a wrong password costs 30 requests, not 2,880."""
    bad = trigger(sharecode, smsend_conn_id="smsend_bad", poll_interval=30)
    clock = Clock(until=86_400)
    listings: list[Any] = []

    async def go() -> None:
        gateway.admin.reset_stats()
        _, kwargs = bad.serialize()
        async for item in type(bad).open_shared_stream(kwargs, sleep=clock.sleep):
            listings.append(item)

    with caplog.at_level("ERROR"), pytest.raises(Clock.Stop):
        asyncio.run(go())
    assert listings == []
    assert "was refused" in caplog.text and "Polling again in 3600 s" in caplog.text
    assert RECEPTION not in caplog.text and "+39340****001" in caplog.text
    assert clock.pauses[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert max(clock.pauses) == 3600 and len(clock.pauses) == 30
    requests = int(gateway.admin.stats()["requests"].get("/wsdl/index.php", 0))
    assert requests == len(clock.pauses)
    assert not cursor_db.exists() or cursor_row(cursor_db, bad.key) is None


def test_one_receive_sms_poll_serves_every_trigger_of_a_number_in_a_triggerer(
    gateway: Any, sharecode: str, cursor_db: Path
) -> None:
    """Ten watchers of one number and share code under Airflow's SharedStreamManager (what the 3.3
    triggerer runs them with): one poll loop (the gateway counts as many receiveSms requests as one
    subscriber saw listings, not ten times that), and each watcher fires the SMS once, on its own cursor."""
    shared_stream = pytest.importorskip(
        "airflow.triggers.shared_stream", reason="shared streams are Airflow 3.3+"
    )
    SharedStreamManager = shared_stream.SharedStreamManager  # noqa: N806

    watchers = [trigger(sharecode, cursor_key=f"watcher-{n}", poll_interval=0.1) for n in range(10)]

    async def go() -> tuple[dict[int, list[int]], int, int]:
        manager = SharedStreamManager()
        fired: dict[int, list[int]] = {n: [] for n in range(len(watchers))}
        seen = [0]

        async def counted(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for listing in stream:
                seen[0] += 1
                yield listing

        async def consume(n: int, trig: SmSendInboundSmsEventTrigger) -> None:
            stream = manager.subscribe(trigger_id=n, trigger=trig, key=trig.shared_stream_key())
            async for event in trig.filter_shared_stream(counted(stream) if n == 0 else stream):
                fired[n].append(event.payload["id"])

        tasks = [asyncio.ensure_future(consume(n, t)) for n, t in enumerate(watchers)]
        for watcher in watchers:
            await started(cursor_db, watcher.key)
        await asyncio.to_thread(gateway.admin.reset_stats)
        seen[0] = 0
        await asyncio.to_thread(gateway.admin.inject_inbound, RECEPTION, sharecode, CUSTOMER, "STOP")
        for _ in range(400):
            if all(fired.values()):
                break
            await asyncio.sleep(0.025)
        await asyncio.sleep(0.3)
        stats = await asyncio.to_thread(gateway.admin.stats)
        listings = seen[0]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.stop_all()
        return fired, int(stats["requests"].get("/wsdl/index.php", 0)), listings

    fired, requests, listings = asyncio.run(go())
    assert len({tuple(ids) for ids in fired.values()}) == 1 and len(next(iter(fired.values()))) == 1, fired
    # (a request in flight at the reset may be answered after it, or the last one not yet seen)
    assert listings >= 2 and listings - 1 <= requests <= listings + 1, (requests, listings)
