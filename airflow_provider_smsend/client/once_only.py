"""The once-only engine: every call that spends money or changes state is made at most once per job.

One engine and one set of rules for every such call — each SMS of a bulk send, an MMS, an MNC
chunk, a client, a credit, a reception share code (docs/gateway.md, "Once-only actions"):

1. The job's ledger entries are read once (:attr:`OnceOnly.entries`); :func:`next_step` decides
   per item: ``accepted`` is done (the stored outcome is reported), ``sending``/``unknown`` is
   ambiguous, ``rejected``, ``suppressed``, ``capped`` or no entry is to do (a suppressed or capped
   item is checked again: the caller's rules may skip it again, :meth:`OnceOnly.skip`).
2. An item to do is **claimed** (a conditional write, committed) right before its request leaves;
   an item another try claimed first is left alone (:class:`SmSendClaimedError` for one action).
3. The outcome is **recorded** as soon as it arrives; a failed call is classified once, by
   :func:`classify`: a ``KO`` answer or a request that provably never left is ``rejected``
   (nothing happened, a later try does it), anything else ``unknown``.
4. An ambiguous item is resolved from the gateway's own logs where a call allows it (a credit in
   userlog-get); unresolved, it is not done again (:class:`SmSendAmbiguousOutcomeError` for one
   action, an ``unknown`` outcome for a recipient) unless the caller opts in (``resend_unknown``).

Airflow-free: operators translate the typed errors once, at their boundary.

Example::

    once = OnceOnly(ledger, "onboarding/credit/run-1/-1", what="credit assignment")
    outcome = once.run("credit_add:1001:1:5.0000", lambda: (str(client.credit_add(1001, 1, amount)), "5.0000"))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from airflow_provider_smsend.client.errors import (
    SmSendAmbiguousOutcomeError,
    SmSendClaimedError,
    SmSendError,
    SmSendGatewayError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.ledger import (
    ACCEPTED,
    CAPPED,
    REJECTED,
    SUPPRESSED,
    UNKNOWN,
    LedgerEntry,
    MemoryLedger,
    new_owner,
)
from airflow_provider_smsend.client.numbers import mask_number

if TYPE_CHECKING:
    from airflow_provider_smsend.client.ledger import Ledger
    from airflow_provider_smsend.client.retry import RetryPolicy

log = logging.getLogger(__name__)

#: What :func:`next_step` answers.
DO, DONE, AMBIGUOUS = "do", "done", "ambiguous"
#: States in which provably nothing was done: a later try does the item (or skips it again).
_NOTHING_DONE = frozenset({REJECTED, SUPPRESSED, CAPPED})
#: The states :meth:`OnceOnly.skip` records: items skipped by a rule before any request.
SKIP_STATES = frozenset({SUPPRESSED, CAPPED})


@dataclass(frozen=True)
class Outcome:
    """What a once-only action produced.

    :param value: the gateway's id (request id, credit id, client id, share codes...).
    :param cost: the credit charged, as an exact decimal string, when known.
    :param resumed: True when an earlier try did the action (nothing was sent now).
    """

    value: str | None
    cost: str | None = None
    resumed: bool = False


def next_step(entry: LedgerEntry | None) -> str:
    """The one rule for what a try does with an item, given what the ledger holds for it.

    :returns: :data:`DONE` (accepted), :data:`AMBIGUOUS` (``sending`` or ``unknown``: the request
        may have left) or :data:`DO` (no entry; ``rejected``: the gateway did nothing;
        ``suppressed``/``capped``: skipped before any request, to be checked again).
    """
    if entry is None or entry.state in _NOTHING_DONE:
        return DO
    if entry.state == ACCEPTED:
        return DONE
    return AMBIGUOUS


def classify(exc: BaseException) -> tuple[str, bool]:
    """The ledger state a failed call leaves, and whether the failure may pass: ``(state, retryable)``.

    ``rejected`` when the gateway provably did nothing — a ``KO`` answer, input refused before any
    request, a request that never left (connection refused, TLS handshake failed); ``unknown``
    otherwise (a timeout after the request left, an HTTP 5xx, an answer that cannot be read, a bug).
    """
    if isinstance(exc, SmSendGatewayError | SmSendValidationError):
        return REJECTED, exc.retryable
    if isinstance(exc, SmSendTransportError) and not exc.request_sent:
        return REJECTED, exc.retryable
    return UNKNOWN, False


def digest(parts: Iterable[str | bytes]) -> str:
    """A short, stable content hash (16 hex digits of SHA-256) for ledger item names."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        sha.update(b"\x1f")
    return sha.hexdigest()[:16]


def mark_time(entry: LedgerEntry) -> dt.datetime:
    """When the entry was marked ``sending`` (aware, UTC), floored to the second.

    The gateway's logs have whole seconds; flooring keeps a same-second operation "at/after".
    """
    moment = dt.datetime.fromisoformat(entry.updated_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def attempt_window(entry: LedgerEntry, budget: float) -> tuple[dt.datetime, dt.datetime]:
    """The span in which an ambiguous attempt can have acted: from its mark to the end of its call.

    :param budget: the longest the call can have taken, in seconds (the client's
        :func:`write_budget`); one second is added for the gateway's whole-second log times.
    """
    start = mark_time(entry)
    return start, start + dt.timedelta(seconds=budget + 1)


def write_budget(timeout: tuple[float, float], policy: RetryPolicy) -> float:
    """The longest a money call can take, in seconds: every attempt's connect and read timeouts
    plus the backoff waits between them (a write is tried again only when it never left)."""
    connect, read = timeout
    waits = sum(min(policy.max_wait, policy.initial_wait * 2**n) for n in range(policy.attempts - 1))
    return policy.attempts * (connect + read) + waits


_NUMBER = re.compile(r"\+?\d{7,}")


def shown(item: str) -> str:
    """A ledger item for messages and logs: phone numbers in it masked (``recv_add:1001:+39333****567:1``)."""
    return _NUMBER.sub(lambda m: mask_number(m.group(0)), item)


def short_error(exc: BaseException) -> str:
    """An error's text for the ledger (500 characters at most)."""
    text = str(exc) if isinstance(exc, SmSendError) else f"{type(exc).__name__}: {exc}"
    return text[:500]


class OnceOnly:
    """Do gateway actions at most once per job, through a ledger, for one owner (one try).

    :param ledger: the ledger; a :class:`MemoryLedger` gives no safety across tries.
    :param job_key: the job's key (by default the task run's ``dag/task/run/map_index``).
    :param what: a human name of the action for messages (``"credit assignment"``).
    :param owner: this try's owner id (:func:`~airflow_provider_smsend.client.ledger.new_owner`).
    :param campaign: the campaign every recorded outcome counts under (default: the job key), for
        :meth:`~airflow_provider_smsend.client.ledger.Ledger.sent_counts`.
    """

    def __init__(
        self,
        ledger: Ledger | None,
        job_key: str,
        *,
        what: str,
        owner: str | None = None,
        campaign: str | None = None,
    ) -> None:
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.job_key = job_key
        self.what = what
        self.owner = owner or new_owner()
        self.campaign = campaign or job_key
        self._entries: dict[str, LedgerEntry] | None = None

    @property
    def entries(self) -> dict[str, LedgerEntry]:
        """The job's ledger entries as this try found them, read once."""
        if self._entries is None:
            self._entries = self.ledger.load(self.job_key)
        return self._entries

    def previous(self, item: str) -> LedgerEntry | None:
        """The entry an earlier try left for ``item``, if any."""
        return self.entries.get(item)

    def claim(self, items: Iterable[str], *, seen: Mapping[str, LedgerEntry] | None = None) -> set[str]:
        """Claim ``items`` (committed) for this try; return those it owns (see :meth:`Ledger.claim`).

        :param seen: each item's entry as read (default: :attr:`entries`); an item claimed
            between that read and now by another try is not returned.
        """
        return self.ledger.claim(
            self.job_key, items, owner=self.owner, seen=self.entries if seen is None else seen
        )

    def record(self, entries: Iterable[LedgerEntry]) -> None:
        """Record outcomes on the items this try holds; an outcome another try overtook is logged."""
        stamped = (e if e.campaign else replace(e, campaign=self.campaign) for e in entries)
        for entry in self.ledger.record(stamped, owner=self.owner):
            # An outcome that spent nothing (rejected) is no loss; an accepted or unknown one is worth a word.
            log.log(
                logging.DEBUG if entry.state == REJECTED else logging.WARNING,
                "Another try of this job changed %s (%s) before this try recorded its outcome %s%s.",
                shown(entry.item),
                self.what,
                entry.state,
                f" (request id {entry.request_id})" if entry.request_id else "",
            )

    def skip(self, items: Mapping[str, tuple[str, str, str]]) -> set[str]:
        """Record items skipped by a rule before any request: ``{item: (state, error_code, error)}``.

        ``state`` is ``suppressed`` or ``capped``. Each item is claimed as read, then recorded in
        one write each; an item another try holds is left alone (not returned). Return the items
        recorded as skipped by this try. (A try killed between the claim and the record leaves
        the item ``sending``: a later try reports it unknown and does not send it.)

        :raises ValueError: a state that is not a skip state (nothing is written).
        """
        wrong = {state for state, _, _ in items.values()} - SKIP_STATES
        if wrong:
            raise ValueError(f"Items are skipped as {sorted(SKIP_STATES)}, got {sorted(wrong)}.")
        if not items:
            return set()
        mine = self.claim(items, seen={i: self.entries[i] for i in items if i in self.entries})
        self.record(
            LedgerEntry(self.job_key, item, state, error_code=code, error=error)
            for item, (state, code, error) in items.items()
            if item in mine
        )
        return mine

    def failure(self, item: str, exc: BaseException, *, marked_at: str = "") -> LedgerEntry:
        """The entry a failed call leaves (:func:`classify`); an unknown one keeps its mark's time."""
        state, retryable = classify(exc)
        return LedgerEntry(
            self.job_key,
            item,
            state,
            error_code=getattr(exc, "code", type(exc).__name__),
            error=short_error(exc),
            retryable=retryable,
            updated_at=marked_at if state == UNKNOWN else "",
        )

    def run(
        self,
        item: str,
        call: Callable[[], tuple[str | None, str | None]],
        *,
        resend_unknown: bool = False,
        resolve: Callable[[LedgerEntry], tuple[str | None, str | None] | None] | None = None,
        advice: str = "",
        repeat_reason: str = "resend_unknown=True",
    ) -> Outcome:
        """Do ``call`` once for ``item``; ``call`` returns ``(value, cost)``.

        :param resend_unknown: on an ambiguous earlier try that ``resolve`` cannot settle, call
            again anyway (may act twice).
        :param resolve: given the ambiguous entry, return ``(value, cost)`` if the gateway shows
            the action happened (and no one else can have done it), None if it does not.
        :param advice: what the user should check, appended to the ambiguity message.
        :param repeat_reason: why repeating is acceptable, logged when ``resend_unknown`` is used.
        :raises SmSendAmbiguousOutcomeError: an unresolved ambiguity without ``resend_unknown``.
        :raises SmSendClaimedError: another try holds the item.
        :raises SmSendError: the call's own error, after recording it.
        """
        entry = self.previous(item)
        step = next_step(entry)
        if step == DONE and entry is not None:
            log.info(
                "The %s was already done by an earlier try (%s): not doing it again.",
                self.what,
                entry.request_id,
            )
            return Outcome(entry.request_id, entry.cost, resumed=True)
        if step == AMBIGUOUS and entry is not None:
            found = resolve(entry) if resolve is not None else None
            if found is not None:
                value, cost = found
                self._hold(item, entry)
                log.warning(
                    "An earlier try's %s had an unknown outcome; the gateway shows it was done (%s): "
                    "recording it as accepted, not doing it again.",
                    self.what,
                    value,
                )
                self.record([LedgerEntry(self.job_key, item, ACCEPTED, request_id=value, cost=cost)])
                return Outcome(value, cost, resumed=True)
            if not resend_unknown:
                raise SmSendAmbiguousOutcomeError(self.ambiguity_message(entry, advice))
            log.warning(
                "An earlier try's %s had an unknown outcome (%s); doing it again because %s.",
                self.what,
                entry.state,
                repeat_reason,
            )
        marked_at = self._hold(item, entry)
        try:
            value, cost = call()
        except Exception as exc:
            self.record([self.failure(item, exc, marked_at=marked_at)])
            raise
        self.record([LedgerEntry(self.job_key, item, ACCEPTED, request_id=value, cost=cost)])
        if self._entries is not None:
            self._entries.pop(item, None)
        return Outcome(value, cost)

    def _hold(self, item: str, entry: LedgerEntry | None) -> str:
        """Claim ``item`` as it was read; return the claim's time. Another try's claim wins."""
        marked_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        if item not in self.claim([item], seen={item: entry} if entry is not None else {}):
            raise SmSendClaimedError(
                f"Another try of this task holds the {self.what} (ledger job {self.job_key!r}, item "
                f"{shown(item)!r}): two tries are running at once. This try does nothing; a later "
                "try finds the other's outcome in the ledger."
            )
        return marked_at

    def ambiguity_message(self, entry: LedgerEntry, advice: str = "") -> str:
        """The actionable message of an unresolved ambiguity."""
        reason = f" ({entry.error})" if entry.error else ""
        return (
            f"An earlier try of this task started a {self.what} at {entry.updated_at} and its outcome is "
            f"unknown{reason}: the gateway may have done it. It is NOT done again automatically, to avoid doing "
            f"it twice. {advice + ' ' if advice else ''}If you are sure it did not happen, set "
            f"resend_unknown=True and clear the task (ledger job {self.job_key!r}, item {shown(entry.item)!r})."
        ).replace("  ", " ")
