"""Once-only gateway actions across task tries, through the send ledger.

The MMS, MNC and back-office operators spend money or change state with one call each (or one
per chunk). Before a call leaves, its ledger item is marked ``sending`` (committed); the answer
replaces the mark. A later try of the same task run (same :func:`~.common.job_key`) reads the
ledger first:

=============  ============================================================================
ledger state   what the next try does
=============  ============================================================================
accepted       nothing is sent; the stored outcome (id, cost) is returned
sending        outcome unknown (the worker died after the mark): the operator's resolver is
unknown        asked (e.g. credit-add looks in userlog-get); unresolved, the task fails with
               an actionable message, unless ``resend_unknown=True``
rejected       the gateway answered KO: nothing was done, so the call is made again
=============  ============================================================================

Airflow-free on purpose except for the exception raised on an unresolved ambiguity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_smsend.client.errors import (
    SmSendError,
    SmSendGatewayError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.ledger import (
    ACCEPTED,
    REJECTED,
    SENDING,
    UNKNOWN,
    LedgerEntry,
    MemoryLedger,
)

if TYPE_CHECKING:
    from airflow_provider_smsend.client.ledger import Ledger

log = logging.getLogger(__name__)


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


def digest(parts: Iterable[str | bytes]) -> str:
    """A short, stable content hash (16 hex digits of SHA-256) for ledger item names."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        sha.update(b"\x1f")
    return sha.hexdigest()[:16]


def may_have_happened(exc: BaseException) -> bool:
    """True if the call that raised ``exc`` may have been carried out by the gateway.

    A ``KO`` answer, a validation error and a connection never established prove it was not.
    """
    if isinstance(exc, SmSendGatewayError | SmSendValidationError):
        return False
    if isinstance(exc, SmSendTransportError):
        return exc.request_sent
    return True


def mark_time(entry: LedgerEntry) -> dt.datetime:
    """When the entry was marked ``sending`` (aware, UTC), floored to the second.

    The gateway's logs have whole seconds; flooring keeps a same-second operation "at/after".
    """
    moment = dt.datetime.fromisoformat(entry.updated_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(microsecond=0)


class OnceOnly:
    """Run gateway actions at most once per task run, using a ledger.

    :param ledger: the ledger; a :class:`MemoryLedger` gives no safety across tries.
    :param job_key: the task run's key (``dag/task/run/map_index``).
    :param what: a human name of the action for messages (``"credit assignment"``).
    """

    def __init__(self, ledger: Ledger | None, job_key: str, *, what: str) -> None:
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.job_key = job_key
        self.what = what
        self._entries: dict[str, LedgerEntry] | None = None

    @property
    def entries(self) -> dict[str, LedgerEntry]:
        """The job's ledger entries, read once."""
        if self._entries is None:
            self._entries = self.ledger.load(self.job_key)
        return self._entries

    def previous(self, item: str) -> LedgerEntry | None:
        """The entry an earlier try left for ``item``, if any."""
        return self.entries.get(item)

    def is_ambiguous(self, item: str) -> bool:
        """True if an earlier try left ``item`` in flight (``sending``) or ``unknown``."""
        entry = self.previous(item)
        return entry is not None and entry.state in (SENDING, UNKNOWN)

    def accept(self, item: str, value: str | None, cost: str | None = None) -> None:
        """Record ``item`` as accepted (e.g. after resolving an ambiguous entry)."""
        self.ledger.record([LedgerEntry(self.job_key, item, ACCEPTED, request_id=value, cost=cost)])

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
            the action happened, None if it shows nothing.
        :param advice: what the user should check, appended to the ambiguity message.
        :param repeat_reason: why repeating is acceptable, logged when ``resend_unknown`` is used.
        :raises AirflowFailException: on an unresolved ambiguity without ``resend_unknown``.
        :raises SmSendError: the call's own error, after recording it.
        """
        entry = self.previous(item)
        if entry is not None and entry.state == ACCEPTED:
            log.info(
                "The %s was already done by an earlier try (%s): not doing it again.",
                self.what,
                entry.request_id,
            )
            return Outcome(entry.request_id, entry.cost, resumed=True)
        if entry is not None and entry.state in (SENDING, UNKNOWN):
            if resolve is not None:
                found = resolve(entry)
                if found is not None:
                    value, cost = found
                    log.warning(
                        "An earlier try's %s had an unknown outcome; the gateway shows it was done (%s): "
                        "recording it as accepted, not doing it again.",
                        self.what,
                        value,
                    )
                    self.accept(item, value, cost)
                    return Outcome(value, cost, resumed=True)
            if not resend_unknown:
                raise AirflowFailException(self.ambiguity_message(entry, advice))
            log.warning(
                "An earlier try's %s had an unknown outcome (%s); doing it again because %s.",
                self.what,
                entry.state,
                repeat_reason,
            )
        return self._call(item, call)

    def ambiguity_message(self, entry: LedgerEntry, advice: str = "") -> str:
        """The actionable message of an unresolved ambiguity."""
        reason = f" ({entry.error})" if entry.error else ""
        return (
            f"An earlier try of this task started a {self.what} at {entry.updated_at} and its outcome is "
            f"unknown{reason}: the gateway may have done it. It is NOT done again automatically, to avoid doing "
            f"it twice. {advice + ' ' if advice else ''}If you are sure it did not happen, set "
            f"resend_unknown=True and clear the task (ledger job {self.job_key!r}, item {entry.item!r})."
        ).replace("  ", " ")

    def _call(self, item: str, call: Callable[[], tuple[str | None, str | None]]) -> Outcome:
        marked_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        self.ledger.mark_sending(self.job_key, [item])
        try:
            value, cost = call()
        except Exception as exc:
            unknown = may_have_happened(exc)
            self.ledger.record(
                [
                    LedgerEntry(
                        self.job_key,
                        item,
                        UNKNOWN if unknown else REJECTED,
                        error_code=getattr(exc, "code", type(exc).__name__),
                        error=_short(exc),
                        retryable=bool(getattr(exc, "retryable", False)) and not unknown,
                        # keep the mark's time: the ambiguity resolver searches from it
                        updated_at=marked_at if unknown else "",
                    )
                ]
            )
            raise
        self.ledger.record([LedgerEntry(self.job_key, item, ACCEPTED, request_id=value, cost=cost)])
        if self._entries is not None:
            self._entries.pop(item, None)
        return Outcome(value, cost)


def _short(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, SmSendError) else f"{type(exc).__name__}: {exc}"
    return text[:500]


@contextmanager
def gateway_errors() -> Iterator[None]:
    """Translate SmSend errors for Airflow: non-retryable ones fail the task without retries."""
    from airflow_provider_smsend.operators.common import airflow_error

    try:
        yield
    except SmSendError as exc:
        translated = airflow_error(exc)
        if translated is exc:
            raise
        raise translated from exc
