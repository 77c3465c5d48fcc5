"""Fault injection for the gateway endpoints: latency, KO queue answers, 500 pages, drops, stalls.

Faults never apply to the admin API (``/_sandbox/``). Random draws come from one
:class:`random.Random` seeded with ``seed``, so a run with the same seed and the same request
sequence injects the same faults. Per request, in this order:

1. sleep ``latency_ms`` plus a uniform ``0..jitter_ms``;
2. with probability ``stall_rate`` (1.0 with ``--stall``): never answer, until the client hangs up;
3. with probability ``drop_rate``: process the request (if ``record_on_failure``), then close the
   TCP connection without a byte of answer;
4. with probability ``http500_rate``: process the request (if ``record_on_failure``), then answer
   a plain HTML ``500 Internal Server Error`` page;
5. with probability ``ko_queue_rate`` (send.php, mnc.php, sendMms only): answer ``KO Impossibile
   accodare ...`` (sendMms: fault ``KO 301``) and record and charge nothing.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import Receive, Send

HTTP500_PAGE = (
    b"<html><head><title>500 Internal Server Error</title></head><body>"
    b"<h1>Internal Server Error</h1><p>The server encountered an internal error.</p></body></html>"
)


@dataclass
class FaultSettings:
    """What to inject; every rate is a probability in ``[0, 1]``.

    :param latency_ms: fixed delay before each answer.
    :param jitter_ms: extra uniform random delay, up to this many milliseconds.
    :param ko_queue_rate: share of send/mnc/sendMms calls answered "cannot queue".
    :param http500_rate: share of calls answered with an HTML 500 page.
    :param drop_rate: share of calls whose connection is closed without an answer.
    :param stall_rate: share of calls never answered.
    :param record_on_failure: whether 500 and drop faults process the request first (the
        ambiguous case: the message exists although the client saw an error).
    :param seed: seed of the random generator; None for an unpredictable one.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    ko_queue_rate: float = 0.0
    http500_rate: float = 0.0
    drop_rate: float = 0.0
    stall_rate: float = 0.0
    record_on_failure: bool = True
    seed: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` if a value is out of range."""
        for name in ("ko_queue_rate", "http500_rate", "drop_rate", "stall_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")

    def to_json(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict."""
        return asdict(self)


@dataclass(frozen=True)
class FaultPlan:
    """The faults drawn for one request."""

    delay: float = 0.0
    stall: bool = False
    drop: bool = False
    http500: bool = False
    ko_queue: bool = False


NO_FAULT = FaultPlan()


class FaultInjector:
    """Draw a :class:`FaultPlan` per request from :class:`FaultSettings` and a seeded RNG.

    :param settings: the initial settings.
    """

    def __init__(self, settings: FaultSettings) -> None:
        settings.validate()
        self._lock = threading.Lock()
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.injected: dict[str, int] = {"stall": 0, "drop": 0, "http500": 0, "ko_queue": 0}
        #: Set when the server stops: stalled requests then drop their connection.
        self.stopping = threading.Event()

    @property
    def active(self) -> bool:
        """True if any fault may be injected."""
        s = self.settings
        return bool(
            s.latency_ms or s.jitter_ms or s.ko_queue_rate or s.http500_rate or s.drop_rate or s.stall_rate
        )

    def update(self, **changes: Any) -> FaultSettings:
        """Change settings (partial update); a ``seed`` in ``changes`` re-seeds the generator.

        :raises ValueError: on an unknown name or an out-of-range value.
        """
        known = {f.name for f in fields(FaultSettings)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)!r}")
        candidate = FaultSettings(**{**self.settings.to_json(), **changes})
        candidate.validate()
        with self._lock:
            self.settings = candidate
            if "seed" in changes:
                self.rng = random.Random(candidate.seed)
        return candidate

    def reset_counts(self) -> None:
        """Zero the counters of injected faults."""
        with self._lock:
            for key in self.injected:
                self.injected[key] = 0

    def _hit(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self.rng.random() < rate)

    def plan(self, *, queueing: bool) -> FaultPlan:
        """Draw the faults of one request.

        :param queueing: True for the calls that queue messages (send, mnc, sendMms).
        """
        s = self.settings
        if not self.active:
            return NO_FAULT
        with self._lock:
            delay = s.latency_ms / 1000.0
            if s.jitter_ms:
                delay += self.rng.uniform(0, s.jitter_ms) / 1000.0
            stall = self._hit(s.stall_rate)
            drop = not stall and self._hit(s.drop_rate)
            http500 = not (stall or drop) and self._hit(s.http500_rate)
            ko_queue = queueing and not (stall or drop or http500) and self._hit(s.ko_queue_rate)
            for name, hit in (("stall", stall), ("drop", drop), ("http500", http500), ("ko_queue", ko_queue)):
                if hit:
                    self.injected[name] += 1
        return FaultPlan(delay, stall, drop, http500, ko_queue)


async def stall(receive: Receive, send: Send, stopping: threading.Event) -> None:
    """Never answer: wait until the client disconnects, or until ``stopping`` is set.

    When the server is stopping, the connection is dropped so shutdown does not wait.
    """
    waiter = asyncio.ensure_future(receive())
    try:
        while not stopping.is_set():
            done, _ = await asyncio.wait({waiter}, timeout=0.2)
            if done:
                if waiter.result()["type"] == "http.disconnect":
                    return
                waiter = asyncio.ensure_future(receive())
        await drop_connection(send)
    finally:
        waiter.cancel()


async def drop_connection(send: Send) -> bool:
    """Close the TCP connection under this request without sending any answer.

    uvicorn's protocols (httptools and h11) pass a bound method of their request/response cycle
    as ``send``; its ``transport`` is the connection. The transport is aborted (RST) and the
    cycle marked disconnected so uvicorn does not try to write a 500 page after the app returns.

    :param send: the ASGI ``send`` callable exactly as the server passed it.
    :return: False if the transport could not be found (the caller then answers something else).
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]
    cycle.keep_alive = False  # type: ignore[union-attr]
    await asyncio.sleep(0)
    return True
