"""client/batch_rules.py: success rules over batch-status reports, final reports, backoff, the
summary the sensor and trigger return (no Airflow)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_smsend.client.batch_rules import (
    FinalReports,
    describe_request_ids,
    evaluate,
    next_poll_interval,
    normalize_request_ids,
    parse_success_rule,
    required_delivered,
    summarize,
    validate_concurrency,
)
from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.reports import read_batch_status


def frame(*reports: tuple[str, tuple[int, ...]], report_type: str = "notify") -> Any:
    """A batch-status frame: ``(request id, statuses)`` per report, one row per status."""
    mnc = report_type == "mnc"
    header = "id,dest,status,netcode,status_text" if mnc else "id,dest,status,status_text"
    bodies = [
        (
            rid,
            "\n".join(
                [header]
                + [
                    f"{i},+39333123{i:04d},{s},{'22201,' if mnc else ''}text {s}"
                    for i, s in enumerate(statuses, start=1)
                ]
                + [""]
            ).encode(),
            None,
        )
        for rid, statuses in reports
    ]
    return read_batch_status(bodies, report_type)


def report(request_id: str, *statuses: int) -> tuple[str, tuple[int, ...]]:
    return request_id, statuses


def verdict_of(*reports: tuple[str, tuple[int, ...]], rule: object, fail_fast: bool = True) -> Any:
    """The verdict on a batch read once (nothing final before)."""
    final = FinalReports([rid for rid, _ in reports], "notify")
    return evaluate(frame(*(r for r in reports if r[1])), rule, final=final, fail_fast=fail_fast)


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
    reports = frame(report("A", 200, 200, 100), report("B", 300, 302, 200, 404))
    summary = summarize(reports, FinalReports(["A", "B"], "notify"))
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
    assert summary["failed"][0]["dest"] == mask_number("+393331230001") == "+39333****001"
    assert summary["request_ids"] == ["A", "B"] and summary["report_type"] == "notify"
    json.dumps(summary)  # native ints and texts, no NumPy or Arrow scalar


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
    verdict = verdict_of(report("A", *statuses), rule=rule, fail_fast=fail_fast)
    assert verdict.state == state
    assert verdict.summary["outcome"] == state
    assert verdict.summary["reason"] == verdict.reason


def test_a_request_without_rows_blocks_success_but_not_a_certain_failure():
    assert verdict_of(report("A", 200), report("B"), rule="all_terminal").state == "pending"
    assert verdict_of(report("A", 200), report("B"), rule=0.5).state == "pending"
    assert verdict_of(report("A", 300), report("B"), rule="all_delivered").state == "failed"
    assert verdict_of(report("A", 200), report("B", 200), rule="all_delivered").state == "satisfied"
    assert verdict_of(report("A", 200), report("B"), rule="all_terminal").summary[
        "requests_without_rows"
    ] == ["B"]


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


# ---------------------------------------------------------------- final reports


def test_final_reports_keep_only_reports_with_rows_and_none_pending():
    final = FinalReports(["A", "B", "C", "D"], "notify")
    assert final.absorb(frame(report("A", 200, 300), report("B", 200, 100), report("D", 404))) == 2
    assert final.pending() == ["B", "C"]  # B still moves, C has no rows yet
    assert (len(final), final.is_final("A"), final.is_final("B")) == (2, True, False)
    assert final.counts() == {200: 1, 300: 1, 404: 1}
    assert [(row["request_id"], row["status"]) for row in final.failed()] == [("A", 300), ("D", 404)]
    # Rows of ids already final, or of other batches, change nothing.
    assert final.absorb(frame(report("A", 200, 200), report("X", 200))) == 0
    assert final.counts() == {200: 1, 300: 1, 404: 1}


def poll_by_poll(final: FinalReports, polls: list[Any], rule: object) -> Any:
    """Run the polls the sensor and trigger run: fetch the pending ids only, absorb, evaluate."""
    verdict = None
    for answer in polls:
        pending = final.pending()
        seen = answer[answer["request_id"].isin(pending)]
        final.absorb(seen)
        verdict = evaluate(seen, rule, final=final)
    return verdict


def test_the_summary_is_the_same_whichever_poll_a_report_became_final_at():
    ids = ["A", "B", "C"]
    last = frame(report("A", 300, 200), report("B", 200), report("C", 200, 302))
    polls = [
        frame(report("A", 300, 200), report("B", 100), report("C", 100, 100)),
        frame(report("A", 300, 200), report("B", 200), report("C", 200, 100)),
        last,
    ]
    step_by_step = poll_by_poll(FinalReports(ids, "notify"), polls, "all_terminal")
    at_once = evaluate(last, "all_terminal", final=FinalReports(ids, "notify"))
    restored = FinalReports.from_json(
        json.loads(json.dumps(FinalReports(ids, "notify").to_json())), ids, "notify"
    )
    from_state = poll_by_poll(restored, [last], "all_terminal")
    assert step_by_step.summary == at_once.summary == from_state.summary
    assert [(row["request_id"], row["id"]) for row in at_once.summary["failed"]] == [("A", 1), ("C", 2)]


def test_final_reports_round_trip_through_json_without_numbers_in_full():
    ids = [f"HTTP{i:011d}" for i in range(1, 10_001)]
    final = FinalReports(ids, "mnc")
    final.absorb(
        frame(*[report(rid, 200 if i % 50 else 300) for i, rid in enumerate(ids) if i % 3], report_type="mnc")
    )
    state = final.to_json()
    text = json.dumps(state)
    assert len(final) == 6_666 and final.pending()[:2] == ids[0:1] + ids[3:4]
    assert len(state["final"]) == 1_668  # a bitmap: 10,000 bits in base64
    assert len(text) < 1_668 + 200 + 60 * len(final.failed())
    assert "+393331230001" not in text and "+39333****001" in text
    restored = FinalReports.from_json(json.loads(text), ids, "mnc")
    assert restored.to_json() == state
    assert restored.pending() == final.pending()
    assert restored.failed() == final.failed() and restored.counts() == final.counts()


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"report_type": "notify"},
        {"request_ids_sha256": "0" * 16},
        {"final": "not base64!"},
        {"final": ""},
        {"by_status": ["200"]},
        {"failed": [["B", 1, "+39333****001", 300]]},
        {"failed": [["B", 1, "+39333****001", 300, "text"]]},
    ],
)
def test_final_reports_refuse_a_state_that_is_not_this_batchs(change):
    final = FinalReports(["A", "B"], "mnc")
    final.absorb(frame(report("A", 300), report("B", 100), report_type="mnc"))
    with pytest.raises(SmSendValidationError, match="start over"):
        FinalReports.from_json({**final.to_json(), **change}, ["A", "B"], "mnc")
    with pytest.raises(SmSendValidationError, match="another set of request ids"):
        FinalReports.from_json(final.to_json(), ["B", "A"], "mnc")
    with pytest.raises(SmSendValidationError):
        FinalReports.from_json(None, ["A", "B"], "mnc")


def test_validate_concurrency():
    assert validate_concurrency(1) == 1 and validate_concurrency(64) == 64
    for value in ("8", 8.0, True, None):
        with pytest.raises(TypeError, match="integer from 1 to 64"):
            validate_concurrency(value)
    for value in (0, -1, 65):
        with pytest.raises(ValueError, match="from 1 to 64"):
            validate_concurrency(value)


def test_describe_request_ids():
    assert describe_request_ids(["A", "B"]) == "A, B"
    assert describe_request_ids([f"HTTP{i}" for i in range(10)]) == "10 requests (HTTP0, HTTP1, HTTP2, ...)"
