"""The send ledger: durable per-item progress, so a retried or doubled task never acts twice.

An item is a recipient of a bulk send or one once-only action (a credit assignment, an MMS, an
MNC chunk). Every change is a claim or a record made by one *owner* (one try of one task run, an
id of its own), and only the owner's changes land:

- **claim**: an item becomes ``sending`` for an owner only through a conditional write — an
  insert that does nothing if the row exists, or an update that succeeds only if the row is still
  as the owner read it (state, time and owner). Of two tries running at once, one wins each
  item; the other learns it did not and leaves it alone. A claim is committed before the
  request leaves.
- **record**: the outcome replaces the claim only where the row is still the owner's (an
  accepted outcome also replaces a claim someone else left unfinished: a request id received is
  never dropped).

What a later try does with each state is decided in one place,
:func:`airflow_provider_smsend.client.once_only.next_step` (see docs/gateway.md, "Once-only
actions"):

=============  ==========================================================================
ledger state   what a later try does
=============  ==========================================================================
accepted       not done again; the stored outcome (request id, cost) is reported
sending        the outcome is unknown (the request may have left): reported as unknown, or
unknown        resolved from the gateway's logs where a call allows it; not done again
               unless the user opts in (``resend_unknown``)
rejected       the gateway did nothing (a ``KO`` answer, a connection never established):
               done again
suppressed     not sent: the number was on the suppression list (no consent) when the try
               checked; a later try checks the list again (README, "Consent before sending")
capped         not sent: the number had had ``max_per_recipient`` sends of the campaign
               (accepted, sending or unknown) in the period; a later try counts again
=============  ==========================================================================

Every stored outcome carries its *campaign* (by default the job key): :meth:`Ledger.sent_counts`
answers "how many sends to each number under this campaign since then (accepted, sending or
unknown: those that reached or may have reached the phone)", for a frequency cap across runs.

The ledger is a table in any SQL database reachable through DB-API (:class:`airflow_provider_smsend.sql.ledger.DbApiLedger`);
:class:`MemoryLedger` keeps the same contract in memory, for tests and for users who opt out of
retry safety.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

SENDING = "sending"
ACCEPTED = "accepted"
REJECTED = "rejected"
UNKNOWN = "unknown"
SUPPRESSED = "suppressed"
CAPPED = "capped"
STATES = (SENDING, ACCEPTED, REJECTED, UNKNOWN, SUPPRESSED, CAPPED)
#: The states :meth:`Ledger.sent_counts` counts: the message reached the phone (``accepted``) or
#: may have (``sending``, ``unknown``: the request may have left), so a frequency cap errs on the
#: side of texting less.
COUNTED = (ACCEPTED, SENDING, UNKNOWN)
DEFAULT_TABLE = "smsend_send_ledger"


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one recipient (or one once-only action) of a job.

    :param job_key: the task run the entry belongs to (dag/task/run/map index).
    :param item: the recipient in E.164, or the name of a once-only action.
    :param state: one of :data:`STATES`: sending, accepted, rejected, unknown, suppressed, capped.
    :param request_id: the gateway's request id (or credit id...) when accepted.
    :param cost: credit charged, as an exact decimal string.
    :param error_code: the error's code when rejected or unknown.
    :param error: the error's text when rejected or unknown.
    :param retryable: True when a rejected entry may be sent again.
    :param updated_at: ISO timestamp (UTC) of the last change.
    :param owner: the id of the try that made the last change (see :func:`new_owner`).
    :param campaign: the campaign the outcome counts under (:meth:`Ledger.sent_counts`); None
        on entries made before campaigns were stored.
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
    owner: str | None = None
    campaign: str | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def stamp(moment: dt.datetime) -> str:
    """An aware time as the ledger stores ``updated_at`` (ISO 8601 in UTC, microseconds: sortable as text).

    :raises ValueError: a naive time.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"A ledger time must be timezone-aware, got {moment!r}.")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def new_owner(label: str = "") -> str:
    """A new owner id for one try: ``label`` (e.g. ``"try 2"``) and a random part, at most 64 characters."""
    head = f"{label[:40]} " if label else ""
    return f"{head}{uuid.uuid4().hex[:16]}"


class Ledger(Protocol):
    """What the once-only engine needs from a ledger."""

    def load(self, job_key: str) -> dict[str, LedgerEntry]:
        """Return every entry of ``job_key`` by item."""
        ...

    def claim(
        self,
        job_key: str,
        items: Iterable[str],
        *,
        owner: str,
        seen: Mapping[str, LedgerEntry] | None = None,
    ) -> set[str]:
        """Durably mark ``items`` ``sending`` for ``owner``; return the items it now owns.

        An item absent from ``seen`` is claimed only if it has no row yet; an item in ``seen``
        only if its row is still as seen (state, time and owner). Repeating a claim that was
        committed returns the same items.
        """
        ...

    def record(self, entries: Iterable[LedgerEntry], *, owner: str) -> list[LedgerEntry]:
        """Durably store outcomes on the rows ``owner`` holds; return the entries not stored.

        An accepted entry is also stored on a row left ``sending``/``unknown``/``rejected`` by
        another owner.
        """
        ...

    def holders(self, request_id: str) -> list[LedgerEntry]:
        """Every entry, of any job, that recorded ``request_id`` (for the ambiguity resolvers)."""
        ...

    def sent_counts(self, campaign: str, items: Iterable[str], since: dt.datetime) -> dict[str, int]:
        """How many entries each of ``items`` has under ``campaign`` in a :data:`COUNTED` state
        (``accepted``, ``sending``, ``unknown``), of any job, recorded at or after ``since``
        (aware); items without one are left out.

        A count, not a reservation: two jobs of one campaign running at once can both read a
        number under its cap and both text it (the cap is not atomic across concurrent jobs).
        """
        ...


class MemoryLedger:
    """A ledger in memory: same contract as :class:`DbApiLedger`, no durability.

    Example::

        ledger = MemoryLedger()
        ledger.claim("dag/task/run/-1", ["+393331234567"], owner=new_owner("try 1"))
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], LedgerEntry] = {}
        self._lock = threading.Lock()

    def load(self, job_key: str) -> dict[str, LedgerEntry]:
        with self._lock:
            return {item: entry for (key, item), entry in self._rows.items() if key == job_key}

    def claim(
        self,
        job_key: str,
        items: Iterable[str],
        *,
        owner: str,
        seen: Mapping[str, LedgerEntry] | None = None,
    ) -> set[str]:
        seen = seen or {}
        now = _now()
        claimed: set[str] = set()
        with self._lock:
            for item in items:
                row = self._rows.get((job_key, item))
                expected = seen.get(item)
                if row is not None and row.owner == owner and row.state == SENDING:
                    claimed.add(item)
                elif (row is None and expected is None) or (
                    row is not None and expected is not None and _same(row, expected)
                ):
                    # The row keeps its campaign, as DbApiLedger's claim does (sent_counts reads it).
                    self._rows[(job_key, item)] = LedgerEntry(
                        job_key,
                        item,
                        SENDING,
                        updated_at=now,
                        owner=owner,
                        campaign=row.campaign if row else None,
                    )
                    claimed.add(item)
        return claimed

    def record(self, entries: Iterable[LedgerEntry], *, owner: str) -> list[LedgerEntry]:
        lost: list[LedgerEntry] = []
        with self._lock:
            for entry in entries:
                key = (entry.job_key, entry.item)
                row = self._rows.get(key)
                if row is not None and (
                    row.owner == owner or (entry.state == ACCEPTED and row.state != ACCEPTED)
                ):
                    self._rows[key] = replace(entry, updated_at=entry.updated_at or _now(), owner=owner)
                else:
                    lost.append(entry)
        return lost

    def holders(self, request_id: str) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self._rows.values() if e.request_id == request_id]

    def sent_counts(self, campaign: str, items: Iterable[str], since: dt.datetime) -> dict[str, int]:
        wanted, start = set(items), stamp(since)
        counts: dict[str, int] = {}
        with self._lock:
            for entry in self._rows.values():
                if (
                    entry.state in COUNTED
                    and entry.campaign == campaign
                    and entry.item in wanted
                    and entry.updated_at >= start
                ):
                    counts[entry.item] = counts.get(entry.item, 0) + 1
        return counts


def try_number(owner: str | None) -> int | None:
    """The try number in an owner id made by ``new_owner("try N")``, or None."""
    parts = (owner or "").split()
    if len(parts) >= 2 and parts[0] == "try" and parts[1].isdigit():
        return int(parts[1])
    return None


def outcomes_frame(entries: Iterable[LedgerEntry], *, key: str, masked: bool = True) -> Any:
    """A job's ledger entries as a pandas DataFrame with exact Arrow types, one row per item.

    Columns: ``recipient`` (masked unless ``masked=False``), ``recipient_key`` (the number's
    :func:`~airflow_provider_smsend.client.numbers.pseudonym` under the secret ``key``: stable, for
    joins and upserts, not computable without the key), ``status``, ``cost`` (``decimal128(18, 4)``), ``error_code``,
    ``request_id``, ``try_number`` (from the owner id), ``updated_at`` (UTC).
    """
    from decimal import Decimal

    import pandas as pd
    import pyarrow as pa

    from airflow_provider_smsend.client.numbers import mask_number, pseudonym

    rows = list(entries)

    def moment(text: str) -> dt.datetime | None:
        if not text:
            return None
        value = dt.datetime.fromisoformat(text)
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)

    table = pa.table(
        {
            "recipient": pa.array([mask_number(e.item) if masked else e.item for e in rows], pa.string()),
            "recipient_key": pa.array([pseudonym(e.item, key) for e in rows], pa.string()),
            "status": pa.array([e.state for e in rows], pa.string()),
            "cost": pa.array(
                [Decimal(e.cost).quantize(Decimal("0.0001")) if e.cost else None for e in rows],
                pa.decimal128(18, 4),
            ),
            "error_code": pa.array([e.error_code for e in rows], pa.string()),
            "request_id": pa.array([e.request_id for e in rows], pa.string()),
            "try_number": pa.array([try_number(e.owner) for e in rows], pa.int32()),
            "updated_at": pa.array([moment(e.updated_at) for e in rows], pa.timestamp("us", tz="UTC")),
        }
    )
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _same(row: LedgerEntry, seen: LedgerEntry) -> bool:
    """True if a row is still as it was read (the condition of a claim over an existing row)."""
    return (row.state, row.updated_at, row.owner or "") == (seen.state, seen.updated_at, seen.owner or "")
