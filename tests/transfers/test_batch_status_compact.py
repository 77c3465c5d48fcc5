"""PostgreSQL's compact batch-status layout: the report's CSV bytes into COPY, a view users query."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from transfer_helpers import SPEC_MNC_REPORT, SqlTarget, StubGateway, notify_report
from transfer_helpers import context as task_context

from airflow_provider_smsend.client.errors import SmSendReportError
from airflow_provider_smsend.client.pgreport import (
    CompactBatchStatusLoader,
    CompactNames,
    ReportCsv,
    is_plain,
    whole_line_blocks,
)
from airflow_provider_smsend.client.reports import status_class
from airflow_provider_smsend.client.sqlload import TableLayoutError, TableLoader
from airflow_provider_smsend.client.tables import (
    BATCH_STATUS_TABLE,
    dialect_for,
    fast_batch_status_records,
)
from airflow_provider_smsend.transfers.batch_status_to_sql import SmSendBatchStatusToSqlOperator

NOW = dt.datetime(2024, 7, 16, 8, 0, tzinfo=dt.UTC)
VIEW_COLUMNS = "request_id, report_type, id, dest, status, status_class, status_text, netcode, dag_run_id"
#: Lines only the line parser can take (quotes, padding, blank lines, CR, non-ASCII), among plain ones.
TRICKY_REPORT = (
    "\r\n"
    " Status , DEST,id,status_text\r\n"
    "200,+393331000001,1,Delivered\r\n"
    '"300","+393331000002",2,"Unknown, ""quoted"" subscriber"\r\n'
    "   \r\n"
    " 100 ,  +393331000003 , 0003 ,  Waiting  \r\n"
    "-5,+393331000004,4,\r\n"
    "0200,+393331000005,5,Delivered \u00e8\r\n"
    "999,+39 333 1000006,6, Odd \r\n"
)


def parse_csv(blocks: list[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(blocks).decode("utf-8"))))


def report_csv(text: str, report_type: str = "notify", *, cut: int = 1 << 20) -> ReportCsv:
    data = text.encode("utf-8")
    report = ReportCsv([data[i : i + cut] for i in range(0, len(data), cut)], report_type, 7)
    report.start()
    return report


# ---------------------------------------------------------------------------------- blocks


def test_is_plain_accepts_only_lines_copy_takes_as_the_parser_would() -> None:
    assert is_plain(b"1,+39333,200,Delivered\n2,+39334,300,Unknown subscriber\n", 3)
    for bad in (
        b'1,+39333,200,"Delivered"\n',  # quote
        b"1,+39333,200,Delivered\n\n",  # blank line
        b"1,+39333,200, Delivered\n",  # padded field
        b"1,+39333 ,200,Delivered\n",
        b"1,+39333,200,Delivered \n",
        b" 1,+39333,200,Delivered\n",
        b"1,+39333,200,Deli\tvered\n",  # tab
        b"1,+39333,200,Delivered\r\n",  # CR (CRLF is normalised before the check)
        "1,+39333,200,Consegnato è\n".encode(),  # non-ASCII: decoded by the answer's charset
        b"1,+39333,200,Delivered,x\n",  # field count
    ):
        assert not is_plain(bad, 3), bad


def test_whole_line_blocks_recut_any_chunking() -> None:
    data = b"a,b\n1,2\n3,4\n5,6"
    for cut in range(1, len(data) + 1):
        blocks = list(whole_line_blocks(data[i : i + cut] for i in range(0, len(data), cut)))
        assert b"".join(blocks) == data + b"\n"
        assert all(b.endswith(b"\n") for b in blocks)


@pytest.mark.parametrize("cut", [5, 64, 1 << 20])
def test_plain_lines_go_through_with_the_load_id_in_front(cut: int) -> None:
    report = report_csv(notify_report(500), cut=cut)

    assert report.copy_columns == ("load_id", "id", "dest", "status", "status_text")
    rows = parse_csv(list(report.blocks()))
    assert len(rows) == report.rows == 500
    assert rows[0] == ["7", "1", "+393333000000", "100", "Waiting"]
    assert report.report_line(1) == 2 and report.report_line(500) == 501 and report.report_line(501) is None


@pytest.mark.parametrize("cut", [3, 40, 1 << 20])
def test_parsed_blocks_give_the_line_parsers_values(cut: int) -> None:
    """Tricky lines (reordered header) give what the line parser gives, in the header's column order."""
    more = "".join(f"{200 + i % 3 * 100},+39333{i:07d},{100 + i},Text {i % 7}\r\n" for i in range(300))
    report = report_csv(TRICKY_REPORT + more, "queue", cut=cut)
    rows = parse_csv(list(report.blocks()))

    assert report.copy_columns == ("load_id", "status", "dest", "id", "status_text")
    expected = [
        [str(r[4]), r[3], str(r[2]), r[6]]
        for r in fast_batch_status_records(
            (TRICKY_REPORT + more).splitlines(), request_id="R", report_type="queue", loaded_at=NOW,
            dag_run_id=None,
        )
    ]  # fmt: skip
    assert [r[1:] for r in rows] == expected and len(rows) == 306
    assert {r[0] for r in rows} == {"7"}
    # COPY line -> report line: blank lines are skipped by the parser, not by the map
    assert [report.report_line(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [3, 4, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("7,+393331000007,200,Delivered,extra", r"line 4 has 5 field\(s\), expected 4"),
        ("7,  ,200,Delivered", r"line 4: empty dest"),
        ("7,+393331000007,+200 ,Delivered", r"line 4: column 'status' is not an integer: '\+200'"),
    ],
)
def test_lines_the_parser_rejects_raise_its_error(line: str, message: str) -> None:
    text = f"id,dest,status,status_text\n1,+393331000001,200,Delivered\n\n{line}\n9,+3933,200,Late\n"
    report = report_csv(text)

    sent = parse_csv(list(report.blocks()))  # the blocks end at the bad line, whose error is kept

    assert [r[1] for r in sent] == ["1"]
    error = report.deferred_error
    assert error is not None and error.line == 4 and re.search(message, str(error)), error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("KO Parametro id non corretto.", "the gateway answered 'KO Parametro id non corretto.'"),
        ("\n  \n", "is empty: no header line"),
        ("id,number,status\n1,2,3\n", "lacks column"),
    ],
)
def test_header_errors(text: str, message: str) -> None:
    with pytest.raises(SmSendReportError, match=message):
        report_csv(text)


@pytest.mark.parametrize(
    ("encoding", "content_type"),
    [("iso-8859-1", "text/csv; charset=ISO-8859-1"), ("utf-8", None), ("iso-8859-1", None)],
)
def test_non_ascii_lines_are_decoded_like_the_line_stream(encoding: str, content_type: str | None) -> None:
    """The answer's charset, else UTF-8, else ISO-8859-1 (NOTES.md); sent in the connection's encoding."""
    data = "id,dest,status,status_text\n1,+39333,300,Città sconosciuta\n2,+39334,200,Delivered\n".encode(
        encoding
    )
    report = ReportCsv([data], "notify", 3, content_type=content_type, encoding="utf-8")
    report.start()

    assert parse_csv(list(report.blocks())) == [
        ["3", "1", "+39333", "300", "Città sconosciuta"],
        ["3", "2", "+39334", "200", "Delivered"],
    ]


def test_mnc_reports_take_the_parser_ragged_rows_included() -> None:
    report = report_csv(SPEC_MNC_REPORT, "mnc")
    rows = parse_csv(list(report.blocks()))

    assert report.copy_columns == ("load_id", "id", "dest", "status", "status_text", "netcode")
    assert rows == [
        ["7", "9186", "+393209999999", "100", "Waiting", ""],
        ["7", "9187", "+393339999999", "200", "TIM", "TIM"],
        ["7", "9188", "+393409999999", "300", "Unknown subscriber", ""],
    ]
    assert [report.report_line(n) for n in (1, 2, 3)] == [2, 3, 4]


def test_compact_names_fit_postgres_limits() -> None:
    names = CompactNames("analytics.sms_status")
    assert (names.view, names.rows, names.loads) == (
        '"analytics"."sms_status"', '"analytics"."sms_status_rows"', '"analytics"."sms_status_loads"',
    )  # fmt: skip
    with pytest.raises(ValueError, match="too long"):
        CompactNames("x" * 60)
    with pytest.raises(ValueError, match="Invalid table"):
        CompactNames("bad name")


# ---------------------------------------------------------------------------------- end to end


def load(target: SqlTarget, table: str, request_ids: object, **kwargs: Any) -> dict[str, Any]:
    from transfer_helpers import SMSEND_CONN_ID

    return SmSendBatchStatusToSqlOperator(
        task_id="load_status", request_ids=request_ids, table=table,  # type: ignore[arg-type]
        conn_id=target.conn_id, smsend_conn_id=SMSEND_CONN_ID, **kwargs,
    ).execute(task_context())  # fmt: skip


def kind(target: SqlTarget, name: str) -> str | None:
    found = target.query("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (name,))
    return found[0][0] if found else None


def test_a_new_table_is_a_view_over_rows_and_loads(postgres_target: SqlTarget, gateway: StubGateway) -> None:
    table = postgres_target.table("compact")
    gateway.batch[("A", "notify")] = notify_report(30)
    gateway.batch[("B", "notify")] = notify_report(20, start_id=100)

    result = load(postgres_target, table, "A, B")

    assert result["rows"] == 50 and result["method"] == "copy" and result["deleted"] == 0
    assert (kind(postgres_target, table), kind(postgres_target, f"{table}_rows")) == ("v", "r")
    loads = postgres_target.rows(
        f"{table}_loads", "request_id, report_type, row_count, dag_run_id", order="load_id"
    )
    assert loads == [
        ("A", "notify", 30, "manual__2024-07-16T00:00:00+00:00"),
        ("B", "notify", 20, "manual__2024-07-16T00:00:00+00:00"),
    ]
    rows = postgres_target.rows(table, VIEW_COLUMNS, order="request_id, id")
    assert rows[0] == (
        "A",
        "notify",
        1,
        "+393333000000",
        100,
        "pending",
        "Waiting",
        None,
        "manual__2024-07-16T00:00:00+00:00",
    )
    assert rows[-1][:6] == ("B", "notify", 119, "+393333000019", 200, "success")
    assert len(rows) == 50
    index = postgres_target.query("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (f"{table}_rows",))
    assert len(index) == 1 and "USING brin (load_id)" in index[0][0]


def test_replace_twice_leaves_the_same_rows_and_one_load(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    table = postgres_target.table("compact")
    gateway.batch[("A", "notify")] = notify_report(30)
    gateway.batch[("B", "notify")] = notify_report(5, start_id=500)
    load(postgres_target, table, "A, B")
    before = postgres_target.rows(table, VIEW_COLUMNS, order="request_id, id")

    again = load(postgres_target, table, "A")

    assert again["deleted"] == 30 and again["rows"] == 30
    assert postgres_target.rows(table, VIEW_COLUMNS, order="request_id, id") == before
    assert postgres_target.count(f"{table}_loads") == 2 and postgres_target.count(f"{table}_rows") == 35


def test_append_adds_a_load(postgres_target: SqlTarget, gateway: StubGateway) -> None:
    table = postgres_target.table("compact")
    gateway.batch[("A", "notify")] = notify_report(10)
    load(postgres_target, table, "A", load_mode="append")
    load(postgres_target, table, "A", load_mode="append")

    assert postgres_target.count(table) == 20 and postgres_target.count(f"{table}_loads") == 2
    with pytest.raises(TableLayoutError, match="holds it 2 times"):
        load(postgres_target, table, "A", load_mode="upsert")
    assert postgres_target.count(table) == 20


def test_upsert_updates_adds_and_keeps_rows_last_line_wins(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    table = postgres_target.table("compact")
    gateway.batch[("A", "notify")] = (
        "id,dest,status,status_text\n1,+39331,100,Waiting\n2,+39332,100,Waiting\n"
    )
    load(postgres_target, table, "A", load_mode="upsert")
    gateway.batch[("A", "notify")] = (
        "id,dest,status,status_text\n2,+39332,100,Waiting\n3,+39333,300,Unknown subscriber\n2,+39332,200,Delivered\n"
    )

    result = load(postgres_target, table, "A", load_mode="upsert")

    assert result["rows"] == 3
    assert postgres_target.rows(table, "id, status, status_class, status_text") == [
        (1, 100, "pending", "Waiting"),
        (2, 200, "success", "Delivered"),
        (3, 300, "failure", "Unknown subscriber"),
    ]
    assert postgres_target.rows(f"{table}_loads", "request_id, row_count", order="load_id") == [("A", 3)]


def test_bad_line_deep_in_a_large_report_rolls_back_and_names_it(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    """A plain line the server rejects (a non-integer status) names its report line."""
    table = postgres_target.table("compact")
    gateway.batch[("OLD", "notify")] = notify_report(5)
    gateway.batch[("BIG", "notify")] = notify_report(1_000, start_id=10)
    load(postgres_target, table, "OLD, BIG")
    before = postgres_target.rows(table, VIEW_COLUMNS, order="request_id, id")
    gateway.batch[("BIG", "notify")] = notify_report(200_000, start_id=10, bad_line=150_001)

    with pytest.raises(
        AirflowFailException, match=r"line 150001: invalid input syntax for type integer: \"2OO\""
    ):
        load(postgres_target, table, "BIG")

    assert postgres_target.rows(table, VIEW_COLUMNS, order="request_id, id") == before
    assert postgres_target.count(f"{table}_loads") == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("7,+393331000007,2x0,Delivered", r"line 8: invalid input syntax for type integer: \"2x0\""),
        ("7,,200,Delivered", r"line 8: null value in column \"dest\""),
        ("7,+393331000007,200,Delivered,extra", r"line 8 has 5 field\(s\), expected 4"),
        (
            "7,+39333100000700000000000000000000000,200,x",
            r"line 8: value too long for type character varying\(32\)",
        ),
        (
            "99999999999999999999,+393331000007,200,x",
            r"line 8: value \"99999999999999999999\" is out of range",
        ),
    ],
)
def test_malformed_line_fails_the_load_with_its_line(
    postgres_target: SqlTarget, gateway: StubGateway, bad: str, message: str
) -> None:
    table = postgres_target.table("compact")
    lines = notify_report(10).split("\r\n")
    lines[7] = bad
    gateway.batch[("R", "notify")] = "\r\n".join(lines)

    with pytest.raises(AirflowFailException, match=message):
        load(postgres_target, table, "R")

    assert postgres_target.count(table) == 0 and postgres_target.count(f"{table}_loads") == 0


def test_compact_load_equals_the_python_load(
    target: SqlTarget, postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    """The same report (tricky lines, reordered header, CRLF) into the compact layout and through
    the Python path of the parametrized target (SQLite, MariaDB, and a wide PostgreSQL table)."""
    more = "".join(f"{200 + i % 3 * 100},+39333{i:07d},{100 + i},Text {i % 7}\r\n" for i in range(2_000))
    gateway.batch[("T", "queue")] = TRICKY_REPORT + more
    gateway.batch[("M", "mnc")] = SPEC_MNC_REPORT
    compact = postgres_target.table("compact")
    load(postgres_target, compact, "T", report_type="queue")
    load(postgres_target, compact, "M", report_type="mnc")
    other = target.table("other")
    if target.kind == "postgres":
        with target.connect() as conn:
            TableLoader(conn, dialect_for("postgres"), other, BATCH_STATUS_TABLE).ensure_table()
    load(target, other, "T", report_type="queue")
    load(target, other, "M", report_type="mnc")

    order = "request_id, id"
    compact_rows, other_rows = (
        postgres_target.rows(compact, VIEW_COLUMNS, order),
        target.rows(other, VIEW_COLUMNS, order),
    )
    assert len(compact_rows) == 2_009 and compact_rows == other_rows
    assert (
        "T",
        "queue",
        5,
        "+393331000005",
        200,
        "success",
        "Delivered \u00e8",
        None,
        "manual__2024-07-16T00:00:00+00:00",
    ) in compact_rows


def test_an_existing_wide_table_keeps_its_layout(postgres_target: SqlTarget, gateway: StubGateway) -> None:
    table = postgres_target.table("wide")
    with postgres_target.connect() as conn:
        TableLoader(conn, dialect_for("postgres"), table, BATCH_STATUS_TABLE).ensure_table()
    gateway.batch[("A", "notify")] = notify_report(10)

    assert load(postgres_target, table, "A")["rows"] == 10

    assert kind(postgres_target, table) == "r" and kind(postgres_target, f"{table}_rows") is None
    assert postgres_target.count(table) == 10


def test_a_view_that_is_not_ours_is_refused(postgres_target: SqlTarget, gateway: StubGateway) -> None:
    table = postgres_target.table("foreign")
    postgres_target.query(f"CREATE VIEW {table} AS SELECT 1 AS id")
    gateway.batch[("A", "notify")] = notify_report(3)

    with pytest.raises(TableLayoutError, match="not a compact batch-status table"):
        load(postgres_target, table, "A")


def test_missing_table_without_create_is_refused(postgres_target: SqlTarget, gateway: StubGateway) -> None:
    table = postgres_target.table("missing")
    gateway.batch[("A", "notify")] = notify_report(3)

    with pytest.raises(TableLayoutError, match="does not exist"):
        load(postgres_target, table, "A", create_table=False)
    assert kind(postgres_target, table) is None and kind(postgres_target, f"{table}_rows") is None


def test_the_views_status_class_is_the_parsers(postgres_target: SqlTarget, gateway: StubGateway) -> None:
    statuses = [-150, -50, 0, 99, 100, 199, 200, 250, 299, 300, 399, 400, 1000]
    text = "id,dest,status,status_text\n" + "".join(f"{i},+39333{i},{s},x\n" for i, s in enumerate(statuses))
    gateway.batch[("S", "notify")] = text
    table = postgres_target.table("classes")
    load(postgres_target, table, "S")

    assert postgres_target.rows(table, "status, status_class") == [(s, status_class(s)) for s in statuses]


def test_psycopg2_connections_load_through_copy_expert(postgres_target: SqlTarget) -> None:
    import psycopg2

    table = postgres_target.table("pg2")
    data = (TRICKY_REPORT + notify_report(3_000, start_id=10).split("\r\n", 1)[1]).encode()
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    try:
        loader = CompactBatchStatusLoader(conn, table)
        loader.ensure()
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        result = loader.load([("P", iter(chunks), "text/csv; charset=utf-8")], "notify", request_ids=["P"],
                             loaded_at=NOW, dag_run_id=None)  # fmt: skip
        bad = notify_report(50, bad_line=40).encode()
        with pytest.raises(SmSendReportError, match="line 40: invalid input syntax") as raised:
            loader.load([("P", [bad], None)], "notify", request_ids=["P"], loaded_at=NOW, dag_run_id=None)
    finally:
        conn.close()

    assert raised.value.line == 40
    assert result.rows == 3_006 and postgres_target.count(table) == 3_006
    assert postgres_target.rows(table, "id, status_text", order="id")[:2] == [
        (1, "Delivered"),
        (2, 'Unknown, "quoted" subscriber'),
    ]


def test_sandbox_report_over_http_into_the_compact_layout(
    postgres_target: SqlTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real HTTP: messages sent to the local sandbox, its notify report loaded, then reloaded."""
    from airflow_provider_smsend.hooks.smsend import SmSendHook
    from airflow_provider_smsend.sandbox import testing

    table = postgres_target.table("sandbox")
    with testing.run_sandbox(delivery_delay=0) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_SMSEND_SANDBOX", sandbox.connection_uri)
        client = SmSendHook(smsend_conn_id="smsend_sandbox").client
        sent = [client.send(rcpt, "Load test", sender="DATA") for rcpt in ("+393331234567", "+393409876543")]
        request_ids = [str(s.request_id) for s in sent if s.request_id]
        operator = SmSendBatchStatusToSqlOperator(
            task_id="load", request_ids=request_ids, conn_id=postgres_target.conn_id,
            smsend_conn_id="smsend_sandbox", table=table,
        )  # fmt: skip
        first = operator.execute(task_context())
        again = operator.execute(task_context())

    assert first["rows"] == again["rows"] == 2 and again["deleted"] == 2
    rows = postgres_target.rows(table, "request_id, dest, status_class", order="dest")
    assert [(r[0], r[1]) for r in rows] == sorted(
        zip(request_ids, ("+393331234567", "+393409876543"), strict=True), key=lambda r: r[1]
    )
    assert {r[2] for r in rows} <= {"pending", "success"}


# ---------------------------------------------------------------------------------- review fixes


def test_pg16_integer_syntax_is_not_plain() -> None:
    """PostgreSQL 16 reads 0x1F, 0o17, 0b101 and 1_000 as integers; the line parser rejects them."""
    plain = b"1,+39333,200,Delivered\n2,+39334,300,Unknown subscriber\n"
    assert is_plain(plain, 3, pg16_integers=True)
    for bad in (
        b"0x1F,+39333,200,x\n",
        b"1,+39333,1_000,x\n",
        b"1,+39333,-0b1,x\n",
        b"7,+3,200,x\n0o17,+3,200,x\n",
    ):
        assert is_plain(bad, 3) and not is_plain(bad, 3, pg16_integers=True), bad
    data = b"id,dest,status,status_text\n1,+39333,200,Delivered\n0x1F,+39334,200,Delivered\n"
    report = ReportCsv([data], "notify", 1, pg16_integers=True)
    report.start()
    assert parse_csv(list(report.blocks())) == [["1", "1", "+39333", "200", "Delivered"]]
    assert report.deferred_error is not None
    assert "line 3: column 'id' is not an integer: '0x1F'" in str(report.deferred_error)


def test_cr_only_reports_are_cut_into_blocks_and_parsed() -> None:
    data = b"id,dest,status,status_text\r1,+39333,200,Delivered\r2,+39334,300,Unknown\r"
    blocks = list(whole_line_blocks(data[i : i + 20] for i in range(0, len(data), 20)))
    assert len(blocks) > 1 and b"".join(blocks) == data + b"\n"
    report = ReportCsv([data[i : i + 20] for i in range(0, len(data), 20)], "notify", 4)
    report.start()
    assert parse_csv(list(report.blocks())) == [
        ["4", "1", "+39333", "200", "Delivered"],
        ["4", "2", "+39334", "300", "Unknown"],
    ]
    assert [report.report_line(n) for n in (1, 2)] == [2, 3]


def test_the_first_bad_line_is_reported_when_a_later_block_is_parsed(postgres_target: SqlTarget) -> None:
    """A bad plain line (checked by the server at the end) before a bad parsed line (checked in
    Python at once): the error names the first, as the line parser would."""
    table = postgres_target.table("order")
    first = b"id,dest,status,status_text\n1,+39,200,OK\nabc,+39,200,OK\n" + b"".join(
        b"%d,+39,200,OK\n" % i for i in range(10, 58)
    )
    second = b'60,+39,200,"quoted",extra\n61,+39,200,OK\n'
    with postgres_target.connect() as conn:
        loader = CompactBatchStatusLoader(conn, table)
        loader.ensure()
        with pytest.raises(SmSendReportError, match='line 3: invalid input syntax for type bigint: "abc"'):
            loader.load(
                [("R", [first, second], None)], "notify", request_ids=["R"], loaded_at=NOW, dag_run_id=None
            )
        with pytest.raises(SmSendReportError, match=r"line 52 has 5 field\(s\), expected 4"):
            loader.load([("R", [first.replace(b"abc", b"3"), second], None)], "notify", request_ids=["R"],
                        loaded_at=NOW, dag_run_id=None)  # fmt: skip
    assert postgres_target.count(table) == 0 and postgres_target.count(f"{table}_loads") == 0


def test_psycopg2_parser_errors_and_client_encoding(postgres_target: SqlTarget) -> None:
    """psycopg2: a line the parser rejects is an SmSendReportError (not a cancelled COPY); parsed
    rows are sent in the connection's client encoding."""
    import psycopg2

    table = postgres_target.table("pg2enc")
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    try:
        conn.set_client_encoding("LATIN1")
        loader = CompactBatchStatusLoader(conn, table)
        assert loader.encoding == "iso8859_1"
        loader.ensure()
        bad = b'id,dest,status,status_text\n1,+39,200,"x",extra\n'
        with pytest.raises(SmSendReportError, match=r"line 2 has 5 field\(s\)") as raised:
            loader.load([("R", [bad], None)], "notify", request_ids=["R"], loaded_at=NOW, dag_run_id=None)
        assert raised.value.line == 2
        text = "id,dest,status,status_text\n1,+39,300,Città sconosciuta\n".encode()
        loader.load([("R", [text], "text/csv; charset=utf-8")], "notify", request_ids=["R"], loaded_at=NOW,
                    dag_run_id=None)  # fmt: skip
    finally:
        conn.close()
    assert postgres_target.rows(table, "id, status_text") == [(1, "Città sconosciuta")]


def test_a_name_too_long_for_the_compact_objects_keeps_the_wide_layout(
    postgres_target: SqlTarget, gateway: StubGateway
) -> None:
    table = postgres_target.table("long_" + "x" * 40)
    assert len(table) > CompactNames.MAX_NAME and not CompactNames.fits(table)
    gateway.batch[("A", "notify")] = notify_report(4)

    assert load(postgres_target, table, "A")["rows"] == 4

    assert kind(postgres_target, table) == "r" and postgres_target.count(table) == 4
