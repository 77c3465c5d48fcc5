"""The sandbox's ASGI application.

The gateway endpoints (``/backoffice/*.php``, ``/sms/*.php``, the SOAP services and their WSDL)
take a lean raw-ASGI path: one dict lookup, the body read and decoded, the handler called, the
answer written. Only this outermost layer sees the server's own ``send`` callable, which the
``drop`` fault needs to reach the TCP connection. Everything else (the JSON admin API under
``/_sandbox/``, 404s, lifespan) goes to a Starlette application.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from airflow_provider_smsend.sandbox.admin import build_admin_app
from airflow_provider_smsend.sandbox.backoffice import BACKOFFICE_ENDPOINTS
from airflow_provider_smsend.sandbox.common import GatewayRequest
from airflow_provider_smsend.sandbox.faults import HTTP500_PAGE, drop_connection, stall
from airflow_provider_smsend.sandbox.sms import QUEUEING_ENDPOINTS, SMS_ENDPOINTS
from airflow_provider_smsend.sandbox.soap import CONTENT_TYPE as SOAP_CONTENT_TYPE
from airflow_provider_smsend.sandbox.soap import SoapFault, parse_call, render_fault
from airflow_provider_smsend.sandbox.soap_services import receive_sms, send_mms
from airflow_provider_smsend.sandbox.wsdl import wsdl_document

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import Receive, Scope, Send

    from airflow_provider_smsend.sandbox.state import SandboxState

log = logging.getLogger(__name__)

HTTP_ENDPOINTS: dict[str, Callable[[GatewayRequest], str]] = {**BACKOFFICE_ENDPOINTS, **SMS_ENDPOINTS}
#: SOAP endpoint paths -> service. The document gives both ``/wsdl/?wsdl`` and ``/wsdl/index.php``.
SOAP_ENDPOINTS = {
    "/wsdl/": "receiveSms",
    "/wsdl/index.php": "receiveSms",
    "/sms-gw/": "sendMms",
    "/sms-gw/index.php": "sendMms",
}
TEXT_PLAIN = b"text/plain; charset=utf-8"
MAX_BODY = 8 * 1024 * 1024


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def request_charset(content_type: str) -> str:
    """Return the ``charset`` of a Content-Type (UTF-8 when absent or unknown)."""
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip().strip('"')
            try:
                "".encode(charset)
            except LookupError:
                return "utf-8"
            return charset
    return "utf-8"


def parse_form(text: str, charset: str) -> dict[str, str]:
    """Decode ``application/x-www-form-urlencoded`` text; percent escapes decode with ``charset``."""
    params: dict[str, str] = {}
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name, encoding=charset, errors="replace")
        if "%" in value or "+" in value:
            value = unquote_plus(value, encoding=charset, errors="replace")
        params[name] = value
    return params


def decode_params(scope: Scope, body: bytes) -> dict[str, str]:
    """Decode query-string and form-encoded body parameters (body wins) with the request charset."""
    content_type = _header(scope, b"content-type")
    charset = request_charset(content_type) if ";" in content_type else "utf-8"
    query = scope.get("query_string", b"")
    params = parse_form(query.decode("latin-1"), charset) if query else {}
    if body and not content_type.lower().startswith(("multipart/", "application/json", "text/xml")):
        params.update(parse_form(body.decode(charset, errors="replace"), charset))
    return params


async def read_body(receive: Receive) -> bytes:
    """Read the whole request body (at most 8 MiB)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, body: bytes, *, status: int = 200, content_type: bytes = TEXT_PLAIN) -> None:
    """Send a complete response with Content-Type and Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def base_url(scope: Scope) -> str:
    """The sandbox's URL as the client addressed it (scheme and Host header)."""
    host = _header(scope, b"host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


class SandboxApp:
    """The ASGI application: gateway fast path, then the Starlette admin app.

    :param state: the sandbox state every request works on.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.admin = build_admin_app(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI event."""
        if scope["type"] == "http":
            path = scope["path"]
            handler = HTTP_ENDPOINTS.get(path)
            if handler is not None:
                await self._gateway(
                    scope, receive, send, path, lambda b, k: self._http_answer(scope, b, k, handler)
                )
                return
            service = SOAP_ENDPOINTS.get(path)
            if service is not None:
                if scope["method"] in ("GET", "HEAD"):
                    self.state.stats[f"{path}?wsdl"] += 1
                    await respond(
                        send, wsdl_document(service, base_url(scope)), content_type=SOAP_CONTENT_TYPE.encode()
                    )
                    return
                await self._gateway(
                    scope, receive, send, path, lambda b, k: self._soap_answer(scope, b, k, service)
                )
                return
        await self.admin(scope, receive, send)

    def _http_answer(
        self, scope: Scope, body: bytes, ko_queue: bool, handler: Callable[[GatewayRequest], str]
    ) -> tuple[int, bytes, bytes]:
        client = scope.get("client")
        request = GatewayRequest(
            self.state, decode_params(scope, body), client[0] if client else None, ko_queue=ko_queue
        )
        return 200, handler(request).encode("utf-8"), TEXT_PLAIN

    def _soap_answer(
        self, scope: Scope, body: bytes, ko_queue: bool, service: str
    ) -> tuple[int, bytes, bytes]:
        client = scope.get("client")
        ip = client[0] if client else None
        try:
            operation, params = parse_call(body)
            if operation != service:
                raise SoapFault(
                    "SOAP-ENV:Client", f"Operation '{operation}' is not defined in the WSDL for this service"
                )
            if service == "receiveSms":
                answer = receive_sms(self.state, params, ip)
            else:
                answer = send_mms(self.state, params, ip, ko_queue)
            return 200, answer, SOAP_CONTENT_TYPE.encode()
        except SoapFault as fault:
            return 500, render_fault(fault), SOAP_CONTENT_TYPE.encode()

    async def _gateway(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        process: Callable[[bytes, bool], tuple[int, bytes, bytes]],
    ) -> None:
        state = self.state
        state.stats[path] += 1
        faults = state.faults
        plan = faults.plan(queueing=path in QUEUEING_ENDPOINTS or path.startswith("/sms-gw/"))
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if plan.stall:
            await stall(receive, send, faults.stopping)
            return
        try:
            body = await read_body(receive)
        except ClientGone:
            return
        except ValueError:
            await respond(send, b"KO Parametri non corretti.", status=413)
            return
        try:
            if plan.drop or plan.http500:
                if faults.settings.record_on_failure:
                    process(body, False)
                if plan.drop and await drop_connection(send):
                    return
                await respond(send, HTTP500_PAGE, status=500, content_type=b"text/html; charset=utf-8")
                return
            status, answer, content_type = process(body, plan.ko_queue)
        except Exception:
            log.exception("sandbox: unexpected error handling %s", path)
            await respond(send, HTTP500_PAGE, status=500, content_type=b"text/html; charset=utf-8")
            return
        await respond(send, answer, status=status, content_type=content_type)


def create_app(state: SandboxState) -> SandboxApp:
    """Build the ASGI application around ``state``."""
    return SandboxApp(state)
