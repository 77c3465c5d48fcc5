"""Command line: ``smsend-sandbox`` / ``python -m airflow_provider_smsend.sandbox``.

Prints the gateway URL and a ready-to-use Airflow connection URI once the server listens.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airflow_provider_smsend.sandbox.server import bind_socket, build_state, connection_uri, make_server


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the sandbox command."""
    parser = argparse.ArgumentParser(
        prog="smsend-sandbox", description="A local, stateful emulator of the smSend SMS/MMS gateway."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument("--state-file", help="SQLite file that keeps the state across restarts")
    parser.add_argument("--config", help="JSON fixture of accounts (default: the packaged one)")
    parser.add_argument("--seed", type=int, help="seed of the fault injector's random generator")
    parser.add_argument(
        "--delivery-delay",
        type=float,
        default=2.0,
        help="seconds until a message is sent (delivered: twice that); default 2",
    )
    parser.add_argument(
        "--mnc-report",
        choices=("spec", "full"),
        default="spec",
        help="mnc report rows: 'spec' ragged four-field rows (default) or 'full'",
    )
    parser.add_argument(
        "--allow-ip",
        action="append",
        default=[],
        metavar="IP_OR_SUBNET",
        help="enable an address or subnet (repeatable); default: every address",
    )
    faults = parser.add_argument_group("fault injection (gateway endpoints only)")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay before each answer")
    faults.add_argument("--jitter-ms", type=float, default=0.0, help="extra random delay up to this")
    faults.add_argument(
        "--ko-queue-rate",
        type=_rate,
        default=0.0,
        help="share of send/mnc/sendMms calls answered 'cannot queue' (nothing recorded)",
    )
    faults.add_argument(
        "--http500-rate",
        type=_rate,
        default=0.0,
        help="share of calls answered with an HTML 500 page (the request is processed)",
    )
    faults.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        help="share of calls whose connection is closed with no answer (processed)",
    )
    faults.add_argument("--stall", action="store_true", help="never answer gateway calls")
    faults.add_argument("--stall-rate", type=_rate, default=0.0, help="share of calls never answered")
    faults.add_argument(
        "--no-record-on-failure", action="store_true", help="500 and drop faults do not process the request"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until interrupted.

    :param argv: arguments (default ``sys.argv[1:]``).
    :return: the process exit code.
    """
    args = build_parser().parse_args(argv)
    try:
        state = build_state(
            config=args.config,
            state_file=args.state_file,
            seed=args.seed,
            delivery_delay=args.delivery_delay,
            mnc_report=args.mnc_report,
            allow_ips=args.allow_ip,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            ko_queue_rate=args.ko_queue_rate,
            http500_rate=args.http500_rate,
            drop_rate=args.drop_rate,
            stall=args.stall,
            stall_rate=args.stall_rate,
            record_on_failure=not args.no_record_on_failure,
        )
    except (OSError, ValueError) as exc:
        print(f"smsend-sandbox: {exc}", file=sys.stderr)
        return 2
    sock = bind_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host

    def announce() -> None:
        print(f"smSend sandbox listening on http://{url_host}:{port}", flush=True)
        print(f"Airflow connection URI: {connection_uri(url_host, port, state)}", flush=True)

    server = make_server(
        state, host, port, log_level=args.log_level, access_log=args.access_log, on_started=announce
    )
    try:
        server.run(sockets=[sock])
    finally:
        if state.store is not None:
            state.store.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
