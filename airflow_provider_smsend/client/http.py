"""SmSendClient: one method per HTTP endpoint of the gateway, over one keep-alive session.

Airflow-free. Example::

    from airflow_provider_smsend.client import SmSendClient

    client = SmSendClient(base_url="https://app.smsend.it", username="user", password="secret")
    result = client.send("+393331234567", "Pipeline failed", sender="ACME")
    report = client.batch_status(result.request_id, "notify")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from airflow_provider_smsend.client import answers, validation
from airflow_provider_smsend.client.batch_rules import FETCH_CONCURRENCY, validate_concurrency
from airflow_provider_smsend.client.deadline import (
    DEFAULT_MAX_REPORT_BYTES,
    MAX_ANSWER_BYTES,
    Deadline,
    answer_too_big,
    attempt_budget,
    deadline,
    deadline_adapter,
    read_capped,
)
from airflow_provider_smsend.client.errors import (
    SmSendError,
    SmSendReportError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.numbers import (
    DEFAULT_REGION,
    mask_number,
    normalize_number,
    normalize_numbers,
)
from airflow_provider_smsend.client.once_only import write_budget
from airflow_provider_smsend.client.reports import (
    BatchStatusReport,
    LineGuard,
    UserlogEntry,
    iter_batch_status_frames,
    iter_userlog_frames,
    read_batch_status,
    read_batch_status_frames,
    read_userlog,
    reports_from_frame,
    userlog_entries,
)
from airflow_provider_smsend.client.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import pandas as pd
    import requests

    from airflow_provider_smsend.client.validation import PreparedMessage

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BASE_URL = "https://app.smsend.it"
DEFAULT_TIMEOUT = (5.0, 30.0)
#: Numbers per mnc call (docs/gateway.md, "Number checks"): the sandbox allows 500; the provider chunks.
DEFAULT_MNC_CHUNK = 500


def normalize_base_url(host: str, *, default_scheme: str = "https") -> str:
    """Turn a host name or URL into a base URL: https by default, an explicit ``http://`` honoured.

    :param host: ``app.smsend.it``, ``https://sms.reseller.example`` or ``127.0.0.1:8765``.
    :param default_scheme: scheme used when ``host`` has none.
    """
    text = (host or "").strip().rstrip("/")
    if not text:
        raise SmSendValidationError(
            "The gateway host is empty: set the connection's host (e.g. app.smsend.it)."
        )
    if "://" not in text:
        text = f"{default_scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SmSendValidationError(f"Invalid gateway host {host!r}: give a host name or an http(s):// URL.")
    if parts.username or parts.password:
        raise SmSendValidationError("Do not put credentials in the gateway URL: use login and password.")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class SendResult:
    """The outcome of one accepted SMS.

    :param recipient: the number the message went to (E.164).
    :param cost: credit charged, in euros, exact.
    :param request_id: the id to ask batch-status with (``HTTP00000000111``), when requested.
    :param message: what was sent: operation, encoding, segments.
    """

    recipient: str
    cost: Decimal
    request_id: str | None
    message: PreparedMessage


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it (requests wraps urllib3, which wraps the socket error)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def never_connected(exc: BaseException) -> bool:
    """True when the connection was never established, so the request provably did not leave."""
    import ssl

    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    # A TLS handshake that failed (a certificate that fails verification, a server that does not
    # speak TLS, no common protocol) ends before the request's first byte is written.
    return any(
        isinstance(
            current,
            NewConnectionError | ConnectTimeoutError | ConnectionRefusedError | ssl.SSLCertVerificationError,
        )
        or tls_handshake_failure(current)
        for current in _causes(exc)
    )


#: OpenSSL reasons that only a TLS handshake gives (the request is written after the handshake).
_HANDSHAKE_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL", "UNKNOWN_PROTOCOL", "WRONG_SSL_VERSION",
        "NO_PROTOCOLS_AVAILABLE", "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_PROTOCOL_VERSION",
        "TLSV1_UNRECOGNIZED_NAME", "TLSV1_ALERT_UNKNOWN_CA", "CERTIFICATE_VERIFY_FAILED", "HTTP_REQUEST",
        "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "NO_SHARED_CIPHER", "DH_KEY_TOO_SMALL",
        "TLSV1_ALERT_DECODE_ERROR", "TLSV1_ALERT_ILLEGAL_PARAMETER", "UNSAFE_LEGACY_RENEGOTIATION_DISABLED",
    }
)  # fmt: skip
#: Reasons of a handshake with a server that answered in plain HTTP.
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"})


def tls_handshake_failure(exc: BaseException) -> bool:
    """True for an ``ssl.SSLError`` that only a failed TLS handshake raises (the request never left)."""
    import ssl

    return isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in _HANDSHAKE_REASONS


def _plain_http_server(exc: BaseException) -> bool:
    """True when a TLS handshake failed because the server answered in plain HTTP."""
    import ssl

    return any(
        isinstance(c, ssl.SSLError) and getattr(c, "reason", None) in _PLAIN_HTTP_REASONS
        for c in _causes(exc)
    )


def transport_error(exc: requests.RequestException, path: str) -> SmSendTransportError:
    """Map a requests exception to an SmSend transport error, saying whether the request may have left."""
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return SmSendTimeoutError(f"Timed out connecting to the gateway for {path}.", request_sent=False)
    if timed_out(exc):
        return SmSendTimeoutError(
            f"The gateway did not answer {path} within its time budget (the connect and read timeouts); "
            "the request may have been processed."
        )
    if never_connected(exc):
        request = getattr(exc, "request", None)
        url = getattr(request, "url", None) or path
        if _plain_http_server(exc):
            return SmSendTransportError(
                f"The server at {url} answered the TLS handshake in plain HTTP: nothing was sent. If it is a "
                "plain-HTTP gateway (the sandbox), set the connection's extra scheme=http or its host to http://...",
                request_sent=False,
                retryable=False,  # a wrong scheme does not fix itself: fail at once, nothing to resend
                code="tls_to_plain_http",
            )
        return SmSendTransportError(
            f"Could not connect to the gateway at {url}: check the host, the scheme and the network; nothing "
            "was sent.",
            request_sent=False,
        )
    return SmSendTransportError(
        f"The connection to the gateway broke during {path} ({type(exc).__name__}); "
        "the request may have been processed."
    )


def timed_out(exc: BaseException) -> bool:
    """True when a read timed out or the call's deadline passed (requests reports a timeout in the
    middle of a body as a ConnectionError)."""
    import requests
    from urllib3.exceptions import ReadTimeoutError

    return isinstance(exc, requests.Timeout) or any(
        isinstance(current, ReadTimeoutError | TimeoutError) for current in _causes(exc)
    )


def report_too_big(path: str) -> Callable[[int], Exception]:
    """The error of a report answer longer than the client's ``max_report_bytes``."""

    def build(cap: int) -> Exception:
        return SmSendReportError(
            f"The gateway's answer to {path} is longer than max_report_bytes ({cap} bytes): raise the "
            "connection extra max_report_bytes if the report is genuine, or check the host.",
            code="report_too_big",
        )

    return build


def http_status_error(status: int, path: str) -> SmSendTransportError:
    """The error for a non-200 answer: 5xx and 429 are retryable, other statuses mean a wrong host or path."""
    return SmSendTransportError(
        f"The gateway answered HTTP {status} for {path}"
        + ("; it may be overloaded, try again later." if status >= 500 else "; check the host and path."),
        status_code=status,
        retryable=status >= 500 or status == 429,
    )


class SmSendClient:
    """Client of the smSend HTTP API (back-office and SMS), with no Airflow inside.

    :param username: SMS API login (``user``).
    :param password: SMS API password (``pass``).
    :param base_url: gateway host or URL; https unless ``http://`` is explicit.
    :param reseller_username: back-office login (``smsusername``); defaults to ``username``.
    :param reseller_password: back-office password (``smspassword``); defaults to ``password``.
    :param timeout: ``(connect, read)`` seconds, or one number for both. Always finite.
    :param charset: request charset (docs/gateway.md, "Hosts and transport"): ``utf-8`` or ``iso-8859-1``.
    :param default_region: region for national numbers (``IT``).
    :param default_sender: sender used when :meth:`send` gets none.
    :param default_quality: quality used when :meth:`send` gets none.
    :param retry: retry policy of read-only calls.
    :param pool_maxsize: keep-alive connections kept for concurrent use.
    :param session: a ``requests.Session`` to use instead of a new one (mount
        :func:`~airflow_provider_smsend.client.deadline.deadline_adapter` on it for the deadlines).
    :param max_report_bytes: the longest report answer (batch-status, userlog-get) read, in bytes.

    Each attempt of a call, from connect to the answer's last byte, ends within the connect plus
    the read timeout; a call within :attr:`budget` (docs/gateway.md, "Deadlines and size caps").

    Example::

        client = SmSendClient(username="u", password="p", default_sender="ACME")
        client.credit()                 # Decimal('12.3400')
        client.send("3331234567", "Hi")  # national numbers use default_region
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
        default_region: str = DEFAULT_REGION,
        default_sender: str | None = None,
        default_quality: str = "h",
        retry: RetryPolicy | None = None,
        pool_maxsize: int = 32,
        session: requests.Session | None = None,
        max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.username = username
        self._password = password
        self.reseller_username = reseller_username or username
        self._reseller_password = reseller_password if reseller_password is not None else password
        self.timeout = self._check_timeout(timeout)
        try:
            "".encode(charset)
        except LookupError as exc:
            raise SmSendValidationError(f"Unknown charset {charset!r}: use utf-8 or iso-8859-1.") from exc
        self.charset = charset
        self.default_region = default_region
        self.default_sender = default_sender
        self.default_quality = validation.validate_quality(default_quality)
        self.retry = retry or RetryPolicy()
        self.pool_maxsize = pool_maxsize
        if (
            isinstance(max_report_bytes, bool)
            or not isinstance(max_report_bytes, int)
            or max_report_bytes < 1
        ):
            raise SmSendValidationError(
                f"max_report_bytes must be a positive integer, got {max_report_bytes!r}."
            )
        self.max_report_bytes = max_report_bytes
        self._session = session
        self._session_lock = threading.Lock()
        self._posts: dict[str, _PreparedPost] = {}

    @staticmethod
    def _check_timeout(timeout: float | tuple[float, float]) -> tuple[float, float]:
        pair = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        if len(pair) != 2 or any(not isinstance(t, int | float) or not 0 < t < float("inf") for t in pair):
            raise SmSendValidationError(f"Timeout must be finite positive seconds, got {timeout!r}.")
        return (float(pair[0]), float(pair[1]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, username={self.username!r})"

    @property
    def session(self) -> requests.Session:
        """The keep-alive session, created on first use (no I/O in the constructor)."""
        if self._session is None:
            import requests  # imported on first use: DAG files that only build operators stay light

            with self._session_lock:
                if self._session is None:
                    session = requests.Session()
                    adapter = deadline_adapter(pool_maxsize=self.pool_maxsize)
                    session.mount("https://", adapter)
                    session.mount("http://", adapter)
                    session.headers["User-Agent"] = "airflow-provider-smsend"
                    # Read the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE...) once for the
                    # gateway's URL, not on every request: requests scans os.environ twice per call,
                    # a measurable share of a bulk send's CPU.
                    settings = session.merge_environment_settings(self.base_url, {}, None, None, None)
                    session.proxies.update(settings["proxies"])
                    session.verify = settings["verify"]
                    session.trust_env = False
                    self._session = session
        return self._session

    def ensure_pool(self, size: int) -> None:
        """Make sure ``size`` threads can share the session without opening throwaway connections."""
        if size > self.pool_maxsize:
            self.pool_maxsize = size
            if self._session is not None:
                adapter = deadline_adapter(pool_maxsize=size)
                self._session.mount("https://", adapter)
                self._session.mount("http://", adapter)

    @property
    def budget(self) -> float:
        """The longest a call can take, in seconds: every attempt's connect and read timeouts plus the
        backoff waits between attempts (:func:`~airflow_provider_smsend.client.once_only.write_budget`)."""
        return write_budget(self.timeout, self.retry)

    def attempt_deadline(self) -> Deadline:
        """A new deadline for one attempt of a call: the connect plus the read timeout from now."""
        return Deadline(attempt_budget(self.timeout))

    def close(self) -> None:
        """Close the keep-alive connections."""
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> SmSendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _auth(self, kind: str) -> dict[str, str]:
        if kind == "reseller":
            return {"smsusername": self.reseller_username, "smspassword": self._reseller_password}
        return {"user": self.username, "pass": self._password}

    def form_body(self, fields: dict[str, Any], auth: str) -> bytes:
        """The encoded form of a call: ``auth`` (``"sms"`` or ``"reseller"``) credentials plus ``fields``.

        Shared with the async client so both send byte-identical requests.
        """
        data = {**self._auth(auth), **{k: v for k, v in fields.items() if v is not None}}
        for key, value in data.items():
            try:
                str(value).encode(self.charset)
            except UnicodeEncodeError:
                # Name the field, never the value: it may be a password.
                raise SmSendValidationError(
                    f"The {key!r} field has characters the request charset {self.charset!r} cannot carry: "
                    "use charset utf-8 (the connection's charset extra) or remove them. Nothing was sent."
                ) from None
        return urlencode({k: str(v) for k, v in data.items()}, encoding=self.charset).encode("ascii")

    @property
    def content_type(self) -> str:
        """The Content-Type header of every form POST."""
        return f"application/x-www-form-urlencoded; charset={self.charset}"

    def _post_once(self, path: str, body: bytes) -> requests.Response:
        """POST ``body`` under the current deadline; the body of the 200 answer is left to read.

        The request is the one ``Session.post`` would send, by ``Session.send`` through the adapter
        mounted for the gateway (or a test's mock); the session prepares it once per endpoint
        (:class:`_PreparedPost`) while its headers, auth, hooks, params and proxies stay the same.
        """
        import requests

        post = self._posts.get(path)
        if post is None or not post.current(self.session):
            post = self._posts[path] = _PreparedPost(self.session, self.base_url + path, self.content_type)
        try:
            response = post.send(body, self.timeout)
        except requests.RequestException as exc:
            raise transport_error(exc, path) from None
        if response.status_code != 200:
            response.close()
            raise http_status_error(response.status_code, path)
        return response

    def _read(
        self,
        response: requests.Response,
        path: str,
        max_bytes: int,
        too_big: Callable[[int], Exception],
        feed: Callable[[bytes], object] | None = None,
    ) -> bytes:
        """The answer's body, at most ``max_bytes`` (``too_big`` raises beyond), read under the deadline."""
        import requests

        try:
            return read_capped(response, max_bytes, too_big, feed=feed)
        except requests.RequestException as exc:
            raise transport_error(exc, path) from None

    def _answer(self, response: requests.Response, path: str) -> str:
        """The value of an ``OK`` answer (at most :data:`~airflow_provider_smsend.client.deadline.MAX_ANSWER_BYTES`)."""
        content = self._read(response, path, MAX_ANSWER_BYTES, answer_too_big(path))
        return answers.parse_answer(answers.decode_body(content, response.headers.get("Content-Type")))

    def _call(self, path: str, fields: dict[str, Any], *, auth: str, idempotent: bool) -> str:
        """POST ``fields`` and return the value of the ``OK`` answer; each attempt within its deadline."""
        body = self.form_body(fields, auth)

        def once() -> str:
            with deadline(self.attempt_deadline()):
                return self._answer(self._post_once(path, body), path)

        return call_with_retry(once, policy=self.retry, idempotent=idempotent)

    def _report_body(self, path: str, fields: dict[str, Any], *, auth: str) -> tuple[bytes, str | None]:
        """A whole report answer's bytes and Content-Type; a ``KO`` answer or an empty body raises
        (retried: the call is a read). The body is parsed by :mod:`~airflow_provider_smsend.client.reports`."""
        body = self.form_body(fields, auth)

        def once() -> tuple[bytes, str | None]:
            with deadline(self.attempt_deadline()):
                response = self._post_once(path, body)
                guard = LineGuard(f"The gateway's answer to {path}")
                content = self._read(response, path, self.max_report_bytes, report_too_big(path), guard.feed)
            content_type = response.headers.get("Content-Type")
            head = content.lstrip()[:256]
            if not head:
                raise SmSendTransportError(f"The gateway answered {path} with an empty body.")
            answers.raise_for_ko(answers.decode_body(head.splitlines()[0], content_type))
            return content, content_type

        return call_with_retry(once, policy=self.retry, idempotent=True)

    @contextmanager
    def _report_stream(
        self,
        path: str,
        fields: dict[str, Any],
        *,
        auth: str,
        items: Callable[[requests.Response, str | None], Iterator[T]],
        head: Callable[[Iterator[T], str | None], tuple[list[T], str | None]],
        caller_time: bool = False,
    ) -> Iterator[tuple[Iterator[T], str | None]]:
        """Stream a report answer and its Content-Type; a ``KO`` first line or an empty body raises
        before anything is yielded (retried, the call is a read).

        The answer ends at :attr:`max_report_bytes` (``SmSendReportError``).

        :param items: what the response is read as (lines, byte chunks).
        :param head: reads the items that hold the first line: ``(items read, first line)``, the
            line None when the body is empty.
        :param caller_time: the attempt's deadline does not count the time the caller holds an item
            (a stream loaded into a database): only the time spent waiting for the gateway.
        """
        import requests

        body = self.form_body(fields, auth)

        def first() -> tuple[requests.Response, Iterator[T], str | None, Deadline]:
            limit = self.attempt_deadline()
            with deadline(limit):
                response = self._post_once(path, body)
                content_type = response.headers.get("Content-Type")
                iterator = items(response, content_type)
                try:
                    read, line = head(iterator, content_type)
                except requests.RequestException as exc:
                    response.close()
                    raise transport_error(exc, path) from None
            if line is None:
                response.close()
                raise SmSendTransportError(f"The gateway answered {path} with an empty body.")
            try:
                answers.raise_for_ko(line)
            except SmSendError:
                response.close()
                raise

            def chain() -> Iterator[T]:
                size = 0
                pending = iter(read)
                while True:
                    with deadline(limit):
                        try:
                            item = next(pending, None)
                            if item is None:
                                pending = iterator
                                item = next(pending, None)
                        except requests.RequestException as exc:
                            raise transport_error(exc, path) from None
                    if item is None:
                        return
                    size += len(item)  # type: ignore[arg-type]
                    if size > self.max_report_bytes:
                        raise report_too_big(path)(self.max_report_bytes)
                    if caller_time:
                        with limit.paused():
                            yield item
                    else:
                        yield item

            return response, chain(), content_type, limit

        response, chained, content_type, _ = call_with_retry(first, policy=self.retry, idempotent=True)
        try:
            yield chained, content_type
        finally:
            response.close()

    @contextmanager
    def _report_chunks(
        self, path: str, fields: dict[str, Any], *, auth: str, caller_time: bool = False
    ) -> Iterator[tuple[Iterator[bytes], str | None]]:
        """Stream a report answer as byte chunks (cut anywhere) with its Content-Type; a ``KO`` first
        line or an empty body raises before any chunk is yielded (retried like a whole answer).

        :param caller_time: the caller's time between chunks is not counted in the deadline.
        """

        def chunks(response: requests.Response, content_type: str | None) -> Iterator[bytes]:
            return response.iter_content(chunk_size=1 << 20)

        def first_line(iterator: Iterator[bytes], content_type: str | None) -> tuple[list[bytes], str | None]:
            head = b""  # up to the first non-blank line's end (CR-only reports end lines with a CR)
            guard = LineGuard(f"The gateway's answer to {path}")
            while not head.strip() or (b"\n" not in head.lstrip() and b"\r" not in head.lstrip()):
                chunk = next(iterator, None)
                if chunk is None:
                    break
                guard.feed(chunk)
                head += chunk
            if not head.strip():
                return [], None
            return [head], answers.decode_body(head.lstrip().splitlines()[0], content_type)

        with self._report_stream(
            path, fields, auth=auth, items=chunks, head=first_line, caller_time=caller_time
        ) as streamed:
            yield streamed

    # ------------------------------------------------------------------ back-office

    def client_add(
        self,
        name: str,
        username: str,
        password: str,
        *,
        email: str | None = None,
        tpl_id: int | None = None,
        contact: str | None = None,
        ref_id: str | None = None,
        reseller: bool = False,
        vhost: str | None = None,
    ) -> int:
        """Create a client of this reseller; returns the new client id.

        ``reseller`` is always sent and defaults to False (docs/gateway.md, "Back-office"): creating a reseller by
        accident is the costly mistake. Never retried once the request may have left.
        """
        fields = {
            "name": validation.validate_text_field(name, name="name"),
            "username": validation.validate_text_field(username, name="username"),
            "password": validation.validate_text_field(password, name="password"),
            "email": email,
            "tpl_id": validation.validate_positive_id(tpl_id, name="tpl_id") if tpl_id is not None else None,
            "contact": contact,
            "ref_id": ref_id,
            "reseller": "1" if reseller else "0",
            "vhost": vhost,
        }
        value = self._call("/backoffice/client-add.php", fields, auth="reseller", idempotent=False)
        return answers.parse_int(value, what="client id")

    def credit_add(self, u_id: int | str, bill_id: int | str, credit: object = None) -> int:
        """Assign credit to a client; returns the new credit id. Never retried once sent.

        :param credit: ``Decimal``, int or ``"12,3456"``/``"12.3456"``; floats are refused.
        """
        fields = {
            "u_id": validation.validate_positive_id(u_id, name="u_id"),
            "bill_id": validation.validate_positive_id(bill_id, name="bill_id"),
            "credit": validation.format_credit(validation.parse_credit_amount(credit))
            if credit is not None
            else None,
        }
        value = self._call("/backoffice/credit-add.php", fields, auth="reseller", idempotent=False)
        return answers.parse_int(value, what="credit id")

    def credit_get(self, u_id: int | str) -> Decimal:
        """Return a client's available credit in euros (exact)."""
        fields = {"u_id": validation.validate_positive_id(u_id, name="u_id")}
        value = self._call("/backoffice/credit-get.php", fields, auth="reseller", idempotent=True)
        return answers.parse_money(value, what="credit")

    def userlog_fields(
        self, log_type: str, u_id: object, date_from: object, date_to: object
    ) -> dict[str, Any]:
        """The validated fields of a userlog-get call (no request)."""
        return {
            "type": validation.validate_choice(log_type, validation.USERLOG_TYPES, name="userlog type"),
            "u_id": validation.validate_positive_id(u_id, name="u_id") if u_id is not None else None,
            "from": validation.format_date(date_from, name="from") if date_from is not None else None,
            "to": validation.format_date(date_to, name="to") if date_to is not None else None,
        }

    def userlog_get(
        self, log_type: str, *, u_id: int | None = None, date_from: object = None, date_to: object = None
    ) -> list[UserlogEntry]:
        """Return the back-office operation log (``credits``, ``recv_add`` or ``recv_del``).

        :param date_from: first day (date or ``YYYY-MM-DD``), optional.
        :param date_to: last day, optional.
        """
        return userlog_entries(
            self.userlog_frame(log_type, u_id=u_id, date_from=date_from, date_to=date_to), log_type
        )

    def userlog_frame(
        self, log_type: str, *, u_id: int | None = None, date_from: object = None, date_to: object = None
    ) -> pd.DataFrame:
        """The userlog-get report as one frame (:func:`~airflow_provider_smsend.client.reports.read_userlog`)."""
        fields = self.userlog_fields(log_type, u_id, date_from, date_to)
        with self._report_chunks("/backoffice/userlog-get.php", fields, auth="reseller") as (
            chunks,
            content_type,
        ):
            return read_userlog(chunks, log_type, content_type=content_type)

    @contextmanager
    def stream_userlog(
        self, log_type: str, *, u_id: int | None = None, date_from: object = None, date_to: object = None
    ) -> Iterator[Iterator[pd.DataFrame]]:
        """Stream the userlog-get report as frames of a block of lines each (for loads that must not
        hold it whole)."""
        fields = self.userlog_fields(log_type, u_id, date_from, date_to)
        with self._report_chunks(
            "/backoffice/userlog-get.php", fields, auth="reseller", caller_time=True
        ) as (
            chunks,
            content_type,
        ):
            yield iter_userlog_frames(chunks, log_type, content_type=content_type)

    def recv_add(self, u_id: int | str, dest: str, num: int = 1) -> list[str]:
        """Create reception share codes for a client's number; returns the share codes."""
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= 20:
            raise SmSendValidationError(f"num must be an integer from 1 to 20, got {num!r}.")
        fields = {
            "u_id": validation.validate_positive_id(u_id, name="u_id"),
            "dest": normalize_number(dest, region=self.default_region, allow_landlines=True),
            "num": num,
        }
        value = self._call("/backoffice/recv-add.php", fields, auth="reseller", idempotent=False)
        codes = [c.strip() for c in value.split(",") if c.strip()]
        if not codes:
            raise SmSendTransportError("The gateway's recv-add answer has no share code.")
        return codes

    def recv_del(self, u_id: int | str, dest: str, sharecode: str) -> None:
        """Revoke a reception share code."""
        fields = {
            "u_id": validation.validate_positive_id(u_id, name="u_id"),
            "dest": normalize_number(dest, region=self.default_region, allow_landlines=True),
            "sharecode": validation.validate_text_field(sharecode, name="sharecode"),
        }
        self._call("/backoffice/recv-del.php", fields, auth="reseller", idempotent=False)

    def client_status(self, u_id: int | str, active: bool) -> bool:
        """Activate or deactivate a client; returns True if the gateway says ``Attivato``."""
        if not isinstance(active, bool):
            raise SmSendValidationError(f"active must be True or False, got {active!r}.")
        fields = {
            "u_id": validation.validate_positive_id(u_id, name="u_id"),
            "active": "1" if active else "0",
        }
        value = self._call("/backoffice/client-status.php", fields, auth="reseller", idempotent=False)
        state = value.strip().rstrip(".").lower()
        if state not in ("attivato", "disattivato"):
            raise SmSendTransportError(f"Unexpected client-status answer: {value!r}.")
        return state == "attivato"

    # ------------------------------------------------------------------ SMS

    def prepare(
        self, text: str, *, operation: str | None = None, quality: str | None = None, url: str | None = None
    ) -> PreparedMessage:
        """Validate a text without sending it: operation, encoding, characters, segments."""
        return validation.prepare_message(
            text, operation=operation, quality=quality or self.default_quality, url=url
        )

    def send(
        self,
        rcpt: str,
        text: str,
        *,
        sender: str | None = None,
        quality: str | None = None,
        operation: str | None = None,
        url: str | None = None,
        return_id: bool = True,
        allow_landlines: bool = False,
    ) -> SendResult:
        """Send one SMS; returns its cost and request id. Spends money: never blindly retried.

        Only a connection that was never established is retried; a timeout after the request
        left raises :class:`SmSendTimeoutError` with ``request_sent=True`` (outcome unknown).
        A landline recipient is refused before anything is sent unless ``allow_landlines=True``.
        """
        recipient = normalize_number(rcpt, region=self.default_region, allow_landlines=allow_landlines)
        prepared = self.prepare(text, operation=operation, quality=quality, url=url)
        checked_sender = validation.validate_sender(sender or self.default_sender, region=self.default_region)
        return self.send_prepared(
            recipient,
            prepared,
            sender=checked_sender,
            quality=quality or self.default_quality,
            url=url,
            return_id=return_id,
        )

    def send_prepared(
        self,
        recipient: str,
        prepared: PreparedMessage,
        *,
        sender: str,
        quality: str,
        url: str | None = None,
        return_id: bool = True,
    ) -> SendResult:
        """Send a message whose parts :meth:`send` already checks, without checking them again.

        For callers that validate once up front (the bulk sender validates every recipient and
        text before the first request): ``recipient`` in E.164 from :func:`normalize_number`,
        ``prepared`` from :meth:`prepare` with the same ``quality`` and ``url``, ``sender`` from
        :func:`~airflow_provider_smsend.client.validation.validate_sender`.
        """
        fields = _send_fields(
            recipient, prepared, sender=sender, quality=quality, url=url, return_id=return_id
        )
        return _send_result(
            recipient, prepared, self._call("/sms/send.php", fields, auth="sms", idempotent=False)
        )

    def bulk_send_path(
        self, *, sender: str, quality: str, url: str | None = None, return_id: bool = True
    ) -> Callable[[str, PreparedMessage], SendResult]:
        """Return :meth:`send_prepared` for the many messages of a bulk send, with these options.

        Returns ``send(recipient, prepared) -> SendResult``, safe to call from many threads, with the
        answers, errors, retries and requests of :meth:`send_prepared`: each message's form body
        (:meth:`form_body`) is sent by ``Session.send`` of the request the session prepared for
        ``send.php`` (its headers, auth and hooks, prepared again only when they change), with the
        session's cookies, through the adapter mounted for the gateway (the pool :meth:`ensure_pool`
        sized, or a test's mock).

        :param sender: a sender from :func:`~airflow_provider_smsend.client.validation.validate_sender`.
        :param quality: the quality code the messages were prepared with.
        :param url: the WAPPUSH link the messages were prepared with.
        :param return_id: ask for the request id.
        """

        def send(recipient: str, prepared: PreparedMessage) -> SendResult:
            return self.send_prepared(
                recipient, prepared, sender=sender, quality=quality, url=url, return_id=return_id
            )

        return send

    def mnc(
        self, numbers: Iterable[str], *, return_id: bool = True, max_numbers: int = DEFAULT_MNC_CHUNK
    ) -> str | None:
        """Ask a mobile number check for up to ``max_numbers`` numbers; returns the request id.

        Use :meth:`mnc_chunked` for longer lists.
        """
        normalized = normalize_numbers(list(numbers), region=self.default_region)
        if not normalized:
            raise SmSendValidationError("mnc needs at least one number.")
        if len(normalized) > max_numbers:
            raise SmSendValidationError(
                f"mnc got {len(normalized)} numbers; at most {max_numbers} per call: use mnc_chunked()."
            )
        fields = {"numbers": ",".join(normalized), "return_id": "1" if return_id else None}
        value = self._call("/sms/mnc.php", fields, auth="sms", idempotent=False)
        return answers.parse_request_id(value)

    def mnc_chunked(self, numbers: Iterable[str], *, chunk_size: int = DEFAULT_MNC_CHUNK) -> list[str]:
        """Check any number of numbers in chunks; all are validated before the first request."""
        if chunk_size < 1:
            raise SmSendValidationError(f"chunk_size must be >= 1, got {chunk_size!r}.")
        normalized = normalize_numbers(list(numbers), region=self.default_region)
        ids: list[str] = []
        for start in range(0, len(normalized), chunk_size):
            request_id = self.mnc(normalized[start : start + chunk_size], max_numbers=chunk_size)
            if request_id is None:
                raise SmSendTransportError("The gateway's mnc answer has no request id.")
            ids.append(request_id)
        return ids

    def batch_status_fields(self, request_id: str, report_type: str) -> dict[str, Any]:
        """The validated fields of a batch-status call (no request)."""
        return {
            "id": validation.validate_text_field(request_id, name="request id"),
            "type": validation.validate_choice(report_type, validation.REPORT_TYPES, name="report type"),
            "schema": "1",
        }

    def batch_status(self, request_id: str, report_type: str = "notify") -> BatchStatusReport:
        """Return the batch-status report (``queue``, ``notify`` or ``mnc``) of a request id."""
        body, content_type = self.batch_status_body(request_id, report_type)
        frame = read_batch_status([(request_id, body, content_type)], report_type)
        return reports_from_frame(frame, [request_id], report_type)[0]

    def batch_status_body(self, request_id: str, report_type: str = "notify") -> tuple[bytes, str | None]:
        """The raw batch-status answer of a request id and its Content-Type (``KO`` raises)."""
        fields = self.batch_status_fields(request_id, report_type)
        return self._report_body("/sms/batch-status.php", fields, auth="sms")

    def iter_batch_status_bodies(
        self, request_ids: Iterable[str], report_type: str = "notify", *, concurrency: int = FETCH_CONCURRENCY
    ) -> Iterator[tuple[str, bytes, str | None]]:
        """Fetch many batch-status answers, ``concurrency`` at a time, yielded as they arrive.

        Each request follows the read-only retry policy; the first failure stops the rest (the
        requests not started are cancelled) and is raised. At most ``concurrency`` answers are held.
        """
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        concurrency = validate_concurrency(concurrency)
        ids = iter(request_ids)
        self.ensure_pool(concurrency)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smsend-report") as pool:
            running: dict[Any, str] = {}

            def start() -> None:
                for rid in ids:
                    running[pool.submit(self.batch_status_body, rid, report_type)] = rid
                    if len(running) >= concurrency:
                        return

            try:
                start()
                while running:
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in done:
                        rid = running.pop(future)
                        body, content_type = future.result()
                        yield rid, body, content_type
                    start()
            finally:
                for future in running:
                    future.cancel()

    def batch_status_frames(
        self, request_ids: Iterable[str], report_type: str = "notify", *, concurrency: int = FETCH_CONCURRENCY
    ) -> Iterator[pd.DataFrame]:
        """The batch-status rows of many request ids, fetched concurrently, a frame per block.

        Frames have the columns of :func:`~airflow_provider_smsend.client.reports.read_batch_status`
        (``request_id`` tells whose row it is); a request id with no rows yet has none.
        """
        yield from read_batch_status_frames(
            self.iter_batch_status_bodies(request_ids, report_type, concurrency=concurrency), report_type
        )

    def batch_status_frame(
        self, request_ids: Iterable[str], report_type: str = "notify", *, concurrency: int = FETCH_CONCURRENCY
    ) -> pd.DataFrame:
        """:meth:`batch_status_frames` as one frame."""
        return read_batch_status(
            self.iter_batch_status_bodies(request_ids, report_type, concurrency=concurrency), report_type
        )

    @contextmanager
    def stream_batch_status(
        self, request_id: str, report_type: str = "notify"
    ) -> Iterator[Iterator[pd.DataFrame]]:
        """Stream one (big) batch-status report as frames of at most a block of lines each."""
        fields = self.batch_status_fields(request_id, report_type)
        with self._report_chunks("/sms/batch-status.php", fields, auth="sms", caller_time=True) as (
            chunks,
            content_type,
        ):
            yield iter_batch_status_frames(request_id, chunks, report_type, content_type=content_type)

    def credit(self, credit_type: str = "credit") -> Decimal | int:
        """Remaining credit: euros (``Decimal``) for ``credit``, else the SMS count of a quality."""
        validation.validate_choice(credit_type, validation.CREDIT_TYPES, name="credit type")
        value = self._call("/sms/credit.php", {"type": credit_type}, auth="sms", idempotent=True)
        if credit_type == "credit":
            return answers.parse_money(value, what="credit")
        return answers.parse_int(value, what="SMS count")


class _PreparedPost:
    """A form POST to one URL that the session prepared once, sent with a new body each time.

    ``Session.post`` prepares every request again (the session's headers, auth, hooks and params
    merged in, the environment read); here the session prepares it once and each body is sent by
    ``Session.send`` of a copy, with the session's cookies of the moment, as ``Session.post`` would
    send it. :meth:`current` tells when the session's settings changed since (then it is prepared
    again); a session that reads the environment (``trust_env``) is prepared on every call.
    """

    __slots__ = ("_settings", "_snapshot", "_template", "session")

    def __init__(self, session: requests.Session, url: str, content_type: str) -> None:
        import requests

        self.session = session
        self._snapshot = self._settings_of(session)
        template = session.prepare_request(
            requests.Request("POST", url, headers={"Content-Type": content_type})
        )
        # Set per request, in the order Session.prepare_request sets them: cookies, then the body.
        template.headers.pop("Cookie", None)
        template.headers.pop("Content-Length", None)
        self._template = template
        settings = session.merge_environment_settings(url, {}, None, None, None)
        settings["stream"] = True  # the body is read under the deadline, up to its cap
        self._settings = settings

    @staticmethod
    def _settings_of(session: requests.Session) -> tuple[Any, ...]:
        return (
            dict(session.headers),
            session.auth,
            dict(session.params) if isinstance(session.params, dict) else session.params,
            {event: list(hooks) for event, hooks in session.hooks.items()},
            dict(session.proxies),
            session.verify,
            session.cert,
            session.max_redirects,
        )

    def current(self, session: requests.Session) -> bool:
        """True while ``session`` is this request's and its settings are those it was prepared with."""
        return (
            session is self.session and not session.trust_env and self._settings_of(session) == self._snapshot
        )

    def send(self, body: bytes, timeout: tuple[float, float]) -> requests.Response:
        """Send the request with ``body``; the answer's body is left to read (``stream=True``)."""
        request = self._template.copy()
        request.prepare_cookies(self.session.cookies)
        request.prepare_body(body, None)
        return self.session.send(request, timeout=timeout, allow_redirects=True, **self._settings)


def _send_fields(
    recipient: str, prepared: PreparedMessage, *, sender: str, quality: str, url: str | None, return_id: bool
) -> dict[str, str | None]:
    """The send.php form of one checked message (``send_prepared`` and the bulk path alike)."""
    log.debug(
        "smSend send to %s (%s, %d segment(s))", mask_number(recipient), prepared.operation, prepared.segments
    )
    return {
        "rcpt": recipient,
        "data": prepared.text,
        "sender": sender,
        "qty": quality,
        "operation": prepared.operation,
        "url": url,
        "return_id": "1" if return_id else None,
    }


def _send_result(recipient: str, prepared: PreparedMessage, value: str) -> SendResult:
    """The result of send.php's answer ``value`` (its cost and request id)."""
    cost, request_id = answers.split_cost_and_id(value)
    return SendResult(recipient=recipient, cost=cost, request_id=request_id, message=prepared)
