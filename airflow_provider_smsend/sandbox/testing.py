"""Run a sandbox gateway inside a test, like moto's ``mock_aws``::

    from airflow_provider_smsend.sandbox.testing import run_sandbox

    with run_sandbox(delivery_delay=0) as sandbox:
        requests.post(f"{sandbox.url}/sms/credit.php", data={"user": "demo", "pass": "demo-pass"})
        sandbox.admin.advance(10)
        assert sandbox.admin.counts() == {}

The server runs uvicorn in a background thread on 127.0.0.1 and a free port, and stops when the
``with`` block ends.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_provider_smsend.sandbox.server import bind_socket, build_state, connection_uri, make_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    import uvicorn

    from airflow_provider_smsend.sandbox.state import SandboxState


class AdminClient:
    """A tiny client of the ``/_sandbox/`` admin API (standard library only).

    :param url: the sandbox's base URL.
    :param timeout: seconds per call.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(
        self, method: str, route: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Any:
        """Call ``/_sandbox/<route>`` and return the decoded JSON answer.

        :raises RuntimeError: on an HTTP error, with the sandbox's message.
        """
        url = f"{self.url}/_sandbox/{route.lstrip('/')}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"sandbox admin {method} {route} failed: {exc.code} {exc.read()!r}") from exc

    def health(self) -> dict[str, Any]:
        """``GET /_sandbox/health``."""
        return self.call("GET", "health")

    def messages(
        self, rcpt: str | None = None, kind: str | None = None, username: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /_sandbox/messages``: recorded messages, optionally filtered."""
        return self.call("GET", "messages", query={"rcpt": rcpt, "kind": kind, "username": username})[
            "messages"
        ]

    def counts(self, kind: str | None = None) -> dict[str, int]:
        """``GET /_sandbox/messages/counts``: messages per recipient."""
        return self.call("GET", "messages/counts", query={"kind": kind})["counts"]

    def reset(self) -> None:
        """``POST /_sandbox/reset``: back to the fixture."""
        self.call("POST", "reset", {})

    def inbound(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/inbound``: injected inbound SMS."""
        return self.call("GET", "inbound")["inbound"]

    def inject_inbound(
        self, rcpt: str, sharecode: str, sender: str, text: str, received_at: str | float | None = None
    ) -> dict[str, Any]:
        """``POST /_sandbox/inbound``: record an SMS received on ``rcpt`` for ``sharecode``."""
        body: dict[str, Any] = {"rcpt": rcpt, "sharecode": sharecode, "sender": sender, "text": text}
        if received_at is not None:
            body["received_at"] = received_at
        return self.call("POST", "inbound", body)

    def clock(self) -> dict[str, Any]:
        """``GET /_sandbox/clock``."""
        return self.call("GET", "clock")

    def advance(self, seconds: float) -> dict[str, Any]:
        """``POST /_sandbox/clock/advance``: move the sandbox clock forward."""
        return self.call("POST", "clock/advance", {"seconds": seconds})

    def faults(self) -> dict[str, Any]:
        """``GET /_sandbox/faults``."""
        return self.call("GET", "faults")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """``PUT /_sandbox/faults``: partial update (``drop_rate=1.0``, ``seed=7`` ...)."""
        return self.call("PUT", "faults", changes)

    def settings(self) -> dict[str, Any]:
        """``GET /_sandbox/settings``."""
        return self.call("GET", "settings")

    def set_settings(self, **changes: Any) -> dict[str, Any]:
        """``PUT /_sandbox/settings``: ``delivery_delay``, ``mnc_report``, ``allow_ips``."""
        return self.call("PUT", "settings", changes)

    def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``: requests received per endpoint."""
        return self.call("GET", "stats")

    def reset_stats(self) -> None:
        """``POST /_sandbox/stats/reset``."""
        self.call("POST", "stats/reset", {})

    def accounts(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/accounts``."""
        return self.call("GET", "accounts")["accounts"]

    def credit(self, u_id: int) -> str:
        """``GET /_sandbox/accounts/{u_id}/credit``: euros, four decimals."""
        return self.call("GET", f"accounts/{u_id}/credit")["credit"]

    def set_credit(self, u_id: int, credit: str | float) -> str:
        """``PUT /_sandbox/accounts/{u_id}/credit``."""
        return self.call("PUT", f"accounts/{u_id}/credit", {"credit": str(credit)})["credit"]

    def userlog(self) -> list[dict[str, Any]]:
        """``GET /_sandbox/userlog``."""
        return self.call("GET", "userlog")["userlog"]


class SandboxServer:
    """A sandbox gateway running in a background thread.

    :param state: the state it serves (:attr:`app_state`).
    :param host: address to listen on.
    :param port: port; 0 picks a free one.
    """

    def __init__(self, state: SandboxState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app_state = state
        self._socket = bind_socket(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.connection_uri = connection_uri(self.host, self.port, state)
        self.admin = AdminClient(self.url)
        self._server: uvicorn.Server = make_server(state, self.host, self.port)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Start serving and wait until the server accepts connections."""
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"smsend-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for its thread (stalled requests are cut after 1 s)."""
        self.app_state.faults.stopping.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._socket.close()
        if self.app_state.store is not None:
            self.app_state.store.close()


@contextmanager
def run_sandbox(port: int = 0, host: str = "127.0.0.1", **options: Any) -> Iterator[SandboxServer]:
    """Run a sandbox for the duration of a ``with`` block.

    :param port: port to listen on; 0 (default) picks a free one.
    :param host: address to listen on (default 127.0.0.1).
    :param options: :func:`~airflow_provider_smsend.sandbox.server.build_state` options: ``config``,
        ``state_file``, ``seed``, ``delivery_delay``, ``mnc_report``, ``allow_ips``, ``latency_ms``,
        ``jitter_ms``, ``ko_queue_rate``, ``http500_rate``, ``drop_rate``, ``stall``, ``stall_rate``,
        ``record_on_failure``.
    """
    server = SandboxServer(build_state(**options), host=host, port=port).start()
    try:
        yield server
    finally:
        server.stop()
