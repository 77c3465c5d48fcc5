"""Report parsers: batch-status CSV (the spec's three examples) and userlog-get TSV."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from airflow_provider_smsend.client.errors import SmSendReportError
from airflow_provider_smsend.client.reports import (
    ROME,
    BatchStatusRow,
    UserlogEntry,
    iter_batch_status,
    iter_userlog,
    parse_batch_status,
    parse_rome_datetime,
    status_class,
    userlog_to_dataframe,
)

# The document's own examples, verbatim.
SPEC_QUEUE = """id,dest,status,status_text
9182,+393209999999,100,Queued
9183,+393339999999,200,Sent
9184,+393409999999,302,Temporary failure
"""
SPEC_NOTIFY = """id,dest,status,status_text
9184,+393209999999,100,Waiting
9185,+393339999999,200,Delivered
9186,+393409999999,300,Unknown subscriber
"""
SPEC_MNC = """id,dest,status,netcode,status_text
9186,+393209999999,100,Waiting
9187,+393339999999,200, TIM
9188,+393409999999,300,Unknown subscriber
"""


def test_spec_queue_example():
    report = parse_batch_status(SPEC_QUEUE, "queue", request_id="HTTP1")
    assert report.rows == [
        BatchStatusRow(9182, "+393209999999", 100, "Queued"),
        BatchStatusRow(9183, "+393339999999", 200, "Sent"),
        BatchStatusRow(9184, "+393409999999", 302, "Temporary failure"),
    ]
    assert report.counts() == {"pending": 1, "success": 1, "failure": 1}
    assert [row.state for row in report.rows] == ["pending", "success", "failure"]


def test_spec_notify_example():
    report = parse_batch_status(SPEC_NOTIFY, "notify")
    assert [(r.id, r.dest, r.status, r.status_text) for r in report.rows] == [
        (9184, "+393209999999", 100, "Waiting"),
        (9185, "+393339999999", 200, "Delivered"),
        (9186, "+393409999999", 300, "Unknown subscriber"),
    ]
    assert all(type(r.id) is int and type(r.status) is int and r.dest.startswith("+") for r in report.rows)


def test_spec_mnc_example_with_ragged_rows():
    rows = parse_batch_status(SPEC_MNC, "mnc").rows
    assert rows == [
        BatchStatusRow(9186, "+393209999999", 100, "Waiting", netcode=None),
        BatchStatusRow(9187, "+393339999999", 200, "TIM", netcode="TIM"),
        BatchStatusRow(9188, "+393409999999", 300, "Unknown subscriber", netcode=None),
    ]


def test_mnc_full_rows():
    text = "id,dest,status,netcode,status_text\n1,+393331234567,200,22201,TIM\n2,+393401234567,300,,Unknown subscriber\n"
    rows = parse_batch_status(text, "mnc").rows
    assert rows[0].netcode == "22201" and rows[0].status_text == "TIM"
    assert rows[1].netcode is None and rows[1].status_text == "Unknown subscriber"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_crlf_and_blank_lines(newline):
    text = newline.join(["id,dest,status,status_text", "", "1,+393331234567,200,Sent", "   ", ""])
    assert len(parse_batch_status(text, "queue").rows) == 1


def test_columns_are_found_by_name():
    text = "STATUS_TEXT, status ,Dest,ID\nDelivered,200,+393331234567,5\n"
    assert parse_batch_status(text, "notify").rows == [BatchStatusRow(5, "+393331234567", 200, "Delivered")]


def test_reordered_mnc_with_ragged_row_cannot_be_placed():
    # With status_text not last, a short row is ambiguous: reject rather than guess.
    text = "id,dest,status,status_text,netcode\n1,+393331234567,200,TIM\n"
    with pytest.raises(SmSendReportError) as info:
        parse_batch_status(text, "mnc")
    assert info.value.line == 2


def test_quoted_field_with_comma():
    text = 'id,dest,status,status_text\n1,+393331234567,302,"Temporary failure, retrying"\n'
    assert parse_batch_status(text, "queue").rows[0].status_text == "Temporary failure, retrying"


def test_extra_columns_are_tolerated():
    text = "id,dest,status,status_text,cost\n1,+393331234567,200,Sent,0.05\n"
    assert parse_batch_status(text, "queue").rows[0].status == 200


def test_streams_any_iterable_of_lines_including_bytes():
    lines = iter([b"id,dest,status,status_text\r\n", b"1,+393331234567,200,Sent\r\n"])
    rows = iter_batch_status(lines, "queue")
    assert next(rows).id == 1


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("id,dest,status,status_text\n1,+393331234567,200\n", 2, "has 3 field(s), expected 4"),
        ("id,dest,status,status_text\n1,+393331234567,200,Sent\n2,+39333,abc,Sent\n", 3, "'status' is not an integer"),
        ("id,dest,status,status_text\nx1,+393331234567,200,Sent\n", 2, "'id' is not an integer"),
        ("id,dest,status,status_text\n1,,200,Sent\n", 2, "empty dest"),
        ("id,dest,status,status_text\n1,+39,200,Sent,extra,more\n", 2, "has 6 field(s)"),
        ("id,dest,state,status_text\n1,+39,200,Sent\n", 1, "lacks column(s) status"),
        ("id,dest,status,status,status_text\n", 1, "repeats a column"),
        ("\n\n", 1, "no header"),
        ("", 1, "no header"),
        ("id,dest,status,status_text\n\n\n\n5,+39,²,Sent\n", 5, "'status' is not an integer"),
    ],
)
def test_malformed_batch_status_names_the_line(text, line, fragment):
    with pytest.raises(SmSendReportError) as info:
        parse_batch_status(text, "queue")
    assert info.value.line == line
    assert fragment in str(info.value)
    if line > 1:
        assert f"line {line}" in str(info.value)


def test_mnc_short_row_for_queue_is_rejected():
    with pytest.raises(SmSendReportError):
        parse_batch_status("id,dest,status,status_text\n9187,+393339999999,200\n", "queue")


def test_carriage_return_inside_a_line_is_a_report_error():
    lines = ["id,dest,status,status_text", "1,+39333\r1234567,200,Sent"]
    with pytest.raises(SmSendReportError) as info:
        list(iter_batch_status(lines, "queue"))
    assert info.value.line == 2


@pytest.mark.parametrize("text", ["KO Errore interno.", "KO Parametro id non impostato.\n"])
def test_ko_instead_of_a_report(text):
    with pytest.raises(SmSendReportError) as info:
        parse_batch_status(text, "notify")
    assert "KO" in str(info.value)
    with pytest.raises(SmSendReportError):
        list(iter_userlog([text], "credits"))


def test_unknown_report_types():
    with pytest.raises(SmSendReportError):
        parse_batch_status(SPEC_QUEUE, "delivered")
    with pytest.raises(SmSendReportError):
        list(iter_userlog([], "credit"))


@pytest.mark.parametrize(("status", "state"), [(100, "pending"), (199, "pending"), (200, "success"), (302, "failure"), (0, "unknown"), (404, "unknown")])
def test_status_class(status, state):
    assert status_class(status) == state


def test_batch_status_dataframe():
    pytest.importorskip("pandas")
    frame = parse_batch_status(SPEC_MNC, "mnc").to_dataframe()
    assert list(frame.columns) == ["id", "dest", "status", "netcode", "status_text"]
    assert str(frame["id"].dtype) == "Int64" and str(frame["status"].dtype) == "Int64"
    assert frame["dest"].tolist() == ["+393209999999", "+393339999999", "+393409999999"]
    assert frame.loc[1, "netcode"] == "TIM"


def test_empty_batch_status_dataframe_keeps_columns():
    pytest.importorskip("pandas")
    frame = parse_batch_status("id,dest,status,status_text\n", "queue").to_dataframe()
    assert list(frame.columns) == ["id", "dest", "status", "status_text"] and len(frame) == 0


# ------------------------------------------------------------------ userlog TSV

CREDITS = (
    "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n"
    "11\t2024-03-01 10:15:00\t7\tmario\t3\t12.3456\r\n"
    "12\t2024-07-01 08:00:00\t8\tanna\t3\t0.1000\r\n"
)
RECV_ADD = "id\tdate\tu_id\tusername\tdest\tsharecode\r\n21\t2024-03-02 09:00:00\t7\tmario\t+393331234567\t001\r\n"
RECV_DEL = "id\tdate\tu_id\tusername\tdest\tsharecode\r\n22\t2024-03-03 09:00:00\t7\tmario\t+393331234567\t001\r\n"


def test_userlog_credits():
    entries = list(iter_userlog(CREDITS.split("\n"), "credits"))
    assert entries[0] == UserlogEntry(
        id=11, date=dt.datetime(2024, 3, 1, 10, 15, tzinfo=ROME), u_id=7, username="mario", bill_id=3,
        credit=Decimal("12.3456"),
    )
    assert type(entries[0].credit) is Decimal and str(entries[0].credit) == "12.3456"
    # Europe/Rome: CET in March, CEST in July.
    assert entries[0].date.utcoffset() == dt.timedelta(hours=1)
    assert entries[1].date.utcoffset() == dt.timedelta(hours=2)
    assert entries[1].date.astimezone(dt.UTC) == dt.datetime(2024, 7, 1, 6, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "log_type", "entry_id"), [(RECV_ADD, "recv_add", 21), (RECV_DEL, "recv_del", 22)])
def test_userlog_reception(text, log_type, entry_id):
    (entry,) = iter_userlog(text.split("\n"), log_type)
    assert (entry.id, entry.dest, entry.sharecode, entry.credit, entry.bill_id) == (
        entry_id, "+393331234567", "001", None, None,
    )


def test_userlog_by_header_name_and_extra_columns():
    text = "credit\tusername\tnote\tbill_id\tu_id\tdate\tid\r\n1,5\tmario\thello\t3\t7\t2024-03-01 10:15:00\t11\r\n"
    (entry,) = iter_userlog(text.split("\n"), "credits")
    assert (entry.id, entry.credit, entry.username, entry.extra) == (11, Decimal("1.5"), "mario", {"note": "hello"})


def test_userlog_iso_dates_with_zone_are_kept():
    assert parse_rome_datetime("2024-03-01T10:15:00+00:00") == dt.datetime(2024, 3, 1, 10, 15, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("11\t2024-03-01 10:15:00\t7\tmario\t3", "has 5 field(s), expected 6"),
        ("11\tyesterday\t7\tmario\t3\t1.0", "invalid date"),
        ("11\t2024-03-01 10:15:00\t7\tmario\t3\tmolto", "invalid credit"),
        ("11\t2024-03-01 10:15:00\t7\tmario\t3\tInfinity", "invalid credit"),
        ("11\t2024-03-01 10:15:00\t7\tmario\t3\t1E+999999999999", "invalid credit"),
        ("11\t2024-03-01 10:15:00\t7\tmario\t3\t1.23456", "invalid credit"),
        ("11\t2024-03-01 10:15:00\t7\tmario\t3\t123456789012345.0", "invalid credit"),
        ("11\t2024-03-01 10:15:00\tsette\tmario\t3\t1.0", "'u_id' is not an integer"),
        ("11\t2024-03-01 10:15:00\t7\tmario\tx\t1.0", "'bill_id' is not an integer"),
    ],
)
def test_malformed_userlog_names_the_line(row, fragment):
    text = CREDITS + row + "\r\n"
    with pytest.raises(SmSendReportError) as info:
        list(iter_userlog(text.split("\n"), "credits"))
    assert info.value.line == 4
    assert fragment in str(info.value)


def test_userlog_header_missing_columns():
    with pytest.raises(SmSendReportError) as info:
        list(iter_userlog(["id\tdate\tu_id\tusername\tdest\r\n"], "recv_add"))
    assert "sharecode" in str(info.value)


def test_userlog_dataframe():
    pytest.importorskip("pandas")
    entries = list(iter_userlog(CREDITS.split("\n"), "credits"))
    frame = userlog_to_dataframe(entries, "credits")
    assert list(frame.columns) == ["id", "date", "u_id", "username", "bill_id", "credit"]
    assert frame["credit"].tolist() == [Decimal("12.3456"), Decimal("0.1000")]
    assert all(type(v) is Decimal for v in frame["credit"])
    assert str(frame["id"].dtype) == "Int64"
    assert frame["date"].iloc[0] == dt.datetime(2024, 3, 1, 10, 15, tzinfo=ROME)


def test_empty_userlog_dataframe():
    pytest.importorskip("pandas")
    frame = userlog_to_dataframe([], "recv_del")
    assert list(frame.columns) == ["id", "date", "u_id", "username", "dest", "sharecode"] and frame.empty
