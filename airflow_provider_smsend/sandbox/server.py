"""Building and serving a sandbox: state from options, uvicorn configuration, connection URI.

Shared by the command line (:mod:`~airflow_provider_smsend.sandbox.cli`) and the test helper
(:mod:`~airflow_provider_smsend.sandbox.testing`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

import uvicorn

from airflow_provider_smsend.sandbox.app import create_app
from airflow_provider_smsend.sandbox.faults import FaultSettings
from airflow_provider_smsend.sandbox.persistence import SqliteStore
from airflow_provider_smsend.sandbox.state import SandboxState, Settings

#: Seconds uvicorn waits for stalled requests before cancelling them at shutdown.
GRACEFUL_SHUTDOWN = 1


def build_state(
    *,
    config: str | dict[str, Any] | None = None,
    state_file: str | None = None,
    seed: int | None = None,
    delivery_delay: float = 2.0,
    mnc_report: str = "spec",
    allow_ips: Iterable[str] = (),
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    ko_queue_rate: float = 0.0,
    http500_rate: float = 0.0,
    drop_rate: float = 0.0,
    stall: bool = False,
    stall_rate: float = 0.0,
    record_on_failure: bool = True,
) -> SandboxState:
    """Build a :class:`SandboxState` from the command line's options.

    :param config: accounts fixture (path or decoded dict); None for the packaged default.
    :param state_file: SQLite file to persist state in; None keeps everything in memory.
    :param seed: seed of the fault injector's random generator.
    :param delivery_delay: seconds until messages reach their final status.
    :param mnc_report: ``"spec"`` (ragged rows, as in the document) or ``"full"``.
    :param allow_ips: addresses or subnets allowed to call the gateway (empty: everyone).
    :param stall: never answer any gateway request (same as ``stall_rate=1``).
    """
    settings = Settings(delivery_delay=delivery_delay, mnc_report=mnc_report, allow_ips=list(allow_ips))
    settings.networks()  # validate early
    if mnc_report not in ("spec", "full"):
        raise ValueError("mnc_report must be 'spec' or 'full'")
    faults = FaultSettings(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        ko_queue_rate=ko_queue_rate,
        http500_rate=http500_rate,
        drop_rate=drop_rate,
        stall_rate=1.0 if stall else stall_rate,
        record_on_failure=record_on_failure,
        seed=seed,
    )
    store = SqliteStore(state_file) if state_file else None
    return SandboxState(fixture=config, settings=settings, faults=faults, store=store)


def connection_uri(host: str, port: int, state: SandboxState) -> str:
    """An Airflow connection URI for the sandbox's first client, its reseller and its MMS account."""
    clients = [a for a in state.accounts.values() if not a.is_reseller]
    client = state.accounts.get(1001) or (clients[0] if clients else next(iter(state.accounts.values())))
    extras: dict[str, str] = {"scheme": "http"}
    reseller = state.by_username.get(client.parent or "")
    if reseller is not None:
        extras["reseller_username"] = reseller.username
        extras["reseller_password"] = reseller.password
    mms = next((m for m in state.mms_accounts.values() if m.u_id == client.u_id and m.auth == "plain"), None)
    if mms is not None:
        extras.update(mms_id=mms.id, mms_password=mms.password, mms_auth=mms.auth)
    userinfo = f"{quote(client.username, safe='')}:{quote(client.password, safe='')}"
    return f"smsend://{userinfo}@{host}:{port}/?{urlencode(extras)}"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening-ready TCP socket (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class SandboxUvicornServer(uvicorn.Server):
    """uvicorn's server, plus a callback once listening and a prompt end of stalled requests.

    :param config: the uvicorn configuration.
    :param state: the sandbox state (its fault injector's ``stopping`` event is set at shutdown).
    :param on_started: called once the server accepts connections.
    """

    def __init__(
        self, config: uvicorn.Config, state: SandboxState, on_started: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.state = state
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then run :attr:`on_started`."""
        await super().startup(sockets=sockets)
        if self.on_started is not None and not self.should_exit:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Release stalled requests (their connections are dropped), then shut down."""
        self.state.faults.stopping.set()
        await super().shutdown(sockets=sockets)


def make_server(
    state: SandboxState,
    host: str,
    port: int,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    on_started: Callable[[], None] | None = None,
) -> SandboxUvicornServer:
    """A uvicorn server for the sandbox app (uvloop and httptools when installed)."""
    config = uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        loop="auto",
        http="auto",
        lifespan="off",
        log_level=log_level,
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    return SandboxUvicornServer(config, state, on_started)
