"""Property tests (hypothesis): parsers never fail with anything but SmSendError; counters agree."""

from __future__ import annotations

from decimal import Decimal

import requests_mock as rm_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_smsend.client import answers, encoding
from airflow_provider_smsend.client.errors import SmSendError, SmSendReportError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.reports import (
    BatchStatusRow,
    parse_batch_status,
    read_userlog,
    userlog_entries,
)
from airflow_provider_smsend.client.retry import NO_RETRY

# Cheap properties get many examples; the parser and client ones fewer but still hundreds.
MANY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASIC = sorted(encoding.GSM_BASIC)
EXTENSION = sorted(encoding.GSM_EXTENSION)
basic_text = st.text(alphabet=BASIC, max_size=400)
gsm_text = st.text(alphabet=BASIC + EXTENSION, max_size=1000)
any_text = st.text(max_size=500)
content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "text/plain",
            "text/plain; charset=utf-8",
            "text/plain; charset=ISO-8859-1",
            'text/plain; charset="windows-1252"',
            "text/plain; charset=utf-16",
            "text/plain; charset=punycode",
            "text/plain; charset=idna",
            "text/plain; charset=no-such",
            "text/html",
        ]
    ),
    st.text(max_size=40),
)
# Bytes that look like gateway answers often enough to reach every branch.
answer_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda p, t: p + t.encode("utf-8", "surrogatepass"),
        st.sampled_from([b"OK", b"OK ", b"KO ", b" KO", b"ok "]),
        any_text,
    ),
)


@SOME
@given(content=answer_bytes, ctype=content_types)
def test_answer_parser_returns_text_or_raises_smsend_error(content, ctype):
    try:
        text = answers.decode_body(content, ctype)
    except Exception as exc:  # pragma: no cover - the assertion below explains
        raise AssertionError(f"decode_body raised {type(exc).__name__}") from exc
    assert isinstance(text, str)
    try:
        value = answers.parse_answer(text)
    except SmSendError:
        return
    assert isinstance(value, str)
    assert text.strip().startswith("OK")


@MANY
@given(value=any_text)
def test_value_parsers_raise_only_smsend_errors(value):
    for parse in (
        answers.parse_money,
        answers.parse_int,
        answers.split_cost_and_id,
        answers.parse_request_id,
    ):
        try:
            parse(value)
        except SmSendError:
            pass


@MANY
@given(
    cost=st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False, allow_infinity=False),
    request_id=st.integers(min_value=0, max_value=10**14).map(lambda n: f"HTTP{n:011d}"),
    id_first=st.booleans(),
)
def test_cost_and_id_round_trip_exactly(cost, request_id, id_first):
    text = f"{request_id} {cost}" if id_first else f"{cost} {request_id}"
    parsed_cost, parsed_id = answers.split_cost_and_id(text)
    assert (parsed_cost, parsed_id) == (cost, request_id)
    assert type(parsed_cost) is Decimal


csv_like = st.lists(
    st.sampled_from(
        list('0123456789,+- \t\r\n"abcKO_²') + ["id", "dest", "status", "status_text", "netcode"]
    ),
    max_size=120,
).map("".join)


@SOME
@given(text=st.one_of(any_text, csv_like), report_type=st.sampled_from(["queue", "notify", "mnc"]))
def test_batch_status_parser_raises_only_smsend_errors(text, report_type):
    try:
        rows = parse_batch_status(text, report_type).rows
    except SmSendError:  # a malformed line, KO, an empty body or HTML: never anything else
        return
    assert all(isinstance(r.id, int) and isinstance(r.status, int) and r.dest for r in rows)


header_text = st.sampled_from(
    [
        "id,dest,status,status_text\n",
        "id,dest,status,netcode,status_text\n",
        "status,id,status_text,dest\n",
    ]
)


@SOME
@given(header=header_text, body=csv_like, report_type=st.sampled_from(["queue", "notify", "mnc"]))
def test_batch_status_parser_with_valid_header_raises_only_report_errors(header, body, report_type):
    try:
        parse_batch_status(header + body, report_type)
    except SmSendReportError:
        pass


tsv_like = st.lists(
    st.sampled_from(list("0123456789\t\r\n -:.,abc²") + ["2024-03-01 10:00:00", "KO", "Infinity", "NaN"]),
    max_size=120,
).map("".join)


@SOME
@given(
    body=st.one_of(any_text, tsv_like),
    log_type=st.sampled_from(["credits", "recv_add", "recv_del"]),
    with_header=st.booleans(),
)
def test_userlog_parser_raises_only_smsend_errors(body, log_type, with_header):
    header = {
        "credits": "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n",
        "recv_add": "id\tdate\tu_id\tusername\tdest\tsharecode\r\n",
        "recv_del": "id\tdate\tu_id\tusername\tdest\tsharecode\r\n",
    }[log_type]
    text = (header if with_header else "") + body
    try:
        entries = userlog_entries(read_userlog(text.encode("utf-8", "surrogatepass"), log_type), log_type)
    except SmSendError:
        return
    for entry in entries:
        assert entry.date.tzinfo is not None
        assert entry.credit is None or (isinstance(entry.credit, Decimal) and entry.credit.is_finite())


rows = st.lists(
    st.builds(
        BatchStatusRow,
        id=st.integers(min_value=0, max_value=10**12),
        dest=st.integers(min_value=10**6, max_value=10**15 - 1).map(lambda n: f"+{n}"),
        status=st.sampled_from([100, 200, 300, 302]),
        status_text=st.text(
            alphabet=st.characters(
                exclude_characters=',"\r\n', exclude_categories=["Cs", "Zl", "Zp", "Cc", "Zs"]
            ),
            min_size=1,
            max_size=20,
        ),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(rows=rows, crlf=st.booleans())
def test_batch_status_round_trip(rows, crlf):
    newline = "\r\n" if crlf else "\n"
    text = newline.join(
        ["id,dest,status,status_text"] + [f"{r.id},{r.dest},{r.status},{r.status_text}" for r in rows]
    )
    assert parse_batch_status(text, "notify").rows == rows


# ------------------------------------------------------------------ counters


@MANY
@given(text=basic_text)
def test_septets_equal_length_for_basic_text(text):
    assert encoding.gsm_septets(text) == len(text)


@MANY
@given(text=gsm_text)
def test_each_extension_character_adds_two(text):
    extension = sum(1 for ch in text if ch in encoding.GSM_EXTENSION)
    assert encoding.gsm_septets(text) == len(text) + extension


@MANY
@given(text=gsm_text, ext=st.sampled_from(EXTENSION))
def test_appending_an_extension_character_adds_two(text, ext):
    assert encoding.gsm_septets(text + ext) == encoding.gsm_septets(text) + 2


@SOME
@given(text=st.one_of(gsm_text, st.text(max_size=600)))
def test_analyse_text_is_consistent_with_the_limits(text):
    info = encoding.analyse_text(text)
    assert info.characters == len(text)
    if info.encoding == "GSM":
        assert encoding.is_gsm(text)
        single, part = 160, 153
        assert info.units == encoding.gsm_septets(text)
    else:
        assert not encoding.is_gsm(text)
        single, part = 70, 67
        assert info.units == len(text.encode("utf-16-le", "surrogatepass")) // 2
    if info.units <= single:
        assert info.segments == 1
    else:  # a part may carry one unit less: an escape or a surrogate pair never straddles two
        assert (info.segments - 1) * (part - 1) < info.units <= info.segments * part
    operation = encoding.choose_operation(info)
    assert encoding.OPERATION_ENCODING[operation] == info.encoding
    assert operation in (("TEXT", "MULTITEXT") if info.encoding == "GSM" else ("UCS2", "MULTIUCS2"))
    assert (operation in ("TEXT", "UCS2")) == (info.segments == 1)


# An independent counter: encode the text as the SMSC does (septets with ESC, UTF-16 code
# units), then cut the stream into parts of 153 septets / 67 code units, moving a part's last
# unit into the next part when it is an ESC or a high surrogate (docs/gateway.md, "Messages").
ESC = 0x1B
_DOCUMENTED_EXTENSION = "^{}\\[~]|€\f"


def _septets(text: str) -> list[int]:
    stream: list[int] = []
    for ch in text:
        if ch in _DOCUMENTED_EXTENSION:
            stream += [ESC, ord(ch)]
        else:
            stream.append(-ord(ch))  # a basic-table character: never taken for an ESC
    return stream


def _code_units(text: str) -> list[int]:
    data = text.encode("utf-16-le")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def _parts(stream: list[int], single: int, size: int, splits_a_pair) -> list[list[int]]:
    if len(stream) <= single:
        return [stream]
    parts, rest = [], stream
    while rest:
        cut = min(size, len(rest))
        if cut < len(rest) and splits_a_pair(rest[cut - 1]):
            cut -= 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    return parts


def reference_segments(text: str, enc: str) -> int:
    if enc == "GSM":
        parts = _parts(_septets(text), 160, 153, lambda unit: unit == ESC)
    else:
        parts = _parts(_code_units(text), 70, 67, lambda unit: 0xD800 <= unit <= 0xDBFF)
    return len(parts)


def runs_of(alphabet: str, max_runs: int = 40):
    """Texts made of runs of a character (cheap to draw, yet up to 1,600 characters long)."""
    runs = st.lists(st.tuples(st.sampled_from(list(alphabet)), st.integers(1, 40)), max_size=max_runs)
    return runs.map(lambda rs: "".join(ch * n for ch, n in rs))


# Multi-part texts crowded with two-unit characters, so that part boundaries often fall on one.
escape_heavy = runs_of("ab €^{}[]~|\\")
surrogate_heavy = runs_of("aж€ 😀🎉𝄞中")
ucs2_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=500)


@st.composite
def just_under_full_parts(draw, one: str, two: str, part: int, units):
    """A text of two to six parts' worth of units, less up to one unit per part: where a
    part that lost a unit to a pair it could not split makes the text need one part more."""
    parts = draw(st.integers(min_value=2, max_value=6))
    target = parts * part - draw(st.integers(min_value=0, max_value=parts))
    taken, total = [], 0
    for ch in draw(runs_of(one + two)):
        if total + units(ch) > target:
            break
        taken.append(ch)
        total += units(ch)
    return "".join(taken) + one[0] * (target - total)


gsm_boundary = just_under_full_parts("ab ", "€^{}[]~|\\", 153, encoding.gsm_septets)
ucs2_boundary = just_under_full_parts("aж€", "😀🎉𝄞", 67, encoding.ucs2_units)


@MANY
@given(text=st.one_of(gsm_text, escape_heavy, gsm_boundary))
def test_gsm_segments_match_an_independent_counter(text):
    assert encoding.segments_for(text, "GSM") == reference_segments(text, "GSM")
    assert encoding.analyse_text(text).segments == reference_segments(text, "GSM")


@MANY
@given(text=st.one_of(surrogate_heavy, ucs2_text, escape_heavy, ucs2_boundary))
def test_ucs2_segments_match_an_independent_counter(text):
    assert encoding.segments_for(text, "UCS2") == reference_segments(text, "UCS2")


@MANY
@given(text=st.one_of(escape_heavy, surrogate_heavy, gsm_text, gsm_boundary, ucs2_boundary))
def test_segments_never_fall_when_the_text_grows(text):
    info = encoding.analyse_text(text)
    longer = encoding.analyse_text(text + "a")
    if longer.encoding == info.encoding:
        assert longer.segments >= info.segments


def test_the_independent_counter_splits_no_pair():
    assert reference_segments("€" * 153, "GSM") == 3
    assert reference_segments("€" * 459, "GSM") == 7
    assert reference_segments("😀" * 67, "UCS2") == 3
    assert reference_segments("a" * 306, "GSM") == 2


@MANY
@given(text=st.text(max_size=300))
def test_ucs2_units_are_utf16_code_units(text):
    assert encoding.ucs2_units(text) == len(text.encode("utf-16-le", "surrogatepass")) // 2
    assert encoding.ucs2_units(text) >= len(text)


# ------------------------------------------------------------------ the client as a whole


@settings(max_examples=120, deadline=None)
@given(content=answer_bytes, ctype=content_types, status=st.sampled_from([200, 200, 200, 500, 404]))
def test_client_raises_only_smsend_errors_for_any_answer(content, ctype, status):
    client = SmSendClient(username="u", password="pw-Secret9", base_url="https://gw.test", retry=NO_RETRY)
    headers = {"Content-Type": ctype} if ctype is not None else {}
    with rm_lib.Mocker() as mock:
        mock.register_uri(rm_lib.ANY, rm_lib.ANY, content=content, status_code=status, headers=headers)
        for call in (
            lambda: client.credit(),
            lambda: client.credit("h"),
            lambda: client.send("+393331234567", "Ciao", sender="ACME"),
            lambda: client.recv_add(7, "+393331234567"),
            lambda: client.client_status(7, True),
            lambda: client.batch_status("HTTP1", "mnc"),
            lambda: client.userlog_get("credits"),
        ):
            try:
                call()
            except SmSendError:
                pass
