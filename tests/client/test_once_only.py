"""The once-only engine: one rule table, one classification of failures, claims between tries."""

from __future__ import annotations

import pytest

from airflow_provider_smsend.client.errors import (
    SmSendAmbiguousOutcomeError,
    SmSendAuthError,
    SmSendClaimedError,
    SmSendInternalError,
    SmSendReportError,
    SmSendTimeoutError,
    SmSendTransportError,
)
from airflow_provider_smsend.client.ledger import (
    ACCEPTED,
    CAPPED,
    REJECTED,
    SENDING,
    SUPPRESSED,
    UNKNOWN,
    LedgerEntry,
    MemoryLedger,
)
from airflow_provider_smsend.client.once_only import (
    AMBIGUOUS,
    DO,
    DONE,
    OnceOnly,
    classify,
    next_step,
    shown,
    write_budget,
)
from airflow_provider_smsend.client.retry import RetryPolicy

JOB = "onboarding/credit/run/-1"


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (None, DO),
        (REJECTED, DO),
        (SUPPRESSED, DO),
        (CAPPED, DO),
        (ACCEPTED, DONE),
        (SENDING, AMBIGUOUS),
        (UNKNOWN, AMBIGUOUS),
    ],
)
def test_next_step_is_one_table(state: str | None, step: str) -> None:
    entry = None if state is None else LedgerEntry(JOB, "item", state)
    assert next_step(entry) == step


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (SmSendAuthError("refused"), (REJECTED, False)),  # a KO: the gateway did nothing
        (SmSendInternalError("busy"), (REJECTED, True)),
        (SmSendTransportError("refused", request_sent=False), (REJECTED, True)),
        (SmSendTransportError("tls", request_sent=False, retryable=False), (REJECTED, False)),
        (SmSendTimeoutError("no answer"), (UNKNOWN, False)),
        (SmSendReportError("not an answer"), (UNKNOWN, False)),  # it may have been processed
        (RuntimeError("bug"), (UNKNOWN, False)),
    ],
)
def test_classify_is_the_one_rule_for_failed_calls(exc: BaseException, expected: tuple[str, bool]) -> None:
    assert classify(exc) == expected


def test_run_calls_once_then_returns_the_stored_outcome() -> None:
    ledger, calls = MemoryLedger(), []

    def call() -> tuple[str, str]:
        calls.append(1)
        return "77", "5.0000"

    assert OnceOnly(ledger, JOB, what="credit").run("credit_add:1", call).resumed is False
    again = OnceOnly(ledger, JOB, what="credit").run("credit_add:1", call)
    assert (again.value, again.cost, again.resumed, len(calls)) == ("77", "5.0000", True, 1)


def test_a_rejected_item_is_done_again_and_an_unknown_one_is_not() -> None:
    ledger = MemoryLedger()
    once = OnceOnly(ledger, JOB, what="credit")
    with pytest.raises(SmSendAuthError):
        once.run("a", lambda: (_ for _ in ()).throw(SmSendAuthError("refused")))
    with pytest.raises(SmSendTimeoutError):
        once.run("b", lambda: (_ for _ in ()).throw(SmSendTimeoutError("no answer")))
    retry = OnceOnly(ledger, JOB, what="credit")
    assert retry.run("a", lambda: ("1", None)).value == "1"
    with pytest.raises(SmSendAmbiguousOutcomeError, match="resend_unknown=True"):
        retry.run("b", lambda: ("2", None))
    assert retry.run("b", lambda: ("2", None), resolve=lambda entry: ("9", None)).value == "9"
    assert ledger.load(JOB)["b"].request_id == "9"


def test_an_item_another_try_claimed_is_not_done() -> None:
    ledger = MemoryLedger()
    mine, twin = (
        OnceOnly(ledger, JOB, what="credit", owner="A"),
        OnceOnly(ledger, JOB, what="credit", owner="B"),
    )
    assert mine.entries == {} and twin.entries == {}  # both read "nothing yet"
    assert mine.claim(["credit_add:1"]) == {"credit_add:1"}
    called = []
    with pytest.raises(SmSendClaimedError) as raised:
        twin.run("credit_add:1", lambda: called.append(1) or ("2", None))
    assert raised.value.retryable and called == []


def test_write_budget_and_masked_items() -> None:
    policy = RetryPolicy(attempts=3, initial_wait=0.5, max_wait=8.0)
    assert write_budget((5.0, 30.0), policy) == 3 * 35.0 + 0.5 + 1.0
    assert shown("recv_add:1001:+393331234567:2") == "recv_add:1001:+39333****567:2"


def test_skipped_items_are_recorded_with_their_reason_and_the_campaign_and_done_again_later() -> None:
    ledger = MemoryLedger()
    first = OnceOnly(ledger, JOB, what="SMS", campaign="spring")
    skipped = {
        "+393331234567": (SUPPRESSED, "suppressed", "On the suppression list."),
        "+393331234568": (CAPPED, "max_per_recipient", "Texted 2 times in 7 days."),
    }
    assert first.skip(skipped) == set(skipped)
    rows = ledger.load(JOB)
    assert {i: (e.state, e.error_code, e.campaign) for i, e in rows.items()} == {
        "+393331234567": (SUPPRESSED, "suppressed", "spring"),
        "+393331234568": (CAPPED, "max_per_recipient", "spring"),
    }
    # A later try reads them as to do: the rules are checked again, and it may skip them again.
    later = OnceOnly(ledger, JOB, what="SMS")
    assert {next_step(e) for e in later.entries.values()} == {DO}
    assert later.skip({"+393331234567": (SUPPRESSED, "suppressed", "Still on the list.")}) == {
        "+393331234567"
    }
    assert later.claim(["+393331234568"]) == {"+393331234568"}
    with pytest.raises(ValueError, match="skipped as"):
        later.skip({"+393331234569": (ACCEPTED, "x", "y")})
    assert "+393331234569" not in ledger.load(JOB)
