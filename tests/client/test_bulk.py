"""BulkSender's run loop with a scripted send: the ledger contract and the in-flight bound."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from airflow_provider_smsend.client.bulk import BulkMessage, BulkSender, RateLimiter
from airflow_provider_smsend.client.errors import SmSendTimeoutError
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
