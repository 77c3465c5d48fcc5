"""When is a batch "done"? Success rules over batch-status reports, with no Airflow inside.

The batch-status sensor (poke and reschedule modes) and its trigger (deferrable mode) both call
:func:`evaluate`, so the three modes decide exactly alike. A rule is one of:

- ``"all_terminal"``: every row left the pending class (1xx), whatever the outcome;
- ``"all_delivered"``: every row is 2xx; a single failure makes it unreachable;
- a float in ``(0, 1]``: at least that share of the rows is 2xx (``0.95``).

Example::

    from airflow_provider_smsend.client.batch_rules import evaluate

    verdict = evaluate([client.batch_status("HTTP00000000111", "notify")], 0.9)
    if verdict.state == "satisfied":
        print(verdict.summary["delivered_ratio"])

Decisions (the gateway documents only 1xx, 2xx and 3xx): a status outside those classes counts as
a terminal non-delivery, listed with the failed rows. A request id whose report has no rows yet
is "not known yet": no rule is satisfied until every request id has rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.validation import parse_list_text

if TYPE_CHECKING:
    from airflow_provider_smsend.client.reports import BatchStatusReport

ALL_TERMINAL = "all_terminal"
ALL_DELIVERED = "all_delivered"
NAMED_RULES = (ALL_TERMINAL, ALL_DELIVERED)
REPORT_TYPES = ("queue", "notify", "mnc")
#: Status classes counted in every summary, in this order.
STATUS_CLASSES = ("pending", "success", "failure", "unknown")
#: Tolerance when comparing a ratio with a share of rows (0.9 * 10 must require 9 rows, not 10).
_EPSILON = 1e-9

SuccessRule = str | float
VerdictState = Literal["satisfied", "pending", "failed"]


def parse_success_rule(rule: object) -> SuccessRule:
    """Validate a success rule: ``"all_terminal"``, ``"all_delivered"`` or a ratio in ``(0, 1]``.

    A numeric string (``"0.95"``, what a template renders) is accepted as a ratio.

    :raises SmSendValidationError: for anything else.
    """
    if isinstance(rule, str):
        text = rule.strip().lower()
        if text in NAMED_RULES:
            return text
        try:
            rule = float(text)
        except ValueError:
            raise SmSendValidationError(
                f"success_rule must be 'all_terminal', 'all_delivered' or a ratio in (0, 1], got {rule!r}."
            ) from None
    if isinstance(rule, bool) or not isinstance(rule, int | float):
        raise SmSendValidationError(
            f"success_rule must be 'all_terminal', 'all_delivered' or a ratio in (0, 1], got {rule!r}."
        )
    ratio = float(rule)
    if not 0.0 < ratio <= 1.0:
        raise SmSendValidationError(f"A success_rule ratio must be in (0, 1] (e.g. 0.95), got {rule!r}.")
    return ratio


def normalize_request_ids(value: object) -> list[str]:
    """Turn what a user or an upstream XCom gives into a list of request ids.

    Accepts one id (``"HTTP00000000111"``), ids separated by commas, a list/tuple of ids, dicts
    with a ``request_id`` key (a send result pushed to XCom), and the text a template renders for a
    list (``"['HTTP1', 'HTTP2']"``). Empty values are dropped; duplicates are kept once, in order.

    :raises SmSendValidationError: when no id is left, or an item is not text.
    """
    items: list[object]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return normalize_request_ids(parse_list_text(text, name="request_ids"))
        items = [part for part in text.split(",")]
    elif isinstance(value, Mapping):
        items = [value]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise SmSendValidationError(
            f"request_ids must be text or a list of texts, got {type(value).__name__}."
        )
    ids: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            item = item.get("request_id")
        if item is None:
            continue
        if not isinstance(item, str):
            raise SmSendValidationError(f"A request id must be text, got {type(item).__name__}: {item!r}.")
        token = item.strip()
        if token and token not in ids:
            ids.append(token)
    if not ids:
        raise SmSendValidationError(
            f"No request id in {value!r}: send with return_id=1 and pass the ids the gateway answered."
        )
    return ids


def validate_report_type(report_type: object) -> str:
    """Check a batch-status report type: ``queue``, ``notify`` or ``mnc``."""
    if report_type not in REPORT_TYPES:
        raise SmSendValidationError(
            f"report_type must be one of {', '.join(REPORT_TYPES)}, got {report_type!r}."
        )
    return str(report_type)


@dataclass(frozen=True)
class BatchVerdict:
    """The decision on a batch at one poll.

    :param state: ``satisfied`` (stop, success), ``pending`` (poll again) or ``failed`` (stop: the
        rule can no longer hold, or everything is final and it does not).
    :param reason: one English sentence saying why.
    :param summary: the JSON-able summary (see :func:`summarize`), with ``outcome`` and ``reason``.
    """

    state: VerdictState
    reason: str
    summary: dict[str, Any] = field(default_factory=dict)


def summarize(reports: Sequence[BatchStatusReport]) -> dict[str, Any]:
    """A JSON-able summary of one or more reports (what the sensor returns to XCom).

    Keys: ``request_ids``, ``report_type``, ``total``, ``pending``, ``delivered`` (2xx),
    ``failed_count`` (3xx and unknown classes), ``delivered_ratio`` (0.0 when there are no rows),
    ``by_class`` (counts of ``pending``, ``success``, ``failure``, ``unknown``), ``by_status``
    (counts per status code, keys as text for JSON), ``failed`` (rows with ``request_id``, ``id``,
    ``dest``, ``status``, ``status_text``) and ``requests_without_rows``.
    """
    by_class: Counter[str] = Counter({name: 0 for name in STATUS_CLASSES})
    by_status: Counter[int] = Counter()
    failed: list[dict[str, Any]] = []
    without_rows: list[str] = []
    for report in reports:
        if not report.rows:
            without_rows.append(report.request_id)
        for row in report.rows:
            state = row.state
            by_class[state] += 1
            by_status[row.status] += 1
            if state in ("failure", "unknown"):
                failed.append(
                    {
                        "request_id": report.request_id,
                        "id": row.id,
                        "dest": row.dest,
                        "status": row.status,
                        "status_text": row.status_text,
                    }
                )
    total = sum(by_class.values())
    delivered = by_class["success"]
    return {
        "request_ids": [report.request_id for report in reports],
        "report_type": reports[0].report_type if reports else None,
        "total": total,
        "pending": by_class["pending"],
        "delivered": delivered,
        "failed_count": by_class["failure"] + by_class["unknown"],
        "delivered_ratio": round(delivered / total, 6) if total else 0.0,
        "by_class": {name: by_class[name] for name in STATUS_CLASSES},
        "by_status": {str(code): by_status[code] for code in sorted(by_status)},
        "failed": failed,
        "requests_without_rows": without_rows,
    }


def required_delivered(ratio: float, total: int) -> int:
    """Rows that must be 2xx for ``ratio`` of ``total`` (0.9 of 10 is 9; 0.95 of 10 is 10)."""
    return max(1, math.ceil(ratio * total - _EPSILON)) if total else 1


def evaluate(reports: Sequence[BatchStatusReport], rule: object, *, fail_fast: bool = True) -> BatchVerdict:
    """Decide whether ``rule`` holds for ``reports`` (one per request id).

    :param reports: the latest batch-status report of each request id.
    :param rule: ``"all_terminal"``, ``"all_delivered"`` or a ratio in ``(0, 1]``.
    :param fail_fast: stop with ``failed`` as soon as the rule can no longer hold (an undelivered
        row under ``all_delivered``; too many failures for the ratio). When False, ``failed`` comes
        only once every row is final.
    """
    parsed = parse_success_rule(rule)
    summary = summarize(reports)
    total, pending, delivered = summary["total"], summary["pending"], summary["delivered"]
    failures = summary["failed_count"]
    all_known = not summary["requests_without_rows"] and bool(reports)
    final = all_known and pending == 0

    state: VerdictState
    if parsed == ALL_TERMINAL:
        if final:
            state, reason = (
                "satisfied",
                f"all {total} row(s) are final: {delivered} delivered, {failures} not.",
            )
        else:
            state, reason = "pending", _pending_reason(summary)
    elif parsed == ALL_DELIVERED:
        if all_known and delivered == total:
            state, reason = "satisfied", f"all {total} row(s) delivered."
        elif failures and (fail_fast or final):
            state, reason = (
                "failed",
                f"{failures} of {total} row(s) not delivered: all_delivered cannot hold.",
            )
        else:
            state, reason = "pending", _pending_reason(summary)
    else:
        assert isinstance(parsed, float)
        need = required_delivered(parsed, total)
        if all_known and delivered >= need:
            state, reason = (
                "satisfied",
                f"{delivered} of {total} row(s) delivered, {need} needed for ratio {parsed:g}.",
            )
        elif all_known and delivered + pending < need and (fail_fast or final):
            state, reason = (
                "failed",
                f"at most {delivered + pending} of {total} row(s) can be delivered, {need} needed for "
                f"ratio {parsed:g} ({failures} failed).",
            )
        else:
            state, reason = "pending", _pending_reason(summary)
    summary["rule"] = parsed
    summary["outcome"] = state
    summary["reason"] = reason
    return BatchVerdict(state=state, reason=reason, summary=summary)


def _pending_reason(summary: dict[str, Any]) -> str:
    if summary["requests_without_rows"]:
        return f"no rows yet for request id(s) {', '.join(summary['requests_without_rows'])}."
    return f"{summary['pending']} of {summary['total']} row(s) still pending."


def next_poll_interval(previous: float | None, *, initial: float, maximum: float | None) -> float:
    """Exponential backoff: ``initial``, then twice the previous interval, capped at ``maximum``.

    ``maximum`` below ``initial`` (or None) means no backoff: every interval is ``initial``.
    """
    cap = max(maximum or 0.0, initial)
    if previous is None:
        return initial
    return min(max(previous * 2, initial), cap)


__all__ = [
    "ALL_DELIVERED",
    "ALL_TERMINAL",
    "BatchVerdict",
    "evaluate",
    "next_poll_interval",
    "normalize_request_ids",
    "parse_success_rule",
    "required_delivered",
    "summarize",
    "validate_report_type",
]


#: Reports fetched at once by the sensor and the trigger (a campaign has one request id per message).
FETCH_CONCURRENCY = 16


def is_final(report: BatchStatusReport) -> bool:
    """True when a report has rows and none is pending: it will not change any more."""
    return bool(report.rows) and all(row.status // 100 != 1 for row in report.rows)


def describe_request_ids(ids: Sequence[str], shown: int = 3) -> str:
    """A short label for logs: the ids themselves when few, else a count and the first ones."""
    if len(ids) <= shown:
        return ", ".join(ids)
    return f"{len(ids)} requests ({', '.join(ids[:shown])}, ...)"


class ReportCache:
    """Keeps the reports that became final, so later polls only ask for the others.

    Example::

        cache = ReportCache()
        todo = cache.missing(ids)             # ids whose report may still change
        cache.store(fetched)                  # the reports just read
        reports = cache.reports(ids, fetched) # every id's latest report, in order
    """

    def __init__(self) -> None:
        self._final: dict[str, BatchStatusReport] = {}

    def missing(self, ids: Sequence[str]) -> list[str]:
        """The ids to fetch this time."""
        return [rid for rid in ids if rid not in self._final]

    def store(self, reports: Iterable[BatchStatusReport]) -> None:
        """Remember the final ones among ``reports``."""
        for report in reports:
            if is_final(report):
                self._final[report.request_id] = report

    def reports(self, ids: Sequence[str], fetched: Iterable[BatchStatusReport]) -> list[BatchStatusReport]:
        """The latest report of every id, in the order of ``ids``."""
        latest = {**self._final, **{r.request_id: r for r in fetched}}
        return [latest[rid] for rid in ids]

