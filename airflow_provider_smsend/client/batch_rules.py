"""When is a batch "done"? Success rules over batch-status reports, with no Airflow inside.

The batch-status sensor (poke and reschedule modes) and its trigger (deferrable mode) poll alike:
they fetch the reports of :meth:`FinalReports.pending` ids only (one request per id), let
:meth:`FinalReports.absorb` keep what became final, and decide with :func:`evaluate`, so the
three modes decide, summarize and log exactly alike. A rule is one of:

- ``"all_terminal"``: every row left the pending class (1xx), whatever the outcome;
- ``"all_delivered"``: every row is 2xx; a single failure makes it unreachable;
- a float in ``(0, 1]``: at least that share of the rows is 2xx (``0.95``).

Example::

    from airflow_provider_smsend.client.batch_rules import FinalReports, evaluate

    final = FinalReports(["HTTP00000000111", "HTTP00000000112"], "notify")
    frame = client.batch_status_frame(final.pending(), "notify")
    final.absorb(frame)
    verdict = evaluate(frame, 0.9, final=final)
    if verdict.state == "satisfied":
        print(verdict.summary["delivered_ratio"])

Decisions (the gateway documents only 1xx, 2xx and 3xx): a status outside those classes counts as
a terminal non-delivery, listed with the failed rows. A request id whose report has no rows yet
is "not known yet": no rule is satisfied until every request id has rows. A report is final once
it has rows and none is pending: it will not change any more, so it is never fetched again.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import mask_number
from airflow_provider_smsend.client.reports import status_class
from airflow_provider_smsend.client.validation import parse_list_text

if TYPE_CHECKING:
    import pandas as pd

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


#: Reports fetched at once by the sensor and the trigger (a campaign has one request id per message).
FETCH_CONCURRENCY = 16
#: The most reports a sensor or trigger fetches at once (each holds one gateway connection).
MAX_FETCH_CONCURRENCY = 64


def validate_concurrency(concurrency: object) -> int:
    """Check a fetch concurrency: an integer from 1 to :data:`MAX_FETCH_CONCURRENCY`.

    :raises TypeError: not an integer (``"8"``, ``8.0``, ``True``).
    :raises ValueError: out of range.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(
            f"concurrency must be an integer from 1 to {MAX_FETCH_CONCURRENCY}, got "
            f"{type(concurrency).__name__} {concurrency!r}."
        )
    if not 1 <= concurrency <= MAX_FETCH_CONCURRENCY:
        raise ValueError(
            f"concurrency must be from 1 to {MAX_FETCH_CONCURRENCY} (reports fetched at once), "
            f"got {concurrency!r}."
        )
    return concurrency


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


#: The fields of a failed row, in the order :meth:`FinalReports.to_json` writes them.
FAILED_ROW_FIELDS = ("request_id", "id", "dest", "status", "status_text")
#: Version of the :meth:`FinalReports.to_json` layout.
FINAL_REPORTS_VERSION = 1


class FinalReports:
    """The request ids whose reports are final, and what their rows add to the summary.

    It is what a batch's polls have learnt for good: a final report (rows, none pending) never
    changes, so its request id is not fetched again and only its counts per status code and its
    failed rows (``dest`` masked) are kept, not its rows. :meth:`to_json` gives it as a small
    JSON-able dict that :meth:`from_json` reads back (task state, trigger kwargs); for 10,000
    request ids the final ones take a 1,668-character bitmap (1.8 KB in all), plus about 70 bytes per
    failed row.

    :param request_ids: every request id of the batch, in order (the summary keeps this order).
    :param report_type: ``queue``, ``notify`` or ``mnc``.

    Example::

        final = FinalReports(ids, "notify")
        frame = client.batch_status_frame(final.pending(), "notify")  # only ids still moving
        final.absorb(frame)                                           # remember the final ones
        state = final.to_json()                                       # for the next process
        final = FinalReports.from_json(state, ids, "notify")
    """

    def __init__(self, request_ids: Sequence[str], report_type: str) -> None:
        self.request_ids = list(request_ids)
        self.report_type = report_type
        self._positions = {rid: i for i, rid in enumerate(self.request_ids)}
        self._final: set[int] = set()
        self._by_status: Counter[int] = Counter()
        self._failed: list[dict[str, Any]] = []

    def __len__(self) -> int:
        """How many request ids are final."""
        return len(self._final)

    def pending(self) -> list[str]:
        """The request ids to fetch at the next poll: those whose report may still change."""
        final = self._final
        return [rid for i, rid in enumerate(self.request_ids) if i not in final]

    def is_final(self, request_id: str) -> bool:
        """True when the report of ``request_id`` is final (it will not be fetched again)."""
        return self._positions.get(request_id) in self._final

    def absorb(self, frame: pd.DataFrame) -> int:
        """Keep the counts and failed rows of the reports in ``frame`` that are final; return how many.

        :param frame: batch-status rows (:func:`~airflow_provider_smsend.client.reports.read_batch_status`)
            of pending request ids; rows of ids already final or not in the batch are ignored.
        """
        rows = _Rows(frame)
        moving = set(rows.request_ids(rows.classes == 1))
        new = {
            rid
            for rid in dict.fromkeys(rows.request_id)
            if rid not in moving and rid in self._positions and self._positions[rid] not in self._final
        }
        if not new:
            return 0
        mine = rows.of(new)
        self._by_status.update(rows.counts(mine))
        self._failed = self._ordered([*self._failed, *rows.failed(mine)])
        self._final.update(self._positions[rid] for rid in new)
        return len(new)

    def _ordered(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Failed rows in the order of the batch's request ids (stable: report order within an id)."""
        return sorted(rows, key=lambda row: self._positions.get(row["request_id"], len(self._positions)))

    def counts(self) -> Counter[int]:
        """Rows of the final reports per status code."""
        return Counter(self._by_status)

    def failed(self) -> list[dict[str, Any]]:
        """The failed rows of the final reports (``dest`` masked), in request id order."""
        return [dict(row) for row in self._failed]

    # ------------------------------------------------------------------ JSON

    def _digest(self) -> str:
        text = "\n".join([self.report_type, *self.request_ids])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-able dict: ``version``, ``report_type``, ``request_ids_sha256`` (which
        batch it is for), ``final`` (a base64 bitmap over ``request_ids``: bit ``i`` set, the report
        of ``request_ids[i]`` is final), ``by_status`` (their rows per status code) and ``failed``
        (their failed rows as lists of :data:`FAILED_ROW_FIELDS`, ``dest`` masked)."""
        bits = bytearray((len(self.request_ids) + 7) // 8)
        for i in self._final:
            bits[i >> 3] |= 1 << (i & 7)
        return {
            "version": FINAL_REPORTS_VERSION,
            "report_type": self.report_type,
            "request_ids_sha256": self._digest(),
            "final": base64.b64encode(bytes(bits)).decode("ascii"),
            "by_status": {str(code): n for code, n in sorted(self._by_status.items())},
            "failed": [[row[name] for name in FAILED_ROW_FIELDS] for row in self._failed],
        }

    @classmethod
    def from_json(cls, data: object, request_ids: Sequence[str], report_type: str) -> FinalReports:
        """Read back :meth:`to_json` for the same request ids and report type.

        :raises SmSendValidationError: ``data`` is not such a state, or is another batch's.
        """
        final = cls(request_ids, report_type)

        def bad(why: str) -> SmSendValidationError:
            return SmSendValidationError(f"Not the final-report state of this batch ({why}): start over.")

        if not isinstance(data, Mapping) or data.get("version") != FINAL_REPORTS_VERSION:
            raise bad(f"version {data.get('version') if isinstance(data, Mapping) else data!r}")
        if data.get("report_type") != report_type or data.get("request_ids_sha256") != final._digest():
            raise bad(f"it is for another set of request ids or report type than {report_type!r}")
        try:
            bits = base64.b64decode(str(data["final"]), validate=True)
            if len(bits) != (len(final.request_ids) + 7) // 8:
                raise ValueError("bitmap length")
            final._final = {i for i in range(len(final.request_ids)) if bits[i >> 3] >> (i & 7) & 1}
            final._by_status = Counter({int(code): int(n) for code, n in dict(data["by_status"]).items()})
            rows = [dict(zip(FAILED_ROW_FIELDS, row, strict=True)) for row in data["failed"]]
            for row in rows:
                row["dest"] = mask_number(str(row["dest"]))
                if not final.is_final(str(row["request_id"])):
                    raise ValueError(f"failed row of a request id not final: {row['request_id']!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(str(exc)) from None
        final._failed = final._ordered(rows)
        return final


class _Rows:
    """The columns of a batch-status frame a poll counts with, as NumPy arrays (one conversion)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        import numpy as np

        self.frame = frame
        self.request_id: list[str] = frame["request_id"].to_numpy(dtype=object).tolist()
        self.status = frame["status"].to_numpy(dtype=np.int64)
        self.classes = self.status // 100

    def request_ids(self, mask: Any) -> list[str]:
        """The request id of each row where ``mask`` is true."""
        return [rid for rid, keep in zip(self.request_id, mask.tolist(), strict=True) if keep]

    def of(self, request_ids: set[str]) -> Any:
        """A row mask: the rows of ``request_ids``."""
        import numpy as np

        return np.fromiter((rid in request_ids for rid in self.request_id), bool, len(self.request_id))

    def counts(self, mask: Any) -> dict[int, int]:
        """Rows per status code where ``mask`` is true."""
        import numpy as np

        codes, counts = np.unique(self.status[mask], return_counts=True)
        return dict(zip(codes.tolist(), counts.tolist(), strict=True))

    def failed(self, mask: Any) -> list[dict[str, Any]]:
        """The 3xx and unknown-class rows where ``mask`` is true, as summary rows, ``dest`` masked."""
        import numpy as np

        where = np.flatnonzero(mask & (self.classes != 1) & (self.classes != 2))
        if not len(where):
            return []
        rows = self.frame.iloc[where]
        return [
            {"request_id": r, "id": i, "dest": mask_number(d), "status": s, "status_text": t}
            for r, i, d, s, t in zip(
                rows["request_id"].to_numpy().tolist(),
                rows["id"].to_numpy().tolist(),
                rows["dest"].to_numpy().tolist(),
                rows["status"].to_numpy().tolist(),
                rows["status_text"].to_numpy().tolist(),
                strict=True,
            )
        ]


def summarize(frame: pd.DataFrame, final: FinalReports) -> dict[str, Any]:
    """A JSON-able summary of a batch (what the sensor returns to XCom), from ``final`` and ``frame``.

    The rows of final reports are counted from ``final``, the others from ``frame`` (this poll's
    rows of the pending request ids), so the summary is the same whichever poll a report became
    final at, in every mode. Keys: ``request_ids``, ``report_type``, ``total``, ``pending``,
    ``delivered`` (2xx), ``failed_count`` (3xx and unknown classes), ``delivered_ratio`` (0.0 when
    there are no rows), ``by_class`` (counts of ``pending``, ``success``, ``failure``,
    ``unknown``), ``by_status`` (counts per status code, keys as text for JSON), ``failed`` (rows
    with ``request_id``, ``id``, ``dest`` masked, ``status``, ``status_text``, in request id order)
    and ``requests_without_rows``.
    """
    pending_ids = final.pending()
    rows = _Rows(frame)
    moving = rows.of(set(pending_ids))
    by_status = final.counts()
    by_status.update(rows.counts(moving))
    by_class: Counter[str] = Counter({name: 0 for name in STATUS_CLASSES})
    for code, n in by_status.items():
        by_class[status_class(code)] += n
    with_rows = set(rows.request_ids(moving))
    total = sum(by_class.values())
    delivered = by_class["success"]
    return {
        "request_ids": list(final.request_ids),
        "report_type": final.report_type,
        "total": total,
        "pending": by_class["pending"],
        "delivered": delivered,
        "failed_count": by_class["failure"] + by_class["unknown"],
        "delivered_ratio": round(delivered / total, 6) if total else 0.0,
        "by_class": {name: by_class[name] for name in STATUS_CLASSES},
        "by_status": {str(code): by_status[code] for code in sorted(by_status)},
        "failed": final._ordered([*final.failed(), *rows.failed(moving)]),
        "requests_without_rows": [rid for rid in pending_ids if rid not in with_rows],
    }


def required_delivered(ratio: float, total: int) -> int:
    """Rows that must be 2xx for ``ratio`` of ``total`` (0.9 of 10 is 9; 0.95 of 10 is 10)."""
    return max(1, math.ceil(ratio * total - _EPSILON)) if total else 1


def evaluate(
    frame: pd.DataFrame, rule: object, *, final: FinalReports, fail_fast: bool = True
) -> BatchVerdict:
    """Decide whether ``rule`` holds for a batch: its final reports and this poll's ``frame``.

    :param frame: this poll's batch-status rows of the ids ``final`` lists as pending.
    :param rule: ``"all_terminal"``, ``"all_delivered"`` or a ratio in ``(0, 1]``.
    :param final: the batch's final reports (see :class:`FinalReports`).
    :param fail_fast: stop with ``failed`` as soon as the rule can no longer hold (an undelivered
        row under ``all_delivered``; too many failures for the ratio). When False, ``failed`` comes
        only once every row is final.
    """
    parsed = parse_success_rule(rule)
    summary = summarize(frame, final)
    total, pending, delivered = summary["total"], summary["pending"], summary["delivered"]
    failures = summary["failed_count"]
    all_known = not summary["requests_without_rows"] and bool(final.request_ids)
    done = all_known and pending == 0

    state: VerdictState
    if parsed == ALL_TERMINAL:
        if done:
            state, reason = (
                "satisfied",
                f"all {total} row(s) are final: {delivered} delivered, {failures} not.",
            )
        else:
            state, reason = "pending", _pending_reason(summary)
    elif parsed == ALL_DELIVERED:
        if all_known and delivered == total:
            state, reason = "satisfied", f"all {total} row(s) delivered."
        elif failures and (fail_fast or done):
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
        elif all_known and delivered + pending < need and (fail_fast or done):
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
        return f"no rows yet for request id(s) {describe_request_ids(summary['requests_without_rows'])}."
    return f"{summary['pending']} of {summary['total']} row(s) still pending."


#: The one log line of a poll, the same in the sensor and the trigger: counts, never a number.
POLL_LOG_FORMAT = (
    "smSend batch %s (%s): %d delivered, %d pending, %d failed of %d row(s); %d request id(s) fetched, "
    "%d already final; rule %s: %s %s"
)


def poll_log(verdict: BatchVerdict, *, fetched: int, already_final: int) -> tuple[Any, ...]:
    """The message and arguments of a poll's log line: ``log.info(*poll_log(verdict, ...))``.

    :param verdict: the poll's verdict.
    :param fetched: request ids fetched at this poll.
    :param already_final: request ids not fetched because their report was final before it.
    """
    summary = verdict.summary
    return (
        POLL_LOG_FORMAT,
        describe_request_ids(summary["request_ids"]),
        summary["report_type"],
        summary["delivered"],
        summary["pending"],
        summary["failed_count"],
        summary["total"],
        fetched,
        already_final,
        summary["rule"],
        verdict.state,
        verdict.reason,
    )


def describe_request_ids(ids: Sequence[str], shown: int = 3) -> str:
    """A short label for logs: the ids themselves when few, else a count and the first ones."""
    if len(ids) <= shown:
        return ", ".join(ids)
    return f"{len(ids)} requests ({', '.join(ids[:shown])}, ...)"


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
    "FETCH_CONCURRENCY",
    "MAX_FETCH_CONCURRENCY",
    "BatchVerdict",
    "FinalReports",
    "describe_request_ids",
    "evaluate",
    "next_poll_interval",
    "normalize_request_ids",
    "parse_success_rule",
    "poll_log",
    "required_delivered",
    "summarize",
    "validate_concurrency",
    "validate_report_type",
]
