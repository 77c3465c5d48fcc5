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

import functools
import logging
import ssl
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client import answers, validation
from airflow_provider_smsend.client.errors import SmSendTimeoutError, SmSendTransportError
from airflow_provider_smsend.client.http import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    SmSendClient,
    http_status_error,
)
from airflow_provider_smsend.client.reports import (
    BatchStatusReport,
    UserlogEntry,
    iter_batch_status,
    iter_userlog,
)
from airflow_provider_smsend.client.retry import RetryPolicy, async_call_with_retry

if TYPE_CHECKING:
    import httpx

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
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_client(
        cls, client: SmSendClient, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> SmSendAsyncClient:
        """An async client with the settings (host, credentials, timeouts, charset, retry) of ``client``."""
        instance = cls.__new__(cls)
        instance._spec = client
        instance._transport = transport
        instance._client = None
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
        if self._client is None:
            import httpx

            connect, read = self._spec.timeout
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(read, connect=connect),
                verify=shared_ssl_context(),
                headers={"User-Agent": "airflow-provider-smsend"},
                transport=self._transport,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the keep-alive connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> SmSendAsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport

    async def _post_text(self, path: str, body: bytes) -> str:
        import httpx

        headers = {"Content-Type": f"application/x-www-form-urlencoded; charset={self._spec.charset}"}
        try:
            response = await self._http().post(self.base_url + path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise async_transport_error(exc, path) from None
        if response.status_code != 200:
            raise http_status_error(response.status_code, path)
        return answers.decode_body(response.content, response.headers.get("Content-Type"))

    async def _call(self, path: str, fields: dict[str, Any], *, auth: str) -> str:
        """POST ``fields`` (read-only call) and return the value of the ``OK`` answer."""
        body = self._spec.form_body(fields, auth)

        async def once() -> str:
            return answers.parse_answer(await self._post_text(path, body))

        return await async_call_with_retry(once, policy=self.retry, idempotent=True)  # type: ignore[return-value]

    async def _report_text(self, path: str, fields: dict[str, Any], *, auth: str) -> str:
        body = self._spec.form_body(fields, auth)

        async def once() -> str:
            text = await self._post_text(path, body)
            answers.raise_for_ko(text)
            if not text.strip():
                raise SmSendTransportError(f"The gateway answered {path} with an empty body.")
            return text

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
        fields = self._spec.batch_status_fields(request_id, report_type)
        text = await self._report_text("/sms/batch-status.php", fields, auth="sms")
        rows = list(iter_batch_status(text.split("\n"), report_type))
        return BatchStatusReport(request_id=request_id, report_type=report_type, rows=rows)

    async def userlog_get(
        self, log_type: str, *, u_id: int | None = None, date_from: object = None, date_to: object = None
    ) -> list[UserlogEntry]:
        """Return the back-office operation log (``credits``, ``recv_add`` or ``recv_del``)."""
        fields = self._spec.userlog_fields(log_type, u_id, date_from, date_to)
        text = await self._report_text("/backoffice/userlog-get.php", fields, auth="reseller")
        return list(iter_userlog(text.split("\n"), log_type))


__all__ = ["SmSendAsyncClient", "async_transport_error", "http_status_error"]
