"""client/ledger.py: the ledger contract on MemoryLedger (DbApiLedger's is in tests/sql/test_ledger.py),
owner ids and the outcomes frame."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest

from airflow_provider_smsend.client.ledger import (
    ACCEPTED,
    REJECTED,
    SENDING,
    SUPPRESSED,
    UNKNOWN,
    LedgerEntry,
    MemoryLedger,
    new_owner,
    outcomes_frame,
    stamp,
    try_number,
)

JOB = "campaign/send/run-1/-1"
NUMBER = "+393331234567"
OTHER = "+393331234568"


def test_one_owner_wins_a_new_item_and_a_stale_read_claims_nothing() -> None:
    ledger = MemoryLedger()
    assert ledger.claim(JOB, [NUMBER], owner="A") == {NUMBER}
    assert ledger.claim(JOB, [NUMBER], owner="B") == set()  # B read "no entry": the row exists now
    assert ledger.claim(JOB, [NUMBER], owner="A") == {NUMBER}  # repeating a claim is harmless
    entry = ledger.load(JOB)[NUMBER]
    assert (entry.state, entry.owner, entry.job_key) == (SENDING, "A", JOB) and entry.updated_at


def test_a_claim_over_an_entry_holds_only_if_the_row_is_still_as_read() -> None:
    ledger = MemoryLedger()
    ledger.claim(JOB, [NUMBER], owner="A")
    ledger.record([LedgerEntry(JOB, NUMBER, REJECTED, error_code="queue_full", retryable=True)], owner="A")
    seen = ledger.load(JOB)
    assert ledger.claim(JOB, [NUMBER], owner="B", seen=seen) == {NUMBER}
    assert ledger.claim(JOB, [NUMBER], owner="C", seen=seen) == set()  # C read the same row: B changed it
    assert ledger.load(JOB)[NUMBER].owner == "B"


def test_records_land_on_the_owners_rows_and_an_accepted_one_is_never_dropped() -> None:
    ledger = MemoryLedger()
    ledger.claim(JOB, [NUMBER, OTHER], owner="A")
    ledger.claim(JOB, [NUMBER], owner="B", seen=ledger.load(JOB))  # B takes the first over
    rejected = LedgerEntry(JOB, OTHER, REJECTED, error_code="x")
    assert ledger.record([rejected], owner="B") == [rejected]  # not B's row
    accepted = LedgerEntry(JOB, NUMBER, ACCEPTED, request_id="HTTP7", cost="0.0850")
    assert ledger.record([accepted], owner="A") == []  # A's answer came: the request id is kept
    again = LedgerEntry(JOB, NUMBER, UNKNOWN, error_code="timeout")
    assert ledger.record([again], owner="B") == [again]  # an accepted row is never overwritten by another
    rows = ledger.load(JOB)
    assert (rows[NUMBER].state, rows[NUMBER].request_id, rows[NUMBER].owner) == (ACCEPTED, "HTTP7", "A")
    assert (rows[OTHER].state, rows[OTHER].owner) == (SENDING, "A")
    assert ledger.holders("HTTP7") == [rows[NUMBER]] and ledger.holders("HTTP8") == []
    assert ledger.record([LedgerEntry(JOB, "+393330000000", ACCEPTED)], owner="A") != []  # never claimed


def test_jobs_are_apart() -> None:
    ledger = MemoryLedger()
    ledger.claim(JOB, [NUMBER], owner="A")
    assert ledger.claim("another/job/run/-1", [NUMBER], owner="B") == {NUMBER}
    assert list(ledger.load(JOB)) == [NUMBER] and ledger.load("nobody") == {}


def test_of_many_threads_claiming_at_once_one_wins_each_item() -> None:
    ledger = MemoryLedger()
    items = [f"+39333{i:07d}" for i in range(200)]
    won: dict[str, set[str]] = {}
    start = threading.Barrier(8)

    def claim(owner: str) -> None:
        start.wait(10)
        won[owner] = ledger.claim(JOB, items, owner=owner)

    threads = [threading.Thread(target=claim, args=(f"try {n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(item for claimed in won.values() for item in claimed) == sorted(items)


def test_owner_ids_are_new_for_every_try_and_carry_the_try_number() -> None:
    first, second = new_owner("try 2"), new_owner("try 2")
    assert first != second and first.startswith("try 2 ") and len(new_owner("x" * 100)) <= 64
    assert (try_number(first), try_number(new_owner()), try_number(None), try_number("try x")) == (
        2,
        None,
        None,
        None,
    )


def test_the_outcomes_frame_masks_numbers_and_keeps_exact_types() -> None:
    entries = [
        LedgerEntry(JOB, NUMBER, ACCEPTED, request_id="HTTP7", cost="0.085", owner="try 3 ab",
                    updated_at="2026-01-15T08:30:00+01:00"),
        LedgerEntry(JOB, OTHER, REJECTED, error_code="invalid_number"),
    ]  # fmt: skip
    frame = outcomes_frame(entries, key="k1")
    assert list(frame["recipient"]) == ["+39333****567", "+39333****568"]
    assert list(frame["status"]) == [ACCEPTED, REJECTED] and frame["cost"].iloc[0] == Decimal("0.0850")
    assert (
        frame["try_number"].iloc[0] == 3
        and frame["updated_at"].iloc[0].isoformat() == "2026-01-15T07:30:00+00:00"
    )
    keys = list(frame["recipient_key"])
    assert len(set(keys)) == 2 and all(len(key) == 16 for key in keys)
    assert (
        list(outcomes_frame(entries, key="k1", masked=False)["recipient_key"]) == keys
    )  # the key never depends on masking
    assert list(outcomes_frame(entries, key="k1", masked=False)["recipient"]) == [NUMBER, OTHER]
    # keyed: another secret gives other pseudonyms, and the masked number plus an unkeyed hash of
    # each of its 10,000 candidates finds nothing
    assert set(outcomes_frame(entries, key="k2")["recipient_key"]).isdisjoint(keys)
    import hashlib

    candidates = {hashlib.sha256(f"+39333{n:04d}567".encode()).hexdigest()[:16] for n in range(10_000)}
    assert candidates.isdisjoint(keys)
    assert str(frame["cost"].dtype) == "decimal128(18, 4)[pyarrow]"


def test_sent_counts_are_accepted_entries_of_the_campaign_since_a_time_in_any_job() -> None:
    ledger = MemoryLedger()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for job in ("spring/run-1", "spring/run-2"):
        ledger.claim(job, [NUMBER, OTHER], owner="A")
        ledger.record(
            [
                LedgerEntry(job, NUMBER, ACCEPTED, request_id="HTTP1", campaign="spring"),
                LedgerEntry(job, OTHER, REJECTED, error_code="x", campaign="spring"),
            ],
            owner="A",
        )
    ledger.claim("autumn", [NUMBER], owner="A")
    ledger.record([LedgerEntry("autumn", NUMBER, ACCEPTED, campaign="autumn")], owner="A")
    assert ledger.sent_counts("spring", [NUMBER, OTHER], since) == {NUMBER: 2}
    assert ledger.sent_counts("spring", [NUMBER], dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == {}
    assert ledger.sent_counts("autumn", [NUMBER, OTHER], since) == {NUMBER: 1}


def test_sent_counts_count_the_sends_that_may_have_reached_the_phone() -> None:
    ledger = MemoryLedger()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    third = "+393331234569"
    ledger.claim("spring/run-1", [NUMBER, OTHER, third], owner="A")
    ledger.record(
        [
            LedgerEntry("spring/run-1", NUMBER, UNKNOWN, error_code="timeout", campaign="spring"),
            LedgerEntry("spring/run-1", OTHER, REJECTED, error_code="x", campaign="spring"),
            LedgerEntry("spring/run-1", third, SUPPRESSED, error_code="suppressed", campaign="spring"),
        ],
        owner="A",
    )
    assert ledger.sent_counts("spring", [NUMBER, OTHER, third], since) == {NUMBER: 1}  # unknown counts
    # a retry claims the rejected one (sending, the row keeps its campaign) and is killed there
    ledger.claim("spring/run-1", [OTHER], owner="B", seen=ledger.load("spring/run-1"))
    assert ledger.load("spring/run-1")[OTHER].state == SENDING
    assert ledger.sent_counts("spring", [NUMBER, OTHER, third], since) == {NUMBER: 1, OTHER: 1}
    assert ledger.sent_counts("autumn", [NUMBER, OTHER], since) == {}


def test_ledger_times_are_aware_utc_text() -> None:
    rome = dt.timezone(dt.timedelta(hours=2))
    assert stamp(dt.datetime(2026, 6, 1, 10, 0, tzinfo=rome)) == "2026-06-01T08:00:00.000000+00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        stamp(dt.datetime(2026, 6, 1, 10, 0))
