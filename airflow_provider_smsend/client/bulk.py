"""Bulk SMS sending: bounded concurrency over one keep-alive session, a rate limit, a ledger.

Every recipient ends in exactly one outcome:

- ``accepted``: the gateway queued it (cost and request id known);
- ``rejected``: it was not sent, or the gateway refused it, with a reason (invalid number,
  ``KO …`` text, connection never established);
- ``unknown``: the request may have reached the gateway but no answer came (timeout, broken
  connection, HTTP 5xx). It is never resent unless ``resend_unknown`` is set.

Each recipient is one item of the :mod:`once-only engine <airflow_provider_smsend.client.once_only>`:
claimed in the ledger right before its request leaves (at most ``concurrency`` at a time), its
outcome recorded as soon as it arrives, so a retried job resumes with the recipients not yet
accepted, and two tries running at once never both send to one recipient.

Example::

    sender = BulkSender(client, ledger=MemoryLedger(), job_key="campaign-42", concurrency=16)
    result = sender.run([BulkMessage("+393331234567", "Hi Anna"), BulkMessage("+393471234567", "Hi Bo")])
    result.totals  # {'accepted': 2, 'rejected': 0, 'unknown': 0}
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client import ledger as ledger_states
from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendError,
    SmSendInsufficientCreditError,
    SmSendTemporaryError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.ledger import LedgerEntry, MemoryLedger
from airflow_provider_smsend.client.numbers import mask_number, normalize_number
from airflow_provider_smsend.client.once_only import AMBIGUOUS, DONE, OnceOnly, next_step
from airflow_provider_smsend.client.validation import validate_sender

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_smsend.client.http import SendResult, SmSendClient
    from airflow_provider_smsend.client.ledger import Ledger
    from airflow_provider_smsend.client.validation import PreparedMessage

    #: What sends one validated message: ``SmSendClient.bulk_send_path()``.
    SendPrepared = Callable[[str, PreparedMessage], SendResult]

log = logging.getLogger(__name__)

#: What :meth:`BulkSender.plan` returns: outcomes known without sending (None where the message is
#: to be sent) and the messages to send as (input index, E.164 number, prepared message).
Plan = tuple["list[RecipientOutcome | None]", "list[tuple[int, str, PreparedMessage]]"]

ACCEPTED, REJECTED, UNKNOWN = ledger_states.ACCEPTED, ledger_states.REJECTED, ledger_states.UNKNOWN
#: Errors after which sending more is pointless: the whole job stops.
FATAL_ERRORS = (SmSendAuthError, SmSendInsufficientCreditError)


@dataclass(frozen=True)
class BulkMessage:
    """One message of a bulk send: a recipient and its (already personalised) text.

    :param number: the number as given (text or an integer; anything else is rejected in
        :meth:`BulkSender.plan`, never turned into digits).
    :param text: the message.
    """

    number: object
    text: str


@dataclass
class RecipientOutcome:
    """What happened to one recipient.

    :param recipient: the number in E.164 (as given, when it was invalid).
    :param status: ``accepted``, ``rejected`` or ``unknown``.
    :param cost: credit charged, as an exact decimal string (accepted only).
    :param request_id: the gateway's request id (accepted only).
    :param segments: SMS segments of the message.
    :param error_code: a stable short name of the reason (rejected/unknown).
    :param error: the reason, in English, with the gateway's text when there is one.
    :param previous_try: True when this outcome was read from the ledger of an earlier try.
    :param retryable: True when a rejected recipient may be sent again by a later try.
    """

    recipient: str
    status: str
    cost: str | None = None
    request_id: str | None = None
    segments: int | None = None
    error_code: str | None = None
    error: str | None = None
    previous_try: bool = False
    retryable: bool = False

    def to_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """A JSON-able dict (for XCom), the recipient masked unless ``masked=False``."""
        data = asdict(self)
        if masked:
            data["recipient"] = mask_number(self.recipient)
        return data


@dataclass
class BulkResult:
    """The outcome of a bulk send.

    :param outcomes: one per recipient, in input order.
    :param aborted: the fatal error that stopped the job early (auth, credit), if any.
    """

    outcomes: list[RecipientOutcome] = field(default_factory=list)
    aborted: str | None = None

    @property
    def totals(self) -> dict[str, int]:
        """Counts of accepted, rejected and unknown recipients, and the total."""
        counts = {ACCEPTED: 0, REJECTED: 0, UNKNOWN: 0}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        counts["total"] = len(self.outcomes)
        return counts

    @property
    def total_cost(self) -> Decimal:
        """Sum of the accepted messages' costs, exact."""
        return sum((Decimal(o.cost) for o in self.outcomes if o.cost is not None), Decimal("0"))

    @property
    def request_ids(self) -> list[str]:
        """Distinct request ids of the accepted messages, in order."""
        return list(dict.fromkeys(o.request_id for o in self.outcomes if o.request_id))

    def failure_ratio(self) -> float:
        """Share of recipients not accepted (0.0 with no recipient)."""
        total = len(self.outcomes)
        return 0.0 if total == 0 else (total - self.totals[ACCEPTED]) / total

    def this_try(self) -> dict[str, Any]:
        """What this run did itself (outcomes not read from an earlier try's ledger entries):
        counts of accepted, rejected and unknown, and the cost, as an exact decimal string."""
        now = [o for o in self.outcomes if not o.previous_try]
        counts: dict[str, Any] = {ACCEPTED: 0, REJECTED: 0, UNKNOWN: 0}
        for outcome in now:
            counts[outcome.status] += 1
        counts["cost"] = str(sum((Decimal(o.cost) for o in now if o.cost is not None), Decimal("0")))
        return counts

    def to_dict(
        self, *, include_outcomes: bool = False, masked: bool = True, where: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A small JSON-able summary (for XCom), the same size for 1 or 100,000 recipients.

        :param include_outcomes: add ``outcomes_list``, one dict per recipient.
        :param masked: mask the recipients of ``outcomes_list`` (``False``: full numbers).
        :param where: where the per-recipient outcomes are kept (the ledger), under ``outcomes``.
        """
        data: dict[str, Any] = {
            "totals": self.totals,
            "total_cost": str(self.total_cost),
            "this_try": self.this_try(),
            "request_count": len(self.request_ids),
            "outcomes": where,
            "aborted": self.aborted,
        }
        if include_outcomes:
            data["outcomes_list"] = [o.to_dict(masked=masked) for o in self.outcomes]
        return data


class RateLimiter:
    """Spread calls evenly at ``rate`` per second across threads (a reservation schedule).

    :param rate: calls per second.
    :param clock: a monotonic clock; ``sleep`` waits on the same time scale (both for tests).
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise SmSendValidationError(f"rate_limit must be positive messages/second, got {rate!r}.")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until this caller's slot comes."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - self._clock()
        if delay > 0:
            self._sleep(delay)


class BulkSender:
    """Send many SMS with bounded concurrency, an optional rate limit and a ledger.

    :param client: the HTTP client (one keep-alive session shared by the worker threads).
    :param ledger: where progress is recorded; a :class:`~.ledger.MemoryLedger` if None.
    :param job_key: the ledger key of this job (stable across retries of the same task run).
    :param sender: the sender of every message (default: the client's default sender).
    :param quality: quality code (default: the client's).
    :param operation: fixed operation, or None to choose per text.
    :param url: link of WAPPUSH messages.
    :param concurrency: requests in flight at once.
    :param rate_limit: messages per second at most, or None.
    :param chunk_size: how often ``on_chunk`` reports progress (every ``chunk_size`` outcomes).
        The ledger marks a recipient ``sending`` only when a request is free for it (one commit
        for all the recipients that start together), so a killed process leaves at most
        ``concurrency`` recipients unknown.
    :param resend_unknown: resend recipients whose earlier outcome is unknown (may duplicate).
    :param queue_retries: extra attempts after ``KO Impossibile accodare…`` (nothing was queued).
    :param queue_retry_wait: first wait before such an attempt, doubled each time (seconds).
    :param on_chunk: called after each chunk with ``(done, total, result_so_far)`` (for logs).
    :param allow_landlines: send to landline numbers too (refused as ``invalid_number`` by default).
    :param owner: this try's owner id in the ledger (default: a new one); two senders with
        different owners on one job never both send to a recipient.
    """

    def __init__(
        self,
        client: SmSendClient,
        *,
        ledger: Ledger | None = None,
        job_key: str = "bulk",
        sender: str | None = None,
        quality: str | None = None,
        operation: str | None = None,
        url: str | None = None,
        concurrency: int = 8,
        rate_limit: float | None = None,
        chunk_size: int = 100,
        resend_unknown: bool = False,
        queue_retries: int = 3,
        queue_retry_wait: float = 1.0,
        on_chunk: Callable[[int, int, BulkResult], None] | None = None,
        owner: str | None = None,
        allow_landlines: bool = False,
    ) -> None:
        if concurrency < 1 or chunk_size < 1:
            raise SmSendValidationError("concurrency and chunk_size must be >= 1.")
        self.client = client
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.job_key = job_key
        self.allow_landlines = allow_landlines
        self.once = OnceOnly(self.ledger, job_key, what="SMS", owner=owner)
        self.sender = validate_sender(sender or client.default_sender, region=client.default_region)
        self.quality = quality or client.default_quality
        self.operation = operation
        self.url = url
        self.concurrency = concurrency
        self.rate = RateLimiter(rate_limit) if rate_limit else None
        self.chunk_size = chunk_size
        self.resend_unknown = resend_unknown
        self.queue_retries = queue_retries
        self.queue_retry_wait = queue_retry_wait
        self.on_chunk = on_chunk
        self._stop = threading.Event()
        self._fatal: SmSendError | None = None

    # ----------------------------------------------------------------- planning

    def plan(self, messages: Sequence[BulkMessage]) -> Plan:
        """Validate every message; return outcomes known without sending, and what to send.

        Nothing is sent here. Invalid numbers and texts become ``rejected`` outcomes; a recipient
        repeated in the list is rejected as ``duplicate_recipient`` after its first occurrence.
        """
        outcomes: list[RecipientOutcome | None] = [None] * len(messages)
        to_send: list[tuple[int, str, PreparedMessage]] = []
        seen: set[str] = set()
        for i, message in enumerate(messages):
            try:
                number = normalize_number(
                    message.number, region=self.client.default_region, allow_landlines=self.allow_landlines
                )
            except SmSendValidationError as exc:
                outcomes[i] = RecipientOutcome(
                    str(message.number), REJECTED, error_code="invalid_number", error=str(exc)
                )
                continue
            if number in seen:
                outcomes[i] = RecipientOutcome(
                    number,
                    REJECTED,
                    error_code="duplicate_recipient",
                    error="Recipient repeated in the list; sent once.",
                )
                continue
            seen.add(number)
            try:
                prepared = self.client.prepare(
                    message.text, operation=self.operation, quality=self.quality, url=self.url
                )
            except SmSendValidationError as exc:
                outcomes[i] = RecipientOutcome(number, REJECTED, error_code="invalid_text", error=str(exc))
                continue
            to_send.append((i, number, prepared))
        return outcomes, to_send

    def _from_ledger(self, entry: LedgerEntry, segments: int) -> RecipientOutcome | None:
        """The outcome an earlier try left (:func:`~.once_only.next_step`), or None if the recipient
        is to be sent (again): no entry, ``rejected``, or ambiguous with ``resend_unknown``."""
        step = next_step(entry)
        if step == DONE:
            return RecipientOutcome(
                entry.item,
                ACCEPTED,
                cost=entry.cost,
                request_id=entry.request_id,
                segments=segments,
                previous_try=True,
            )
        if step == AMBIGUOUS and not self.resend_unknown:
            return RecipientOutcome(
                entry.item,
                UNKNOWN,
                segments=segments,
                error_code=entry.error_code or "interrupted",
                error=entry.error
                or "An earlier try was interrupted while this message was being sent; it may have been delivered. "
                "Not resent (set resend_unknown=True to resend).",
                previous_try=True,
            )
        return None

    # ----------------------------------------------------------------- sending

    def _send_one(self, send: SendPrepared, number: str, prepared: PreparedMessage) -> LedgerEntry:
        """Send one message with ``send`` (the client's bulk send path); never raises, returns its ledger entry."""
        attempt = 0
        while True:
            if self._stop.is_set():
                return LedgerEntry(
                    self.job_key,
                    number,
                    REJECTED,
                    error_code="aborted",
                    error="Not sent: the job stopped early.",
                    retryable=True,
                )
            if self.rate is not None:
                self.rate.acquire()
            try:
                # Number, text and sender were validated once, in plan() and the constructor.
                result = send(number, prepared)
            except SmSendTemporaryError as exc:
                # KO Impossibile accodare: the gateway queued nothing, so another attempt is safe.
                if attempt < self.queue_retries and not self._stop.is_set():
                    time.sleep(self.queue_retry_wait * (2**attempt))
                    attempt += 1
                    continue
                return self.once.failure(number, exc)
            except Exception as exc:
                if isinstance(exc, FATAL_ERRORS):
                    self._fatal = self._fatal or exc
                    self._stop.set()
                elif not isinstance(exc, SmSendError):  # a bug or an unexpected library error
                    log.exception("Unexpected error sending to %s", mask_number(number))
                # rejected (nothing happened) or unknown (it may have): the engine's one rule
                return self.once.failure(number, exc)
            return LedgerEntry(
                self.job_key, number, ACCEPTED, request_id=result.request_id, cost=str(result.cost)
            )

    def run(self, messages: Sequence[BulkMessage], *, plan: Plan | None = None) -> BulkResult:
        """Send ``messages``; returns one outcome per message, in order. Never raises for one recipient.

        :param plan: the result of :meth:`plan` for the same messages, when the caller already has it.
        """
        outcomes, to_send = plan if plan is not None else self.plan(messages)
        outcomes = list(outcomes)
        previous = self.once.entries if to_send else {}
        pending: list[tuple[int, str, PreparedMessage]] = []
        for index, number, prepared in to_send:
            entry = previous.get(number)
            known = self._from_ledger(entry, prepared.segments) if entry is not None else None
            if known is not None:
                outcomes[index] = known
            else:
                pending.append((index, number, prepared))
        result = BulkResult()
        self.client.ensure_pool(self.concurrency)
        send = self.client.bulk_send_path(
            sender=self.sender, quality=self.quality, url=self.url, return_id=True
        )
        total = len(pending)
        done = 0
        segments = {number: prepared.segments for _, number, prepared in pending}
        index_of = {number: index for index, number, _ in pending}

        def record(finished: list[LedgerEntry]) -> None:
            self.once.record(finished)
            for entry in finished:
                outcomes[index_of[entry.item]] = _outcome(entry, segments[entry.item])

        # Each send's future lands here when it ends (add_done_callback): the loop below takes
        # them as they come instead of waiting on the whole in-flight set each time.
        ended: queue.SimpleQueue[Future[LedgerEntry]] = queue.SimpleQueue()
        live: set[Future[LedgerEntry]] = set()  # submitted, outcome not taken yet
        #: Outcomes taken and not recorded yet: kept until the ledger has them, so that an
        #: interruption (SIGTERM) between taking and recording loses none (recording is idempotent).
        unrecorded: list[LedgerEntry] = []

        def take(future: Future[LedgerEntry]) -> None:
            if future in live:
                unrecorded.append(future.result())
                live.discard(future)

        def flush() -> None:
            nonlocal done
            if unrecorded:
                record(unrecorded)
                done += len(unrecorded)
                unrecorded.clear()

        def collect() -> None:
            """Record the sends that ended: wait for one, then take every other one already over."""
            take(ended.get())
            while True:
                try:
                    take(ended.get_nowait())
                except queue.Empty:
                    break
            flush()

        batch: list[tuple[int, str, PreparedMessage]] = []
        submitted = 0
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="smsend-bulk") as pool:
            queued = iter(pending)
            try:
                while not self._stop.is_set():
                    # Mark (one commit) only as many recipients as there are free requests: a
                    # recipient is `sending` only while its own request is about to leave or in
                    # flight, so a killed process leaves at most `concurrency` of them unknown.
                    batch, submitted = list(itertools.islice(queued, self.concurrency - len(live))), 0
                    if not batch:
                        break
                    numbers = [number for _, number, _ in batch]
                    mine = self.once.claim(numbers, seen={n: previous[n] for n in numbers if n in previous})
                    for index, number, prepared in batch:
                        if number not in mine:  # another try of this job claimed it first: not ours to send
                            outcomes[index] = RecipientOutcome(
                                number,
                                UNKNOWN,
                                segments=prepared.segments,
                                error_code="claimed_by_another_try",
                                error="Another try of this task holds this recipient (two tries running at once); "
                                "its outcome is in the ledger. Not sent by this try.",
                            )
                    batch = [b for b in batch if b[1] in mine]
                    if not batch and not live:
                        continue
                    for _, number, prepared in batch:
                        # counted before it is submitted: interrupted in between, it stays `sending`
                        # (unknown, never resent) rather than be taken for one that did not leave
                        submitted += 1
                        future = pool.submit(self._send_one, send, number, prepared)
                        live.add(future)
                        future.add_done_callback(ended.put)
                    batch = []
                    before = done
                    collect()
                    if self.on_chunk is not None and done // self.chunk_size > before // self.chunk_size:
                        self.on_chunk(done, total, _partial(outcomes, result))
                while live:
                    collect()
            except BaseException:
                # Airflow's SIGTERM (or a ledger error): start no new request, let those in flight
                # end (each within its timeout) and record every outcome before leaving. Those of
                # the batch being marked that were not submitted provably did not leave.
                self._stop.set()
                log.warning("Bulk send stopping: no new request; waiting for %d in flight", len(live))
                unrecorded.extend(
                    LedgerEntry(self.job_key, number, REJECTED, error_code="aborted",
                                error="Not sent: the job stopped before this request left.", retryable=True)
                    for _, number, _ in batch[submitted:]
                )  # fmt: skip
                for future in wait(list(live)).done:
                    take(future)
                flush()
                raise
        for index, number, prepared in pending:
            if outcomes[index] is None:  # never submitted: the job stopped early
                outcomes[index] = RecipientOutcome(
                    number,
                    REJECTED,
                    segments=prepared.segments,
                    error_code="aborted",
                    error="Not sent: the job stopped early.",
                    retryable=True,
                )
        result.outcomes = [o for o in outcomes if o is not None]
        if self._fatal is not None:
            result.aborted = str(self._fatal)
        if self.on_chunk is not None:
            self.on_chunk(total, total, result)
        return result


def _outcome(entry: LedgerEntry, segments: int) -> RecipientOutcome:
    return RecipientOutcome(
        entry.item,
        entry.state,
        cost=entry.cost,
        request_id=entry.request_id,
        segments=segments,
        error_code=entry.error_code,
        error=entry.error,
        retryable=entry.retryable,
    )


def _partial(outcomes: list[RecipientOutcome | None], result: BulkResult) -> BulkResult:
    return BulkResult(outcomes=[o for o in outcomes if o is not None], aborted=result.aborted)
