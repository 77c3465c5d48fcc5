"""Deadlines and size caps of one gateway call (docs/gateway.md, "Deadlines and size caps").

Airflow-free. A socket timeout bounds each read, not the call: a peer that sends one byte just
before each read timeout keeps a call alive for ever. Here every attempt of a call gets a
:class:`Deadline` (its connect + read timeouts); :func:`deadline` makes it the current one of the
thread (a context variable) while the attempt runs, and the sessions built by this package consult
it on every socket read and write:

- :func:`deadline_adapter`, a ``requests`` ``HTTPAdapter`` whose connections set the socket
  timeout to the time left before each read and write, so a call fails with a read timeout when
  its deadline passes;
- :func:`read_capped` reads a response body in chunks up to a byte cap.

The async client uses ``asyncio.timeout`` with the same budget (:func:`attempt_budget`).
"""

from __future__ import annotations

import contextvars
import functools
import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_smsend.client.errors import SmSendTransportError

if TYPE_CHECKING:
    import requests
    import requests.adapters

#: The longest plain answer (``OK ...`` / ``KO ...``) read: they are one short line.
MAX_ANSWER_BYTES = 64 << 10
#: The default cap of a report answer (batch-status, userlog-get): the ``max_report_bytes`` extra.
DEFAULT_MAX_REPORT_BYTES = 512 << 20
#: The longest SOAP answer of sendMms (a cost and a list of recipients).
MAX_SOAP_ANSWER_BYTES = 1 << 20
#: receiveSms: the answer may hold this much beyond the messages asked, and this much per message.
SOAP_ENVELOPE_BYTES = 64 << 10
SOAP_BYTES_PER_MESSAGE = 16 << 10
#: Bytes read from a body at a time.
CHUNK_BYTES = 64 << 10
#: Connection pool keys a deadline adapter keeps (one per gateway origin in practice).
_POOL_KEYS_KEPT = 64


def attempt_budget(timeout: tuple[float, float]) -> float:
    """Seconds one attempt of a call may take, from connect to the answer's last byte.

    A call's budget is its attempts' plus the backoff waits between them:
    :func:`~airflow_provider_smsend.client.once_only.write_budget`, the one rule for every call.
    """
    connect, read = timeout
    return connect + read


class Deadline:
    """The end of one attempt on the monotonic clock, and the byte cap of its answer.

    :param seconds: how long the attempt may take from now.
    :param max_bytes: the most bytes of answer body the sessions of this package read while the
        deadline is current (None: the caller reads the body itself, with its own cap).
    :param what: the call, for the error of an answer over ``max_bytes``.
    """

    __slots__ = ("end", "max_bytes", "seconds", "what")

    def __init__(self, seconds: float, *, max_bytes: int | None = None, what: str = "the call") -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.max_bytes = max_bytes
        self.what = what

    def remaining(self) -> float:
        """Seconds left (0 or less once passed)."""
        return self.end - time.monotonic()

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.end

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Do not count the time spent in the block (a stream's consumer holding a chunk)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.end += time.monotonic() - started


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("smsend_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the attempt running in this thread (or task), if any."""
    return _current.get()


@contextmanager
def deadline(value: Deadline) -> Iterator[Deadline]:
    """Make ``value`` the current deadline while the block runs."""
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


def _bounded(timeout: float | None) -> float | None:
    """``timeout`` shortened to the current deadline's time left; raises ``socket.timeout`` once it passed."""
    limit = _current.get()
    if limit is None:
        return timeout
    left = limit.end - time.monotonic()
    if left <= 0:
        raise TimeoutError("the call's deadline passed")
    return left if timeout is None or left < timeout else timeout


class _DeadlineSocket:
    """A connected socket whose reads and writes wait at most until the current deadline.

    Everything else (``fileno``, TLS details) is the wrapped socket's. Like a socket, it stays open
    while a file made by :meth:`makefile` is: ``close()`` then takes effect when the last one closes.

    A timeout set with :meth:`settimeout` reaches the socket on the next read or write, and only
    when it differs from the one the socket has (each change is a system call): the deadline's
    time left is applied instead while it is shorter than the timeout set.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()  # what the caller set
        self._applied: float | None = self._timeout  # what the socket has
        self._readers = 0
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        wanted = _bounded(self._timeout)
        if wanted != self._applied:
            self._sock.settimeout(wanted)
            self._applied = wanted

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return int(self._sock.recv_into(buffer, nbytes, flags))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return bytes(self._sock.recv(bufsize, flags))

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        self._sock.sendall(data, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        return int(self._sock.send(data, flags))

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        if "b" not in mode or "w" in mode:  # http.client reads responses with makefile("rb") only
            return self._sock.makefile(mode, buffering)
        self._readers += 1
        return io.BufferedReader(_SocketReader(self), buffering or io.DEFAULT_BUFFER_SIZE)

    def close(self) -> None:
        self._closing = True
        if self._readers <= 0:
            self._sock.close()

    def reader_closed(self) -> None:
        """A file of :meth:`makefile` was closed (the socket closes now if it was meant to)."""
        self._readers -= 1
        if self._readers <= 0 and self._closing:
            self._sock.close()


class _SocketReader(io.RawIOBase):
    """The raw stream of :meth:`_DeadlineSocket.makefile`: each read goes through the deadline."""

    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock.reader_closed()

    def fileno(self) -> int:
        return int(self._sock.fileno())


class _CappedBody:
    """A response's raw body that raises once more than ``max_bytes`` (decoded) were read."""

    def __init__(self, raw: Any, max_bytes: int, what: str) -> None:
        self._raw = raw
        self._max_bytes = max_bytes
        self._what = what
        self._size = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def _count(self, data: bytes) -> bytes:
        self._size += len(data)
        if self._size > self._max_bytes:
            self._raw.close()
            raise answer_too_big(self._what)(self._max_bytes)
        return data

    def read(self, amt: int | None = None, **kwargs: Any) -> bytes:
        return self._count(self._raw.read(amt, **kwargs))

    def stream(self, amt: int = CHUNK_BYTES, decode_content: bool | None = None) -> Iterator[bytes]:
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            yield self._count(chunk)


def _connect_by_deadline(connection: Any, connect: Callable[[], None]) -> None:
    """Run urllib3's ``connect`` within the current deadline's time left.

    A timeout before the request's first byte (the deadline already passed, the TLS handshake or a
    proxy's answer too slow) is a connect timeout: the request provably did not leave.
    """
    from urllib3.exceptions import ConnectTimeoutError

    try:
        connection.timeout = _bounded(connection.timeout)
        connect()
    except TimeoutError as exc:
        raise ConnectTimeoutError(
            connection,
            f"Connecting to {connection.host} (TCP and TLS) did not end within the connect timeout or "
            f"the call's deadline: {exc}",
        ) from exc


@functools.cache
def _adapter_class() -> type[requests.adapters.HTTPAdapter]:
    """:class:`DeadlineAdapter`'s class, built on first use (requests and urllib3 load lazily)."""
    import requests.adapters
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class DeadlineHTTPConnection(HTTPConnection):
        """urllib3's connection whose connect, sends and reads end by the current deadline."""

        def connect(self) -> None:
            _connect_by_deadline(self, super().connect)
            self.sock = _DeadlineSocket(self.sock)

    class DeadlineHTTPSConnection(HTTPSConnection):
        """The TLS twin: the TCP connect and the TLS handshake together end by the deadline."""

        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            # The handshake that follows gets what is left (a whole handshake is bounded by the
            # socket's timeout), not a second connect timeout of its own.
            try:
                sock.settimeout(_bounded(self.timeout))
            except TimeoutError:
                sock.close()
                raise
            return sock

        def connect(self) -> None:
            _connect_by_deadline(self, super().connect)
            self.sock = _DeadlineSocket(self.sock)

    class DeadlineHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = DeadlineHTTPConnection

    class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = DeadlineHTTPSConnection

    pool_classes = {"http": DeadlineHTTPConnectionPool, "https": DeadlineHTTPSConnectionPool}

    class DeadlineAdapter(requests.adapters.HTTPAdapter):
        """An ``HTTPAdapter`` whose connections honour the current :class:`Deadline` on every socket read."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = dict(pool_classes)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            manager.pool_classes_by_scheme = dict(pool_classes)
            return manager

        def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> Any:
            # Found once per origin, CA bundle and client certificate, not on every request
            # (requests asks the file system whether a CA bundle path is a directory).
            kept: dict[Any, Any] = self.__dict__.setdefault("_pool_keys", {})
            try:
                key: Any = (urlsplit(request.url)[:2], verify, cert)
                found = kept.get(key)
            except TypeError:  # an unhashable cert: nothing kept
                key, found = None, None
            if found is None:
                found = super().build_connection_pool_key_attributes(request, verify, cert)
                if key is not None:
                    if len(kept) >= _POOL_KEYS_KEPT:
                        kept.clear()
                    kept[key] = found
            host, pool = found
            return dict(host), dict(pool)

        def build_response(self, req: Any, resp: Any) -> requests.Response:
            response = super().build_response(req, resp)
            limit = _current.get()
            if limit is not None and limit.max_bytes is not None:
                response.raw = _CappedBody(response.raw, limit.max_bytes, limit.what)
            return response

    return DeadlineAdapter


def deadline_adapter(*, pool_maxsize: int = 10) -> requests.adapters.HTTPAdapter:
    """A ``requests`` ``HTTPAdapter`` whose connections honour the current :class:`Deadline`.

    Its connections set the socket timeout to the time left before each read or write, when less
    than the timeout the call gave; past the deadline the read fails as a read timeout. While a
    deadline with ``max_bytes`` is current, a body longer than that raises
    :class:`~airflow_provider_smsend.client.errors.SmSendTransportError` as it is read.

    :param pool_maxsize: keep-alive connections kept for concurrent use.
    """
    return _adapter_class()(pool_connections=2, pool_maxsize=pool_maxsize, max_retries=0)


def mount_deadlines(session: requests.Session, *, pool_maxsize: int = 10) -> None:
    """Mount one :func:`deadline_adapter` for http:// and https:// on ``session``."""
    adapter = deadline_adapter(pool_maxsize=pool_maxsize)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


def read_capped(
    response: requests.Response,
    max_bytes: int,
    too_big: Callable[[int], Exception],
    *,
    feed: Callable[[bytes], object] | None = None,
) -> bytes:
    """The body of a ``stream=True`` response, read in chunks, at most ``max_bytes``.

    :param too_big: builds the error raised when the body is longer (given the cap).
    :param feed: called with each chunk (a line-length check), optional.
    :raises requests.RequestException: the connection broke or the deadline passed mid-body.
    """
    if response.raw is None:  # a response built in memory (a test's stub): its body is all there
        content = response.content or b""
        if len(content) > max_bytes:
            raise too_big(max_bytes)
        if feed is not None:
            feed(content)
        return content
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise too_big(max_bytes)
            if feed is not None:
                feed(chunk)
            parts.append(chunk)
    finally:
        response.close()
    return b"".join(parts)


def answer_too_big(what: str, *, request_sent: bool = True) -> Callable[[int], Exception]:
    """The error of an answer over its cap (:data:`MAX_ANSWER_BYTES` for a plain one): not a gateway answer."""

    def build(cap: int) -> Exception:
        return SmSendTransportError(
            f"The gateway's answer to {what} is longer than {cap} bytes: not an answer of the gateway "
            "(check the host); the request may have been processed.",
            retryable=False,
            request_sent=request_sent,
            code="answer_too_big",
        )

    return build


__all__ = [
    "DEFAULT_MAX_REPORT_BYTES",
    "MAX_ANSWER_BYTES",
    "MAX_SOAP_ANSWER_BYTES",
    "Deadline",
    "attempt_budget",
    "current",
    "deadline",
    "deadline_adapter",
    "mount_deadlines",
    "read_capped",
]
