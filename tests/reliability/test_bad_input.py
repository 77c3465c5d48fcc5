"""Bad input: every parser answers garbage with an SmSend error only; invalid input never leaves.

Property-based (hypothesis): gateway answers, CSV batch-status and TSV userlog reports (random
text and mutations of valid reports: dropped/duplicated fields, junk bytes, CR/LF variations,
huge integers), receiveSms envelopes and sendMms answers (through requests-mock). Then invalid
numbers, senders, texts and attachments, checked against the sandbox: its request counters stay
at zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests_mock as rm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smsend_test_support.sandbox import soap_client

from airflow_provider_smsend.client import answers
from airflow_provider_smsend.client.errors import SmSendError, SmSendValidationError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.reports import (
    iter_batch_status_frames,
    parse_batch_status,
    read_userlog,
    reports_from_frame,
    userlog_entries,
)
from airflow_provider_smsend.client.retry import NO_RETRY
from airflow_provider_smsend.client.soap import SmSendSoapClient, parse_receive_sms_response


def _body(lines: list[str | bytes]) -> bytes:
    """Lines as the answer body they were cut from."""
    return b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in lines)


def iter_batch_status(lines: list[str | bytes], report_type: str) -> list[Any]:
    """The rows of the streamed parser, fed the body in small chunks (blocks of a few lines)."""
    import pandas as pd

    body = _body(lines)
    chunks = [body[i : i + 16] for i in range(0, len(body), 16)]
    frames = list(iter_batch_status_frames("R", chunks, report_type, block_bytes=64))
    return reports_from_frame(pd.concat(frames), ["R"], report_type)[0].rows if frames else []


def iter_userlog(lines: list[str | bytes], log_type: str) -> list[Any]:
    return userlog_entries(read_userlog(_body(lines), log_type), log_type)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

huge_int = st.integers(4300, 6000).map(lambda n: "9" * n)  # beyond int()'s default digit limit
token = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"-?\d{1,12}([.,]\d{1,6})?", fullmatch=True),
    huge_int,
    st.sampled_from(
        ["", " ", "nan", "Infinity", "1e999999", "１２", "²", "HTTP00000000001", "+393331234567"]
    ),
)


def only_smsend_errors(parse: Callable[[], Any]) -> Any:
    """Run ``parse``; an SmSendError is an accepted outcome, any other exception fails the test."""
    try:
        return parse()
    except SmSendError:
        return None


# ------------------------------------------------------------------ OK/KO answers

answer_text = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda prefix, parts: (prefix + " ".join(parts)).encode("utf-8", "surrogatepass"),
        st.sampled_from(["OK ", "OK", "KO ", " ok ", "OK\r\n", "KO", ""]),
        st.lists(token, max_size=4),
    ),
)
content_type = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(
        [
            "text/plain; charset=utf-8",
            "text/plain; charset=ISO-8859-1",
            "text/plain; charset=utf-16",
            "text/plain; charset=nope",
            "text/html",
            'text/plain; charset="punycode"',
        ]
    ),
)


@FUZZ
@given(body=answer_text, ctype=content_type)
def test_answers_decode_and_parse_raise_only_smsend_errors(body: bytes, ctype: str | None) -> None:
    text = answers.decode_body(body, ctype)  # never raises at all
    assert isinstance(text, str)
    value = only_smsend_errors(lambda: answers.parse_answer(text))
    if value is None:
        return
    for parse in (
        answers.parse_money,
        answers.parse_int,
        answers.split_cost_and_id,
        answers.parse_request_id,
    ):
        only_smsend_errors(lambda parse=parse: parse(value))


@FEW
@given(body=answer_text, status=st.sampled_from([200, 200, 200, 500, 404, 302]))
def test_client_calls_on_garbage_answers_raise_only_smsend_errors(body: bytes, status: int) -> None:
    client = SmSendClient(
        base_url="http://gateway.test", username="u", password="p", default_sender="ACME", retry=NO_RETRY
    )
    with rm.Mocker() as mock:
        mock.post(rm.ANY, content=body, status_code=status)
        only_smsend_errors(lambda: client.send("+393331234567", "ciao"))
        only_smsend_errors(lambda: client.credit())
        only_smsend_errors(lambda: client.credit_add(1001, 1, "5"))
        only_smsend_errors(lambda: client.mnc(["+393331234567"]))
        only_smsend_errors(lambda: client.batch_status("HTTP00000000001", "notify"))
        only_smsend_errors(lambda: client.userlog_get("credits"))


# ------------------------------------------------------------------ CSV / TSV reports

BATCH_HEADERS = {
    "queue": "id,dest,status,status_text",
    "notify": "id,dest,status,status_text",
    "mnc": "id,dest,status,netcode,status_text",
}
USERLOG_HEADERS = {
    "credits": "id\tdate\tu_id\tusername\tbill_id\tcredit",
    "recv_add": "id\tdate\tu_id\tusername\tdest\tsharecode",
    "recv_del": "id\tdate\tu_id\tusername\tdest\tsharecode",
}


def batch_row(report_type: str, i: int) -> str:
    if report_type == "mnc":
        return [
            f"{i},+39333{i:07d},200, TIM",
            f"{i},+39340{i:07d},300,Unknown subscriber",
            f"{i},+39351{i:07d},200,22201,TIM",
        ][i % 3]
    return (
        f"{i},+39333{i:07d},{(100, 200, 300)[i % 3]},{('Waiting', 'Delivered', 'Unknown subscriber')[i % 3]}"
    )


def userlog_row(log_type: str, i: int) -> str:
    if log_type == "credits":
        return f"{i}\t2026-0{1 + i % 9}-1{i % 10} 1{i % 10}:00:00\t1001\tdemo\t1\t{i}.{i:04d}"
    return f"{i}\t2026-03-0{1 + i % 9} 12:00:00\t1001\tdemo\t+39340{i:07d}\t{i:03d}"


@st.composite
def mutated_report(draw: st.DrawFn, header: str, row: Callable[[int], str], sep: str) -> list[str | bytes]:
    """A valid report, then a few mutations; returned as lines (str or bytes) like the client's."""
    lines = [header] + [row(i) for i in range(1, draw(st.integers(0, 8)) + 1)]
    for _ in range(draw(st.integers(0, 3))):
        n = draw(st.integers(0, len(lines) - 1))
        fields = lines[n].split(sep)
        kind = draw(
            st.sampled_from(["drop", "duplicate", "junk", "replace", "huge", "swap_sep", "blank", "quote"])
        )
        k = draw(st.integers(0, len(fields) - 1))
        if kind == "drop" and len(fields) > 1:
            del fields[k]
        elif kind == "duplicate":
            fields.insert(k, fields[k])
        elif kind == "replace":
            fields[k] = draw(token)
        elif kind == "huge":
            fields[k] = draw(huge_int)
        elif kind == "quote":
            fields[k] = '"' + fields[k]
        lines[n] = sep.join(fields)
        if kind == "junk":
            junk = draw(st.text(min_size=1, max_size=10))
            at = draw(st.integers(0, len(lines[n])))
            lines[n] = lines[n][:at] + junk + lines[n][at:]
        elif kind == "swap_sep":
            lines[n] = lines[n].replace(sep, "\t" if sep == "," else ",")
        elif kind == "blank":
            lines.insert(n, draw(st.sampled_from(["", " ", "\r", "\x00"])))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\r", "\r\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    if draw(st.booleans()):  # like the streaming client: raw lines as bytes, maybe not UTF-8
        raw = text.encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            raw += draw(st.binary(max_size=8))
        return list(raw.split(b"\n"))
    return list(text.split("\n"))


@FUZZ
@given(data=st.data(), report_type=st.sampled_from(sorted(BATCH_HEADERS)))
def test_batch_status_parser_on_mutated_reports(data: st.DataObject, report_type: str) -> None:
    lines = data.draw(
        mutated_report(BATCH_HEADERS[report_type], lambda i: batch_row(report_type, i), ","), label="lines"
    )
    rows = only_smsend_errors(lambda: list(iter_batch_status(lines, report_type)))
    for r in rows or []:
        assert isinstance(r.id, int) and isinstance(r.status, int) and r.dest
    text = "\n".join(x.decode("latin-1") if isinstance(x, bytes) else x for x in lines)
    only_smsend_errors(lambda: parse_batch_status(text, report_type))


@FUZZ
@given(data=st.data(), log_type=st.sampled_from(sorted(USERLOG_HEADERS)))
def test_userlog_parser_on_mutated_reports(data: st.DataObject, log_type: str) -> None:
    lines = data.draw(
        mutated_report(USERLOG_HEADERS[log_type], lambda i: userlog_row(log_type, i), "\t"), label="lines"
    )
    entries = only_smsend_errors(lambda: list(iter_userlog(lines, log_type)))
    for e in entries or []:
        assert isinstance(e.id, int) and e.date.tzinfo is not None


@FUZZ
@given(
    lines=st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80)), max_size=6),
    kind=st.sampled_from(["queue", "notify", "mnc", "credits", "recv_add", "recv_del", "bogus"]),
)
def test_report_parsers_on_random_lines(lines: list[str | bytes], kind: str) -> None:
    if kind in USERLOG_HEADERS:
        only_smsend_errors(lambda: list(iter_userlog(lines, kind)))
    else:
        only_smsend_errors(lambda: list(iter_batch_status(lines, kind)))


# ------------------------------------------------------------------ SOAP answers

ENVELOPE = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>'
    '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
    "<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
)
ITEM = (
    '<item xsi:type="tns:recvSms"><id xsi:type="xsd:int">{id}</id><sender xsi:type="xsd:string">{sender}'
    '</sender><text xsi:type="xsd:string">{text}</text><date xsi:type="xsd:dateTime">{date}</date></item>'
)
FAULT = "<SOAP-ENV:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring></SOAP-ENV:Fault>"
xml_safe = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="<&"), max_size=20)


@st.composite
def receive_answer(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        body = FAULT.format(
            code=draw(st.one_of(st.sampled_from(["KO 101", "KO 106", "KO 999", "KO", ""]), xml_safe)),
            text=draw(xml_safe),
        )
    else:
        items = "".join(
            ITEM.format(
                id=draw(st.one_of(st.integers(-5, 10**6).map(str), token, huge_int)),
                sender=draw(xml_safe),
                text=draw(xml_safe),
                date=draw(
                    st.one_of(st.just("2005-11-22 11:07:02"), st.just("2026-01-01T10:00:00+01:00"), xml_safe)
                ),
            )
            for _ in range(draw(st.integers(0, 3)))
        )
        body = f'<ns1:receiveSmsResponse xmlns:ns1="urn:receiveSmswsdl"><response>{items}</response></ns1:receiveSmsResponse>'
    text = ENVELOPE.format(body=body)
    for _ in range(draw(st.integers(0, 2))):  # truncate, inject junk, drop an element
        at = draw(st.integers(0, len(text)))
        text = draw(
            st.sampled_from(
                [
                    text[:at],
                    text[:at] + draw(st.text(max_size=5)) + text[at:],
                    text.replace("<response>", "", 1),
                    text.replace("</SOAP-ENV:Body>", "", 1),
                ]
            )
        )
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")


@FUZZ
@given(
    content=st.one_of(receive_answer(), st.binary(max_size=200)),
    charset=st.sampled_from([None, "ISO-8859-1", "utf-8", "bogus"]),
)
def test_receive_sms_parser_raises_only_smsend_errors(content: bytes, charset: str | None) -> None:
    listed = only_smsend_errors(lambda: parse_receive_sms_response(content, charset=charset))
    for sms in listed or []:
        assert isinstance(sms.id, int) and sms.received_at.tzinfo is not None


MMS_RESPONSE = (
    '<ns1:sendMmsResponse xmlns:ns1="urn:sendMmswsdl"><response xsi:type="xsd:int">{value}</response>'
    "</ns1:sendMmsResponse>"
)


@st.composite
def mms_answer(draw: st.DrawFn) -> tuple[int, bytes]:
    if draw(st.booleans()):
        code = draw(st.sampled_from(["KO 211", "KO 301", "KO 105", "KO 777", "SOAP-ENV:Client", "", "KO"]))
        return 500, ENVELOPE.format(body=FAULT.format(code=code, text=draw(xml_safe))).encode(
            "latin-1", "replace"
        )
    value = draw(st.one_of(st.integers(-10, 10**9).map(str), token, huge_int, st.just("")))
    text = ENVELOPE.format(body=MMS_RESPONSE.format(value=value.replace("<", "").replace("&", "")))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=4))
    return draw(st.sampled_from([200, 200, 500, 502])), text.encode("latin-1", "replace")


@pytest.fixture(scope="module")
def mms_client() -> SmSendSoapClient:
    return SmSendSoapClient(
        mms_url="http://mms.test", mms_id="C00000_001", mms_password="mms-pass", retry=NO_RETRY
    )


@FEW
@given(answer=mms_answer())
def test_send_mms_answer_parsing_raises_only_smsend_errors(
    mms_client: SmSendSoapClient, answer: tuple[int, bytes]
) -> None:
    status, content = answer
    with rm.Mocker() as mock:
        mock.post(
            "http://mms.test/sms-gw/index.php",
            content=content,
            status_code=status,
            headers={"Content-Type": "text/xml; charset=ISO-8859-1"},
        )
        result = only_smsend_errors(lambda: mms_client.send_mms("Promo", "Ciao", ["+393331234567"]))
    if result is not None:
        assert isinstance(result.cost_units, int)  # a number, whatever else the gateway said


# ------------------------------------------------------------------ invalid input never leaves

bad_numbers = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
    st.from_regex(r"\+?\d{1,4}", fullmatch=True),
    st.from_regex(r"\+\d{17,30}", fullmatch=True),
    st.from_regex(r"\+39333[a-z]\d{6}", fullmatch=True),
    st.sampled_from(["", " ", "+", "++393331234567", "+39 333 abc 4567", "0", "00", "+0000000"]),
)
bad_senders = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{11,30}", fullmatch=True),
    st.from_regex(r"[A-Za-z]{1,5}[ !?.\-_@àé][A-Za-z]{1,4}", fullmatch=True),  # (outer spaces are trimmed)
    st.sampled_from(["ACME SRL", "ÀCME", "A" * 12, "+", "+12"]),
)
bad_texts = st.one_of(
    st.just(""),
    st.text(alphabet="abc", min_size=919, max_size=1200),  # beyond MULTITEXT's 918 septets
    st.text(alphabet="€[]", min_size=460, max_size=600),  # extension characters count twice
    st.text(alphabet="日本語", min_size=403, max_size=600),  # beyond MULTIUCS2's 402 characters
)
bad_attachments = st.one_of(
    st.binary(min_size=1, max_size=64).filter(
        lambda b: not b.startswith((b"\xff\xd8", b"GIF8", b"\x89PNG", b"MThd", b"ID3", b"\xff"))
    ),
    st.integers(102401, 110000).map(lambda n: b"\x89PNG\r\n\x1a\n" + b"\0" * n),
)


@pytest.fixture
def clients(sandbox: Any) -> tuple[SmSendClient, SmSendSoapClient]:
    http = SmSendClient(
        base_url=sandbox.url,
        username="demo",
        password="demo-pass",
        default_sender="ACME",
        reseller_password="reseller-pass",
        reseller_username="reseller",
    )
    soap = soap_client(sandbox)
    return http, soap


def assert_nothing_sent(sandbox: Any) -> None:
    stats = sandbox.admin.stats()
    assert stats["total"] == 0, stats["requests"]


@FEW
@given(number=bad_numbers)
def test_invalid_numbers_never_leave(sandbox: Any, clients: Any, number: str) -> None:
    sandbox.admin.reset_stats()  # the fixture runs once per test, not once per example
    http, soap = clients
    for call in (
        lambda: http.send(number, "ciao"),
        lambda: http.mnc([number]),
        lambda: http.recv_add(1001, number),
        lambda: soap.send_mms("Promo", "Ciao", [number]),
        lambda: soap.receive_sms(number, "001"),
    ):
        with pytest.raises(SmSendValidationError):
            call()
    assert_nothing_sent(sandbox)


@FEW
@given(sender=bad_senders, text=bad_texts)
def test_invalid_senders_and_texts_never_leave(sandbox: Any, clients: Any, sender: str, text: str) -> None:
    sandbox.admin.reset_stats()  # the fixture runs once per test, not once per example
    http, _ = clients
    with pytest.raises(SmSendValidationError):
        http.send("+393331234567", "ciao", sender=sender)
    with pytest.raises(SmSendValidationError):
        http.send("+393331234567", text)
    with pytest.raises(SmSendValidationError):
        http.prepare(text)
    assert_nothing_sent(sandbox)


@FEW
@given(
    data=bad_attachments,
    kind=st.sampled_from(["image", "sound", "video"]),
    subject=st.one_of(st.just("Promo"), st.text(min_size=26, max_size=40), st.just("日本")),
)
def test_invalid_attachments_and_mms_texts_never_leave(
    sandbox: Any, clients: Any, data: bytes, kind: str, subject: str
) -> None:
    _, soap = clients
    sandbox.admin.reset_stats()  # the fixture runs once per test, not once per example
    with pytest.raises(SmSendValidationError):
        soap.send_mms("Promo", "Ciao", ["+393331234567"], **{kind: data})
    if subject != "Promo":
        with pytest.raises(SmSendValidationError):
            soap.send_mms(subject, "Ciao", ["+393331234567"])
    assert_nothing_sent(sandbox)
