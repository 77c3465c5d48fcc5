"""SmSendAsyncClient: the read-only HTTP calls of the gateway over ``httpx.AsyncClient``.

Airflow-free, for triggers and other asyncio code. It is the async twin of
:class:`~airflow_provider_smsend.client.http.SmSendClient` for the calls that spend nothing
(``credit``, ``credit_get``, ``batch_status``, ``userlog_get``): the same request bodies and
validation (it builds them through a ``SmSendClient``, which does no I/O), the same answer parsing
and errors (:mod:`~airflow_provider_smsend.client.answers`, :mod:`~airflow_provider_smsend.client.reports`),
the same transport mapping (a connection never established is ``request_sent=False``; 5xx/429
are retryable) and the same retry policy (:func:`~airflow_provider_smsend.client.retry.async_call_with_retry`).

Example::

    import asyncio

    from airflow_provider_smsend.client.async_http import SmSendAsyncClient

    async def main() -> None:
        async with SmSendAsyncClient(username="user", password="secret") as client:
            report = await client.batch_status("HTTP00000000111", "notify")
            print(report.counts())

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import ssl
import threading
import weakref
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client import answers, validation
from airflow_provider_smsend.client.batch_rules import FETCH_CONCURRENCY, validate_concurrency
from airflow_provider_smsend.client.deadline import MAX_ANSWER_BYTES, answer_too_big, attempt_budget
from airflow_provider_smsend.client.errors import SmSendTimeoutError, SmSendTransportError
from airflow_provider_smsend.client.http import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    SmSendClient,
    http_status_error,
    report_too_big,
)
from airflow_provider_smsend.client.reports import (
    BatchStatusReport,
    LineGuard,
    UserlogEntry,
    read_batch_status,
    read_userlog,
    reports_from_frame,
    userlog_entries,
)
from airflow_provider_smsend.client.retry import RetryPolicy, async_call_with_retry

if TYPE_CHECKING:
    import httpx
    import pandas as pd

log = logging.getLogger(__name__)


def async_transport_error(exc: Exception, path: str) -> SmSendTransportError:
    """Map an httpx exception like :func:`~airflow_provider_smsend.client.http.transport_error` maps requests'."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return SmSendTimeoutError(f"Timed out connecting to the gateway for {path}.", request_sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return SmSendTimeoutError(
            f"The gateway did not answer {path} within the read timeout; the request may have been processed."
        )
    if isinstance(exc, httpx.ConnectError):
        return SmSendTransportError(
            f"Could not connect to the gateway for {path}: check the host and the network.",
            request_sent=False,
        )
    return SmSendTransportError(
        f"The connection to the gateway broke during {path} ({type(exc).__name__}); "
        "the request may have been processed."
    )


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every async client of the process.

    httpx builds a new context (loading the whole CA bundle, tens of ms of CPU) for each client; a
    triggerer running a thousand triggers would spend seconds of its event loop on that.
    """
    import httpx

    return httpx.create_ssl_context()


def _new_http(
    timeout: tuple[float, float],
    transport: httpx.AsyncBaseTransport | None,
    *,
    one_connection: bool = False,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for the gateway; ``one_connection``: a lane of a shared pool."""
    import httpx

    connect, read = timeout
    extra: dict[str, Any] = {}
    if one_connection:
        extra["limits"] = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # Waiting for a pooled connection is bounded too: httpx's pool timeout is the read timeout.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read, connect=connect),
        verify=shared_ssl_context(),
        headers={"User-Agent": "airflow-provider-smsend"},
        transport=transport,
        follow_redirects=False,
        **extra,
    )


#: Requests one shared pool has in flight at most, each on a keep-alive connection of its own;
#: requests beyond wait their turn (at most the read timeout, then fail as never sent).
SHARED_POOL_MAX_CONNECTIONS = 32


class _SharedPool:
    """The keep-alive connections to the gateway of one event loop and one set of connection settings.

    The pool is up to ``size`` lanes, each an ``httpx.AsyncClient`` of one connection serving one
    request at a time; waiting requests queue on a semaphore. httpcore's own pool walks every
    waiting request against every connection on each change (and checks every idle socket): with a
    thousand triggers polling at once that bookkeeping alone costs seconds of the event loop, while
    a one-connection client never has anything to walk.

    :param new_lane: builds one lane (an ``httpx.AsyncClient`` limited to one connection).
    :param loop: the event loop whose sockets these are.
    :param key: the pool's key in :data:`_shared_pools` (see ``SmSendAsyncClient._pool_key``).
    :param size: lanes at most.
    """

    def __init__(
        self,
        new_lane: Callable[[], httpx.AsyncClient],
        loop: asyncio.AbstractEventLoop,
        key: Hashable,
        size: int,
    ) -> None:
        # Weak: the registry is weak on the loop, and a pool must not keep its loop alive.
        self._loop = weakref.ref(loop)
        self.key = key
        self.users = 0
        self._new_lane = new_lane
        self._slots = asyncio.Semaphore(size)
        self._idle: list[httpx.AsyncClient] = []
        self._lanes: list[httpx.AsyncClient] = []
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop whose sockets these are (None once it is gone)."""
        return self._loop()

    async def take(self, wait: float) -> httpx.AsyncClient:
        """A lane for one request (give it back with :meth:`give`); TimeoutError after ``wait`` seconds."""
        if self._slots.locked():
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        else:
            await self._slots.acquire()  # a free slot: no wait, no timer
        if self._idle:
            return self._idle.pop()  # the most recently used: its connection is the likeliest alive
        try:
            lane = self._new_lane()
        except BaseException:
            self._slots.release()
            raise
        self._lanes.append(lane)
        return lane

    def give(self, lane: httpx.AsyncClient, *, healthy: bool = True) -> None:
        """Return a lane taken with :meth:`take`.

        :param healthy: False when its request did not end cleanly (cancelled mid-way, or a pool
            timeout on a one-request lane): httpcore can leave such a connection busy for ever, so
            the lane leaves the pool and is closed in the background; its slot is freed.
        """
        if healthy and not lane.is_closed:
            self._idle.append(lane)
        else:
            if lane in self._lanes:
                self._lanes.remove(lane)
            if not lane.is_closed:
                task = asyncio.get_running_loop().create_task(_close_quietly(lane))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        self._slots.release()

    def release(self) -> bool:
        """One user less; True once the last is gone (then the pool is out of the registry: close it)."""
        with _registry_lock:
            self.users -= 1
            if self.users > 0:
                return False
            loop = self.loop
            pools = _shared_pools.get(loop) if loop is not None else None
            if pools is not None and pools.get(self.key) is self:
                del pools[self.key]  # before any await: a user from now on builds a new pool
            return True

    async def aclose(self) -> None:
        """Close every lane's connection (shielded: a second cancel of the caller does not stop it)."""
        lanes, self._lanes, self._idle = self._lanes, [], []
        closing = asyncio.gather(*(lane.aclose() for lane in lanes), *self._closing, return_exceptions=True)
        await asyncio.shield(closing)


async def _close_quietly(lane: httpx.AsyncClient, seconds: float = 5.0) -> None:
    """Close a lane dropped from its pool, within ``seconds``; whatever it raises is its own end."""
    try:
        async with asyncio.timeout(seconds):
            await lane.aclose()
    except Exception:  # noqa: BLE001 - a dropped lane's close has no one to report to
        log.debug("Closing a dropped gateway connection failed", exc_info=True)


def _close_on_its_loop(pool: _SharedPool) -> None:
    """Close a pool from another loop, on its own loop while that runs.

    A loop that is gone or closed took its sockets with it; one stopped but not closed keeps them
    until it is closed (nothing can run on it meanwhile).
    """
    loop = pool.loop
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(pool.aclose(), loop)


#: Guards the registry and the user counts: a client used from a second loop (thread) gives its
#: lease on the first loop's pool back from that thread.
_registry_lock = threading.Lock()
#: event loop -> pool key -> pool. Weak on the loop: a loop that is gone takes its pools with it.
_shared_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _SharedPool]] = (
    weakref.WeakKeyDictionary()
)


class SmSendAsyncClient:
    """Async client of the gateway's read-only HTTP calls (credit, credit-get, batch-status, userlog-get).

    Takes the same settings as :class:`~airflow_provider_smsend.client.http.SmSendClient`; use
    :meth:`from_client` to mirror a configured sync client (what ``SmSendAsyncHook`` does). No I/O in
    the constructor; the ``httpx.AsyncClient`` is created on first use and closed by :meth:`aclose`
    (or ``async with``).

    :param username: SMS API login (``user``).
    :param password: SMS API password (``pass``).
    :param base_url: gateway host or URL; https unless ``http://`` is explicit.
    :param reseller_username: back-office login (``smsusername``); defaults to ``username``.
    :param reseller_password: back-office password (``smspassword``); defaults to ``password``.
    :param timeout: ``(connect, read)`` seconds, or one number for both.
    :param charset: request charset: ``utf-8`` or ``iso-8859-1``.
    :param retry: retry policy of the calls (all read-only).
    :param transport: an ``httpx.AsyncBaseTransport`` to use (tests: ``httpx.MockTransport``).
    :param shared_pool: borrow the keep-alive connections of the running event loop's shared pool
        for these settings (same gateway, credentials, timeouts and transport) instead of opening
        its own. A triggerer running a thousand triggers of one connection then keeps one pool of at
        most :data:`SHARED_POOL_MAX_CONNECTIONS` connections, reused from poll to poll, instead of a
        client and a new connection per trigger. :meth:`aclose` gives the lease back; the last
        user's closes the pool.

    Example::

        async with SmSendAsyncClient(username="u", password="p", base_url="http://127.0.0.1:8765") as client:
            credit = await client.credit()          # Decimal('12.3400')
            report = await client.batch_status("HTTP00000000111", "queue")
    """

    def __init__(
        self,
        *,
        username: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        reseller_username: str | None = None,
        reseller_password: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        charset: str = "utf-8",
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        shared_pool: bool = False,
    ) -> None:
        # The sync client validates the settings and builds request bodies; it never opens a session here.
        self._spec = SmSendClient(
            username=username,
            password=password,
            base_url=base_url,
            reseller_username=reseller_username,
            reseller_password=reseller_password,
            timeout=timeout,
            charset=charset,
            retry=retry,
        )
        self._transport = transport
        self._shared_pool = shared_pool
        self._client: httpx.AsyncClient | None = None
        self._lease: _SharedPool | None = None

    @classmethod
    def from_client(
        cls,
        client: SmSendClient,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        shared_pool: bool = False,
    ) -> SmSendAsyncClient:
        """An async client with the settings (host, credentials, timeouts, charset, retry) of ``client``."""
        instance = cls.__new__(cls)
        instance._spec = client
        instance._transport = transport
        instance._shared_pool = shared_pool
        instance._client = None
        instance._lease = None
        return instance

    @property
    def base_url(self) -> str:
        """The gateway's base URL."""
        return self._spec.base_url

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every call."""
        return self._spec.retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, username={self._spec.username!r})"

    def _http(self) -> httpx.AsyncClient:
        """This client's own ``httpx.AsyncClient`` (without ``shared_pool``), built on first use."""
        if self._client is None:
            self._client = _new_http(self._spec.timeout, self._transport)
        return self._client

    def _pool_key(self) -> Hashable:
        """What must match for two clients to share connections: gateway, credentials, timeouts, transport.

        Credentials enter as a digest, so clients of two connections never share a pool (nor its
        cookies), and the key holds no password.
        """
        spec = self._spec
        credentials = hashlib.sha256(spec.form_body({}, "sms") + b"\0" + spec.form_body({}, "reseller"))
        return (spec.base_url, spec.timeout, credentials.hexdigest(), self._transport)

    def _pool(self) -> _SharedPool:
        """The running loop's shared pool for these settings, leased on first use."""
        loop = asyncio.get_running_loop()
        lease = self._lease
        if lease is not None and lease.loop is loop:
            return lease
        if lease is not None:
            # Used from another loop: sockets belong to the loop that opened them. Give the old lease
            # back (closing that pool on its own loop if this was its last user).
            self._lease = None
            if lease.release():
                _close_on_its_loop(lease)
        key = self._pool_key()
        with _registry_lock:
            pools = _shared_pools.setdefault(loop, {})
            pool = pools.get(key)
            if pool is None:
                new_lane = functools.partial(
                    _new_http, self._spec.timeout, self._transport, one_connection=True
                )
                pool = pools[key] = _SharedPool(new_lane, loop, key, SHARED_POOL_MAX_CONNECTIONS)
            pool.users += 1
        self._lease = pool
        return pool

    async def aclose(self) -> None:
        """Close the keep-alive connections (a shared pool's once its last user is closed)."""
        client, lease = self._client, self._lease
        self._client = self._lease = None
        if client is not None:
            await client.aclose()
        if lease is not None and lease.release():
            if lease.loop is asyncio.get_running_loop():
                await lease.aclose()
            else:
                _close_on_its_loop(lease)

    async def __aenter__(self) -> SmSendAsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport

    async def _post(
        self,
        path: str,
        body: bytes,
        max_bytes: int = MAX_ANSWER_BYTES,
        too_big: Callable[[int], Exception] | None = None,
        feed: Callable[[bytes], object] | None = None,
    ) -> tuple[bytes, str | None]:
        """POST ``body``; the answer's body (at most ``max_bytes``) and Content-Type.

        The whole attempt (waiting for a pooled connection, connect, request, the answer's last
        byte) ends within the connect plus the read timeout (``asyncio.timeout``).
        """
        sent = False  # until the request may have left

        try:
            async with asyncio.timeout(attempt_budget(self._spec.timeout)):
                pool = self._pool() if self._shared_pool else None
                if pool is None:
                    http = self._http()
                else:
                    try:
                        http = await pool.take(self._spec.timeout[1])
                    except TimeoutError:
                        raise SmSendTimeoutError(
                            f"Timed out waiting for a free connection to the gateway for {path}: every "
                            "pooled connection stayed busy for the read timeout.",
                            request_sent=False,
                        ) from None
                sent = True
                return await self._exchange(
                    http, pool, path, body, max_bytes, too_big or answer_too_big(path), feed
                )
        except TimeoutError:
            raise SmSendTimeoutError(
                f"The gateway did not answer {path} within its time budget (the connect and read timeouts)"
                + ("; the request may have been processed." if sent else "."),
                request_sent=sent,
            ) from None

    async def _exchange(
        self,
        http: httpx.AsyncClient,
        pool: _SharedPool | None,
        path: str,
        body: bytes,
        max_bytes: int,
        too_big: Callable[[int], Exception],
        feed: Callable[[bytes], object] | None,
    ) -> tuple[bytes, str | None]:
        """One request on ``http`` (a lane of ``pool``, given back after): the capped body and Content-Type."""
        import httpx

        headers = {"Content-Type": self._spec.content_type}
        healthy = False  # until the request ends cleanly: a cancelled one may leave its connection stuck
        try:
            async with http.stream("POST", self.base_url + path, content=body, headers=headers) as response:
                if response.status_code != 200:
                    raise http_status_error(response.status_code, path)
                parts: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_big(max_bytes)
                    if feed is not None:
                        feed(chunk)
                    parts.append(chunk)
            healthy = True
        except httpx.HTTPError as exc:
            # A one-request lane never waits for its own pool: a pool timeout means a stuck connection.
            healthy = not isinstance(exc, httpx.PoolTimeout)
            raise async_transport_error(exc, path) from None
        finally:
            if pool is not None:
                pool.give(http, healthy=healthy)
        return b"".join(parts), response.headers.get("Content-Type")

    async def _post_text(self, path: str, body: bytes) -> str:
        content, content_type = await self._post(path, body)
        return answers.decode_body(content, content_type)

    async def _call(self, path: str, fields: dict[str, Any], *, auth: str) -> str:
        """POST ``fields`` (read-only call) and return the value of the ``OK`` answer."""
        body = self._spec.form_body(fields, auth)

        async def once() -> str:
            return answers.parse_answer(await self._post_text(path, body))

        return await async_call_with_retry(once, policy=self.retry, idempotent=True)  # type: ignore[return-value]

    async def _report_body(self, path: str, fields: dict[str, Any], *, auth: str) -> tuple[bytes, str | None]:
        """A whole report answer's bytes and Content-Type; ``KO`` or an empty body raises (retried)."""
        body = self._spec.form_body(fields, auth)

        async def once() -> tuple[bytes, str | None]:
            guard = LineGuard(f"The gateway's answer to {path}")
            cap = self._spec.max_report_bytes
            content, content_type = await self._post(path, body, cap, report_too_big(path), guard.feed)
            head = content.lstrip()[:256]
            if not head:
                raise SmSendTransportError(f"The gateway answered {path} with an empty body.")
            answers.raise_for_ko(answers.decode_body(head.splitlines()[0], content_type))
            return content, content_type

        return await async_call_with_retry(once, policy=self.retry, idempotent=True)  # type: ignore[return-value]

    # ------------------------------------------------------------------ calls

    async def credit(self, credit_type: str = "credit") -> Decimal | int:
        """Remaining credit: euros (``Decimal``) for ``credit``, else the SMS count of a quality."""
        validation.validate_choice(credit_type, validation.CREDIT_TYPES, name="credit type")
        value = await self._call("/sms/credit.php", {"type": credit_type}, auth="sms")
        if credit_type == "credit":
            return answers.parse_money(value, what="credit")
        return answers.parse_int(value, what="SMS count")

    async def credit_get(self, u_id: int | str) -> Decimal:
        """Return a client's available credit in euros (back-office, exact)."""
        fields = {"u_id": validation.validate_positive_id(u_id, name="u_id")}
        value = await self._call("/backoffice/credit-get.php", fields, auth="reseller")
        return answers.parse_money(value, what="credit")

    async def batch_status(self, request_id: str, report_type: str = "notify") -> BatchStatusReport:
        """Return the batch-status report (``queue``, ``notify`` or ``mnc``) of a request id."""
        body, content_type = await self.batch_status_body(request_id, report_type)
        frame = read_batch_status([(request_id, body, content_type)], report_type)
        return reports_from_frame(frame, [request_id], report_type)[0]

    async def batch_status_body(
        self, request_id: str, report_type: str = "notify"
    ) -> tuple[bytes, str | None]:
        """The raw batch-status answer of a request id and its Content-Type (``KO`` raises)."""
        fields = self._spec.batch_status_fields(request_id, report_type)
        return await self._report_body("/sms/batch-status.php", fields, auth="sms")

    async def batch_status_frame(
        self, request_ids: list[str], report_type: str = "notify", *, concurrency: int = FETCH_CONCURRENCY
    ) -> pd.DataFrame:
        """The batch-status rows of many request ids: fetched ``concurrency`` at a time, parsed together
        (in a worker thread, off the event loop). The first failure cancels the other fetches and is raised."""
        import asyncio

        limit = asyncio.Semaphore(validate_concurrency(concurrency))

        async def fetch(rid: str) -> tuple[str, bytes, str | None]:
            async with limit:
                body, content_type = await self.batch_status_body(rid, report_type)
                return rid, body, content_type

        tasks = [asyncio.ensure_future(fetch(rid)) for rid in request_ids]
        try:
            bodies = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if len(bodies) <= 4:
            return read_batch_status(bodies, report_type)
        return await asyncio.to_thread(read_batch_status, bodies, report_type)

    async def userlog_get(
        self, log_type: str, *, u_id: int | None = None, date_from: object = None, date_to: object = None
    ) -> list[UserlogEntry]:
        """Return the back-office operation log (``credits``, ``recv_add`` or ``recv_del``)."""
        fields = self._spec.userlog_fields(log_type, u_id, date_from, date_to)
        body, content_type = await self._report_body("/backoffice/userlog-get.php", fields, auth="reseller")
        return userlog_entries(read_userlog(body, log_type, content_type=content_type), log_type)


__all__ = ["SmSendAsyncClient", "async_transport_error", "http_status_error"]
