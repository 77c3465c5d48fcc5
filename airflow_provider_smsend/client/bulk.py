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

Cost (docs/gateway.md, "Cost"): :func:`estimate` describes what a campaign will cost before
anything is sent (messages, segments, encodings, the characters that forced UCS-2), at a price
per segment given or read from credit.php (:func:`price_from_credit`); ``max_cost`` refuses a
send whose estimate exceeds it and starts no request that would take the job's spend past it.

Example::

    sender = BulkSender(client, ledger=MemoryLedger(), job_key="campaign-42", concurrency=16)
    result = sender.run([BulkMessage("+393331234567", "Hi Anna"), BulkMessage("+393471234567", "Hi Bo")])
    result.totals  # {'accepted': 2, 'rejected': 0, 'unknown': 0}
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client import ledger as ledger_states
from airflow_provider_smsend.client.encoding import non_gsm_characters, segments_if_gsm
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
    from collections.abc import Callable, Iterable, Sequence

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
#: Recipients skipped before sending (on the suppression list; over the frequency cap): not failures.
SKIPPED = (ledger_states.SUPPRESSED, ledger_states.CAPPED)
#: Errors after which sending more is pointless: the whole job stops.
FATAL_ERRORS = (SmSendAuthError, SmSendInsufficientCreditError)
#: How many of the characters that forced UCS-2 an estimate lists (the most frequent).
TOP_UCS2_CHARACTERS = 10
MONEY_STEP = Decimal("0.0001")  # money has 4 decimals (docs/gateway.md)


def price_from_credit(credit: Decimal, sms: int) -> Decimal | None:
    """Return the price of one segment implied by credit.php: ``credit`` euros buy ``sms`` SMS.

    The gateway answers how many SMS of a quality the credit buys (``type=<quality>``) beside the
    credit in euros (``type=credit``); the price is the largest amount with 4 decimals that buys
    that many, ``credit / sms`` rounded down to 4 decimals: never below the real price, and equal
    to it when no other 4-decimal price buys as many (``credit / (sms * (sms + 1)) < 0.0001``: 100
    EUR buying 1,176 SMS) (docs/gateway.md, "Cost"). None when the credit buys none.

    :param credit: the credit in euros (``client.credit("credit")``).
    :param sms: the SMS it buys at a quality (``client.credit(quality)``).
    """
    if sms <= 0 or credit <= 0:
        return None
    return (Decimal(credit) / sms).quantize(MONEY_STEP, rounding=ROUND_FLOOR)


@dataclass(frozen=True)
class Estimate:
    """What a campaign will cost, known before anything is sent (no number, name or text in it).

    :param messages: the messages to send (valid ones: numbers and texts checked).
    :param segments: the SMS segments they occupy.
    :param by_encoding: ``{"GSM": {"messages": n, "segments": s}, "UCS2": {...}}``.
    :param ucs2_characters: the characters outside GSM 03.38 that made messages UCS-2, each with
        the number of messages it appears in, the :data:`TOP_UCS2_CHARACTERS` most frequent.
    :param ucs2_extra: ``{"messages": n, "segments": s}``: the UCS-2 messages that need more
        segments than a GSM look-alike of their text would, and the segments UCS-2 adds.
    :param price_per_segment: the price of one segment (EUR), or None when unknown.
    :param price_source: where the price comes from (``"connection"``, ``"gateway"``, ...), or None.
    """

    messages: int
    segments: int
    by_encoding: dict[str, dict[str, int]]
    ucs2_characters: dict[str, int]
    ucs2_extra: dict[str, int]
    price_per_segment: Decimal | None = None
    price_source: str | None = None

    @property
    def estimated_cost(self) -> Decimal | None:
        """``segments`` at ``price_per_segment`` (EUR, exact), or None without a price."""
        return None if self.price_per_segment is None else self.price_per_segment * self.segments

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-able dict (for XCom and the return value); money as exact decimal strings."""
        cost, price = self.estimated_cost, self.price_per_segment
        return {
            "messages": self.messages,
            "segments": self.segments,
            "by_encoding": self.by_encoding,
            "ucs2_characters": self.ucs2_characters,
            "ucs2_extra": self.ucs2_extra,
            "price_per_segment": None if price is None else str(price),
            "price_source": self.price_source,
            "estimated_cost": None if cost is None else str(cost),
        }


def estimate(
    prepared: Iterable[PreparedMessage],
    *,
    price_per_segment: Decimal | None = None,
    price_source: str | None = None,
) -> Estimate:
    """Describe what sending ``prepared`` costs: messages, segments, encodings, UCS-2's share.

    :param prepared: the validated messages (the third item of each :data:`Plan` entry to send).
    :param price_per_segment: the price of one segment (EUR), if known.
    :param price_source: where that price comes from, for the reader.
    """
    by_encoding = {"GSM": {"messages": 0, "segments": 0}, "UCS2": {"messages": 0, "segments": 0}}
    characters: Counter[str] = Counter()
    extra = {"messages": 0, "segments": 0}
    for message in prepared:
        counts = by_encoding[message.encoding]
        counts["messages"] += 1
        counts["segments"] += message.segments
        if message.encoding == "UCS2":
            characters.update(non_gsm_characters(message.text))
            more = message.segments - segments_if_gsm(message.text)
            if more > 0:
                extra["messages"] += 1
                extra["segments"] += more
    top = sorted(characters.items(), key=lambda item: (-item[1], item[0]))[:TOP_UCS2_CHARACTERS]
    return Estimate(
        messages=sum(c["messages"] for c in by_encoding.values()),
        segments=sum(c["segments"] for c in by_encoding.values()),
        by_encoding=by_encoding,
        ucs2_characters=dict(top),
        ucs2_extra=extra,
        price_per_segment=price_per_segment,
        price_source=price_source,
    )


class _Spend:
    """What a job has spent or may have spent, against ``max_cost`` (docs/gateway.md, "Cost").

    ``settled`` is what the gateway answered for accepted messages (all tries); ``open`` counts the
    segments whose charge is not known: messages in flight and messages whose outcome is unknown
    (they may have been charged). Those are priced at the highest of the given price and every
    price per segment the gateway has charged in this job, so a price set too low corrects itself
    from the first answer on.
    """

    def __init__(self, limit: Decimal | None, price: Decimal | None) -> None:
        self.limit = limit
        self.price = price
        self.settled = Decimal("0")
        self.open = 0

    def charged(self, cost: Decimal, segments: int) -> None:
        """An accepted message's cost, as the gateway answered it."""
        self.settled += cost
        if self.price is not None and segments > 0:
            self.price = max(self.price, cost / segments)

    def committed(self, more: int = 0) -> Decimal:
        """Spent, plus what the open segments and ``more`` segments may cost."""
        return self.settled + (self.open + more) * (self.price or Decimal("0"))

    def fits(self, segments: int) -> bool:
        """True if ``segments`` more keep the job within the limit (always, without one)."""
        return self.limit is None or self.committed(segments) <= self.limit


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
    :param status: ``accepted``, ``rejected``, ``unknown``, or (skipped before sending)
        ``suppressed`` or ``capped``.
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
        """Counts of accepted, rejected, unknown, suppressed and capped recipients, and the total."""
        counts = dict.fromkeys((ACCEPTED, REJECTED, UNKNOWN, *SKIPPED), 0)
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
        """Share of recipients neither accepted nor skipped (suppressed, capped) (0.0 with none)."""
        total = len(self.outcomes)
        failed = sum(1 for o in self.outcomes if o.status != ACCEPTED and o.status not in SKIPPED)
        return 0.0 if total == 0 else failed / total

    def this_try(self) -> dict[str, Any]:
        """What this run did itself (outcomes not read from an earlier try's ledger entries):
        counts of accepted, rejected, unknown, suppressed and capped, and the cost, as an exact
        decimal string."""
        now = [o for o in self.outcomes if not o.previous_try]
        counts: dict[str, Any] = dict.fromkeys((ACCEPTED, REJECTED, UNKNOWN, *SKIPPED), 0)
        for outcome in now:
            counts[outcome.status] += 1
        counts["cost"] = str(sum((Decimal(o.cost) for o in now if o.cost is not None), Decimal("0")))
        return counts

    def to_dict(
        self,
        *,
        include_outcomes: bool = False,
        masked: bool = True,
        where: dict[str, Any] | None = None,
        estimate: Estimate | None = None,
    ) -> dict[str, Any]:
        """A small JSON-able summary (for XCom), the same size for 1 or 100,000 recipients.

        :param include_outcomes: add ``outcomes_list``, one dict per recipient.
        :param masked: mask the recipients of ``outcomes_list`` (``False``: full numbers).
        :param where: where the per-recipient outcomes are kept (the ledger), under ``outcomes``.
        :param estimate: the campaign's estimate made before sending, under ``estimate`` (None: None).
        """
        data: dict[str, Any] = {
            "totals": self.totals,
            "total_cost": str(self.total_cost),
            "this_try": self.this_try(),
            "request_count": len(self.request_ids),
            "outcomes": where,
            "aborted": self.aborted,
            "estimate": None if estimate is None else estimate.to_dict(),
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
    :param max_cost: the most this ledger job may spend, all tries together (EUR, exact), or
        None. :meth:`run` refuses to start when what earlier tries spent plus the estimate of what
        is left exceeds it, and starts no request that would take the job past it: the recipients
        left are ``rejected`` with ``error_code="max_cost"``, not retryable (docs/gateway.md, "Cost").
    :param price_per_segment: the price of one segment (EUR) the cap counts with (see
        :func:`price_from_credit`); required with ``max_cost``.
    :param campaign: the campaign the accepted sends are counted under in the ledger (for a
        frequency cap across jobs, :meth:`Ledger.sent_counts`); None: the job key.
    :param keep_going: asked before each request starts (e.g. "is the send window still
        open?"), and again after the ``rate_limit`` wait for its slot; once it answers False no
        request starts, and the recipients left end
        ``rejected`` ``aborted`` (retryable: a later try sends them).
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
        max_cost: Decimal | None = None,
        price_per_segment: Decimal | None = None,
        campaign: str | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> None:
        if concurrency < 1 or chunk_size < 1:
            raise SmSendValidationError("concurrency and chunk_size must be >= 1.")
        if max_cost is not None and price_per_segment is None:
            raise SmSendValidationError(
                f"max_cost={max_cost} needs a price per segment to count with: pass price_per_segment "
                "(see price_from_credit).",
                code="max_cost",
            )
        self.client = client
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.job_key = job_key
        self.allow_landlines = allow_landlines
        self.once = OnceOnly(self.ledger, job_key, what="SMS", owner=owner, campaign=campaign)
        self.keep_going = keep_going
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
        self.max_cost = max_cost
        self.price_per_segment = price_per_segment
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

    def _check_cost(self, spend: _Spend, pending: Sequence[tuple[int, str, PreparedMessage]]) -> None:
        """Refuse, before any request, a send whose estimate takes the job past ``max_cost``."""
        needed = sum(prepared.segments for _, _, prepared in pending)
        if spend.fits(needed):
            return
        before = spend.committed()
        raise SmSendValidationError(
            f"max_cost={self.max_cost} EUR: the {len(pending)} message(s) to send ({needed} segment(s) at "
            f"{spend.price} EUR) are estimated at {spend.committed(needed) - before} EUR"
            + (f", and earlier tries of this job spent or may have spent {before} EUR" if before else "")
            + f"; together {spend.committed(needed)} EUR. Nothing was sent: raise max_cost, or send fewer "
            "or shorter messages.",
            code="max_cost",
        )

    def _stopped(self) -> bool:
        """True once the job stopped (a fatal error) or ``keep_going`` says no (the send window closed)."""
        return self._stop.is_set() or (self.keep_going is not None and not self.keep_going())

    def _aborted(self, number: str) -> LedgerEntry:
        """The entry of a request that never left because the job stopped: safe to send later."""
        return LedgerEntry(
            self.job_key,
            number,
            REJECTED,
            error_code="aborted",
            error="Not sent: the job stopped early.",
            retryable=True,
        )

    def _send_one(self, send: SendPrepared, number: str, prepared: PreparedMessage) -> LedgerEntry:
        """Send one message with ``send`` (the client's bulk send path); never raises, returns its ledger entry."""
        attempt = 0
        while True:
            if self._stopped():
                return self._aborted(number)
            if self.rate is not None:
                self.rate.acquire()
                # The wait for a slot can be long at a low rate_limit: ask again, so that no request
                # leaves after the send window closed (or the job stopped) while it waited.
                if self._stopped():
                    return self._aborted(number)
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
        :raises SmSendValidationError: (``code="max_cost"``) before any request, when what earlier
            tries spent plus the estimate of what is left to send exceeds ``max_cost``.
        """
        outcomes, to_send = plan if plan is not None else self.plan(messages)
        outcomes = list(outcomes)
        previous = self.once.entries if to_send else {}
        pending: list[tuple[int, str, PreparedMessage]] = []
        spend = _Spend(self.max_cost, self.price_per_segment)
        for index, number, prepared in to_send:
            entry = previous.get(number)
            known = self._from_ledger(entry, prepared.segments) if entry is not None else None
            step = next_step(entry)
            if step == DONE and entry is not None and entry.cost is not None:
                spend.charged(Decimal(entry.cost), prepared.segments)
            elif step == AMBIGUOUS:  # an earlier try's request may have been charged
                spend.open += prepared.segments
            if known is not None:
                outcomes[index] = known
            else:
                pending.append((index, number, prepared))
        self._check_cost(spend, pending)
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
                entry = future.result()
                unrecorded.append(entry)
                live.discard(future)
                if entry.state == ACCEPTED:
                    spend.open -= segments[entry.item]
                    spend.charged(Decimal(entry.cost or "0"), segments[entry.item])
                elif entry.state == REJECTED:
                    spend.open -= segments[entry.item]
                # unknown: it may have been charged, its segments stay open

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
        queued = deque(pending)
        capped = False
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="smsend-bulk") as pool:
            try:
                while not self._stop.is_set() and (self.keep_going is None or self.keep_going()):
                    # Mark (one commit) only as many recipients as there are free requests: a
                    # recipient is `sending` only while its own request is about to leave or in
                    # flight, so a killed process leaves at most `concurrency` of them unknown.
                    # With max_cost, only as many as keep the job's spend within it.
                    batch, submitted, more = [], 0, 0
                    while queued and len(batch) < self.concurrency - len(live):
                        if not spend.fits(more + queued[0][2].segments):
                            break
                        more += queued[0][2].segments
                        batch.append(queued.popleft())
                    if not batch:
                        if queued and live:  # over max_cost for now: those in flight may cost less
                            collect()
                            continue
                        capped = bool(queued)
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
                        spend.open += prepared.segments
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
        if capped:
            log.warning(
                "max_cost=%s EUR: %d message(s) not sent, sending them would exceed it (%s EUR spent or "
                "possibly charged by this job).",
                self.max_cost,
                len(queued),
                spend.committed(),
            )
            for index, number, prepared in queued:
                outcomes[index] = RecipientOutcome(
                    number,
                    REJECTED,
                    segments=prepared.segments,
                    error_code="max_cost",
                    error=f"Not sent: it would take this job's spend ({spend.committed()} EUR spent or possibly "
                    f"charged) past max_cost={self.max_cost} EUR.",
                )
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
