"""The pure rules shared by sensors and triggers: batch success rules, backoff, inbound matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_smsend.client.batch_rules import (
    evaluate,
    next_poll_interval,
    normalize_request_ids,
    parse_success_rule,
    required_delivered,
    summarize,
)
from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.inbound_rules import find_match, parse_received_after, sender_key
from airflow_provider_smsend.client.reports import BatchStatusReport, BatchStatusRow
from airflow_provider_smsend.client.soap import ROME, ReceivedSms


def report(request_id: str, *statuses: int, report_type: str = "notify") -> BatchStatusReport:
    rows = [
        BatchStatusRow(id=i, dest=f"+39333123{i:04d}", status=s, status_text=f"text {s}")
        for i, s in enumerate(statuses, start=1)
    ]
    return BatchStatusReport(request_id=request_id, report_type=report_type, rows=rows)


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all_terminal", "all_terminal"),
        (" ALL_DELIVERED ", "all_delivered"),
        (0.95, 0.95),
        ("0.5", 0.5),
        (1, 1.0),
    ],
)
def test_parse_success_rule_accepts(value, expected):
    assert parse_success_rule(value) == expected


@pytest.mark.parametrize("value", ["most", 0, 1.5, -0.1, True, None, [0.5]])
def test_parse_success_rule_rejects(value):
    with pytest.raises(SmSendValidationError):
        parse_success_rule(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("HTTP1", ["HTTP1"]),
        ("HTTP1, HTTP2,,HTTP1", ["HTTP1", "HTTP2"]),
        (["HTTP1", None, "HTTP2"], ["HTTP1", "HTTP2"]),
        ("['HTTP1', 'HTTP2']", ["HTTP1", "HTTP2"]),
        ('["HTTP1"]', ["HTTP1"]),
        ({"request_id": "HTTP9", "cost": "0.08"}, ["HTTP9"]),
        ([{"request_id": "HTTP1"}, {"request_id": "HTTP2"}], ["HTTP1", "HTTP2"]),
    ],
)
def test_normalize_request_ids(value, expected):
    assert normalize_request_ids(value) == expected


@pytest.mark.parametrize("value", ["", " , ", [], [None], 12, [1], "[broken"])
def test_normalize_request_ids_rejects(value):
    with pytest.raises(SmSendValidationError):
        normalize_request_ids(value)


def test_summary_counts_classes_codes_and_failed_rows():
    summary = summarize([report("A", 200, 200, 100), report("B", 300, 302, 200, 404)])
    assert summary["total"] == 7
    assert summary["by_class"] == {"pending": 1, "success": 3, "failure": 2, "unknown": 1}
    assert summary["by_status"] == {"100": 1, "200": 3, "300": 1, "302": 1, "404": 1}
    assert summary["pending"] == 1 and summary["delivered"] == 3 and summary["failed_count"] == 3
    assert summary["delivered_ratio"] == round(3 / 7, 6)
    assert [(r["request_id"], r["id"], r["status"]) for r in summary["failed"]] == [
        ("B", 1, 300),
        ("B", 2, 302),
        ("B", 4, 404),
    ]
    assert set(summary["failed"][0]) == {"request_id", "id", "dest", "status", "status_text"}


@pytest.mark.parametrize(
    ("statuses", "rule", "fail_fast", "state"),
    [
        ((200, 200), "all_delivered", True, "satisfied"),
        ((200, 100), "all_delivered", True, "pending"),
        ((300, 100), "all_delivered", True, "failed"),
        ((300, 100), "all_delivered", False, "pending"),
        ((300, 200), "all_delivered", False, "failed"),
        ((300, 200), "all_terminal", True, "satisfied"),
        ((300, 100), "all_terminal", True, "pending"),
        ((200,) * 9 + (300,), 0.9, True, "satisfied"),
        ((200,) * 8 + (300, 100), 0.9, True, "pending"),
        ((200,) * 8 + (300, 300), 0.9, True, "failed"),
        ((200,) * 8 + (300, 100), 0.95, True, "failed"),
        ((200,) * 8 + (300, 100), 0.95, False, "pending"),
        ((200, 100, 100), 0.3, True, "satisfied"),
        ((), "all_terminal", True, "pending"),
        ((), 0.5, True, "pending"),
    ],
)
def test_evaluate(statuses, rule, fail_fast, state):
    verdict = evaluate([report("A", *statuses)], rule, fail_fast=fail_fast)
    assert verdict.state == state
    assert verdict.summary["outcome"] == state
    assert verdict.summary["reason"] == verdict.reason


def test_a_request_without_rows_blocks_success_but_not_a_certain_failure():
    assert evaluate([report("A", 200), report("B")], "all_terminal").state == "pending"
    assert evaluate([report("A", 200), report("B")], 0.5).state == "pending"
    assert evaluate([report("A", 300), report("B")], "all_delivered").state == "failed"
    assert evaluate([report("A", 200), report("B", 200)], "all_delivered").state == "satisfied"


def test_required_delivered_is_exact_on_ratios():
    assert required_delivered(0.9, 10) == 9
    assert required_delivered(0.95, 10) == 10
    assert required_delivered(0.7, 10) == 7  # 0.7 * 10 == 7.000000000000001 in floats
    assert required_delivered(1.0, 3) == 3


def test_next_poll_interval_doubles_up_to_the_cap():
    intervals, previous = [], None
    for _ in range(6):
        previous = next_poll_interval(previous, initial=5, maximum=30)
        intervals.append(previous)
    assert intervals == [5, 10, 20, 30, 30, 30]
    assert next_poll_interval(5, initial=5, maximum=None) == 5
    assert next_poll_interval(5, initial=5, maximum=2) == 5


# ---------------------------------------------------------------- inbound matching

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def sms(sms_id: int, sender: str, text: str, minutes: float) -> ReceivedSms:
    return ReceivedSms(
        id=sms_id, sender=sender, text=text, received_at=(START + timedelta(minutes=minutes)).astimezone(ROME)
    )


def test_find_match_ignores_messages_before_start_and_picks_the_earliest():
    messages = [
        sms(1, "+393331234567", "SI", -5),
        sms(4, "+393331234567", "si grazie", 3),
        sms(3, "+393331234567", "Si", 2),
        sms(2, "+393339999999", "SI", 1),
    ]
    found = find_match(messages, received_after=START, sender="333 123 4567", text_pattern=r"^\s*si\b")
    assert found is not None
    assert found["id"] == 3
    assert found["match"] == "Si"
    assert found["received_at"] == "2024-05-01T11:02:00+02:00"


def test_find_match_case_and_groups():
    messages = [sms(7, "+393331234567", "Your code: 123456", 1)]
    found = find_match(messages, received_after=START, text_pattern=r"code: (?P<code>\d{6})")
    assert found is not None and found["named_groups"] == {"code": "123456"} and found["groups"] == ["123456"]
    assert find_match(messages, received_after=START, text_pattern="YOUR", ignore_case=False) is None
    assert find_match(messages, received_after=START, text_pattern="YOUR") is not None


def test_find_match_without_criteria_takes_any_new_message_and_none_when_empty():
    assert find_match([sms(1, "ACME", "hello", 0)], received_after=START)["id"] == 1
    assert find_match([], received_after=START) is None
    assert find_match([sms(1, "ACME", "hello", -0.01)], received_after=START) is None


def test_sender_key_compares_numbers_and_alphanumeric_senders():
    assert sender_key("0039 333 1234567") == sender_key("+393331234567") == "+393331234567"
    assert sender_key(" ACME ") == "acme"


def test_invalid_inputs_are_named():
    with pytest.raises(SmSendValidationError, match="not a valid regular expression"):
        find_match([], received_after=START, text_pattern="(")
    with pytest.raises(SmSendValidationError, match="timezone-aware"):
        find_match([], received_after=datetime(2024, 1, 1))
    with pytest.raises(SmSendValidationError, match="ISO 8601"):
        parse_received_after("yesterday")
    assert parse_received_after("2024-05-01T09:00:00") == START
    assert parse_received_after("2024-05-01T11:00:00+02:00") == START


def test_report_cache_keeps_only_final_reports():
    from airflow_provider_smsend.client.batch_rules import ReportCache, describe_request_ids, is_final
    from airflow_provider_smsend.client.reports import BatchStatusReport, BatchStatusRow

    done = BatchStatusReport("A", "notify", [BatchStatusRow(1, "+393331234567", 200, "Delivered")])
    moving = BatchStatusReport("B", "notify", [BatchStatusRow(2, "+393331234568", 100, "Waiting")])
    empty = BatchStatusReport("C", "notify", [])
    assert [is_final(r) for r in (done, moving, empty)] == [True, False, False]
    cache = ReportCache()
    cache.store([done, moving, empty])
    assert cache.missing(["A", "B", "C"]) == ["B", "C"]
    newer = BatchStatusReport("B", "notify", [BatchStatusRow(2, "+393331234568", 200, "Delivered")])
    assert cache.reports(["A", "B", "C"], [newer, empty]) == [done, newer, empty]
    assert describe_request_ids(["A", "B"]) == "A, B"
    assert describe_request_ids([f"HTTP{i}" for i in range(10)]) == "10 requests (HTTP0, HTTP1, HTTP2, ...)"
