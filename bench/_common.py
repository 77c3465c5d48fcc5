"""Shared helpers of the benchmarks: a sandbox in its own process, child processes, result rows."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
#: Bytecode of the child interpreters goes here, outside the source tree (the environment may set
#: PYTHONDONTWRITEBYTECODE; a deployed Airflow always has its .pyc files).
PYCACHE = Path(tempfile.gettempdir()) / "smsend-bench-pycache"
DEMO_USER, DEMO_PASS, DEMO_UID = "demo", "demo-pass", 1001


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark child: bytecode cached outside the tree, quiet Airflow."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Terminate one process we started (SIGTERM, then SIGKILL), by its own pid only."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def start_server(argv: list[str], *, timeout: float = 60.0) -> tuple[subprocess.Popen[str], str]:
    """Start ``python argv`` and wait for the line announcing its ``http://`` URL."""
    process = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            break
        line = process.stdout.readline()
        if "http://" in line or not line:
            break
    if "http://" not in line:
        stop_process(process)
        raise RuntimeError(f"{' '.join(argv)} did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[-1]


class Sandbox:
    """A sandbox gateway running in its own process (its CPU never competes with our GIL).

    :param options: command line options of ``smsend-sandbox`` (``--latency-ms`` ...).
    """

    def __init__(self, *options: str) -> None:
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> Sandbox:
        """Start the process and wait for its announcement line."""
        from airflow_provider_smsend.sandbox.testing import AdminClient

        self.process, self.url = start_server(
            ["-m", "airflow_provider_smsend.sandbox", "--host", "127.0.0.1", "--port", "0", *self.options],
            timeout=timeout,
        )
        self.admin = AdminClient(self.url, timeout=60)
        # Plenty of credit: thousands of messages are sent.
        self.admin.set_credit(DEMO_UID, "1000000")
        return self

    @property
    def connection_uri(self) -> str:
        """An Airflow connection URI of the demo account on this sandbox."""
        host_port = self.url.split("://", 1)[1]
        return f"smsend://{DEMO_USER}:{DEMO_PASS}@{host_port}/?scheme=http&default_sender=BENCH"

    def requests(self, path: str) -> int:
        """Requests the sandbox received on ``path`` since the last stats reset."""
        return int(self.admin.stats()["requests"].get(path, 0))

    def stop(self) -> None:
        """Stop the process."""
        if self.process is not None:
            stop_process(self.process)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


@contextmanager
def sandbox(*options: str) -> Iterator[Sandbox]:
    """Run a sandbox process for the duration of a ``with`` block."""
    box = Sandbox(*options)
    try:
        yield box.start()
    finally:
        box.stop()


def run_child(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300.0
) -> dict[str, Any]:
    """Run ``python -m module args --result FILE`` and return the JSON it wrote to FILE.

    The child's output goes to a log file, printed only if it fails.
    """
    with tempfile.TemporaryDirectory(prefix="smsend-bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        log_path = Path(tmp) / "child.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args, "--result", str(result_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env or child_env(),
                cwd=ROOT,
            )
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                stop_process(process)
                raise RuntimeError(f"{module} {' '.join(args)} did not finish in {timeout:.0f} s") from None
            finally:
                stop_process(process)
        if code != 0 or not result_path.exists():
            tail = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{module} {' '.join(args)} failed (exit {code}):\n{tail}")
        return json.loads(result_path.read_text())


def write_result(path: str, data: dict[str, Any]) -> None:
    """What a child does last: write its figures for the parent."""
    Path(path).write_text(json.dumps(data))


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system) another process has used so far, from /proc; None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def current_rss_mb() -> float:
    """This process's resident set size now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def row(
    benchmark: str,
    metric: str,
    *,
    target: str,
    measured: str,
    reference: str = "",
    passed: bool | None = None,
) -> dict[str, Any]:
    """One line of the results table (``passed`` None: informative, no target)."""
    return {
        "benchmark": benchmark,
        "metric": metric,
        "target": target,
        "measured": measured,
        "reference": reference,
        "passed": passed,
    }


def say(text: str) -> None:
    """Progress and figures, as they come."""
    print(text, flush=True)


def numbers(count: int, *, prefix: str = "+39333") -> list[str]:
    """``count`` distinct mobile numbers the sandbox delivers (endings 0000-0003 have special fates)."""
    result: list[str] = []
    i = 10
    while len(result) < count:
        if i % 10_000 >= 4:
            result.append(f"{prefix}{i:07d}")
        i += 1
    return result
