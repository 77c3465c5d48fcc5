"""Reports: batch-status CSV (queue, notify, mnc) and userlog-get TSV, parsed through pandas.

One parser per report kind, and every caller goes through it: the transfers (a table load), the
sensor and its trigger (a success rule), the client's typed rows (:class:`BatchStatusReport`,
:class:`UserlogEntry`). A report's bytes are read by Apache Arrow's CSV reader (the engine behind
``pandas.read_csv(engine="pyarrow")``) with every column as raw text, then typed in one vectorised
pass into a :class:`pandas.DataFrame` with Arrow-backed dtypes (docs/gateway.md, "Reports"):

* batch status: ``request_id`` (string), ``id`` (int64), ``dest`` (string, with its ``+``),
  ``status`` (int64), ``status_text`` (string), ``netcode`` (string, ``mnc`` only, else null);
* userlog: ``id``, ``u_id`` (int64), ``date`` (timestamp, UTC), ``username`` (string), then
  ``bill_id`` (int64) and ``credit`` (``decimal128(18, 4)``, exact) for ``credits``, or ``dest``
  and ``sharecode`` for ``recv_add``/``recv_del``; columns beyond those are kept as strings.

Columns are found by name, never by position; values are stripped. Many small reports (a
campaign has one request id per message) are parsed together, one Arrow read per few megabytes;
a big report is parsed in blocks of whole lines, so memory stays bounded
(:func:`iter_batch_status_frames`). Errors:

* a ``KO …`` answer instead of a report raises the typed gateway error;
* an empty body or an HTML page is an :class:`SmSendTransportError`;
* a malformed line (wrong field count, an unclosed quote, a bad integer, an empty ``dest``, a bad
  date or credit) raises :class:`SmSendReportError` naming the report and its line number (the
  first bad line of the report).

Example::

    from airflow_provider_smsend.client.reports import read_batch_status

    frame = read_batch_status([("HTTP1", b"id,dest,status,status_text\\n7,+39333,200,Delivered\\n", None)],
                              "notify")
    frame.loc[0, "dest"]          # '+39333'
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from airflow_provider_smsend.client import answers
from airflow_provider_smsend.client.errors import SmSendReportError, SmSendTransportError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ROME = ZoneInfo("Europe/Rome")

#: Expected columns per batch-status report type (schema 1).
BATCH_STATUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "queue": ("id", "dest", "status", "status_text"),
    "notify": ("id", "dest", "status", "status_text"),
    "mnc": ("id", "dest", "status", "netcode", "status_text"),
}
#: Expected columns per userlog type (the sandbox's, docs/gateway.md; the gateway does not document them).
USERLOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "credits": ("id", "date", "u_id", "username", "bill_id", "credit"),
    "recv_add": ("id", "date", "u_id", "username", "dest", "sharecode"),
    "recv_del": ("id", "date", "u_id", "username", "dest", "sharecode"),
}
#: The columns of a batch-status frame, in order.
BATCH_STATUS_FRAME_COLUMNS = ("request_id", "id", "dest", "status", "status_text", "netcode")
#: Bytes of report lines parsed in one Arrow read (many small reports, or one block of a big one).
BLOCK_BYTES = 4 << 20
#: The longest line a report may have; a longer one (or a body with no line end) is an error.
MAX_LINE_BYTES = 64 << 10
#: The longest text a report field may hold, in characters: the report tables' column sizes
#: (sql/layouts.py uses these). A longer value is a malformed line, refused before any write.
FIELD_LIMITS = {"dest": 32, "status_text": 255, "netcode": 64, "username": 255, "sharecode": 64}
#: Digits an id may have (fits int64) and a status (fits a SQL INTEGER).
_ID_PATTERN = r"^-?[0-9]{1,18}$"
_STATUS_PATTERN = r"^-?[0-9]{1,9}$"
_CREDIT_PATTERN = r"^-?[0-9]{1,14}(?:[.,][0-9]{1,4})?$"
_OFFSET = re.compile(r"(?:[+-]\d\d:?\d\d|Z)$")
_DATE = re.compile(r"\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?)?(?:[+-]\d\d:?\d\d|Z)?")
_PHONE = re.compile(r"\+\d{6,15}")
_HTML = re.compile(rb"^\s*<(?:!doctype|html|\?xml|head|body)", re.IGNORECASE)


def status_class(status: int) -> str:
    """``"pending"`` (1xx), ``"success"`` (2xx), ``"failure"`` (3xx) or ``"unknown"``."""
    return {1: "pending", 2: "success", 3: "failure"}.get(status // 100, "unknown")


# ------------------------------------------------------------------------------- typed rows


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
    """A parsed batch-status report: a typed view over the rows of :func:`read_batch_status`.

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


def reports_from_frame(
    frame: pd.DataFrame, request_ids: Sequence[str], report_type: str
) -> list[BatchStatusReport]:
    """One typed report per request id (in the order of ``request_ids``; no rows: an empty report)."""
    rows: dict[str, list[BatchStatusRow]] = {rid: [] for rid in request_ids}
    for rid, i, d, s, t, n in zip(
        frame["request_id"], frame["id"], frame["dest"], frame["status"], frame["status_text"], frame["netcode"],
        strict=True,
    ):  # fmt: skip
        if rid in rows:
            rows[rid].append(
                BatchStatusRow(id=int(i), dest=str(d), status=int(s), status_text=str(t), netcode=_none(n))
            )
    return [BatchStatusReport(request_id=rid, report_type=report_type, rows=rows[rid]) for rid in request_ids]


@dataclass(frozen=True)
class UserlogEntry:
    """One back-office operation of a userlog-get report: a typed view over :func:`read_userlog`.

    :param id: the operation id.
    :param date: when it happened (aware, UTC).
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


def _none(value: Any) -> Any:
    """None for a missing value (pandas' NA), else the value."""
    import pandas as pd

    return None if value is None or value is pd.NA else value


# ------------------------------------------------------------------------------- reading


@dataclass
class _Part:
    """Whole data lines of one report (header removed), where they start in it."""

    request_id: str
    data: bytes
    first_line: int


@dataclass
class _Header:
    """A report's header: its column names, the line it is on, the encoding of its body."""

    names: list[str]
    line: int
    encoding: str | None


def report_encoding(content_type: str | None) -> str | None:
    """The charset a Content-Type names, if it is a text encoding that keeps ASCII as is (reports
    are split at their line ends before decoding); None: UTF-8, else ISO-8859-1."""
    match = answers.CHARSET.search(content_type or "")
    if not match:
        return None
    try:
        name = codecs.lookup(match.group(1)).name
        if "id,\t\r\n".encode(name) != b"id,\t\r\n":
            return None
        b"\xff".decode(name, "replace")  # a text codec that decodes bytes (not a binary transform)
    except (LookupError, UnicodeError, TypeError, ValueError):
        return None
    return None if name == "utf-8" else name


def _decode(raw: bytes, encoding: str | None) -> str:
    if encoding:
        return raw.decode(encoding, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


class _Kind:
    """What differs between report kinds: the delimiter, quoting, expected columns, typing."""

    def __init__(self, what: str, delimiter: str, expected: tuple[str, ...], *, quoting: bool) -> None:
        self.what = what
        self.delimiter = delimiter
        self.expected = expected
        self.quoting = quoting

    def header(self, body: bytes, content_type: str | None, *, request_id: str = "") -> tuple[_Header, int]:
        """The header of a report body and the offset of its first data line.

        :raises SmSendGatewayError: the body is a ``KO`` answer.
        :raises SmSendTransportError: the body is empty or an HTML page.
        :raises SmSendReportError: the header lacks or repeats a column.
        """
        label = f"{self.what}{f' of {request_id}' if request_id else ''}"
        offset, line_no = 0, 1
        while True:
            end = _line_end(body, offset)
            line = body[offset:end]
            if line.strip() or end >= len(body):
                break
            offset, line_no = _next_line(body, end), line_no + 1
        if not line.strip():
            raise SmSendTransportError(f"The gateway answered the {label} with an empty body.")
        encoding = report_encoding(content_type)
        text = _decode(line, encoding).strip()
        answers.raise_for_ko(text)
        if _HTML.match(line):
            raise SmSendTransportError(
                f"The gateway answered the {label} with an HTML page instead of a report: check the "
                "connection's host and scheme."
            )
        names = self._names(line, line_no, label)
        return _Header(names=names, line=line_no, encoding=encoding), _next_line(body, end)

    #: Header lines already read, per delimiter and expected columns (a campaign's reports share one).
    _names_cache: dict[tuple[str, tuple[str, ...], bytes], list[str]] = {}

    def _names(self, line: bytes, line_no: int, label: str) -> list[str]:
        key = (self.delimiter, self.expected, line)
        cached = self._names_cache.get(key)
        if cached is not None:
            return cached
        import pyarrow as pa
        import pyarrow.csv as pacsv

        try:
            table = pacsv.read_csv(
                pa.py_buffer(line + b"\n"),
                read_options=pacsv.ReadOptions(use_threads=False, autogenerate_column_names=True),
                parse_options=self._parse_options(None),
                convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False),
            )
            names = [str(v).strip().lower() for v in table.slice(0, 1).to_pylist()[0].values()]
        except (pa.ArrowInvalid, IndexError) as exc:
            raise SmSendReportError(
                f"{label}: header line {line_no} is not valid ({exc}).", line=line_no
            ) from None
        missing = [c for c in self.expected if c not in names]
        if missing:
            raise SmSendReportError(
                f"{label}: header on line {line_no} lacks column(s) {', '.join(missing)}: got {names!r}.",
                line=line_no,
            )
        if len(set(names)) != len(names):
            raise SmSendReportError(
                f"{label}: header on line {line_no} repeats a column: {names!r}.", line=line_no
            )
        if len(self._names_cache) < 256:
            self._names_cache[key] = names
        return names

    def _parse_options(self, handler: Any) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.ParseOptions(
            delimiter=self.delimiter,
            quote_char='"' if self.quoting else False,
            newlines_in_values=False,
            invalid_row_handler=handler,
        )

    # ---------------------------------------------------------------------- one block

    def read(self, header: _Header, parts: Sequence[_Part], *, threads: bool = False) -> pa.Table:
        """Parse whole data lines of one or more reports sharing ``header`` into raw text columns.

        Adds ``request_id`` and the typed columns via :meth:`typed`.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        names = header.names
        width = len(names)
        skipped: dict[int, str] = {}
        bad: list[tuple[int, int, str]] = []

        def handler(row: Any) -> str:
            text = row.text or ""
            if not text.strip():
                skipped[row.number or 0] = ""  # a line of spaces: skipped like a blank line
            elif self.ragged_ok(names, row.actual_columns):
                skipped[row.number or 0] = text
            else:
                bad.append((row.number or 0, row.actual_columns, text))
            return "skip"

        buffer = parts[0].data if len(parts) == 1 else b"".join(p.data for p in parts)
        if not buffer or buffer.isspace():
            return _empty(self)
        if header.encoding is None:
            buffer, parts = _as_utf8(buffer, parts)
        read_options = pacsv.ReadOptions(
            column_names=names, use_threads=threads, block_size=max(1 << 20, min(len(buffer) + 1, 64 << 20)),
            encoding=header.encoding or "utf8",
        )  # fmt: skip
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        try:
            table = pacsv.read_csv(
                pa.py_buffer(buffer), read_options=read_options,
                parse_options=self._parse_options(handler), convert_options=convert,
            )  # fmt: skip
        except pa.ArrowInvalid as exc:
            raise SmSendReportError(f"{self.what} could not be read: {exc}") from None
        if threads and (bad or skipped):  # row numbers are known only to a serial read
            return self.read(header, parts, threads=False)
        locate = _Locator(parts, skipped, bad)
        if bad:
            number, actual, text = bad[0]
            request_id, line = locate.row_number(number)
            raise self.error(
                request_id, line,
                f"has {actual} field(s), expected {width}" if '"' not in text or not self.quoting
                else f"has an unclosed quote or {actual} field(s), expected {width}",
                text,
            )  # fmt: skip
        columns = {n: _text(table.column(n), strip=False) for n in names}
        if self.quoting and b'"' in buffer:  # only a quoted value can hold a line break
            self.single_line(columns, locate)
        columns = {n: _strip(v) for n, v in columns.items()}
        # The short rows (mnc) join the others first, so that every rule below checks them too.
        extra = self.ragged_rows(names, skipped, locate, columns)
        if b"\x00" in buffer:
            self.no_nul(columns, locate)
        self.bounded(columns, locate)
        return self.typed(columns, locate, len(table), extra)

    def no_nul(self, columns: dict[str, pa.Array], locate: _Locator) -> None:
        """No value may hold a NUL byte (no SQL text type stores one: PostgreSQL refuses it)."""
        import pyarrow.compute as pc

        for name, values in columns.items():
            found = pc.match_substring(values, "\x00")
            if pc.any(found).as_py():
                self.check(pc.invert(found), locate, f"has a NUL byte (column {name!r})", values)

    def bounded(self, columns: dict[str, pa.Array], locate: _Locator) -> None:
        """No text value may be longer than :data:`FIELD_LIMITS` allows (the tables' column sizes)."""
        import pyarrow.compute as pc

        for name, values in columns.items():
            limit = FIELD_LIMITS.get(name)
            if limit is not None and len(values):
                longest = pc.max(pc.utf8_length(values)).as_py()
                if longest is not None and longest > limit:
                    self.check(
                        pc.less_equal(pc.utf8_length(values), limit),
                        locate,
                        f"has a {name!r} longer than {limit} characters (docs/gateway.md, 'Reports')",
                        values,
                    )

    def ragged_ok(self, names: list[str], actual: int) -> bool:
        """Whether a row of ``actual`` fields is a short row this kind accepts (mnc only)."""
        return False

    def ragged_rows(
        self, names: list[str], skipped: dict[int, str], locate: _Locator, columns: dict[str, pa.Array]
    ) -> int:
        """Append the accepted short rows to ``columns``; returns how many."""
        return 0

    def typed(self, columns: dict[str, pa.Array], locate: _Locator, rows: int, extra: int) -> pa.Table:
        raise NotImplementedError

    def error(self, request_id: str, line: int, problem: str, text: str) -> SmSendReportError:
        """The error of one bad line, named by report and line number; phone numbers in the quoted
        line are masked (they are personal data, and the message reaches task logs)."""
        from airflow_provider_smsend.client.numbers import mask_number

        of = f" of {request_id}" if request_id else ""
        shown = _PHONE.sub(lambda m: mask_number(m.group()), text[:80])
        return SmSendReportError(f"{self.what}{of} line {line} {problem}: {shown!r}.", line=line)

    def check(self, ok: Any, locate: _Locator, problem: str, values: pa.Array) -> None:
        """Raise for the first row where the boolean array ``ok`` is false."""
        import pyarrow.compute as pc

        if not len(ok):
            return
        if ok.null_count or not pc.all(ok).as_py():
            index = max(0, int(pc.index(pc.fill_null(ok, False), False).as_py()))
            request_id, line = locate.row(index)
            raise self.error(request_id, line, problem, str(values[index].as_py()))

    def integers(self, values: pa.Array, name: str, pattern: str, locate: _Locator) -> pa.Array:
        """Stripped digits (an optional ``-``) as int64, within the digits ``pattern`` allows; the
        first bad one raises. Arrow's cast is tried first; the pattern finds the culprit."""
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            result = pc.cast(values, pa.int64())
            limit = 10 ** int(pattern.rsplit(",", 1)[1].split("}")[0])
            bounds = pc.min_max(result).as_py()
            if bounds["min"] is None or (-limit < bounds["min"] and bounds["max"] < limit):
                if not pc.any(pc.starts_with(values, "+")).as_py():
                    return result
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        self.check(
            pc.match_substring_regex(values, pattern), locate, f"column {name!r} is not an integer", values
        )
        return pc.cast(values, pa.int64())

    def single_line(self, columns: dict[str, pa.Array], locate: _Locator) -> None:
        """No value may hold a line break: a quote left open swallowed the line end."""
        import pyarrow.compute as pc

        for name, values in columns.items():
            broken = pc.match_substring_regex(values, r"[\r\n]")
            if pc.any(broken).as_py():
                self.check(pc.invert(broken), locate, f"has an unclosed quote (column {name!r})", values)


def _as_utf8(buffer: bytes, parts: Sequence[_Part]) -> tuple[bytes, Sequence[_Part]]:
    """``buffer`` as UTF-8: as it is when it is (the common case), else each line that is not
    UTF-8 read as ISO-8859-1 (docs/gateway.md: the charset of an answer)."""
    try:
        buffer.decode("utf-8")
        return buffer, parts
    except UnicodeDecodeError:
        pass
    fixed = [
        _Part(
            p.request_id,
            b"\n".join(_decode(line, None).encode("utf-8") for line in p.data.split(b"\n")),
            p.first_line,
        )
        for p in parts
    ]
    return b"".join(p.data for p in fixed), fixed


def _strip(values: Any) -> Any:
    import pyarrow.compute as pc

    return pc.utf8_trim_whitespace(values)


def _text(column: Any, *, strip: bool = True) -> Any:
    """A raw column as (stripped) UTF-8 text (bytes that are not UTF-8 are read as ISO-8859-1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_binary(array.type):
        try:
            array = array.cast(pa.string())
        except pa.ArrowInvalid:
            array = pa.array([_decode(v, None) for v in array.to_pylist()], pa.string())
    return pc.utf8_trim_whitespace(array) if strip else array


class _Locator:
    """Maps a row of a block (or an Arrow row number) back to its report and line number.

    Computed only when needed (an error, or mnc's short rows): it splits the block's lines.
    """

    def __init__(
        self, parts: Sequence[_Part], skipped: dict[int, str], bad: list[tuple[int, int, str]]
    ) -> None:
        self.parts = parts
        self.dropped = set(skipped) | {b[0] for b in bad}
        self._numbers: list[tuple[str, int]] | None = None

    def _all(self) -> list[tuple[str, int]]:
        """(request id, line) of every Arrow row number (1-based: non-empty lines, in order)."""
        if self._numbers is None:
            numbers: list[tuple[str, int]] = []
            for part in self.parts:
                for offset, line in enumerate(part.data.splitlines()):
                    if line:
                        numbers.append((part.request_id, part.first_line + offset))
            self._numbers = numbers
        return self._numbers

    def row_number(self, number: int) -> tuple[str, int]:
        """Report and line of Arrow's row ``number``."""
        found = self._all()
        return found[number - 1] if 0 < number <= len(found) else (self.parts[0].request_id, 0)

    def kept(self) -> list[int]:
        """The Arrow row numbers of the rows the read kept, in order."""
        return [n for n in range(1, len(self._all()) + 1) if n not in self.dropped]

    def row(self, index: int) -> tuple[str, int]:
        """Report and line of the kept row ``index`` (0-based)."""
        kept = self.kept()
        return self.row_number(kept[index]) if 0 <= index < len(kept) else (self.parts[0].request_id, 0)

    def request_ids(self, rows: int) -> Any:
        """The request id of each kept row, as an Arrow array."""
        import pyarrow as pa

        if len(self.parts) == 1 or len({p.request_id for p in self.parts}) == 1:
            return pa.repeat(pa.scalar(self.parts[0].request_id, pa.string()), rows)
        found = self._all()
        return pa.array([found[n - 1][0] for n in self.kept()], pa.string())


class _BatchStatusKind(_Kind):
    def __init__(self, report_type: str) -> None:
        if report_type not in BATCH_STATUS_COLUMNS:
            raise SmSendReportError(f"Unknown batch-status report type {report_type!r}.")
        super().__init__(
            f"batch-status {report_type} report", ",", BATCH_STATUS_COLUMNS[report_type], quoting=True
        )
        self.report_type = report_type

    def ragged_ok(self, names: list[str], actual: int) -> bool:
        # docs/gateway.md: a short mnc row carries the network (2xx) or the status text in field 4.
        return (
            self.report_type == "mnc"
            and actual == len(names) - 1
            and names[-2:] == ["netcode", "status_text"]
        )

    def ragged_rows(
        self, names: list[str], skipped: dict[int, str], locate: _Locator, columns: dict[str, pa.Array]
    ) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        short = sorted((n, t) for n, t in skipped.items() if t)
        if not short:
            return 0
        names_short = names[:-1]
        try:
            table = pacsv.read_csv(
                pa.py_buffer("\n".join(t for _, t in short).encode() + b"\n"),
                read_options=pacsv.ReadOptions(column_names=names_short, use_threads=False),
                parse_options=self._parse_options(None),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names_short}, strings_can_be_null=False
                ),
            )
        except pa.ArrowInvalid as exc:  # pragma: no cover - each text was one row of len(names) - 1 fields
            raise SmSendReportError(f"{self.what}: short rows could not be read: {exc}") from None
        if table.num_rows != len(short):  # a quote in a short row swallowed a line end
            request_id, line = locate.row_number(short[0][0])
            raise self.error(request_id, line, "is a short row that cannot be placed", short[0][1])
        fourth = _text(table.column(names_short[-1]))
        status = _text(table.column("status"))
        self.check(
            pc.match_substring_regex(status, _STATUS_PATTERN),
            _ShortLocator(locate, [n for n, _ in short]), "column 'status' is not an integer", status,
        )  # fmt: skip
        success = pc.equal(pc.divide(pc.cast(status, pa.int64()), 100), 2)
        values = {n: _text(table.column(n)) for n in names_short}
        values["status_text"] = fourth
        values["netcode"] = pc.if_else(
            pc.and_(success, pc.not_equal(fourth, "")), fourth, pa.scalar(None, pa.string())
        )
        # Merge in report order: each kept row and each short row by its Arrow row number.
        kept = locate.kept()
        if len(kept) != len(
            columns[names[0]]
        ):  # line ends Arrow reads otherwise (e.g. LF CR): keep the read's order
            kept = list(range(-len(columns[names[0]]), 0))
        order = pc.sort_indices(pa.array(kept + [n for n, _ in short], pa.int64()))
        for name in names:
            columns[name] = pc.take(pa.concat_arrays([columns[name], values[name].cast(pa.string())]), order)
        locate.dropped -= {n for n, _ in short}
        return len(short)

    def typed(self, columns: dict[str, pa.Array], locate: _Locator, rows: int, extra: int) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        total = rows + extra
        ids = self.integers(columns["id"], "id", _ID_PATTERN, locate)
        dest = columns["dest"]
        self.check(pc.greater(pc.utf8_length(dest), 0), locate, "has an empty dest", columns["id"])
        status = self.integers(columns["status"], "status", _STATUS_PATTERN, locate)
        if "netcode" in columns and self.report_type == "mnc":
            netcode = pc.if_else(
                pc.equal(columns["netcode"], ""), pa.scalar(None, pa.string()), columns["netcode"]
            )
        else:
            netcode = pa.nulls(total, pa.string())
        return pa.table(
            {
                "request_id": locate.request_ids(total),
                "id": ids,
                "dest": dest,
                "status": status,
                "status_text": columns["status_text"],
                "netcode": netcode,
            }
        )


class _ShortLocator(_Locator):
    """Locates the rows of mnc's short-row read (their own Arrow row numbers)."""

    def __init__(self, locate: _Locator, numbers: list[int]) -> None:
        self.base = locate
        self.numbers = numbers

    def row(self, index: int) -> tuple[str, int]:
        return self.base.row_number(self.numbers[index])


class _UserlogKind(_Kind):
    def __init__(self, log_type: str) -> None:
        if log_type not in USERLOG_COLUMNS:
            raise SmSendReportError(f"Unknown userlog type {log_type!r}.")
        super().__init__(f"userlog {log_type} report", "\t", USERLOG_COLUMNS[log_type], quoting=False)
        self.log_type = log_type

    def typed(self, columns: dict[str, pa.Array], locate: _Locator, rows: int, extra: int) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        out: dict[str, Any] = {
            "id": self.integers(columns["id"], "id", _ID_PATTERN, locate),
            "date": self.dates(columns["date"], locate),
            "u_id": self.integers(columns["u_id"], "u_id", _ID_PATTERN, locate),
            "username": columns["username"],
        }
        if self.log_type == "credits":
            out["bill_id"] = self.integers(columns["bill_id"], "bill_id", _ID_PATTERN, locate)
            credit = columns["credit"]
            self.check(
                pc.match_substring_regex(credit, _CREDIT_PATTERN), locate, "has an invalid credit", credit
            )
            out["credit"] = pc.cast(pc.replace_substring(credit, ",", "."), pa.decimal128(18, 4))
        else:
            out["dest"] = columns["dest"]
            out["sharecode"] = columns["sharecode"]
        for name, values in columns.items():
            if name not in out:
                out[name] = values
        return pa.table(out)

    def dates(self, values: pa.Array, locate: _Locator) -> pa.Array:
        """Europe/Rome wall-clock dates (or ISO 8601 with an offset) as UTC instants.

        docs/gateway.md, "Report dates": an ambiguous wall time (the last Sunday of October,
        02:00-02:59, happens twice) is the first of the two instants (summer time, +02:00); a
        time the March change skips (02:00-02:59) is read with the offset before the change
        (+01:00), as Python's ``zoneinfo`` does with ``fold=0``.
        """
        import pandas as pd
        import pyarrow as pa

        if not len(values):
            return pa.array([], pa.timestamp("us", tz="UTC"))
        text = pd.Series(values.to_pandas(), dtype=object)
        offset = text.str.contains(_OFFSET, na=False)
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
        naive = ~offset
        try:
            if naive.any():
                local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
                parsed[naive] = (
                    local.dt.tz_localize(ROME, ambiguous=True, nonexistent=pd.Timedelta(hours=1))
                    .dt.tz_convert("UTC")
                    .astype("datetime64[us, UTC]")
                )
            if offset.any():
                parsed[offset] = pd.to_datetime(
                    text[offset], format="ISO8601", utc=True, errors="coerce"
                ).astype("datetime64[us, UTC]")
        except (ValueError, TypeError, OverflowError):
            parsed[:] = pd.NaT
        shape = text.str.fullmatch(_DATE, na=False)
        ok = pa.array((parsed.notna() & shape).to_numpy(dtype=bool))
        self.check(ok, locate, "has an invalid date", values)
        return pa.array(parsed.dt.tz_convert("UTC"), pa.timestamp("us", tz="UTC"))


class LineGuard:
    """Check, chunk by chunk, that no line of a body is longer than :data:`MAX_LINE_BYTES`.

    :param what: the report's name in the error (``"batch-status report"``).
    """

    def __init__(self, what: str = "The gateway's report") -> None:
        self.what = what
        self._run = 0  # bytes since the last line end

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk; raise :class:`SmSendReportError` on a line over the cap."""
        pos, size, run = 0, len(chunk), self._run
        while True:
            window = pos + MAX_LINE_BYTES - run + 1  # a line end must come before this index
            last = max(chunk.rfind(b"\n", pos, min(window, size)), chunk.rfind(b"\r", pos, min(window, size)))
            if window > size:
                run = run + size - pos if last < 0 else size - last - 1
                break
            if last < 0:
                raise SmSendReportError(
                    f"{self.what} has a line longer than {MAX_LINE_BYTES} bytes: not a gateway report."
                )
            pos, run = last + 1, 0
        if run > MAX_LINE_BYTES:
            raise SmSendReportError(
                f"{self.what} has a line longer than {MAX_LINE_BYTES} bytes: not a gateway report."
            )
        self._run = run


def _line_end(body: bytes, start: int) -> int:
    """The index of the line end at or after ``start`` (len(body) if none)."""
    nl, cr = body.find(b"\n", start), body.find(b"\r", start)
    ends = [i for i in (nl, cr) if i >= 0]
    return min(ends) if ends else len(body)


def _next_line(body: bytes, end: int) -> int:
    """The start of the line after the line end at ``end``."""
    if body[end : end + 2] == b"\r\n":
        return end + 2
    return end + 1


def _lines_in(data: bytes) -> int:
    """Physical lines in whole-line ``data`` (LF, CRLF or CR-only line ends)."""
    return data.count(b"\n") if b"\n" in data else data.count(b"\r")


def _frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame with Arrow-backed dtypes (each column wrapped, not converted)."""
    import pandas as pd

    return pd.DataFrame(
        {name: pd.arrays.ArrowExtensionArray(table.column(name)) for name in table.column_names}, copy=False
    )


def _empty(kind: _Kind) -> pa.Table:
    import pyarrow as pa

    if isinstance(kind, _BatchStatusKind):
        return pa.table(
            {
                "request_id": pa.array([], pa.string()), "id": pa.array([], pa.int64()),
                "dest": pa.array([], pa.string()), "status": pa.array([], pa.int64()),
                "status_text": pa.array([], pa.string()), "netcode": pa.array([], pa.string()),
            }
        )  # fmt: skip
    cols: dict[str, Any] = {
        "id": pa.array([], pa.int64()), "date": pa.array([], pa.timestamp("us", tz="UTC")),
        "u_id": pa.array([], pa.int64()), "username": pa.array([], pa.string()),
    }  # fmt: skip
    if isinstance(kind, _UserlogKind) and kind.log_type == "credits":
        cols["bill_id"] = pa.array([], pa.int64())
        cols["credit"] = pa.array([], pa.decimal128(18, 4))
    else:
        cols["dest"] = pa.array([], pa.string())
        cols["sharecode"] = pa.array([], pa.string())
    return pa.table(cols)


def _iter_groups(kind: _Kind, reports: Iterable[tuple[str, bytes, str | None]]) -> Iterator[pa.Table]:
    """Whole report bodies, grouped into blocks of one header and at most :data:`BLOCK_BYTES`."""
    group: list[_Part] = []
    group_header: tuple[list[str], str | None] | None = None
    size = 0
    for request_id, body, content_type in reports:
        LineGuard(kind.what).feed(body)
        header, start = kind.header(body, content_type, request_id=request_id)
        data = body[start:]
        if data and not data.endswith((b"\n", b"\r")):
            data += b"\n"
        key = (header.names, header.encoding)
        if group and (group_header != key or size + len(data) > BLOCK_BYTES):
            assert group_header is not None
            yield kind.read(_Header(group_header[0], 1, group_header[1]), group, threads=size > (1 << 20))
            group, size = [], 0
        group_header = key
        group.append(_Part(request_id, data, header.line + 1))
        size += len(data)
    if group and group_header is not None:
        yield kind.read(_Header(group_header[0], 1, group_header[1]), group, threads=size > (1 << 20))


def read_batch_status_frames(
    reports: Iterable[tuple[str, bytes, str | None]], report_type: str
) -> Iterator[pd.DataFrame]:
    """Parse whole batch-status reports as they come, a frame per block of them (many small reports
    share one frame); :func:`read_batch_status` is the same, as one frame."""
    kind = _BatchStatusKind(report_type)
    for table in _iter_groups(kind, reports):
        if len(table):
            yield _frame(table)


def _parse_many(kind: _Kind, reports: Iterable[tuple[str, bytes, str | None]]) -> pd.DataFrame:
    tables = [t for t in _iter_groups(kind, reports) if len(t)] or [_empty(kind)]
    return _frame(tables[0] if len(tables) == 1 else _concat(tables))


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    return pa.concat_tables(tables, promote_options="permissive")


def read_batch_status(reports: Iterable[tuple[str, bytes, str | None]], report_type: str) -> pd.DataFrame:
    """Parse whole batch-status reports into one frame (see the module for columns and errors).

    :param reports: ``(request_id, body, Content-Type)`` of each report (the Content-Type's
        charset decodes the body; None: UTF-8, else ISO-8859-1).
    :param report_type: ``queue``, ``notify`` or ``mnc``.
    :raises SmSendReportError: a malformed line (report and line named).
    """
    return _parse_many(_BatchStatusKind(report_type), reports)


def iter_batch_status_frames(
    request_id: str, chunks: Iterable[bytes], report_type: str, *, content_type: str | None = None,
    block_bytes: int | None = None,
) -> Iterator[pd.DataFrame]:  # fmt: skip
    """Parse one (big) batch-status report from byte chunks, a frame per block of whole lines.

    Memory holds one block (``block_bytes``, default :data:`BLOCK_BYTES`) and its frame at a time.

    :raises SmSendReportError: a malformed line, or a line over :data:`MAX_LINE_BYTES`.
    """
    yield from _iter_frames(_BatchStatusKind(report_type), request_id, chunks, content_type, block_bytes)


def _iter_frames(
    kind: _Kind, request_id: str, chunks: Iterable[bytes], content_type: str | None, block_bytes: int | None
) -> Iterator[pd.DataFrame]:
    block_bytes = block_bytes or BLOCK_BYTES
    header: _Header | None = None
    line = 1
    produced = False
    for chunk in _whole_line_blocks(chunks, block_bytes, kind.what):
        if header is None:
            header, start = kind.header(chunk, content_type, request_id=request_id)
            line = header.line + 1
            chunk = chunk[start:]
        if chunk:
            table = kind.read(header, [_Part(request_id, chunk, line)], threads=len(chunk) > (1 << 20))
            line += _lines_in(chunk)
            if len(table):
                produced = True
                yield _frame(table)
    if header is None:
        raise SmSendTransportError(
            f"The gateway answered the {kind.what} of {request_id} with an empty body."
        )
    if not produced:
        yield _frame(_empty(kind))


def _whole_line_blocks(chunks: Iterable[bytes], block_bytes: int, what: str) -> Iterator[bytes]:
    """Re-cut byte chunks into blocks of at least ``block_bytes`` that end at a line end.

    :raises SmSendReportError: a line (or a body with no line end) longer than :data:`MAX_LINE_BYTES`.
    """
    buffer = bytearray()

    def too_long() -> SmSendReportError:
        return SmSendReportError(
            f"{what} has a line longer than {MAX_LINE_BYTES} bytes: not a gateway report."
        )

    for chunk in chunks:
        buffer += chunk
        if len(buffer) < block_bytes:
            continue
        cut = buffer.rfind(b"\n")
        if cut < 0:
            cut = buffer.rfind(b"\r")
        if cut < 0:
            if len(buffer) > MAX_LINE_BYTES:
                raise too_long()
            continue
        yield bytes(buffer[: cut + 1])
        del buffer[: cut + 1]
        if len(buffer) > MAX_LINE_BYTES:
            raise too_long()
    if buffer:
        if len(buffer) > MAX_LINE_BYTES and b"\n" not in buffer and b"\r" not in buffer:
            raise too_long()
        yield bytes(buffer)


def parse_batch_status(text: str | bytes, report_type: str, *, request_id: str = "") -> BatchStatusReport:
    """Parse one whole batch-status report into its typed rows (a view over :func:`read_batch_status`)."""
    body = text.encode("utf-8") if isinstance(text, str) else text
    frame = read_batch_status([(request_id, body, None)], report_type)
    return reports_from_frame(frame, [request_id], report_type)[0]


def iter_userlog_frames(
    chunks: Iterable[bytes], log_type: str, *, content_type: str | None = None, block_bytes: int | None = None
) -> Iterator[pd.DataFrame]:
    """Parse a userlog-get report from byte chunks, a frame per block of whole lines (bounded memory)."""
    yield from _iter_frames(_UserlogKind(log_type), "", chunks, content_type, block_bytes)


def read_userlog(
    body: bytes | Iterable[bytes], log_type: str, *, content_type: str | None = None
) -> pd.DataFrame:
    """Parse a userlog-get TSV report (header first, tab-separated, CR LF line ends) into a frame.

    :param body: the whole answer, or its byte chunks (read in blocks of whole lines).
    :raises SmSendReportError: a malformed line (its line number), a bad date or credit.
    """
    import pandas as pd

    kind = _UserlogKind(log_type)
    chunks = [body] if isinstance(body, bytes | bytearray) else body
    frames = list(_iter_frames(kind, "", chunks, content_type, None))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def userlog_entries(frame: pd.DataFrame, log_type: str) -> list[UserlogEntry]:
    """The typed entries of a userlog frame (dates aware, UTC; credit as :class:`~decimal.Decimal`)."""
    expected = set(USERLOG_COLUMNS[log_type])
    extra_names = [c for c in frame.columns if c not in expected]
    entries = []
    for record in frame.to_dict("records"):
        date = record["date"].to_pydatetime()
        entries.append(
            UserlogEntry(
                id=int(record["id"]), date=date, u_id=int(record["u_id"]), username=str(record["username"]),
                bill_id=int(record["bill_id"]) if "bill_id" in expected else None,
                credit=_none(record.get("credit")), dest=_none(record.get("dest")),
                sharecode=_none(record.get("sharecode")),
                extra={name: str(record[name]) for name in extra_names},
            )
        )  # fmt: skip
    return entries


def parse_rome_datetime(value: str, *, line: int | None = None) -> dt.datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS`` (Europe/Rome local) or ISO 8601 into an aware datetime.

    The same rule as the userlog parser's dates (docs/gateway.md, "Report dates"): an ambiguous
    wall time is the first instant (``fold=0``).
    """
    token = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(token)
    except ValueError as exc:
        raise SmSendReportError(f"Line {line}: invalid date {token!r}.", line=line) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ROME)
    return parsed


def credit_snapshot_frame(balances: Iterable[tuple[int, Decimal]], *, snapshot_date: dt.date) -> pd.DataFrame:
    """credit-get balances as a frame: ``snapshot_date`` (date), ``u_id`` (int64), ``credit`` (decimal128(18, 4))."""
    import pyarrow as pa

    pairs = list(balances)
    table = pa.table(
        {
            "snapshot_date": pa.array([snapshot_date] * len(pairs), pa.date32()),
            "u_id": pa.array([u for u, _ in pairs], pa.int64()),
            "credit": pa.array([c.quantize(Decimal("0.0001")) for _, c in pairs], pa.decimal128(18, 4)),
        }
    )
    return _frame(table)


__all__ = [
    "BATCH_STATUS_COLUMNS",
    "BATCH_STATUS_FRAME_COLUMNS",
    "ROME",
    "USERLOG_COLUMNS",
    "BatchStatusReport",
    "BatchStatusRow",
    "UserlogEntry",
    "credit_snapshot_frame",
    "iter_batch_status_frames",
    "iter_userlog_frames",
    "reports_from_frame",
    "parse_batch_status",
    "parse_rome_datetime",
    "read_batch_status",
    "read_batch_status_frames",
    "read_userlog",
    "report_encoding",
    "status_class",
    "userlog_entries",
]
