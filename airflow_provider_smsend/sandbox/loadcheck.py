"""Measure how many requests per second a sandbox answers (it must never be the bottleneck).

``python -m airflow_provider_smsend.sandbox.loadcheck`` starts a sandbox in a subprocess (so the
load generator does not share its interpreter), tops up the demo account, then drives
``/sms/credit.php`` and ``/sms/send.php`` with N concurrent keep-alive connections for a bounded
time and request count, and prints requests/s. Pass ``--url`` to measure a sandbox that already
runs. Only loopback addresses are accepted.

The load generator is a minimal asyncio HTTP/1.1 client (pre-encoded requests, Content-Length
framing), so that the measure reflects the server rather than a client library.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

DEMO = {"user": "demo", "pass": "demo-pass"}
SCENARIOS = {
    "/sms/credit.php": {**DEMO, "type": "credit"},
    "/sms/send.php": {**DEMO, "rcpt": "+393331234567", "data": "Load check", "sender": "LOAD", "qty": "ll"},
}


@dataclass(frozen=True)
class LoadResult:
    """Outcome of one measure.

    :param path: the endpoint measured.
    :param requests: answers received.
    :param errors: answers that were not ``OK`` with HTTP 200, plus broken connections.
    :param seconds: wall-clock duration.
    """

    path: str
    requests: int
    errors: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"loadcheck only targets loopback addresses, not {host!r}")


async def _worker(
    host: str, port: int, request: bytes, deadline: float, budget: list[int], counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            counts[0] += 1
            if not head.startswith(b"HTTP/1.1 200") or not body.startswith(b"OK"):
                counts[1] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        counts[1] += 1
    finally:
        writer.close()


async def _measure(
    url: str, path: str, params: dict[str, str], concurrency: int, duration: float, max_requests: int
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    _check_loopback(host)
    body = urlencode(params).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    counts = [0, 0]
    budget = [max_requests]
    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(
        *(_worker(host, port, request, deadline, budget, counts) for _ in range(concurrency))
    )
    return LoadResult(path, counts[0], counts[1], time.perf_counter() - start)


def measure(
    url: str,
    path: str,
    params: dict[str, str] | None = None,
    *,
    concurrency: int = 16,
    duration: float = 3.0,
    max_requests: int = 50_000,
) -> LoadResult:
    """Drive ``path`` of the sandbox at ``url`` and return the requests/s it sustained.

    :param url: the sandbox's base URL (loopback only).
    :param path: the endpoint, e.g. ``/sms/credit.php``.
    :param params: form parameters (default: the scenario of :data:`SCENARIOS`).
    :param concurrency: concurrent keep-alive connections.
    :param duration: upper bound in seconds.
    :param max_requests: upper bound on the request count.
    """
    coroutine = _measure(url, path, params or SCENARIOS[path], concurrency, duration, max_requests)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _admin(url: str, method: str, route: str, body: dict[str, object] | None = None) -> object:
    request = urllib.request.Request(
        f"{url}/_sandbox/{route}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _start_subprocess() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_smsend.sandbox", "--port", "0", "--delivery-delay", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    """Run the load check and print requests/s per endpoint."""
    parser = argparse.ArgumentParser(description="Measure the sandbox's requests/s.")
    parser.add_argument("--url", help="a running sandbox (default: start one in a subprocess)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=50_000)
    args = parser.parse_args(argv)
    process = None
    url = args.url
    if url is None:
        process, url = _start_subprocess()
    try:
        _admin(url, "PUT", "accounts/1001/credit", {"credit": "1000000"})
        for path in SCENARIOS:
            result = measure(
                url,
                path,
                concurrency=args.concurrency,
                duration=args.duration,
                max_requests=args.max_requests,
            )
            print(
                f"{path}: {result.requests} requests in {result.seconds:.2f} s = "
                f"{result.per_second:,.0f} req/s ({result.errors} errors, {args.concurrency} connections)"
            )
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
