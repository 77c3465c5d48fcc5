"""Reports: batch-status CSV (queue, notify, mnc) and userlog-get TSV, parsed by header.

Columns are found by name, never by position (NOTES.md). Ids and statuses become ``int``,
numbers stay text with their ``+``, money becomes :class:`~decimal.Decimal`, dates become
timezone-aware datetimes in Europe/Rome. A line that cannot be placed raises
:class:`~airflow_provider_smsend.client.errors.SmSendReportError` naming the line.

Both parsers stream: they take any iterable of lines, so a multi-million-row report is never held
in memory whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from airflow_provider_smsend.client.errors import SmSendReportError

if TYPE_CHECKING:
    import pandas as pd

ROME = ZoneInfo("Europe/Rome")
_CREDIT = re.compile(r"^-?\d{1,14}(?:[.,]\d{1,4})?$")

#: Expected columns per batch-status report type (schema 1).
BATCH_STATUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "queue": ("id", "dest", "status", "status_text"),
    "notify": ("id", "dest", "status", "status_text"),
    "mnc": ("id", "dest", "status", "netcode", "status_text"),
}
#: Expected columns per userlog type (the sandbox's, NOTES.md; the gateway does not document them).
USERLOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "credits": ("id", "date", "u_id", "username", "bill_id", "credit"),
    "recv_add": ("id", "date", "u_id", "username", "dest", "sharecode"),
    "recv_del": ("id", "date", "u_id", "username", "dest", "sharecode"),
}


def status_class(status: int) -> str:
    """``"pending"`` (1xx), ``"success"`` (2xx), ``"failure"`` (3xx) or ``"unknown"``."""
    return {1: "pending", 2: "success", 3: "failure"}.get(status // 100, "unknown")


@dataclass(frozen=True)
class BatchStatusRow:
    """One message (or number check) of a batch-status report.

    :param id: the gateway's message id.
    :param dest: the recipient, as text with its ``+``.
    :param status: 1xx pending, 2xx success, 3xx failure.
    :param status_text: the gateway's text (``Delivered``, ``Unknown subscriber``...).
    :param netcode: mnc reports only: the network name for 2xx rows.
    """

    id: int
    dest: str
    status: int
    status_text: str
    netcode: str | None = None

    @property
    def state(self) -> str:
        """``pending``, ``success``, ``failure`` or ``unknown`` from the status class."""
        return status_class(self.status)


@dataclass(frozen=True)
class BatchStatusReport:
    """A parsed batch-status report.

    :param request_id: the request id the report is for.
    :param report_type: ``queue``, ``notify`` or ``mnc``.
    :param rows: the report's rows.
    """

    request_id: str
    report_type: str
    rows: list[BatchStatusRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows per state: ``{"pending": n, "success": n, "failure": n}`` (states present only)."""
        return dict(Counter(row.state for row in self.rows))

    def to_dataframe(self) -> pd.DataFrame:
        """The rows as a DataFrame with exact dtypes (Int64 ids/statuses, string numbers)."""
        import pandas as pd

        columns = BATCH_STATUS_COLUMNS[self.report_type]
        frame = pd.DataFrame([asdict(r) for r in self.rows], columns=list(columns))
        return frame.astype({"id": "Int64", "status": "Int64", "dest": "string", "status_text": "string"})


@dataclass(frozen=True)
class UserlogEntry:
    """One back-office operation of a userlog-get report.

    :param id: the operation id.
    :param date: when it happened (aware, Europe/Rome).
    :param u_id: the client id.
    :param username: the client's username.
    :param bill_id: ``credits`` only: the tariff.
    :param credit: ``credits`` only: the amount assigned, exact.
    :param dest: ``recv_add``/``recv_del`` only: the reception number.
    :param sharecode: ``recv_add``/``recv_del`` only: the share code.
    :param extra: columns the report had beyond the expected ones, as text.
    """

    id: int
    date: dt.datetime
    u_id: int
    username: str
    bill_id: int | None = None
    credit: Decimal | None = None
    dest: str | None = None
    sharecode: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _split(line: str, delimiter: str, line_no: int) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter, skipinitialspace=False))
    except csv.Error as exc:  # e.g. a bare CR inside the line
        raise SmSendReportError(f"Line {line_no} is not valid CSV ({exc}): {line[:80]!r}.", line=line_no) from None


def _lines(lines: Iterable[str | bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        if text.strip():
            yield number, text


def _records(
    lines: Iterable[str | bytes], delimiter: str, expected: tuple[str, ...], what: str
) -> Iterator[tuple[int, str, dict[str, int]]]:
    """Yield ``(line number, line, column index)`` for each data line, after checking the header.

    :raises SmSendReportError: if the gateway answered ``KO`` instead, the header lacks a column,
        or there is no header at all.
    """
    index: dict[str, int] | None = None
    for line_no, line in _lines(lines):
        if index is None:
            index = _header(line_no, line, delimiter, expected, what)
            continue
        yield line_no, line, index
    if index is None:
        raise _no_header(what)


def _no_header(what: str) -> SmSendReportError:
    """The error of a report with no header line (only blank lines, or nothing)."""
    return SmSendReportError(f"{what} is empty: no header line.", line=1)


def _header(line_no: int, line: str, delimiter: str, expected: tuple[str, ...], what: str) -> dict[str, int]:
    """The column index of a report's header: its first non-blank line, ``line``.

    :raises SmSendReportError: the gateway answered ``KO`` instead, or a column is missing or repeated.
    """
    if line.lstrip().startswith("KO"):
        raise SmSendReportError(f"{what}: the gateway answered {line.strip()!r} instead of a report.", line=1)
    names = [name.strip().lower() for name in _split(line, delimiter, line_no)]
    missing = [c for c in expected if c not in names]
    if missing:
        raise SmSendReportError(
            f"{what} header on line {line_no} lacks column(s) {', '.join(missing)}: got {names!r}.",
            line=line_no,
        )
    if len(set(names)) != len(names):
        raise SmSendReportError(f"{what} header on line {line_no} repeats a column: {names!r}.", line=line_no)
    return {name: i for i, name in enumerate(names)}


def _int(value: str, column: str, line_no: int, what: str) -> int:
    token = value.strip()
    digits = token[1:] if token.startswith("-") else token
    if not (digits.isascii() and digits.isdigit()):
        raise SmSendReportError(f"{what} line {line_no}: column {column!r} is not an integer: {token!r}.", line=line_no)
    try:
        return int(token)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise SmSendReportError(
            f"{what} line {line_no}: column {column!r} is not a usable integer: {token[:80]!r}.", line=line_no
        ) from None


def iter_batch_status(lines: Iterable[str | bytes], report_type: str) -> Iterator[BatchStatusRow]:
    """Parse a batch-status CSV report line by line.

    A short mnc row (``9187,+393339999999,200, TIM``: four fields under the five-column header)
    carries the network name in its fourth field when the status is 2xx, and the status text
    otherwise (NOTES.md decision); values are stripped.

    :raises SmSendReportError: on a missing header, a wrong column count, or a bad value.
    """
    if report_type not in BATCH_STATUS_COLUMNS:
        raise SmSendReportError(f"Unknown batch-status report type {report_type!r}.")
    what = f"batch-status {report_type} report"
    expected = BATCH_STATUS_COLUMNS[report_type]
    for line_no, line, index in _records(lines, ",", expected, what):
        # Plain lines (no quotes) split directly; the csv module only for quoted fields.
        raw = line.split(",") if '"' not in line and "\r" not in line else _split(line, ",", line_no)
        fields = [f.strip() for f in raw]
        width = len(index)
        netcode: str | None = None
        if len(fields) == width:
            get = {name: fields[i] for name, i in index.items()}
            status = _int(get["status"], "status", line_no, what)
            status_text = get["status_text"]
            if report_type == "mnc":
                netcode = get["netcode"] or None
        elif report_type == "mnc" and len(fields) == width - 1 and index["status_text"] == width - 1:
            # Ragged row: netcode/status_text share the fourth field.
            get = {name: fields[i] for name, i in index.items() if i < width - 1}
            status = _int(get["status"], "status", line_no, what)
            fourth = fields[index["netcode"]] if index["netcode"] < width - 1 else ""
            if status_class(status) == "success":
                netcode, status_text = fourth or None, fourth
            else:
                status_text = fourth
        else:
            raise SmSendReportError(
                f"{what} line {line_no} has {len(fields)} field(s), expected {width}: {line[:80]!r}.", line=line_no
            )
        dest = get["dest"]
        if not dest:
            raise SmSendReportError(f"{what} line {line_no}: empty dest.", line=line_no)
        yield BatchStatusRow(
            id=_int(get["id"], "id", line_no, what),
            dest=dest,
            status=status,
            status_text=status_text,
            netcode=netcode,
        )


def parse_batch_status(text: str, report_type: str, *, request_id: str = "") -> BatchStatusReport:
    """Parse a whole batch-status report held in memory."""
    rows = list(iter_batch_status(text.splitlines(), report_type))
    return BatchStatusReport(request_id=request_id, report_type=report_type, rows=rows)


def parse_rome_datetime(value: str, *, line: int | None = None) -> dt.datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS`` (Europe/Rome local) or ISO 8601 into an aware datetime."""
    token = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(token)
    except ValueError as exc:
        raise SmSendReportError(f"Line {line}: invalid date {token!r}.", line=line) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ROME)
    return parsed


def iter_userlog(lines: Iterable[str | bytes], log_type: str) -> Iterator[UserlogEntry]:
    """Parse a userlog-get TSV report (header first, tab-separated, CR LF line ends) line by line.

    :raises SmSendReportError: on a missing header, a wrong column count, or a bad value.
    """
    if log_type not in USERLOG_COLUMNS:
        raise SmSendReportError(f"Unknown userlog type {log_type!r}.")
    what = f"userlog {log_type} report"
    expected = USERLOG_COLUMNS[log_type]
    for line_no, line, index in _records(lines, "\t", expected, what):
        fields = line.split("\t")
        if len(fields) != len(index):
            raise SmSendReportError(
                f"{what} line {line_no} has {len(fields)} field(s), expected {len(index)}: {line[:80]!r}.",
                line=line_no,
            )
        get = {name: fields[i].strip() for name, i in index.items()}
        extra = {name: value for name, value in get.items() if name not in expected}
        credit: Decimal | None = None
        if "credit" in expected:
            # Plain decimals only (``12.3456``, ``12,3456``): no exponent, no NaN, nothing a
            # NUMERIC(18,4) column could not hold.
            if not _CREDIT.match(get["credit"]):
                raise SmSendReportError(f"{what} line {line_no}: invalid credit {get['credit']!r}.", line=line_no)
            credit = Decimal(get["credit"].replace(",", "."))
        yield UserlogEntry(
            id=_int(get["id"], "id", line_no, what),
            date=parse_rome_datetime(get["date"], line=line_no),
            u_id=_int(get["u_id"], "u_id", line_no, what),
            username=get["username"],
            bill_id=_int(get["bill_id"], "bill_id", line_no, what) if "bill_id" in expected else None,
            credit=credit,
            dest=get.get("dest") if "dest" in expected else None,
            sharecode=get.get("sharecode") if "sharecode" in expected else None,
            extra=extra,
        )


def userlog_to_dataframe(entries: Iterable[UserlogEntry], log_type: str) -> pd.DataFrame:
    """Userlog entries as a DataFrame of the expected columns (dates aware, credit as Decimal objects)."""
    import pandas as pd

    columns = list(USERLOG_COLUMNS[log_type])
    frame = pd.DataFrame([{c: getattr(e, c) for c in columns} for e in entries], columns=columns)
    return frame.astype({"id": "Int64", "u_id": "Int64", "username": "string"})
