"""The send ledger: durable per-recipient progress, so a retried task never sends twice.

Before a request that spends money leaves, its recipient is marked ``sending`` in the ledger
(committed); when the answer comes, the outcome replaces the mark. A retry (even after the worker
was killed) reads the ledger first:

=============  ==========================================================================
ledger state   what a retry does
=============  ==========================================================================
accepted       not sent again; reported as accepted (with cost and request id)
sending        the outcome is unknown (the request may have left): reported as unknown,
               not resent unless the user opts in (``resend_unknown``)
unknown        same as ``sending`` (a timeout or a broken connection after the request left)
rejected       resent only if the rejection was retryable and nothing was queued
               (``KO Impossibile accodare…``, a connection never established)
=============  ==========================================================================

The ledger is a table in any SQL database reachable through DB-API (:class:`airflow_provider_smsend.sql.ledger.DbApiLedger`);
:class:`MemoryLedger` keeps the same contract in memory, for tests and for users who opt out of
retry safety.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

SENDING = "sending"
ACCEPTED = "accepted"
REJECTED = "rejected"
UNKNOWN = "unknown"
STATES = (SENDING, ACCEPTED, REJECTED, UNKNOWN)
DEFAULT_TABLE = "smsend_send_ledger"


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one recipient (or one once-only action) of a job.

    :param job_key: the task run the entry belongs to (dag/task/run/map index).
    :param item: the recipient in E.164, or the name of a once-only action.
    :param state: sending, accepted, rejected or unknown.
    :param request_id: the gateway's request id (or credit id...) when accepted.
    :param cost: credit charged, as an exact decimal string.
    :param error_code: the error's code when rejected or unknown.
    :param error: the error's text when rejected or unknown.
    :param retryable: True when a rejected entry may be sent again.
    :param updated_at: ISO timestamp (UTC) of the last change.
    """

    job_key: str
    item: str
    state: str
    request_id: str | None = None
    cost: str | None = None
    error_code: str | None = None
    error: str | None = None
    retryable: bool = False
    updated_at: str = ""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class Ledger(Protocol):
    """What the bulk sender needs from a ledger."""

    def load(self, job_key: str) -> dict[str, LedgerEntry]:
        """Return every entry of ``job_key`` by item."""
        ...

    def mark_sending(self, job_key: str, items: Iterable[str]) -> None:
        """Durably mark ``items`` as being sent (before any of their requests leaves)."""
        ...

    def record(self, entries: Iterable[LedgerEntry]) -> None:
        """Durably store outcomes."""
        ...


class MemoryLedger:
    """A ledger in memory: same contract as :class:`DbApiLedger`, no durability.

    Example::

        ledger = MemoryLedger()
        ledger.mark_sending("dag/task/run/-1", ["+393331234567"])
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], LedgerEntry] = {}
        self._lock = threading.Lock()

    def load(self, job_key: str) -> dict[str, LedgerEntry]:
        with self._lock:
            return {item: entry for (key, item), entry in self._rows.items() if key == job_key}

    def mark_sending(self, job_key: str, items: Iterable[str]) -> None:
        now = _now()
        with self._lock:
            for item in items:
                self._rows[(job_key, item)] = LedgerEntry(job_key, item, SENDING, updated_at=now)

    def record(self, entries: Iterable[LedgerEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._rows[(entry.job_key, entry.item)] = entry
