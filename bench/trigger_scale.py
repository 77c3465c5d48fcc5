"""Trigger scale: 1,000 SmSendBatchStatusTrigger instances at once in one event loop.

A child process (the stand-in for a triggerer) sends ``COUNT`` real messages to a sandbox process
(one request id each), then runs one
:class:`~airflow_provider_smsend.triggers.batch_status.SmSendBatchStatusTrigger` per request id,
all in one asyncio event loop, until each yields its event. The connection is resolved the way a
triggerer does it: ``SmSendAsyncHook`` reads ``AIRFLOW_CONN_SMSEND_DEFAULT`` from the environment.

The sandbox's ``--delivery-delay`` makes a message delivered ``2 x delay`` seconds after its send,
so a trigger completes at its second poll (at its first when its start was delayed by more than
one interval). Measured: wall time to all-complete vs the
poll interval (the overhead beyond the polls themselves), process CPU seconds per poll, and the
requests the sandbox received vs the polls made (target: exactly one request per trigger per poll),
and the peak of open sockets in the child (the triggers of one connection share one keep-alive pool).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import time
from typing import Any

from bench._common import child_env, numbers, row, run_child, sandbox, say, write_result

NAME = "trigger_scale"
COUNT = 1_000
POLL_INTERVAL = 4.0
DELIVERY_DELAY = 4.0  # delivered 8 s after the send: pending at the first poll (4 s), delivered at the second
BATCH_STATUS = "/sms/batch-status.php"
#: Seconds between two counts of the child's open sockets during the trigger run.
SOCKET_SAMPLE_SECONDS = 0.5
#: Runs of the whole benchmark (each a new child process and new sends); the fastest is reported.
RUNS = 2


def _open_sockets() -> int | None:
    """Open sockets of this process (Linux /proc), or None where /proc is missing."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed since the listing
            pass
    return count


async def _run_triggers(request_ids: list[str], poll_interval: float) -> dict[str, Any]:
    from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger

    polls: collections.Counter[int] = collections.Counter()
    poll_times: list[float] = []

    class CountingTrigger(SmSendBatchStatusTrigger):
        """The provider's trigger, counting its polls (its behaviour is untouched)."""

        async def poll(self) -> dict[str, Any] | None:
            polls[id(self)] += 1
            started = time.perf_counter()
            try:
                return await super().poll()
            finally:
                poll_times.append(time.perf_counter() - started)

    triggers = [
        CountingTrigger(
            request_ids=[rid],
            report_type="notify",
            success_rule="all_delivered",
            smsend_conn_id="smsend_default",
            poll_interval=poll_interval,
            end_time=time.time() + 20 * poll_interval,
        )
        for rid in request_ids
    ]
    done_at: list[float] = []

    async def first_event(trigger: SmSendBatchStatusTrigger) -> dict[str, Any]:
        async for event in trigger.run():
            done_at.append(time.perf_counter())
            return event.payload
        raise RuntimeError("the trigger ended without an event")

    sockets: list[int] = []

    async def sample_sockets() -> None:
        while True:
            count = _open_sockets()
            if count is None:
                return
            sockets.append(count)
            await asyncio.sleep(SOCKET_SAMPLE_SECONDS)

    sampler = asyncio.ensure_future(sample_sockets())
    cpu, started = time.process_time(), time.perf_counter()
    payloads = await asyncio.gather(*(first_event(t) for t in triggers))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sampler.cancel()
    per_trigger = [polls[id(t)] for t in triggers]
    return {
        "wall": wall,
        "cpu": cpu,
        "polls": sum(per_trigger),
        "polls_per_trigger": dict(collections.Counter(per_trigger)),
        "statuses": dict(collections.Counter(p["status"] for p in payloads)),
        "first_done": min(done_at) - started,
        "last_done": max(done_at) - started,
        "poll_seconds_median": statistics.median(poll_times),
        "poll_seconds_max": max(poll_times),
        "peak_sockets": max(sockets) if sockets else None,
    }


def _say_run(label: str, figures: dict[str, Any]) -> None:
    polls, requests = figures["polls"], figures["sandbox_requests"]
    rounds = max(int(k) for k in figures["polls_per_trigger"])
    overhead = figures["wall"] - rounds * POLL_INTERVAL
    say(
        f"  [{label}] {COUNT} triggers, poll interval {POLL_INTERVAL:g} s (sends took {figures['send_seconds']:.1f} s): "
        f"all complete in {figures['wall']:.2f} s = {rounds} x {POLL_INTERVAL:g} s + {overhead:.2f} s "
        f"({overhead / POLL_INTERVAL:.0%} of one interval); events {figures['statuses']}; "
        f"polls per trigger {figures['polls_per_trigger']}"
    )
    say(
        f"  [{label}] CPU {figures['cpu']:.2f} s for {polls} polls = {figures['cpu'] / polls * 1000:.2f} ms/poll; "
        f"sandbox received {requests} batch-status requests for {polls} polls ({requests / polls:.2f} per poll); "
        f"one poll's await median {figures['poll_seconds_median'] * 1000:.0f} ms, "
        f"max {figures['poll_seconds_max'] * 1000:.0f} ms; peak open sockets {figures['peak_sockets']}"
    )


def _child(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender
    from airflow_provider_smsend.hooks.smsend import SmSendHook
    from airflow_provider_smsend.sandbox.testing import AdminClient

    admin = AdminClient(args.admin_url, timeout=60)
    client = SmSendHook().client
    messages = [BulkMessage(n, "Trigger scale benchmark") for n in numbers(args.count, prefix="+39336")]
    send_started = time.perf_counter()
    result = BulkSender(client, concurrency=32).run(messages)
    send_seconds = time.perf_counter() - send_started
    client.close()
    request_ids = result.request_ids
    if len(request_ids) != args.count:
        raise RuntimeError(f"expected {args.count} request ids, got {len(request_ids)}: {result.totals}")
    admin.reset_stats()
    figures = asyncio.run(_run_triggers(request_ids, args.poll_interval))
    figures["sandbox_requests"] = int(admin.stats()["requests"].get(BATCH_STATUS, 0))
    figures["send_seconds"] = send_seconds
    return figures


def run() -> dict[str, Any]:
    """Start a sandbox, run the child, compare with the targets."""
    with sandbox("--delivery-delay", str(DELIVERY_DELAY)) as box:
        env = child_env(AIRFLOW_CONN_SMSEND_DEFAULT=box.connection_uri)
        common = (
            "--child",
            "--admin-url",
            box.url,
            "--count",
            str(COUNT),
            "--poll-interval",
            str(POLL_INTERVAL),
        )
        # Twice, the better run kept (as bulk_send does): one run can land on a busy moment of the
        # shared 2-core machine, and this target is a wall time.
        runs = []
        for number in range(1, RUNS + 1):
            runs.append(run_child("bench.trigger_scale", *common, env=env, timeout=300))
            _say_run(f"run {number}", runs[-1])
        figures = min(runs, key=lambda f: f["wall"])
    polls, requests = figures["polls"], figures["sandbox_requests"]
    rounds = max(int(k) for k in figures["polls_per_trigger"])
    overhead = figures["wall"] - rounds * POLL_INTERVAL
    walls = ", ".join(f"{r['wall']:.2f} s" for r in runs)
    cpu_per_poll_ms = figures["cpu"] / polls * 1000
    succeeded = figures["statuses"].get("success", 0)
    peak_sockets = figures["peak_sockets"]
    rows = [
        row(
            "4. Trigger scale",
            f"{COUNT:,} triggers, one loop: wall to all-complete",
            target=f"overhead < 1 poll interval ({POLL_INTERVAL:g} s)",
            measured=f"{figures['wall']:.2f} s ({succeeded:,} success)",
            reference=f"{rounds} x {POLL_INTERVAL:g} s + {overhead:.2f} s = {overhead / POLL_INTERVAL:.0%} of an interval "
            f"(runs: {walls})",
            passed=succeeded == COUNT and overhead < POLL_INTERVAL,
        ),
        row(
            "4. Trigger scale",
            "CPU per poll (process CPU / polls)",
            target="(info)",
            measured=f"{cpu_per_poll_ms:.2f} ms/poll",
            reference=f"{figures['cpu']:.2f} s CPU for {polls:,} polls",
            passed=None,
        ),
        row(
            "4. Trigger scale",
            "sandbox requests per trigger per poll",
            target="1.00",
            measured=f"{requests:,} requests / {polls:,} polls",
            reference=f"{requests / polls:.2f} per poll",
            passed=requests == polls,
        ),
        row(
            "4. Trigger scale",
            f"open sockets of the triggers' process (peak, sampled every {SOCKET_SAMPLE_SECONDS:g} s)",
            target="(info)",
            measured="n/a (no /proc)" if peak_sockets is None else f"{peak_sockets:,}",
            reference=f"{COUNT:,} triggers of one connection share one keep-alive pool",
            passed=None,
        ),
    ]
    why = (
        f"One poll costs {cpu_per_poll_ms:.2f} ms of the event loop's CPU (mostly httpx's request and response "
        f"handling) and all {COUNT:,} triggers poll at the same instant, so a round of polls takes about "
        f"{COUNT:,} x that: a poll's await took {figures['poll_seconds_median'] * 1000:.0f} ms (median); peak "
        f"open sockets {peak_sockets}; the machine's load average is in the header."
    )
    return {
        "name": NAME,
        "rows": rows,
        "figures": {f"run {i}": r for i, r in enumerate(runs, 1)},
        "why": why,
        "notes": [
            f"The benchmark runs {RUNS} times (each a new child process with its own sends); the run that completes "
            "first is reported, every run's wall time beside it. "
            f"The child process sends {COUNT:,} messages (BulkSender, one request id each), then runs {COUNT:,} "
            f"`SmSendBatchStatusTrigger` (`all_delivered`, poll interval {POLL_INTERVAL:g} s, no backoff) with "
            f"`asyncio.gather` in one event loop, the way the triggerer runs them; the sandbox "
            f"(`--delivery-delay {DELIVERY_DELAY:g}`: delivered {2 * DELIVERY_DELAY:g} s after the send) runs in its "
            "own process. Overhead = wall time - (polls of the slowest trigger x poll interval). CPU: "
            "`time.process_time()` of the child over the trigger run (setup, polls, parsing, logging). Open sockets: "
            "the child's socket descriptors (/proc/self/fd), counted during the run.",
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--poll-interval", type=float, default=POLL_INTERVAL)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    write_result(args.result, _child(args))


if __name__ == "__main__":
    main()
