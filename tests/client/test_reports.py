"""The report parsers: batch-status CSV (the spec's three examples) and userlog-get TSV, through pandas."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from airflow_provider_smsend.client.errors import (
    SmSendGatewayError,
    SmSendInternalError,
    SmSendReportError,
    SmSendTransportError,
)
from airflow_provider_smsend.client.reports import (
    ROME,
    BatchStatusRow,
    UserlogEntry,
    iter_batch_status_frames,
    parse_batch_status,
    parse_rome_datetime,
    read_batch_status,
    read_userlog,
    status_class,
    userlog_entries,
)


def iter_userlog(text: str, log_type: str) -> list[UserlogEntry]:
    return userlog_entries(read_userlog(text.encode(), log_type), log_type)


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


@pytest.mark.parametrize(
    ("short_row", "problem"),
    [
        ("2,+39" + "3" * 40 + ",200,TIM", "'dest' longer than 32"),
        ("2,+393331234567,300," + "x" * 300, "'status_text' longer than 255"),
        ("2,+393331234567,200,T\x00IM", "NUL byte"),
        ("2,,200,TIM", "empty dest"),
    ],
)
def test_a_short_mnc_row_is_checked_like_a_full_one(short_row, problem):
    # The 4-field rows of an mnc report are read apart from the full ones; every field rule applies
    # to them too, naming their line (3: after the header and a full row).
    text = f"id,dest,status,netcode,status_text\n1,+393401234567,200,22201,TIM\n{short_row}\n"
    with pytest.raises(SmSendReportError, match=problem) as info:
        parse_batch_status(text, "mnc")
    assert info.value.line == 3


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


def test_streams_byte_chunks_cut_anywhere():
    body = b"id,dest,status,status_text\r\n" + b"".join(
        b"%d,+39333123%04d,200,Sent\r\n" % (i, i) for i in range(500)
    )
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    frames = list(iter_batch_status_frames("R", iter(chunks), "queue", block_bytes=1000))
    assert len(frames) > 5 and sum(len(f) for f in frames) == 500
    assert [int(v) for f in frames for v in f["id"]] == list(range(500))


def test_a_line_too_long_is_refused_with_bounded_memory():
    from airflow_provider_smsend.client import reports

    endless = (b"x" * 65536 for _ in range(64))  # 4 MiB with no line end
    with pytest.raises(SmSendReportError, match="line longer than"):
        list(iter_batch_status_frames("R", endless, "queue", block_bytes=reports.MAX_LINE_BYTES // 2))


def test_many_reports_in_one_read_keep_their_request_ids_and_line_numbers():
    bodies = [
        (f"R{i}", f"id,dest,status,status_text\n{i},+39{i},200,Delivered\n".encode(), None) for i in range(50)
    ]
    bodies.append(("BAD", b"id,dest,status,status_text\n\n7,+39,200,Delivered\n8,+39,2x0,Sent\n", None))
    frame = read_batch_status(bodies[:50], "notify")
    assert list(frame["request_id"]) == [f"R{i}" for i in range(50)] and list(frame["id"]) == list(range(50))
    with pytest.raises(SmSendReportError) as info:
        read_batch_status(bodies, "notify")
    assert info.value.line == 4 and "of BAD line 4" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("id,dest,status,status_text\n1,+393331234567,200\n", 2, "has 3 field(s), expected 4"),
        (
            "id,dest,status,status_text\n1,+393331234567,200,Sent\n2,+39333,abc,Sent\n",
            3,
            "'status' is not an integer",
        ),
        ("id,dest,status,status_text\nx1,+393331234567,200,Sent\n", 2, "'id' is not an integer"),
        ("id,dest,status,status_text\n1,,200,Sent\n", 2, "empty dest"),
        ("id,dest,status,status_text\n1,+39,200,Sent,extra,more\n", 2, "has 6 field(s)"),
        ("id,dest,state,status_text\n1,+39,200,Sent\n", 1, "lacks column(s) status"),
        ("id,dest,status,status,status_text\n", 1, "repeats a column"),
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


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n"])
def test_an_empty_body_is_a_transport_error(text):
    with pytest.raises(SmSendTransportError, match="empty body"):
        parse_batch_status(text, "queue")


def test_an_html_page_is_a_transport_error():
    with pytest.raises(SmSendTransportError, match="HTML page"):
        parse_batch_status("<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n", "notify")


@pytest.mark.parametrize(
    "line",
    ['1,"+393331234567,200,Sent', '1,+393331234567,200,"Sent'],
)
def test_an_unclosed_quote_names_its_line(line):
    text = f"id,dest,status,status_text\n9,+39,200,Sent\n{line}\n2,+39,200,Sent\n"
    with pytest.raises(SmSendReportError, match="unclosed quote") as info:
        parse_batch_status(text, "queue")
    assert info.value.line == 3


def test_out_of_range_integers_are_report_errors():
    with pytest.raises(SmSendReportError, match="'status' is not an integer"):
        parse_batch_status("id,dest,status,status_text\n1,+39,99999999999,Sent\n", "queue")
    with pytest.raises(SmSendReportError, match="'id' is not an integer"):
        parse_batch_status("id,dest,status,status_text\n99999999999999999999,+39,200,Sent\n", "queue")


def test_iso_8859_1_reports_are_decoded():
    body = "id,dest,status,status_text\n1,+39,300,Non è raggiungibile\n".encode("iso-8859-1")
    assert read_batch_status([("R", body, None)], "notify")["status_text"].tolist() == ["Non è raggiungibile"]
    declared = read_batch_status([("R", body, "text/csv; charset=ISO-8859-1")], "notify")
    assert declared["status_text"].tolist() == ["Non è raggiungibile"]


def test_mnc_short_row_for_queue_is_rejected():
    with pytest.raises(SmSendReportError):
        parse_batch_status("id,dest,status,status_text\n9187,+393339999999,200\n", "queue")


def test_carriage_return_inside_a_line_is_a_report_error():
    with pytest.raises(SmSendReportError) as info:
        parse_batch_status("id,dest,status,status_text\n1,+39333\r1234567,200,Sent\n", "queue")
    assert info.value.line == 2


@pytest.mark.parametrize("text", ["KO Errore interno.", "KO Parametro id non impostato.\n"])
def test_ko_instead_of_a_report_raises_the_typed_error(text):
    with pytest.raises(SmSendGatewayError) as info:
        parse_batch_status(text, "notify")
    assert "KO" in str(info.value)
    assert isinstance(info.value, SmSendInternalError) == text.startswith("KO Errore interno")
    with pytest.raises(SmSendGatewayError):
        iter_userlog(text, "credits")


def test_unknown_report_types():
    with pytest.raises(SmSendReportError):
        parse_batch_status(SPEC_QUEUE, "delivered")
    with pytest.raises(SmSendReportError):
        iter_userlog("", "credit")


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (100, "pending"),
        (199, "pending"),
        (200, "success"),
        (302, "failure"),
        (0, "unknown"),
        (404, "unknown"),
    ],
)
def test_status_class(status, state):
    assert status_class(status) == state


def test_batch_status_frame_dtypes():
    frame = read_batch_status([("M1", SPEC_MNC.encode(), None)], "mnc")
    assert list(frame.columns) == ["request_id", "id", "dest", "status", "status_text", "netcode"]
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "request_id": "string[pyarrow]", "id": "int64[pyarrow]", "dest": "string[pyarrow]",
        "status": "int64[pyarrow]", "status_text": "string[pyarrow]", "netcode": "string[pyarrow]",
    }  # fmt: skip
    assert frame["dest"].tolist() == ["+393209999999", "+393339999999", "+393409999999"]
    assert frame.loc[1, "netcode"] == "TIM"


def test_empty_batch_status_frame_keeps_columns():
    frame = read_batch_status([("R", b"id,dest,status,status_text\n", None)], "queue")
    assert (
        list(frame.columns) == ["request_id", "id", "dest", "status", "status_text", "netcode"]
        and len(frame) == 0
    )


# ------------------------------------------------------------------ userlog TSV

CREDITS = (
    "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n"
    "11\t2024-03-01 10:15:00\t7\tmario\t3\t12.3456\r\n"
    "12\t2024-07-01 08:00:00\t8\tanna\t3\t0.1000\r\n"
)
RECV_ADD = (
    "id\tdate\tu_id\tusername\tdest\tsharecode\r\n21\t2024-03-02 09:00:00\t7\tmario\t+393331234567\t001\r\n"
)
RECV_DEL = (
    "id\tdate\tu_id\tusername\tdest\tsharecode\r\n22\t2024-03-03 09:00:00\t7\tmario\t+393331234567\t001\r\n"
)


def test_userlog_credits():
    entries = iter_userlog(CREDITS, "credits")
    assert entries[0] == UserlogEntry(
        id=11,
        date=dt.datetime(2024, 3, 1, 10, 15, tzinfo=ROME),
        u_id=7,
        username="mario",
        bill_id=3,
        credit=Decimal("12.3456"),
    )
    assert type(entries[0].credit) is Decimal and str(entries[0].credit) == "12.3456"
    # Europe/Rome: CET in March, CEST in July; stored as UTC instants.
    assert entries[0].date.utcoffset() == dt.timedelta(0)
    assert entries[0].date == dt.datetime(2024, 3, 1, 9, 15, tzinfo=dt.UTC)
    assert entries[1].date.astimezone(dt.UTC) == dt.datetime(2024, 7, 1, 6, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "log_type", "entry_id"), [(RECV_ADD, "recv_add", 21), (RECV_DEL, "recv_del", 22)]
)
def test_userlog_reception(text, log_type, entry_id):
    (entry,) = iter_userlog(text, log_type)
    assert (entry.id, entry.dest, entry.sharecode, entry.credit, entry.bill_id) == (
        entry_id,
        "+393331234567",
        "001",
        None,
        None,
    )


def test_userlog_by_header_name_and_extra_columns():
    text = "credit\tusername\tnote\tbill_id\tu_id\tdate\tid\r\n1,5\tmario\thello\t3\t7\t2024-03-01 10:15:00\t11\r\n"
    (entry,) = iter_userlog(text, "credits")
    assert (entry.id, entry.credit, entry.username, entry.extra) == (
        11,
        Decimal("1.5"),
        "mario",
        {"note": "hello"},
    )


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
        iter_userlog(text, "credits")
    assert info.value.line == 4
    assert fragment in str(info.value)


def test_userlog_header_missing_columns():
    with pytest.raises(SmSendReportError) as info:
        iter_userlog("id\tdate\tu_id\tusername\tdest\r\n", "recv_add")
    assert "sharecode" in str(info.value)


def test_userlog_frame_dtypes():
    frame = read_userlog(CREDITS.encode(), "credits")
    assert list(frame.columns) == ["id", "date", "u_id", "username", "bill_id", "credit"]
    assert frame["credit"].tolist() == [Decimal("12.3456"), Decimal("0.1000")]
    assert all(type(v) is Decimal for v in frame["credit"])
    assert (
        str(frame["id"].dtype) == "int64[pyarrow]"
        and str(frame["credit"].dtype) == "decimal128(18, 4)[pyarrow]"
    )
    assert frame["date"].iloc[0] == dt.datetime(2024, 3, 1, 10, 15, tzinfo=ROME)


def test_empty_userlog_frame():
    frame = read_userlog(b"id\tdate\tu_id\tusername\tdest\tsharecode\r\n", "recv_del")
    assert list(frame.columns) == ["id", "date", "u_id", "username", "dest", "sharecode"] and frame.empty


@pytest.mark.parametrize(
    ("wall", "utc"),
    [
        # the last Sunday of October: 02:30 happens twice; the first (summer time, +02:00) is taken
        ("2024-10-27 02:30:00", dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC)),
        ("2024-10-27 01:59:59", dt.datetime(2024, 10, 26, 23, 59, 59, tzinfo=dt.UTC)),
        ("2024-10-27 03:00:00", dt.datetime(2024, 10, 27, 2, 0, tzinfo=dt.UTC)),
        # the last Sunday of March: 02:30 does not exist; read with the offset before the change
        ("2024-03-31 02:30:00", dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.UTC)),
        ("2024-03-31 03:00:00", dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC)),
    ],
)
def test_dst_changes_of_europe_rome(wall, utc):
    """docs/gateway.md, "Report dates": the same instants as zoneinfo with fold=0."""
    (entry,) = iter_userlog(CREDITS.splitlines(keepends=True)[0] + f"1\t{wall}\t7\tm\t3\t1.0\r\n", "credits")
    assert entry.date == utc
    assert parse_rome_datetime(wall).astimezone(dt.UTC) == utc


def test_a_line_of_spaces_in_a_threaded_read_keeps_rows_and_line_numbers():
    """Arrow's threaded reader gives no row numbers: a skipped line makes the read serial again."""
    body = "id,dest,status,status_text\n" + "".join(f"{i},+39333{i:07d},200,Sent\n" for i in range(60_000))
    body += (
        "   \n" + "".join(f"{i},+39334{i:07d},200,Sent\n" for i in range(60_000, 60_010)) + "x,+39,200,Sent\n"
    )
    bodies = [("R1", body.encode(), None)]
    assert len(body) > 1 << 20
    with pytest.raises(SmSendReportError) as info:
        read_batch_status(bodies, "queue")
    assert info.value.line == 60_013  # header, 60,000 rows, the spaces, 10 rows, then the bad one
    good = body.rsplit("x,+39", 1)[0]
    frame = read_batch_status([("R1", good.encode(), None), ("R2", good.encode(), None)], "queue")
    assert len(frame) == 2 * 60_010 and frame["request_id"].value_counts().to_dict() == {
        "R1": 60_010,
        "R2": 60_010,
    }


def test_a_malformed_line_is_quoted_with_its_number_masked():
    with pytest.raises(SmSendReportError) as info:
        parse_batch_status("id,dest,status,status_text\n1,+393331234567,200\n", "queue")
    assert "+393331234567" not in str(info.value) and "+39333****567" in str(info.value)
