"""The bulk send path's transport: form POSTs straight through a requests session's urllib3 pool.

For one small form POST, requests spends most of its CPU on work that is the same for every
message of a bulk send: merging the session's headers, cookies, auth, hooks and environment into
a new ``PreparedRequest``, choosing the adapter and the pool, building a ``Response``. A bulk send
is CPU-bound (its threads share one GIL), so :class:`DirectPost` does that work once per run:
it asks the session's own :class:`~requests.adapters.HTTPAdapter` for the pool, TLS settings,
proxy, request URL and headers of the gateway URL, then sends each body with the same
``urlopen`` call ``HTTPAdapter.send`` makes (same pool and connections, same timeouts, same
retry object, no redirect) and raises the exceptions ``HTTPAdapter.send`` and ``Response.content``
would raise, so :func:`~airflow_provider_smsend.client.http.transport_error` classifies a
failure exactly as on the requests path.

It is used only while requests would do nothing more for the call. :meth:`DirectPost.build`
returns None, and :meth:`DirectPost.matches` turns False, when the session is not plain: the
session's ``request``/``post``/``send`` or the adapter's ``send`` replaced or wrapped, on the class
or the instance (requests-mock, responses, ``mock.patch``, tracing instrumentation), another
adapter mounted for the gateway URL, ``trust_env`` on (proxies and CA bundles read per call),
auth, hooks or cookies set. A redirect answer is handed to requests (``Session.resolve_redirects``), which
follows it as ``Session.send`` would; a cookie the gateway sets goes into the session's jar, and
the calls after it take the requests path.

:class:`SendForm` is the other half of the per-message saving: the ``send.php`` form with its
constant fields (credentials, sender, quality, url, return_id) encoded once, byte-identical to
:meth:`~airflow_provider_smsend.client.http.SmSendClient.form_body`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import FunctionType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote_plus, urlencode

from airflow_provider_smsend.client.errors import SmSendValidationError

if TYPE_CHECKING:
    import requests
    from urllib3 import HTTPConnectionPool

    from airflow_provider_smsend.client.validation import PreparedMessage

#: What ``Response.content`` reads at a time (requests' ``CONTENT_CHUNK_SIZE``).
CONTENT_CHUNK_SIZE = 10 * 1024


def _is_requests_own(function: object, module: str) -> bool:
    """True if ``function`` is requests' own code: a plain function of ``module`` that wraps nothing.

    Not a mock (requests-mock, ``mock.patch``, autospec), and not an instrumentation wrapper
    (OpenTelemetry's ``functools.wraps`` wrapper keeps the name and module but has ``__wrapped__``;
    wrapt's proxies forward ``__module__`` and ``__code__`` but are no plain function).
    """
    return (
        type(function) is FunctionType
        and getattr(function, "__module__", None) == module
        and not hasattr(function, "__wrapped__")
    )


#: The methods of a session and of its adapter that a call goes through: each must be requests'
#: own, on the class and not overridden on the instance, for the direct path to send.
_SESSION_METHODS = ("request", "post", "send")
_ADAPTER_METHODS = ("send",)


def session_is_plain(session: requests.Session) -> bool:
    """True when requests would add nothing per call to what :class:`DirectPost` sends.

    ``request``, ``post`` and ``send`` are requests' own (requests-mock, ``mock.patch`` and
    tracing instrumentation replace or wrap them), ``trust_env`` is off (else requests reads
    proxies and CA bundles from the environment on every call), and no auth, hook or cookie would
    change a request.
    """
    import requests

    instance = vars(session)
    return (
        type(session) is requests.Session
        and not any(name in instance for name in _SESSION_METHODS)
        and all(_is_requests_own(getattr(requests.Session, n), "requests.sessions") for n in _SESSION_METHODS)
        and session.trust_env is False
        and session.auth is None
        and not any(session.hooks.values())
        and len(session.cookies) == 0
    )


def adapter_is_plain(adapter: object) -> bool:
    """True when ``adapter`` is a plain ``HTTPAdapter`` whose ``send`` is requests' own."""
    import requests

    return (
        type(adapter) is requests.adapters.HTTPAdapter
        and not any(name in vars(adapter) for name in _ADAPTER_METHODS)
        and all(
            _is_requests_own(getattr(requests.adapters.HTTPAdapter, n), "requests.adapters")
            for n in _ADAPTER_METHODS
        )
    )


def form_error(key: str, charset: str) -> SmSendValidationError:
    """The error of a field the request charset cannot carry (the same text as ``form_body``)."""
    # Name the field, never the value: it may be a password.
    return SmSendValidationError(
        f"The {key!r} field has characters the request charset {charset!r} cannot carry: "
        "use charset utf-8 (the connection's charset extra) or remove them. Nothing was sent."
    )


@dataclass(frozen=True)
class _Unencodable:
    """A field the request charset cannot carry (a new error is raised for each message)."""

    key: str


class SendForm:
    """The ``send.php`` form of a bulk send, its constant fields encoded once.

    ``body(recipient, prepared)`` returns the bytes ``SmSendClient.form_body`` makes of the same
    fields, in the same order (``user, pass, rcpt, data, sender, qty, operation, url,
    return_id``); when several fields cannot be encoded, it names the same (first) one.

    :param auth: the credentials, ``{"user": ..., "pass": ...}``.
    :param charset: the request charset.
    :param sender: the validated sender.
    :param quality: the quality code.
    :param url: the WAPPUSH link, or None.
    :param return_id: ask for the request id.
    """

    def __init__(
        self,
        *,
        auth: dict[str, str],
        charset: str,
        sender: str,
        quality: str,
        url: str | None,
        return_id: bool,
    ) -> None:
        self.charset = charset
        # form_body keeps every credential (str() of each) and drops the other fields that are None.
        self._head = self._encode({k: str(v) for k, v in auth.items()})
        self._middle = self._encode({"sender": sender, "qty": quality})
        self._tail = self._encode({"url": url, "return_id": "1" if return_id else None})
        self._operations: dict[str, str | _Unencodable] = {}

    def _encode(self, fields: dict[str, Any]) -> str | _Unencodable:
        """``k=v&k=v`` of the fields that are not None, or the error of the first that cannot be encoded."""
        data = {k: str(v) for k, v in fields.items() if v is not None}
        for key, value in data.items():
            try:
                value.encode(self.charset)
            except UnicodeEncodeError:
                return _Unencodable(key)
        return urlencode(data, encoding=self.charset)

    def _field(self, key: str, value: str) -> str | _Unencodable:
        try:
            return f"{key}={quote_plus(value, encoding=self.charset)}"
        except UnicodeEncodeError:
            return _Unencodable(key)

    def body(self, recipient: str, prepared: PreparedMessage) -> bytes:
        """The encoded form of one message.

        :raises SmSendValidationError: a field the request charset cannot carry.
        """
        operation = self._operations.get(prepared.operation)
        if operation is None:
            operation = self._operations[prepared.operation] = self._encode({"operation": prepared.operation})
        pieces = (
            self._head,
            self._field("rcpt", recipient),
            self._field("data", prepared.text),
            self._middle,
            operation,
            self._tail,
        )
        text: list[str] = []
        for piece in pieces:
            if isinstance(piece, _Unencodable):
                raise form_error(piece.key, self.charset)
            if piece:
                text.append(piece)
        return "&".join(text).encode("ascii")


class DirectPost:
    """POST bodies to one URL through the session adapter's urllib3 pool, as ``HTTPAdapter.send`` would.

    Use :meth:`build`; call :meth:`matches` before each :meth:`post` (cheap) and take the
    requests path when it is False.
    """

    def __init__(
        self,
        session: requests.Session,
        adapter: requests.adapters.HTTPAdapter,
        template: requests.PreparedRequest,
        *,
        timeout: tuple[float, float],
    ) -> None:
        from urllib3.util import Timeout

        self.session = session
        self.adapter = adapter
        self.template = template
        self.url = template.url or ""
        self.timeout = timeout
        self._urllib3_timeout = Timeout(connect=timeout[0], read=timeout[1])
        # What Session.send would pass to the adapter (trust_env is off: the session's own values).
        self._proxies = dict(session.proxies)
        self._verify = session.verify
        self._cert = session.cert
        self._pool: HTTPConnectionPool | None = None
        self._connect()
        self._request_url = adapter.request_url(template, self._proxies)
        self._headers = dict(template.headers)
        self._headers.pop("Content-Length", None)

    @classmethod
    def build(
        cls, session: requests.Session, url: str, *, content_type: str, timeout: tuple[float, float]
    ) -> DirectPost | None:
        """A direct path to ``url`` over ``session``, or None when requests must do the calls.

        :param session: the client's session (its adapter, headers, proxies and TLS settings are read now).
        :param url: the full URL every body is posted to.
        :param content_type: the Content-Type header of the bodies.
        :param timeout: ``(connect, read)`` seconds.
        """
        import requests

        if not session_is_plain(session):
            return None
        adapter = session.get_adapter(url)
        if not isinstance(adapter, requests.adapters.HTTPAdapter) or not adapter_is_plain(adapter):
            return None
        # The headers requests would send: the session's, then the call's, then Content-Length.
        template = session.prepare_request(
            requests.Request("POST", url, data=b"-", headers={"Content-Type": content_type})
        )
        try:
            return cls(session, adapter, template, timeout=timeout)
        except Exception:  # a proxy URL or CA path requests rejects: requests raises its own error per call
            return None

    def _connect(self) -> HTTPConnectionPool:
        """The pool requests would use for this call (the pool manager may have replaced it).

        ``cert_verify`` only sets the pool's TLS attributes from the (fixed) settings: it runs
        once per pool, not once per call as in ``HTTPAdapter.send``.
        """
        pool = cast(
            "HTTPConnectionPool",
            self.adapter.get_connection_with_tls_context(
                self.template, self._verify, proxies=self._proxies, cert=self._cert
            ),
        )
        if pool is not self._pool:
            self.adapter.cert_verify(pool, self.url, self._verify, self._cert)
            self._pool = pool
        return pool

    def matches(self) -> bool:
        """True while the session still sends this URL the way this path was built for."""
        session = self.session
        return (
            session_is_plain(session)
            and session.get_adapter(self.url) is self.adapter
            and adapter_is_plain(self.adapter)
        )

    def post(self, body: bytes) -> tuple[int, str | None, bytes]:
        """POST ``body``; return the status, the Content-Type and the whole content.

        :raises requests.RequestException: the exception requests would raise for the same failure.
        """
        import requests
        from requests.exceptions import ChunkedEncodingError, ContentDecodingError
        from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

        pool = self._connect()
        headers = dict(self._headers)
        headers["Content-Length"] = str(len(body))
        raw = self._urlopen(pool, body, headers)
        if raw.status in requests.sessions.REDIRECT_STATI and "location" in raw.headers:
            return self._finish_redirect(raw, body)
        if "set-cookie" in raw.headers:
            requests.cookies.extract_cookies_to_jar(self.session.cookies, self.template, raw)
        try:  # Response.content, with its error mapping
            content = b"".join(raw.stream(CONTENT_CHUNK_SIZE, decode_content=True))
        except ProtocolError as exc:
            raise ChunkedEncodingError(exc) from None
        except DecodeError as exc:
            raise ContentDecodingError(exc) from None
        except ReadTimeoutError as exc:
            raise requests.ConnectionError(exc) from None
        except SSLError as exc:
            raise requests.exceptions.SSLError(exc) from None
        return raw.status, raw.headers.get("Content-Type"), content

    def _urlopen(self, pool: HTTPConnectionPool, body: bytes, headers: dict[str, str]) -> Any:
        """``HTTPAdapter.send``'s ``urlopen`` call and its exception mapping."""
        from requests import exceptions as rex
        from urllib3.exceptions import (
            ClosedPoolError,
            ConnectTimeoutError,
            HTTPError,
            InvalidHeader,
            MaxRetryError,
            NewConnectionError,
            ProtocolError,
            ProxyError,
            ReadTimeoutError,
            ResponseError,
            SSLError,
        )

        request = self.template
        try:
            return pool.urlopen(
                method="POST",
                url=self._request_url,
                body=body,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=self.adapter.max_retries,
                timeout=self._urllib3_timeout,
                chunked=False,
            )
        except (ProtocolError, OSError) as err:
            raise rex.ConnectionError(err, request=request) from None
        except MaxRetryError as e:
            if isinstance(e.reason, ConnectTimeoutError) and not isinstance(e.reason, NewConnectionError):
                raise rex.ConnectTimeout(e, request=request) from None
            if isinstance(e.reason, ResponseError):
                raise rex.RetryError(e, request=request) from None
            if isinstance(e.reason, ProxyError):
                raise rex.ProxyError(e, request=request) from None
            if isinstance(e.reason, SSLError):
                raise rex.SSLError(e, request=request) from None
            raise rex.ConnectionError(e, request=request) from None
        except ClosedPoolError as e:
            raise rex.ConnectionError(e, request=request) from None
        except ProxyError as e:
            raise rex.ProxyError(e) from None
        except (SSLError, HTTPError) as e:
            if isinstance(e, SSLError):
                raise rex.SSLError(e, request=request) from None
            if isinstance(e, ReadTimeoutError):
                raise rex.ReadTimeout(e, request=request) from None
            if isinstance(e, InvalidHeader):
                raise rex.InvalidHeader(e, request=request) from None
            raise

    def _finish_redirect(self, raw: Any, body: bytes) -> tuple[int, str | None, bytes]:
        """Follow a redirect the way ``Session.send`` does (requests' own code), from the first answer."""
        session = self.session
        request = self.template.copy()
        request.body = body
        request.headers["Content-Length"] = str(len(body))
        response = self.adapter.build_response(request, raw)
        import requests

        requests.cookies.extract_cookies_to_jar(session.cookies, request, raw)
        # The keyword arguments Session.send hands to resolve_redirects.
        send_kwargs: dict[str, Any] = {
            "stream": False,
            "timeout": self.timeout,
            "verify": self._verify,
            "cert": self._cert,
            "proxies": self._proxies,
        }
        history = list(session.resolve_redirects(response, request, **send_kwargs))
        if history:
            history.insert(0, response)
            response = history.pop()
            response.history = history
        return response.status_code, response.headers.get("Content-Type"), response.content
