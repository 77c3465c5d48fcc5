"""SmSendAsyncClient(shared_pool=True): one pool of keep-alive connections per event loop and connection.

Against a real keep-alive HTTP server in a thread that counts the TCP connections it accepts and
records which credentials each connection carried.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import defaultdict
from urllib.parse import parse_qs

import pytest

from airflow_provider_smsend.client import async_http
from airflow_provider_smsend.client.async_http import SmSendAsyncClient
from airflow_provider_smsend.client.errors import SmSendTimeoutError
from airflow_provider_smsend.client.retry import RetryPolicy

NOTIFY = b"id,dest,status,status_text\r\n1,+393331234567,200,Delivered\r\n"
ONCE = RetryPolicy(attempts=1)


class KeepAliveServer:
    """A minimal HTTP/1.1 keep-alive server on its own loop and thread, answering a notify report."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.requests = 0
        self.delay = 0.0  # seconds before each answer
        self.credentials: dict[int, set[tuple[str, str]]] = defaultdict(set)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        connection = self.accepted
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                body = await reader.readexactly(int(match.group(1)) if match else 0)
                form = parse_qs(body.decode("ascii"))
                self.credentials[connection].add((form["user"][0], form["pass"][0]))
                self.requests += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(NOTIFY), NOTIFY)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    def start(self) -> KeepAliveServer:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(10)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    def stop(self) -> None:
        async def shut() -> None:
            self.server.close()
            current = asyncio.current_task()
            handlers = [task for task in asyncio.all_tasks() if task is not current]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def wait_all_closed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open == 0


@pytest.fixture
def server():
    running = KeepAliveServer().start()
    yield running
    running.stop()


def client(server: KeepAliveServer, *, user: str = "demo", password: str = "demo-pass", **kwargs):
    settings = {"base_url": server.url, "retry": ONCE, "shared_pool": True}
    settings.update(kwargs)
    return SmSendAsyncClient(username=user, password=password, **settings)


def test_clients_of_one_connection_share_a_few_keep_alive_connections(server, monkeypatch):
    monkeypatch.setattr(async_http, "SHARED_POOL_MAX_CONNECTIONS", 4)
    clients = [client(server) for _ in range(40)]

    async def go() -> list[int]:
        accepted = []
        for _ in range(2):  # two polls of 40 triggers at the same instant
            reports = await asyncio.gather(*(c.batch_status(f"HTTP{i}") for i, c in enumerate(clients)))
            assert [r.counts()["success"] for r in reports] == [1] * 40
            accepted.append(server.accepted)
        for c in clients:
            await c.aclose()
        return accepted

    assert asyncio.run(go()) == [4, 4]  # at most the pool size, and the second poll opens none
    assert server.requests == 80
    assert server.wait_all_closed()


def test_without_shared_pool_each_client_has_its_own_connection(server):
    clients = [client(server, shared_pool=False) for _ in range(5)]

    async def go() -> None:
        await asyncio.gather(*(c.batch_status("HTTP1") for c in clients))
        for c in clients:
            await c.aclose()

    asyncio.run(go())
    assert server.accepted == 5


def test_the_pool_closes_with_its_last_user(server):
    first, second = client(server), client(server)

    async def go() -> None:
        await first.batch_status("HTTP1")
        await second.batch_status("HTTP2")  # both users hold the pool (leased at the first call)
        await first.aclose()
        await asyncio.sleep(0.05)
        assert server.open == 1  # the other user still holds the pool
        await second.batch_status("HTTP3")  # on the same connection
        assert server.accepted == 1
        await second.aclose()

    asyncio.run(go())
    assert server.wait_all_closed()

    async def again() -> None:  # a user after the close builds a new pool
        third = client(server)
        await third.batch_status("HTTP3")
        await third.aclose()

    asyncio.run(again())
    assert server.accepted == 2
    assert server.wait_all_closed()


def test_connections_with_other_credentials_never_share(server):
    clients = [
        client(server),
        client(server),
        client(server, user="other"),
        client(server, password="other-pass"),
        client(server, reseller_password="other-reseller-pass"),
    ]

    async def go() -> None:
        await asyncio.gather(*(c.batch_status("HTTP1") for c in clients))
        for c in clients:
            await c.aclose()

    asyncio.run(go())
    # Each connection only ever carried one account's credentials.
    assert all(len(seen) == 1 for seen in server.credentials.values())
    assert {pair for seen in server.credentials.values() for pair in seen} == {
        ("demo", "demo-pass"),
        ("other", "demo-pass"),
        ("demo", "other-pass"),
    }
    assert 4 <= server.accepted <= 5  # demo twice: one pool (one or two connections); three more pools


def test_each_event_loop_has_its_own_pool(server):
    shared = client(server)

    async def poll(close: bool) -> None:
        await shared.batch_status("HTTP1")
        if close:
            await shared.aclose()

    asyncio.run(poll(close=False))  # not closed: its connection belongs to a loop that is gone
    asyncio.run(poll(close=True))  # so this loop opens its own instead of reusing a dead loop's socket
    assert server.accepted == 2
    deadline = time.monotonic() + 5
    while server.open > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open <= 1  # the second loop's pool was closed by aclose on that loop


def test_pools_of_two_loops_running_at_once_are_separate(server):
    barrier = threading.Barrier(2)
    seen: list[object] = []

    def worker() -> None:
        async def go() -> None:
            c = client(server)
            await c.batch_status("HTTP1")
            seen.append(c._pool())
            barrier.wait(5)  # both loops hold their pool at the same time
            await c.aclose()

        asyncio.run(go())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert server.accepted == 2
    assert server.wait_all_closed()


def test_waiting_for_a_busy_pool_is_bounded_and_counts_as_never_sent(server, monkeypatch):
    monkeypatch.setattr(async_http, "SHARED_POOL_MAX_CONNECTIONS", 1)
    waiting = client(server, timeout=(1.0, 0.2))

    async def go() -> None:
        pool = waiting._pool()
        lane = await pool.take(1.0)  # another user holds the only connection
        waits: list[float] = []
        take = pool.take

        async def recorded_take(wait: float) -> object:
            waits.append(wait)
            return await take(wait)

        monkeypatch.setattr(pool, "take", recorded_take)
        with pytest.raises(SmSendTimeoutError, match="free connection") as caught:
            await waiting.batch_status("HTTP1")  # the lane is never given back: only the bound ends this
        assert waits == [0.2]  # it waited for a connection for the read timeout, then gave up
        assert caught.value.request_sent is False and caught.value.retryable
        assert server.requests == 0
        pool.give(lane)
        await waiting.batch_status("HTTP1")  # the connection is free again
        await waiting.aclose()

    asyncio.run(go())
    assert server.requests == 1


def test_a_request_cancelled_mid_way_takes_its_lane_out_of_the_pool(server, monkeypatch):
    """httpcore can leave a connection busy for ever when a request is cancelled at the wrong
    instant: a cancelled request's lane is closed and dropped, never handed to the next trigger."""
    monkeypatch.setattr(async_http, "SHARED_POOL_MAX_CONNECTIONS", 1)
    server.delay = 0.5
    first, second = client(server), client(server)

    async def go() -> tuple[int, int, bool]:
        task = asyncio.create_task(first.batch_status("HTTP1"))
        await asyncio.sleep(0.1)  # the request is on the wire, its answer not yet
        pool = async_http._shared_pools[asyncio.get_running_loop()][first._pool_key()]
        cancelled_lane = pool._lanes[0]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        server.delay = 0.0
        report = await second.batch_status("HTTP2")  # the only slot is free again, on a new lane
        in_pool = cancelled_lane in pool._lanes or cancelled_lane in pool._idle
        await asyncio.sleep(0.05)  # the dropped lane's background close
        closed = cancelled_lane.is_closed
        await first.aclose()
        await second.aclose()
        return report.counts()["success"], len(pool._lanes), in_pool or not closed

    assert asyncio.run(go()) == (1, 0, False)  # answered; the pool closed with its users; lane dropped
    assert server.accepted == 2
    assert server.wait_all_closed()
