"""SmSendAsyncHook: the smSend connection resolved on an event loop (in the triggerer)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_smsend.hooks.smsend import SECRET_EXTRAS, SmSendHook

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_smsend.client.async_http import SmSendAsyncClient
    from airflow_provider_smsend.client.soap import SmSendSoapClient


T = TypeVar("T")

#: Threads the blocking SOAP calls (receiveSms) of a process run on, at most: a hung SOAP gateway
#: holds these until each call's deadline, never the event loop's default executor that other
#: triggers' ``asyncio.to_thread`` need.
SOAP_THREADS = 8
_soap_executor: ThreadPoolExecutor | None = None
_soap_executor_lock = threading.Lock()

#: Seconds the hooks of one event loop (a triggerer's) reuse a connection once fetched: a thousand
#: triggers starting together fetch it once, and triggers starting this long after an edit see the
#: edited connection (a running trigger keeps the client it started with).
CONNECTION_CACHE_SECONDS = 10.0

#: event loop -> conn id -> (expiry on the monotonic clock, the fetch while it runs, then its result).
#: Weak on the loop, so a test's or a worker's short-lived loop takes its entries with it (a finished
#: fetch is replaced by its result: a task would keep its loop alive); failed fetches are never kept.
_fetches: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop,
    dict[
        str, tuple[float, asyncio.Task[tuple[Connection, dict[str, Any]]] | tuple[Connection, dict[str, Any]]]
    ],
] = weakref.WeakKeyDictionary()


class SmSendAsyncHook(SmSendHook):
    """Async twin of :class:`~airflow_provider_smsend.hooks.smsend.SmSendHook`, for triggers.

    The connection is fetched with ``BaseHook.aget_connection`` and its extras with
    ``Connection.aextra_dejson`` (secrets masked without blocking the event loop); from there the
    clients are built by the very same code as :class:`SmSendHook`'s (host, scheme, port, timeouts,
    charset, reseller credentials, SOAP hosts), so a connection behaves the same in a worker and in
    the triggerer. Credentials never travel in trigger kwargs: only the conn id does.

    :param smsend_conn_id: the Airflow connection id (default ``smsend_default``).

    Example::

        from airflow_provider_smsend.hooks.smsend_async import SmSendAsyncHook

        async def check(request_id: str) -> None:
            hook = SmSendAsyncHook(smsend_conn_id="smsend_default")
            async with await hook.get_async_client() as client:
                report = await client.batch_status(request_id, "notify")
    """

    def __init__(self, *, smsend_conn_id: str = SmSendHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(smsend_conn_id=smsend_conn_id, **kwargs)
        self._async_extras: dict[str, Any] | None = None

    async def aload_connection(self) -> Connection:
        """Fetch the connection and its extras without blocking the loop; cached on the hook.

        The hooks of one event loop share one fetch per conn id for
        :data:`CONNECTION_CACHE_SECONDS` (concurrent callers wait for the same one): the triggerer
        then resolves a connection once for all the triggers that start together, not once each.
        """
        cached = self.__dict__.get("connection")
        if cached is not None and self._async_extras is not None:
            return cached
        conn, extras = await self._shared_fetch()
        self._async_extras = dict(extras)
        # Prime SmSendHook's cached ``connection`` so its helpers (and ``client``/``soap_client``)
        # use this connection and never call the synchronous get_connection on the loop.
        self.__dict__["connection"] = conn
        return conn

    async def _shared_fetch(self) -> tuple[Connection, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        entries = _fetches.setdefault(loop, {})
        conn_id = self.smsend_conn_id
        entry = entries.get(conn_id)
        now = time.monotonic()
        if entry is None or entry[0] <= now:
            for stale in [k for k, (expiry, _) in entries.items() if expiry <= now]:
                del entries[stale]  # expired: nothing keeps an old connection (nor its password)
            task = loop.create_task(self._fetch_connection())
            expiry = now + CONNECTION_CACHE_SECONDS
            entry = entries[conn_id] = (expiry, task)

            def settle(done: asyncio.Task[Any], entry: object = entry, expiry: float = expiry) -> None:
                if entries.get(conn_id) is not entry:
                    return
                if done.cancelled() or done.exception() is not None:
                    del entries[conn_id]  # the next caller asks again
                else:
                    entries[conn_id] = (expiry, done.result())

            task.add_done_callback(settle)
        fetch = entry[1]
        if not isinstance(fetch, asyncio.Task):
            return fetch
        # Shielded: one caller cancelled (its trigger removed) does not cancel the others' fetch.
        return await asyncio.shield(fetch)

    async def _fetch_connection(self) -> tuple[Connection, dict[str, Any]]:
        conn = await self.aget_connection(self.smsend_conn_id)
        aextra = getattr(conn, "aextra_dejson", None)
        if aextra is not None:
            extras = await aextra()
        else:  # pragma: no cover - SDKs before async masking
            from asgiref.sync import sync_to_async

            extras = await sync_to_async(lambda: conn.extra_dejson)()
        await _amask(conn.password)
        for key in SECRET_EXTRAS:
            await _amask(extras.get(key))
        return conn, dict(extras)

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extras; after :meth:`aload_connection`, the ones fetched asynchronously."""
        if self._async_extras is not None:
            return dict(self._async_extras)
        return super().extras

    async def get_async_client(self, *, shared_pool: bool = False) -> SmSendAsyncClient:
        """A new :class:`~airflow_provider_smsend.client.async_http.SmSendAsyncClient` for this connection.

        The caller closes it (``async with await hook.get_async_client() as client``).

        :param shared_pool: borrow the event loop's keep-alive pool of this connection (what the
            triggers do: a triggerer's triggers of one connection then share one pool) instead of
            opening one for this client alone.
        """
        from airflow_provider_smsend.client.async_http import SmSendAsyncClient

        await self.aload_connection()
        return SmSendAsyncClient.from_client(self.client, shared_pool=shared_pool)

    async def get_soap_client(self) -> SmSendSoapClient:
        """The SOAP client (receiveSms) of this connection; its calls are blocking: run them with
        :func:`run_soap_call`."""
        await self.aload_connection()
        return self.soap_client


def soap_executor() -> ThreadPoolExecutor:
    """The process's executor of blocking SOAP calls (:data:`SOAP_THREADS` threads), made on first use."""
    global _soap_executor
    with _soap_executor_lock:
        if _soap_executor is None:
            _soap_executor = ThreadPoolExecutor(max_workers=SOAP_THREADS, thread_name_prefix="smsend-soap")
        return _soap_executor


async def run_soap_call(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking SOAP call on :func:`soap_executor` (with the caller's context) and await it.

    Each call ends by its own deadline (docs/gateway.md, "Deadlines and size caps"), so a hung
    gateway holds a thread at most that long; calls beyond :data:`SOAP_THREADS` wait their turn.
    """
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args)
    return await asyncio.get_running_loop().run_in_executor(soap_executor(), call)


async def _amask(secret: object) -> None:
    if not secret:
        return
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # pragma: no cover - older SDK layouts
        return
    await amask_secret(str(secret))
