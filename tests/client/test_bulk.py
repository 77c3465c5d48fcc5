"""BulkSender's run loop with a scripted send: the ledger contract and the in-flight bound."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from airflow_provider_smsend.client.bulk import (
    BulkMessage,
    BulkSender,
    RateLimiter,
    estimate,
    price_from_credit,
)
from airflow_provider_smsend.client.errors import SmSendTimeoutError, SmSendValidationError
from airflow_provider_smsend.client.http import SendResult, SmSendClient
from airflow_provider_smsend.client.ledger import SENDING, LedgerEntry, MemoryLedger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_smsend.client.validation import PreparedMessage


class WatchedLedger(MemoryLedger):
    """A MemoryLedger that tracks how many recipients are marked ``sending`` and not yet recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.open: set[str] = set()
        self.most_open = 0
        self.recorded: list[str] = []

    def claim(self, job_key: str, items: Iterable[str], *, owner: str, seen=None) -> set[str]:
        mine = super().claim(job_key, items, owner=owner, seen=seen)
        with self._lock:
            self.open.update(mine)
            self.most_open = max(self.most_open, len(self.open))
        return mine

    def record(self, entries: Iterable[LedgerEntry], *, owner: str) -> list[LedgerEntry]:
        entries = list(entries)
        lost = super().record(entries, owner=owner)
        with self._lock:
            for entry in entries:
                self.open.discard(entry.item)
                self.recorded.append(entry.item)
        return lost


def numbers(count: int) -> list[str]:
    return [f"+39333{n:07d}" for n in range(1000100, 1000100 + count)]


def test_every_request_leaves_after_its_sending_mark_and_in_flight_stays_bounded():
    ledger = WatchedLedger()
    client = SmSendClient(base_url="http://gw.test", username="u", password="p", default_sender="ACME")
    sent: list[str] = []
    lock = threading.Lock()
    rng = random.Random(7)

    def send(recipient: str, prepared: PreparedMessage) -> SendResult:
        # The contract: the mark is committed before the request leaves.
        assert ledger.load("job")[recipient].state == SENDING
        time.sleep(rng.random() / 500)
        with lock:
            sent.append(recipient)
        if recipient.endswith("7"):
            raise SmSendTimeoutError("The gateway did not answer.")  # sent, answer lost: unknown
        return SendResult(recipient=recipient, cost=Decimal("0.05"), request_id="HTTP1", message=prepared)

    client.bulk_send_path = lambda **_: send  # type: ignore[method-assign]
    recipients = numbers(200)
    result = BulkSender(client, ledger=ledger, job_key="job", concurrency=4, chunk_size=10).run(
        [BulkMessage(n, "Ciao") for n in recipients]
    )

    assert [o.recipient for o in result.outcomes] == recipients
    assert sorted(sent) == recipients  # each once
    assert sorted(ledger.recorded) == recipients  # each outcome recorded once
    assert not ledger.open
    expected = {n: "unknown" if n.endswith("7") else "accepted" for n in recipients}
    assert {o.recipient: o.status for o in result.outcomes} == expected
    assert {n: e.state for n, e in ledger.load("job").items()} == expected
    # At most about two chunks are marked and not yet answered (what a kill can leave unknown).
    assert ledger.most_open <= 2 * 10


def test_rate_limiter_spreads_calls():
    now = [0.0]
    slept: list[float] = []
    limiter = RateLimiter(10, clock=lambda: now[0], sleep=lambda s: slept.append(round(s, 6)))
    for _ in range(4):
        limiter.acquire()
    assert slept == [0.1, 0.2, 0.3]


# ---------------------------------------------------------------- cost: estimate and max_cost (issue 16, item 4)

LONG = "Ciao {}, il tuo ordine del 28 novembre è pronto: ritiralo in negozio entro venerdì. A presto!"
NAMES = ["Anna", "Zoë", "Bo", "Chloë", "Carla", "Noël", "Dario", "Łukasz", "Elena", "Fabio"]


def scripted(client: SmSendClient, charge: str, sent: list[str], pause: float = 0.0) -> None:
    """Make ``client``'s bulk path a scripted gateway charging ``charge`` EUR per segment."""
    lock = threading.Lock()

    def send(recipient: str, prepared: PreparedMessage) -> SendResult:
        time.sleep(pause)
        with lock:
            sent.append(recipient)
        cost = Decimal(charge) * prepared.segments
        return SendResult(recipient=recipient, cost=cost, request_id=f"HTTP{len(sent)}", message=prepared)

    client.bulk_send_path = lambda **_: send  # type: ignore[method-assign]


def new_client() -> SmSendClient:
    return SmSendClient(base_url="http://gw.test", username="u", password="p", default_sender="ACME")


def test_estimate_counts_messages_segments_encodings_and_the_characters_that_forced_ucs2():
    sender = BulkSender(new_client())
    _, to_send = sender.plan(
        [BulkMessage(n, LONG.format(name)) for n, name in zip(numbers(10), NAMES, strict=True)]
    )
    found = estimate((p for _, _, p in to_send), price_per_segment=Decimal("0.0850"), price_source="gateway")
    # 6 names are GSM 03.38 (one segment each); ë (3 names) and Ł (1) make 4 messages UCS-2, and at
    # 95 characters UCS-2 needs 2 segments where GSM needs 1.
    assert found.to_dict() == {
        "messages": 10,
        "segments": 14,
        "by_encoding": {"GSM": {"messages": 6, "segments": 6}, "UCS2": {"messages": 4, "segments": 8}},
        "ucs2_characters": {"ë": 3, "Ł": 1},
        "ucs2_extra": {"messages": 4, "segments": 4},
        "price_per_segment": "0.0850",
        "price_source": "gateway",
        "estimated_cost": "1.1900",
    }
    assert estimate([]).to_dict()["estimated_cost"] is None


def test_the_price_implied_by_credit_php_is_never_below_the_real_one():
    assert price_from_credit(Decimal("100.0000"), 1176) == Decimal("0.0850")  # the sandbox's demo account
    assert price_from_credit(Decimal("0.0100"), 0) is None  # buys nothing: nothing to learn from
    for price in (Decimal("0.0450"), Decimal("0.0733"), Decimal("0.0850"), Decimal("0.1234")):
        for credit in (Decimal("0.1300"), Decimal("1.0000"), Decimal("12.3456"), Decimal("5000.0000")):
            sms = int(credit // price)  # what credit.php answers for the quality
            if sms:
                implied = price_from_credit(credit, sms)
                assert implied is not None and implied >= price, (price, credit)
                if credit / (sms * (sms + 1)) < Decimal("0.0001"):  # no other 4-decimal price buys as many
                    assert implied == price, (price, credit)


def test_max_cost_refuses_before_any_request():
    client, sent = new_client(), []
    scripted(client, "0.0850", sent)
    ledger = MemoryLedger()
    sender = BulkSender(
        client, ledger=ledger, job_key="job", max_cost=Decimal("0.50"), price_per_segment=Decimal("0.0850")
    )
    with pytest.raises(
        SmSendValidationError, match=r"max_cost=0.50 EUR.*0.8500 EUR.*Nothing was sent"
    ) as info:
        sender.run([BulkMessage(n, "Saldi") for n in numbers(10)])
    assert info.value.code == "max_cost"
    assert sent == [] and ledger.load("job") == {}


def test_max_cost_needs_a_price():
    with pytest.raises(SmSendValidationError, match="price_per_segment"):
        BulkSender(new_client(), max_cost=Decimal("1"))


def test_max_cost_stops_the_send_when_the_spend_would_pass_it_and_a_retry_does_not_pass_it_either():
    # The price given is too low (0.04): the estimate (10 x 0.04) fits the cap, the gateway charges 0.085.
    client, sent = new_client(), []
    scripted(client, "0.0850", sent)
    ledger = MemoryLedger()
    messages = [BulkMessage(n, "Saldi") for n in numbers(10)]

    def sender() -> BulkSender:
        return BulkSender(
            client, ledger=ledger, job_key="job", concurrency=1, max_cost=Decimal("0.50"),
            price_per_segment=Decimal("0.0400"),
        )  # fmt: skip

    result = sender().run(messages)

    assert len(sent) == 5 and result.total_cost == Decimal("0.4250")  # a sixth would make 0.51
    stopped = [o for o in result.outcomes if o.status == "rejected"]
    assert [o.recipient for o in stopped] == numbers(10)[5:]
    assert {(o.error_code, o.retryable) for o in stopped} == {("max_cost", False)}
    assert "max_cost=0.50 EUR" in stopped[0].error
    # The retry counts what the first try spent (from the ledger), at the price the gateway charged.
    with pytest.raises(
        SmSendValidationError, match="earlier tries of this job spent or may have spent 0.4250 EUR"
    ):
        sender().run(messages)
    assert len(sent) == 5


def test_max_cost_counts_the_requests_in_flight():
    client, sent = new_client(), []
    scripted(client, "0.0850", sent, pause=0.01)
    result = BulkSender(
        client, concurrency=4, max_cost=Decimal("1.00"), price_per_segment=Decimal("0.0500")
    ).run([BulkMessage(n, "Saldi") for n in numbers(20)])
    # From the first answer on, the four in flight count at the price charged: 11 x 0.085 = 0.935.
    assert len(sent) == 11 and result.total_cost == Decimal("0.9350") <= Decimal("1.00")
    assert result.totals == {
        "accepted": 11,
        "rejected": 9,
        "unknown": 0,
        "suppressed": 0,
        "capped": 0,
        "total": 20,
    }


def test_keep_going_false_starts_no_more_requests_and_a_later_sender_resumes_where_it_stopped():
    client, sent = new_client(), []
    scripted(client, "0.0850", sent)
    ledger = MemoryLedger()
    messages = [BulkMessage(n, "Saldi") for n in numbers(10)]
    asked = 0

    def open_for_four() -> bool:  # the fifth question on finds the window closed
        nonlocal asked
        asked += 1
        return len(sent) < 4

    first = BulkSender(client, ledger=ledger, job_key="job", concurrency=1, keep_going=open_for_four)
    result = first.run(messages)
    assert len(sent) == 4 and asked > 4
    stopped = [o for o in result.outcomes if o.status == "rejected"]
    assert [o.recipient for o in stopped] == numbers(10)[4:]
    assert {(o.error_code, o.retryable) for o in stopped} == {("aborted", True)}
    again = BulkSender(client, ledger=ledger, job_key="job", concurrency=3).run(messages)
    assert sorted(sent) == sorted(numbers(10))  # each once: the ledger skipped the first four
    assert again.totals["accepted"] == 10 and again.this_try()["accepted"] == 6


def test_keep_going_is_asked_again_after_the_rate_limit_wait():
    """At a low rate_limit the wait for a slot outlasts the send window: nothing leaves after it."""
    client, sent = new_client(), []
    scripted(client, "0.0850", sent)
    now = [0.0]
    closes_at = 2.5  # on the fake clock: slots at 0, 1, 2 s are inside; the fourth waits until 3 s

    def wait(seconds: float) -> None:
        now[0] += seconds

    sender = BulkSender(
        client, job_key="job", concurrency=1, rate_limit=1, keep_going=lambda: now[0] < closes_at
    )
    sender.rate = RateLimiter(1, clock=lambda: now[0], sleep=wait)  # the seam: a fake clock
    result = sender.run([BulkMessage(n, "Saldi") for n in numbers(5)])
    assert sorted(sent) == sorted(numbers(5)[:3])
    stopped = [o for o in result.outcomes if o.status == "rejected"]
    assert [o.recipient for o in stopped] == numbers(5)[3:]
    assert {(o.error_code, o.retryable) for o in stopped} == {("aborted", True)}


def test_accepted_sends_are_counted_under_the_campaign_across_jobs():
    client, sent = new_client(), []
    scripted(client, "0.0850", sent)
    ledger = MemoryLedger()
    since = datetime.now(UTC) - timedelta(minutes=1)
    for job in ("run-1", "run-2"):
        BulkSender(client, ledger=ledger, job_key=job, campaign="spring").run(
            [BulkMessage(n, "Saldi") for n in numbers(2)]
        )
    BulkSender(client, ledger=ledger, job_key="other").run([BulkMessage(numbers(1)[0], "Saldi")])
    assert ledger.sent_counts("spring", numbers(3), since) == {n: 2 for n in numbers(2)}
    assert ledger.sent_counts("other", numbers(3), since) == {numbers(1)[0]: 1}  # default: the job key
    assert ledger.sent_counts("spring", numbers(2), datetime.now(UTC) + timedelta(seconds=1)) == {}


def test_skipped_recipients_are_counted_apart_and_are_not_failures():
    from airflow_provider_smsend.client.bulk import BulkResult, RecipientOutcome

    result = BulkResult(
        outcomes=[RecipientOutcome("+393330000001", "rejected", error_code="invalid_number")]
        + [RecipientOutcome(n, "capped") for n in numbers(27)]
        + [RecipientOutcome("+393339999998", "suppressed"), RecipientOutcome("+393339999999", "accepted")]
    )
    assert result.totals == {
        "accepted": 1, "rejected": 1, "unknown": 0, "suppressed": 1, "capped": 27, "total": 30,
    }  # fmt: skip
    assert result.failure_ratio() == 1 / 30
