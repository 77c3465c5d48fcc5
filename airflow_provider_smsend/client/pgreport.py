"""PostgreSQL's compact layout for batch-status reports: the report's own CSV bytes into ``COPY``.

Airflow-free. A batch-status table that the provider creates in PostgreSQL is three objects:

* ``{table}_loads`` - one row per loaded report: ``load_id`` (identity), ``request_id``,
  ``report_type``, ``loaded_at`` (UTC), ``dag_run_id``, ``row_count``; indexed on
  ``(request_id, report_type)``;
* ``{table}_rows`` - one row per message: ``load_id``, ``id``, ``dest``, ``status``,
  ``status_text``, ``netcode``; a BRIN index on ``load_id`` (rows of one load are written together,
  so a tiny block-range index finds them; ``autosummarize`` keeps it current; once ``replace``
  deletes have freed space that later loads reuse, its ranges widen and finding a load reads
  more pages: correct, slower);
* ``{table}`` - a VIEW joining both, with the columns of the wide layout
  (:data:`~airflow_provider_smsend.client.tables.BATCH_STATUS_TABLE`, ``status_class`` computed
  as :func:`~airflow_provider_smsend.client.reports.status_class` does): what users query.

Why: the per-load values (request id, report type, load time, run id) are stored once per load
instead of once per row, and no B-tree is maintained per row, so the report's lines can go to
PostgreSQL as they came: a block of plain lines (ASCII, no quote, no tab, no lone CR - CRLF lines
become LF lines -, no blank line, no padded field, the header's field count) is sent as is with
``load_id,`` put before each line, in
C-speed byte operations; any other block is parsed line by line by the report parser's own rules
(same errors, same line numbers). The server checks what the cheap checks did not (integers, an
empty ``dest``, lengths); a line it rejects fails the load with the report's line number, and the
whole load rolls back. The error named is the report's first bad line, as with the line parser:
a line the parser rejects ends the ``COPY`` there, so the server's verdict on the lines before it
comes first. One difference with the line parser: the server accepts a ``+`` sign before an id or
status (on PostgreSQL 16+, blocks holding its other integer spellings, ``0x1F`` or ``1_000``, are
parsed).

Example::

    import psycopg
    from airflow_provider_smsend.client.pgreport import CompactBatchStatusLoader

    with psycopg.connect("dbname=warehouse") as conn:
        loader = CompactBatchStatusLoader(conn, "sms_status")
        loader.ensure(create=True)
        with client.stream_batch_status_blocks("HTTP123", "notify") as (chunks, content_type):
            result = loader.load([("HTTP123", chunks, content_type)], "notify", request_ids=["HTTP123"],
                                 loaded_at=dt.datetime.now(dt.UTC), dag_run_id=None)
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import time
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_smsend.client.errors import SmSendReportError
from airflow_provider_smsend.client.reports import (
    BATCH_STATUS_COLUMNS,
    _header,
    _no_header,
    iter_batch_status,
)
from airflow_provider_smsend.client.sqlload import (
    LoadResult,
    TableLayoutError,
    column_names,
    validate_load_mode,
)
from airflow_provider_smsend.client.tables import _slow_record, dialect_for

log = logging.getLogger(__name__)

_DIALECT = dialect_for("postgres")
#: Bytes a plain line may hold besides its newline: printable ASCII.
_PRINTABLE = bytes(range(0x20, 0x7F))
_PADDED = (b" ,", b", ", b" \n", b"\n ")
_COPY_LINE = re.compile(r"\bline (\d+)")
#: A field starting with an integer radix prefix (PostgreSQL 16+ reads ``0x1F`` as 31).
_RADIX = re.compile(rb"(?:^|,)[-+]?0[xXoObB]", re.MULTILINE)
#: The data columns of the rows table, in the view's order.
ROW_COLUMNS = ("id", "dest", "status", "status_text", "netcode")
LOAD_COLUMNS = ("load_id", "request_id", "report_type", "loaded_at", "dag_run_id", "row_count")
VIEW_COLUMNS = (
    "request_id", "report_type", "id", "dest", "status", "status_class", "status_text", "netcode",
    "loaded_at", "dag_run_id",
)  # fmt: skip


class CompactNames:
    """The quoted names of a compact table's objects.

    :param table: the view users query, ``name`` or ``schema.name``.
    """

    #: The longest table name whose objects' names fit PostgreSQL's 63 characters.
    MAX_NAME = 63 - len("_loads_scope")

    @classmethod
    def fits(cls, table: str) -> bool:
        """True if ``table``'s objects (``_rows``, ``_loads``, their indexes) have room for their names."""
        return len(table.rpartition(".")[2]) <= cls.MAX_NAME

    def __init__(self, table: str) -> None:
        _DIALECT.quote(table)  # validates the name
        schema, _, bare = table.rpartition(".")
        if not self.fits(table):
            raise ValueError(
                f"Table name {bare!r} is too long for the compact PostgreSQL layout (at most "
                f"{self.MAX_NAME} characters: {bare}_loads_scope must fit PostgreSQL's 63)."
            )
        prefix = f"{schema}." if schema else ""
        self.table = table
        self.rows_name = f"{prefix}{bare}_rows"
        self.loads_name = f"{prefix}{bare}_loads"
        self.view = _DIALECT.quote(table)
        self.rows = _DIALECT.quote(self.rows_name)
        self.loads = _DIALECT.quote(self.loads_name)
        self.rows_index = _DIALECT.quote(f"{bare}_rows_load")
        self.rows_unique = _DIALECT.quote(f"{bare}_rows_uk")
        self.loads_index = _DIALECT.quote(f"{bare}_loads_scope")


def relation_kind(cursor: Any, name: str) -> str | None:
    """``table``, ``view``, another pg_class kind letter, or None when ``name`` does not exist."""
    # to_regclass parses the quoted form: case and schema are kept as written
    cursor.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", (_DIALECT.quote(name),))
    found = cursor.fetchone()
    if found is None:
        return None
    kind = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
    return {"r": "table", "p": "table", "v": "view"}.get(kind, kind)


def _status_class_sql(column: str) -> str:
    return (
        f"CAST(CASE {column} / 100 WHEN 1 THEN 'pending' WHEN 2 THEN 'success' WHEN 3 THEN 'failure' "
        "ELSE 'unknown' END AS VARCHAR(16))"
    )


def compact_ddl(names: CompactNames) -> list[str]:
    """The statements creating a compact table's objects (``IF NOT EXISTS`` where PostgreSQL has it)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {names.loads} (\n"
        "  load_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "  request_id VARCHAR(64) NOT NULL,\n  report_type VARCHAR(16) NOT NULL,\n"
        "  loaded_at TIMESTAMPTZ NOT NULL,\n  dag_run_id VARCHAR(250),\n  row_count BIGINT NOT NULL DEFAULT 0\n)",
        f"CREATE INDEX IF NOT EXISTS {names.loads_index} ON {names.loads} (request_id, report_type)",
        f"CREATE TABLE IF NOT EXISTS {names.rows} (\n"
        "  load_id BIGINT NOT NULL,\n  id BIGINT NOT NULL,\n  dest VARCHAR(32) NOT NULL,\n"
        "  status INTEGER NOT NULL,\n  status_text VARCHAR(255),\n  netcode VARCHAR(64)\n)",
        f"CREATE INDEX IF NOT EXISTS {names.rows_index} ON {names.rows} USING brin (load_id) "
        "WITH (autosummarize = on)",
        f"CREATE OR REPLACE VIEW {names.view} AS SELECT l.request_id, l.report_type, r.id, r.dest, r.status, "
        f"{_status_class_sql('r.status')} AS status_class, r.status_text, r.netcode, l.loaded_at, l.dag_run_id "
        f"FROM {names.rows} r JOIN {names.loads} l ON l.load_id = r.load_id",
    ]


# ---------------------------------------------------------------------------------- CSV blocks


def is_plain(block: bytes, commas_per_line: int, *, pg16_integers: bool = False) -> bool:
    """True if every line of ``block`` (whole lines, ending with a newline) can go to ``COPY`` as is.

    Plain: printable ASCII only, no quote, no blank line, no field with a leading or trailing
    space, and ``commas_per_line`` commas per line on average (a line with a wrong count that
    this lets through is rejected by the server, with its line number).

    :param pg16_integers: the server is PostgreSQL 16 or later, whose integer input also takes
        ``0x``/``0o``/``0b`` prefixes and ``_`` separators: a block with an ``_`` or a field that
        starts with such a prefix is not plain (the line parser rejects those integers).
    """
    return (
        not block.translate(None, _PRINTABLE).strip(b"\n")
        and b'"' not in block
        and b"\n\n" not in block
        and not block.startswith((b"\n", b" "))
        and not _padded(block)
        and block.count(b",") == commas_per_line * block.count(b"\n")
        and not (pg16_integers and (b"_" in block or _RADIX.search(block) is not None))
    )


def _padded(block: bytes) -> bool:
    """True if a space starts or ends a field of ``block`` (whole lines, not starting with a space)."""
    spaces = block.count(b" ")
    if spaces > len(block) >> 6:  # many spaces: four C-speed searches beat a Python loop
        return any(p in block for p in _PADDED)
    separators = (b",", b"\n")
    at = block.find(b" ")
    while at >= 0:  # spaces are rare in reports: look at each one's neighbours
        if block[at - 1 : at] in separators or block[at + 1 : at + 2] in separators:
            return True
        at = block.find(b" ", at + 1)
    return False


def whole_line_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut byte chunks into blocks of whole lines (each ends with ``\\n``, or with a lone ``\\r``
    when a chunk has no ``\\n``: old-Mac line ends; the last block gets a ``\\n``)."""
    carry = b""
    for chunk in chunks:
        if not chunk:
            continue
        cut = chunk.rfind(b"\n")
        if cut < 0:
            cut = chunk.rfind(b"\r", 0, len(chunk) - 1)  # a CR whose next byte, here, is no LF
            if cut < 0:
                carry += chunk
                continue
        yield carry + chunk[: cut + 1] if carry else chunk[: cut + 1]
        carry = chunk[cut + 1 :]
    if carry:
        yield carry if carry.endswith(b"\n") else carry + b"\n"


def csv_line(values: Iterable[int | str | None]) -> str:
    """One ``COPY (FORMAT csv)`` line: None is NULL (nothing), text is always quoted ("" is empty)."""
    return (
        ",".join(
            "" if v is None else str(v) if isinstance(v, int) else '"' + v.replace('"', '""') + '"'
            for v in values
        )
        + "\n"
    )


class ReportCsv:
    """One batch-status report (byte chunks) as ``COPY ... (FORMAT csv)`` blocks for the rows table.

    :meth:`start` reads up to the header (the first non-blank line; a ``KO`` answer or a header
    without the report type's columns raises :class:`SmSendReportError`); then :attr:`copy_columns`
    names the columns the blocks of :meth:`blocks` hold, and :meth:`report_line` maps a ``COPY``
    line number back to the report's line.

    :param chunks: the report's bytes, in any cut.
    :param report_type: ``queue``, ``notify`` or ``mnc``.
    :param load_id: the value put in front of each row.
    :param content_type: the answer's Content-Type (its charset decodes non-ASCII lines).
    :param encoding: the Python codec of the connection's client encoding (parsed rows are sent in it).
    :param pg16_integers: the server reads PostgreSQL 16's integer syntax (see :func:`is_plain`).
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        report_type: str,
        load_id: int,
        *,
        content_type: str | None = None,
        encoding: str = "utf-8",
        pg16_integers: bool = False,
    ) -> None:
        if report_type not in BATCH_STATUS_COLUMNS:
            raise ValueError(
                f"report_type must be one of {', '.join(BATCH_STATUS_COLUMNS)}, got {report_type!r}."
            )
        self.report_type = report_type
        self.what = f"batch-status {report_type} report"
        self.load_id = int(load_id)
        self.prefix = f"{self.load_id},".encode("ascii")
        self.content_type = content_type
        self.encoding = encoding
        self.pg16_integers = pg16_integers
        #: The parser's error that ended :meth:`blocks`, if one did.
        self.deferred_error: SmSendReportError | None = None
        self._head: list[str] = []  # the decoded lines up to the header, for the line parser
        self._blocks = whole_line_blocks(chunks)
        self._pending: list[bytes] = []
        self._line = 0  # report lines read so far
        self.rows = 0  # COPY lines produced so far
        self.index: dict[str, int] = {}
        self.copy_columns: tuple[str, ...] = ()
        self._fast = False
        # COPY line -> report line: block starts (COPY line numbers) and, per block, the report
        # line of its first row (plain block) or every row's report line (parsed block).
        self._starts: list[int] = []
        self._maps: list[int | array[int]] = []

    def _decode(self, raw: bytes) -> str:
        from airflow_provider_smsend.client.answers import decode_body

        return decode_body(raw, self.content_type).rstrip("\r\n")

    def start(self) -> None:
        """Read up to and including the header; set :attr:`copy_columns`."""
        for block in self._blocks:
            lines = block.splitlines(keepends=True)
            for i, raw in enumerate(lines):
                self._line += 1
                text = self._decode(raw)
                self._head.append(text)
                if not text.strip():
                    continue
                expected = BATCH_STATUS_COLUMNS[self.report_type]
                self.index = _header(self._line, text, ",", expected, self.what)
                rest = b"".join(lines[i + 1 :])
                if rest:
                    self._pending.append(rest)
                self._fast = self.report_type != "mnc" and len(self.index) == len(expected)
                if self._fast:  # the header's own order: plain lines go through untouched
                    self.copy_columns = ("load_id", *sorted(self.index, key=self.index.__getitem__))
                else:
                    self.copy_columns = ("load_id", *ROW_COLUMNS)
                return
        raise _no_header(self.what)

    def _all_blocks(self) -> Iterator[bytes]:
        yield from self._pending
        self._pending.clear()
        yield from self._blocks

    def blocks(self) -> Iterator[bytes]:
        """The ``COPY`` CSV blocks of the report's rows (call :meth:`start` first).

        A line the parser rejects ends the blocks and is kept in :attr:`deferred_error`: the
        server checks the lines already sent when the ``COPY`` ends, and one of those, being
        earlier in the report, is the error to report if it fails (see
        :meth:`CompactBatchStatusLoader._copy`).
        """
        if not self.copy_columns:
            raise RuntimeError("ReportCsv.start() must run before blocks().")
        try:
            yield from self._parsed_report() if not self._fast else self._fast_blocks()
        except SmSendReportError as exc:
            self.deferred_error = exc

    def _fast_blocks(self) -> Iterator[bytes]:
        commas = len(self.index) - 1
        newline_prefix = b"\n" + self.prefix
        for block in self._all_blocks():
            if b"\r" in block:  # CRLF lines (and only those) become LF lines: one newline style per COPY
                crlf = block.count(b"\r\n")
                if crlf == block.count(b"\r") == block.count(b"\n"):
                    block = block.replace(b"\r\n", b"\n")
            if is_plain(block, commas, pg16_integers=self.pg16_integers):
                count = block.count(b"\n")
                self._starts.append(self.rows + 1)
                self._maps.append(self._line + 1)
                self._line += count
                self.rows += count
                yield self.prefix + block[:-1].replace(b"\n", newline_prefix) + b"\n"
            else:
                out, error = self._parsed_block(block)
                if out:
                    yield out
                if error is not None:  # the rows before it went first: the server checks them too
                    raise error

    def _parsed_block(self, block: bytes) -> tuple[bytes, SmSendReportError | None]:
        """A block that is not plain, line by line by the parser's rules, as CSV in header order:
        the rows up to the first line the parser rejects, and its error (None if none)."""
        columns = self.copy_columns[1:]  # the header's order
        out: list[str] = []
        numbers = array("q")
        error = None
        try:
            for raw in block.splitlines():
                self._line += 1
                record = _slow_record(self._line, self._decode(raw), self.index, self.what)
                if record is None:
                    continue
                ident, dest, status, _class, text = record
                values: dict[str, int | str] = {
                    "id": ident,
                    "dest": dest,
                    "status": status,
                    "status_text": text,
                }
                out.append(csv_line([self.load_id, *(values[c] for c in columns)]))
                numbers.append(self._line)
        except SmSendReportError as exc:
            error = exc
        return (self._flush_parsed(out, numbers) if numbers else b""), error

    def _parsed_report(self) -> Iterator[bytes]:
        """mnc reports and headers with extra columns: the report parser, rows as CSV."""

        def lines() -> Iterator[str]:
            yield from self._head  # the parser reads the header again: its line numbers are the report's
            for block in self._all_blocks():
                for raw in block.splitlines():
                    self._line += 1
                    yield self._decode(raw)

        rows = iter_batch_status(lines(), self.report_type)
        out: list[str] = []
        numbers = array("q")
        error = None
        try:
            for row in rows:
                out.append(
                    csv_line([self.load_id, row.id, row.dest, row.status, row.status_text, row.netcode])
                )
                numbers.append(self._line)
                if len(numbers) >= 10_000:
                    yield self._flush_parsed(out, numbers)
                    out, numbers = [], array("q")
        except SmSendReportError as exc:
            error = exc
        if numbers:  # the rows before a rejected line go first: the server checks them too
            yield self._flush_parsed(out, numbers)
        if error is not None:
            raise error

    def _flush_parsed(self, out: list[str], numbers: array[int]) -> bytes:
        self._starts.append(self.rows + 1)
        self._maps.append(numbers)
        self.rows += len(numbers)
        return "".join(out).encode(self.encoding)

    def report_line(self, copy_line: int) -> int | None:
        """The report line of ``COPY`` line ``copy_line`` (1-based), None if it was never sent."""
        if copy_line < 1 or copy_line > self.rows:
            return None
        i = bisect_right(self._starts, copy_line) - 1
        mapping = self._maps[i]
        offset = copy_line - self._starts[i]
        return mapping + offset if isinstance(mapping, int) else mapping[offset]


# ---------------------------------------------------------------------------------- loader


class CompactBatchStatusLoader:
    """Load batch-status reports into a compact PostgreSQL table (see the module), one transaction.

    :param conn: an open psycopg 3 connection; the loader commits or rolls back, never closes it.
    :param table: the view users query (``name`` or ``schema.name``).
    :param logger: where progress goes (default: this module's logger).
    """

    def __init__(self, conn: Any, table: str, *, logger: Any = None) -> None:
        self.conn = conn
        self.names = CompactNames(table)
        self.log = logger or log
        info = getattr(conn, "info", None)
        #: The Python codec of the connection's client encoding: parsed rows are sent in it.
        self.encoding = _client_encoding(conn)
        version = getattr(info, "server_version", None) or getattr(conn, "server_version", 0)
        #: PostgreSQL 16+ reads 0x1F and 1_000 as integers: such blocks go through the parser.
        self.pg16_integers = int(version or 0) >= 160000

    @staticmethod
    def layout(conn: Any, table: str) -> str | None:
        """``compact`` (the view exists), ``wide`` (a table of that name exists) or None (nothing)."""
        cursor = conn.cursor()
        try:
            kind = relation_kind(cursor, table)
        finally:
            conn.rollback()
            cursor.close()
        if kind is None:
            return None
        if kind == "table":
            return "wide"
        if kind == "view":
            return "compact"
        raise TableLayoutError(
            f"{table!r} exists but is neither a table nor a view (pg_class kind {kind!r})."
        )

    def ensure(self, *, create: bool = True, unique_key: bool = False) -> bool:
        """Create the compact objects if missing and check their columns.

        :param unique_key: also ensure the unique index on ``(load_id, id)`` that ``upsert`` needs.
        :returns: True if the view was created.
        :raises TableLayoutError: missing and ``create`` is False, or objects lack columns.
        """
        names = self.names
        cursor = self.conn.cursor()
        created = False
        try:
            kind = relation_kind(cursor, names.table)
            if kind is None:
                if not create:
                    raise TableLayoutError(
                        f"Table {names.table!r} does not exist; set create_table=True to create it."
                    )
                self.log.info(
                    "Creating %s (view) over %s and %s for batch-status reports (PostgreSQL compact layout)",
                    names.table, names.rows_name, names.loads_name,
                )  # fmt: skip
                for statement in compact_ddl(names):
                    cursor.execute(statement)
                created = True
            elif kind != "view":
                raise TableLayoutError(f"{names.table!r} is a {kind}, not the view of a compact layout.")
            for quoted, label, expected in (
                (names.rows, names.rows_name, ("load_id", *ROW_COLUMNS)),
                (names.loads, names.loads_name, LOAD_COLUMNS),
                (names.view, names.table, VIEW_COLUMNS),
            ):
                if relation_kind(cursor, label) is None:
                    raise TableLayoutError(
                        f"{names.table!r} is a view but {label!r} is missing: it is not a compact batch-status "
                        "table of this provider. Use another table name."
                    )
                missing = [c for c in expected if c not in column_names(cursor, quoted)]
                if missing:
                    raise TableLayoutError(f"{label!r} lacks column(s) {', '.join(missing)}.")
            if unique_key:
                cursor.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {names.rows_unique} ON {names.rows} (load_id, id)"
                )
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            cursor.close()
        return created

    def _delete_scope(self, cursor: Any, request_ids: list[str], report_type: str) -> int:
        names = self.names
        cursor.execute(
            f"SELECT load_id FROM {names.loads} WHERE report_type = %s AND request_id = ANY(%s)",
            (report_type, request_ids),
        )
        load_ids = [r[0] for r in cursor.fetchall()]
        if not load_ids:
            return 0
        cursor.execute(f"DELETE FROM {names.rows} WHERE load_id = ANY(%s)", (load_ids,))
        deleted = max(cursor.rowcount or 0, 0)
        cursor.execute(f"DELETE FROM {names.loads} WHERE load_id = ANY(%s)", (load_ids,))
        return deleted

    def _load_id(
        self,
        cursor: Any,
        request_id: str,
        report_type: str,
        mode: str,
        loaded_at: dt.datetime,
        run_id: str | None,
    ) -> int:
        names = self.names
        if mode == "upsert":
            cursor.execute(
                f"SELECT load_id FROM {names.loads} WHERE request_id = %s AND report_type = %s",
                (request_id, report_type),
            )
            found = [r[0] for r in cursor.fetchall()]
            if len(found) > 1:
                raise TableLayoutError(
                    f"Cannot upsert the {report_type} report of {request_id!r}: {names.table!r} holds it "
                    f"{len(found)} times (appended loads). Reload it with load_mode='replace'."
                )
            if found:
                cursor.execute(
                    f"UPDATE {names.loads} SET loaded_at = %s, dag_run_id = %s WHERE load_id = %s",
                    (loaded_at, run_id, found[0]),
                )
                return int(found[0])
        cursor.execute(
            f"INSERT INTO {names.loads} (request_id, report_type, loaded_at, dag_run_id) "
            "VALUES (%s, %s, %s, %s) RETURNING load_id",
            (request_id, report_type, loaded_at, run_id),
        )
        return int(cursor.fetchone()[0])

    def load(
        self,
        reports: Iterable[tuple[str, Iterable[bytes], str | None]],
        report_type: str,
        *,
        request_ids: list[str],
        mode: str = "replace",
        loaded_at: dt.datetime,
        dag_run_id: str | None,
    ) -> LoadResult:
        """Delete the scope (``replace``) and load every report, all in one transaction.

        :param reports: ``(request_id, byte chunks, Content-Type)``, pulled lazily (the chunks may
            be an open HTTP stream; the Content-Type's charset decodes non-ASCII lines).
        :param report_type: ``queue``, ``notify`` or ``mnc``.
        :param request_ids: every request id of the load (the ``replace`` scope).
        :param mode: ``replace``, ``append`` or ``upsert`` (on ``(request_id, report_type, id)``).
        :param loaded_at: the load time, timezone-aware.
        :param dag_run_id: stored with the load.
        :raises SmSendReportError: a malformed line (its report line number); rolled back first.
        """
        validate_load_mode(mode)
        if loaded_at.tzinfo is None:
            raise ValueError("loaded_at must be timezone-aware.")
        names = self.names
        started = time.perf_counter()
        cursor = self.conn.cursor()
        rows = deleted = 0
        try:
            if self.conn.autocommit:
                self.conn.autocommit = False
            if mode == "replace":
                deleted = self._delete_scope(cursor, list(request_ids), report_type)
                self.log.info("Deleted %d row(s) of %s before the reload", deleted, names.table)
            target = names.rows
            if mode == "upsert":
                target = '"smsend_upsert_stage"'
                cursor.execute(f"CREATE TEMP TABLE {target} (LIKE {names.rows}) ON COMMIT DROP")
                cursor.execute(
                    f"ALTER TABLE {target} ADD COLUMN smsend_seq BIGINT GENERATED ALWAYS AS IDENTITY"
                )
            for request_id, chunks, content_type in reports:
                load_id = self._load_id(cursor, request_id, report_type, mode, loaded_at, dag_run_id)
                report = ReportCsv(
                    chunks, report_type, load_id, content_type=content_type, encoding=self.encoding,
                    pg16_integers=self.pg16_integers,
                )  # fmt: skip
                written = self._copy(cursor, target, report)
                if mode != "upsert":
                    cursor.execute(
                        f"UPDATE {names.loads} SET row_count = %s WHERE load_id = %s", (written, load_id)
                    )
                rows += written
                self.log.info(
                    "Wrote %d row(s) of %s to %s (%d so far, copy)", written, request_id, names.table, rows
                )
            if mode == "upsert":
                self._merge_stage(cursor, target)
            self.conn.commit()
        except BaseException:
            self.log.warning(
                "Load into %s failed after %d row(s): rolling back, the table is unchanged", names.table, rows
            )
            self.conn.rollback()
            raise
        finally:
            close = getattr(reports, "close", None)
            if callable(close):  # a generator holding an open HTTP stream
                close()
            cursor.close()
        result = LoadResult(names.table, mode, rows, deleted, "copy", time.perf_counter() - started)
        self.log.info(
            "Loaded %d row(s) into %s (%s, copy, compact layout) in %.2fs: %.0f rows/s",
            rows, names.table, mode, result.seconds, result.rows_per_second,
        )  # fmt: skip
        return result

    def _copy(self, cursor: Any, target: str, report: ReportCsv) -> int:
        """One report into ``target`` through one ``COPY``; a rejected line names its report line."""
        report.start()
        columns = ", ".join(_DIALECT.quote(c) for c in report.copy_columns)
        sql = f"COPY {target} ({columns}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (status_text))"
        reader = None
        try:
            if hasattr(cursor, "copy"):  # psycopg 3
                with cursor.copy(sql) as copy:
                    for block in report.blocks():
                        copy.write(block)
            else:  # psycopg2
                reader = _Reader(report.blocks())
                cursor.copy_expert(sql, reader, size=1 << 20)
        except Exception as exc:
            if reader is not None and reader.error is not None:  # psycopg2 wraps it in QueryCanceled
                raise reader.error from None
            if {"DataError", "IntegrityError"} & {k.__name__ for k in type(exc).__mro__}:
                raise _report_error(exc, report) from exc
            raise
        if report.deferred_error is not None:  # the server took every line sent before it
            raise report.deferred_error
        return report.rows

    def _merge_stage(self, cursor: Any, stage: str) -> None:
        """Upsert the staged rows on ``(load_id, id)``: the last line of an id wins, as row-by-row would."""
        names = self.names
        cols = ", ".join(("load_id", *ROW_COLUMNS))
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in ROW_COLUMNS if c != "id")
        cursor.execute(
            f"INSERT INTO {names.rows} ({cols}) SELECT DISTINCT ON (load_id, id) {cols} FROM {stage} "
            f"ORDER BY load_id, id, smsend_seq DESC ON CONFLICT (load_id, id) DO UPDATE SET {sets}"
        )
        cursor.execute(
            f"UPDATE {names.loads} l SET row_count = (SELECT count(*) FROM {names.rows} r WHERE r.load_id = l.load_id) "
            f"WHERE l.load_id IN (SELECT DISTINCT load_id FROM {stage})"
        )


class _Reader(io.RawIOBase):
    """A file over byte blocks, for psycopg2's ``copy_expert`` (it calls ``read(size)``)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buffer = b""
        #: What the blocks raised (psycopg2 reports it as a cancelled COPY).
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                block = next(self._blocks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if block is None:
                break
            self._buffer += block
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _client_encoding(conn: Any) -> str:
    """The Python codec of a psycopg 3 or psycopg2 connection's client encoding (UTF-8 if unknown)."""
    encoding = getattr(getattr(conn, "info", None), "encoding", None)  # psycopg 3: a Python codec
    if isinstance(encoding, str) and encoding:
        return encoding
    name = getattr(conn, "encoding", None)  # psycopg2: the PostgreSQL name (UTF8, LATIN1...)
    if isinstance(name, str) and name:
        try:
            from psycopg2.extensions import encodings

            return str(encodings.get(name.upper(), "utf-8"))
        except ImportError:
            pass
    return "utf-8"


def _report_error(exc: Exception, report: ReportCsv) -> Exception:
    """The server's rejection of a line as an :class:`SmSendReportError` naming the report's line."""
    diag = getattr(exc, "diag", None)
    context = str(getattr(diag, "context", None) or "")
    primary = str(getattr(diag, "message_primary", None) or exc).strip()
    match = _COPY_LINE.search(context)
    line = report.report_line(int(match.group(1))) if match else None
    if line is None:
        return SmSendReportError(f"{report.what}: the database rejected a row: {primary}.")
    return SmSendReportError(f"{report.what} line {line}: {primary}.", line=line)
