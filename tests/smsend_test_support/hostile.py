"""A hostile gateway: a tiny threaded TCP server on 127.0.0.1 that misbehaves on purpose.

Each connection reads one HTTP request (headers and ``Content-Length`` body), then answers as
its ``mode`` says:

- ``silent``: never answers (holds the connection until the server stops);
- ``drip_headers``: a status line, then one header byte per ``interval`` seconds, for ever;
- ``drip_body``: complete headers (no length), then one body byte per ``interval``, for ever;
- ``endless_body``: complete headers, then an endless report body (valid lines, at full speed);
- ``endless_line``: complete headers, then a first line that never ends;
- ``huge_soap``: a receiveSms envelope whose array grows without end (or up to ``items``).

Example::

    with HostileGateway("drip_body") as gateway:
        SmSendClient(base_url=gateway.url, username="u", password="p", timeout=1).credit()
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Any

MODES = ("silent", "drip_headers", "drip_body", "endless_body", "endless_line", "huge_soap")

_REPORT_HEADER = b"id,dest,status,status_text,netcode\r\n"
_REPORT_LINE = b"1,+393331234567,1,Consegnato,22201\r\n"
_SOAP_HEAD = (
    b'<?xml version="1.0" encoding="ISO-8859-1"?>'
    b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<SOAP-ENV:Body><ns1:receiveSmsResponse xmlns:ns1="urn:receiveSmswsdl"><response>'
)
_SOAP_ITEM = (
    b"<item><id>%d</id><sender>+393331234567</sender><text>ciao</text><date>2026-01-01 10:00:00</date></item>"
)
_SOAP_TAIL = b"</response></ns1:receiveSmsResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(60)
        try:
            self._read_request(sock)
            self.server.requests += 1
            getattr(self, self.server.mode)(sock)
        except OSError:
            return  # the client gave up: what it should do

    def _read_request(self, sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the request ended")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the body ended")
            body += chunk

    def _stopped(self) -> bool:
        return self.server.stopping.is_set()

    def _drip(self, sock: socket.socket, byte: bytes) -> None:
        while not self._stopped():
            sock.sendall(byte)
            self.server.stopping.wait(self.server.interval)

    def _flood(self, sock: socket.socket, block: bytes) -> None:
        while not self._stopped():
            sock.sendall(block)

    def _headers(self, content_type: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nConnection: close\r\n\r\n"

    def silent(self, sock: socket.socket) -> None:
        self.server.stopping.wait()

    def drip_headers(self, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        self._drip(sock, b"X")  # one endless header line, one byte at a time

    def drip_body(self, sock: socket.socket) -> None:
        sock.sendall(self._headers(b"text/plain; charset=utf-8"))
        self._drip(sock, b"O")

    def endless_body(self, sock: socket.socket) -> None:
        sock.sendall(self._headers(b"text/csv; charset=utf-8") + _REPORT_HEADER)
        self._flood(sock, _REPORT_LINE * 2048)

    def endless_line(self, sock: socket.socket) -> None:
        sock.sendall(self._headers(b"text/csv; charset=utf-8") + b"OK ")
        self._flood(sock, b"9" * 65536)

    def huge_soap(self, sock: socket.socket) -> None:
        sock.sendall(self._headers(b"text/xml; charset=ISO-8859-1") + _SOAP_HEAD)
        items = self.server.items
        sent = 0
        while not self._stopped() and (items is None or sent < items):
            count = 1000 if items is None else min(1000, items - sent)
            sock.sendall(b"".join(_SOAP_ITEM % (sent + n) for n in range(count)))
            sent += count
        sock.sendall(_SOAP_TAIL)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, interval: float, items: int | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.interval = interval
        self.items = items
        self.requests = 0
        self.stopping = threading.Event()


class HostileGateway:
    """A hostile server in a thread; ``url`` is its base URL; a context manager stops it.

    :param mode: one of :data:`MODES`.
    :param interval: seconds between two bytes of the drip modes.
    :param items: ``huge_soap``: the array's length (None: endless).
    """

    def __init__(self, mode: str, *, interval: float = 0.5, items: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._server = _Server(mode, interval, items)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"hostile-{mode}", daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    @property
    def requests(self) -> int:
        """Requests read so far."""
        return self._server.requests

    def start(self) -> HostileGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileGateway:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_until(predicate: Any, seconds: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``seconds`` pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
