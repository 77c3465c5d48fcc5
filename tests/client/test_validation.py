"""Validation before any request: bad input raises SmSendValidationError and sends nothing.

Every refusal is checked through the real client with a catch-all requests-mock route, and the
mock's call count proves that no request left. Accepted forms are checked on the wire.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests_mock as rm_lib

from airflow_provider_smsend.client import validation
from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import NO_RETRY

BASE = "https://gw.test"


def make_client(**kwargs) -> SmSendClient:
    kwargs.setdefault("retry", NO_RETRY)
    kwargs.setdefault("base_url", BASE)
    return SmSendClient(username="user", password="pw-Secret9", **kwargs)


def form(request) -> dict[str, str]:
    parsed = parse_qs(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    return {k: v[0] for k, v in parsed.items()}


@pytest.fixture
def gateway(requests_mock):
    """A gateway that would accept anything: a test passes only if nothing reached it."""
    requests_mock.register_uri(rm_lib.ANY, rm_lib.ANY, text="OK 0.05 HTTP1")
    return requests_mock


def send(**kwargs):
    def call(c: SmSendClient):
        args = {"rcpt": "+393331234567", "text": "Ciao", "sender": "ACME", "quality": "h"}
        args.update(kwargs)
        return c.send(args.pop("rcpt"), args.pop("text"), **args)

    return call


REFUSED = {
    # recipients
    "rcpt-short": (send(rcpt="12345"), "Invalid phone number"),
    "rcpt-letters": (send(rcpt="hello"), "Invalid phone number"),
    "rcpt-cc-only": (send(rcpt="+39"), "Invalid phone number"),
    "rcpt-none": (send(rcpt=None), "must be text"),
    # senders
    "sender-12-chars": (send(sender="ABCDEFGHIJKL"), "never truncated"),
    "sender-accent": (send(sender="Caffè"), "Invalid sender"),
    "sender-space": (send(sender="AC ME"), "Invalid sender"),
    "sender-symbol": (send(sender="ACME!"), "Invalid sender"),
    "sender-missing": (send(sender=None), "sender is required"),
    "sender-blank": (send(sender="   "), "sender is required"),
    "sender-bad-number": (send(sender="+39 12"), "Invalid phone number"),
    # quality and operation
    "quality-unknown": (send(quality="x"), "Unknown quality"),
    "quality-uppercase": (send(quality="H"), "Unknown quality"),
    "operation-unknown": (send(operation="FLASH"), "Unknown operation"),
    "ucs2-low": (send(operation="UCS2", quality="l"), "quality 'h'"),
    "multitext-auto": (send(operation="MULTITEXT", quality="a"), "quality 'h'"),
    "multiucs2-lowest": (send(operation="MULTIUCS2", quality="ll"), "quality 'h'"),
    "auto-multitext-low": (send(text="a" * 161, quality="l"), "chosen because"),
    "auto-ucs2-medium": (send(text="ciao ç", quality="l"), "chosen because"),
    # lengths
    "text-161": (send(text="a" * 161, operation="TEXT"), "161 septets"),
    "text-81-euro": (send(text="€" * 81, operation="TEXT"), "162 septets"),
    "text-159-plus-ext": (send(text="a" * 159 + "[", operation="TEXT"), "161 septets"),
    "text-not-gsm": (send(text="ciao ç", operation="TEXT"), "GSM 03.38"),
    "multitext-not-gsm": (send(text="😀", operation="MULTITEXT"), "GSM 03.38"),
    "ucs2-71": (send(text="ç" * 71, operation="UCS2"), "71 UCS-2"),
    "ucs2-36-emoji": (send(text="😀" * 36, operation="UCS2"), "72 UCS-2"),
    "multitext-919": (send(text="a" * 919, operation="MULTITEXT"), "919 septets"),
    "multitext-auto-too-long": (send(text="a" * 919), "919 septets"),
    "multiucs2-403": (send(text="ç" * 403, operation="MULTIUCS2"), "403 UCS-2"),
    "text-empty": (send(text=""), "empty"),
    "text-not-str": (send(text=42), "must be a string"),
    # WAPPUSH
    "wappush-no-url": (send(operation="WAPPUSH"), "needs url"),
    "wappush-ftp-url": (send(operation="WAPPUSH", url="ftp://example.com/x"), "Invalid WAPPUSH url"),
    "wappush-no-host": (send(operation="WAPPUSH", url="https://"), "Invalid WAPPUSH url"),
    "url-without-wappush": (send(url="https://example.com"), "only used with operation WAPPUSH"),
    "wappush-too-long": (send(operation="WAPPUSH", url="https://e.it", text="a" * 161), "161 septets"),
    # back-office
    "client-add-empty-name": (lambda c: c.client_add("", "mario", "pw"), "name is required"),
    "client-add-no-username": (lambda c: c.client_add("Mario", None, "pw"), "username is required"),
    "client-add-blank-password": (lambda c: c.client_add("Mario", "mario", "  "), "password is required"),
    "client-add-tpl-zero": (lambda c: c.client_add("Mario", "mario", "pw", tpl_id=0), "tpl_id"),
    "credit-add-float": (lambda c: c.credit_add(1, 2, 12.5), "never a float"),
    "credit-add-5-decimals": (lambda c: c.credit_add(1, 2, "12.34567"), "Invalid credit amount"),
    "credit-add-decimal-5-decimals": (lambda c: c.credit_add(1, 2, Decimal("1.00001")), "at most 4 decimals"),
    "credit-add-negative": (lambda c: c.credit_add(1, 2, "-1"), "Invalid credit amount"),
    "credit-add-zero": (lambda c: c.credit_add(1, 2, 0), "positive"),
    "credit-add-nan": (lambda c: c.credit_add(1, 2, Decimal("NaN")), "Invalid credit amount"),
    "credit-add-text": (lambda c: c.credit_add(1, 2, "dodici"), "Invalid credit amount"),
    "credit-add-thousands": (lambda c: c.credit_add(1, 2, "1.234,56"), "Invalid credit amount"),
    "credit-add-bool": (lambda c: c.credit_add(1, 2, True), "never a float"),
    "credit-add-bad-bill": (lambda c: c.credit_add(1, "x", "1"), "bill_id"),
    "credit-add-bad-uid": (lambda c: c.credit_add(0, 2, "1"), "u_id"),
    "credit-get-negative": (lambda c: c.credit_get(-3), "u_id"),
    "credit-get-bool": (lambda c: c.credit_get(True), "u_id"),
    "credit-get-superscript": (lambda c: c.credit_get("²"), "u_id"),
    "userlog-type": (lambda c: c.userlog_get("credit"), "Invalid userlog type"),
    "userlog-bad-date": (lambda c: c.userlog_get("credits", date_from="2024-13-01"), "Invalid from date"),
    "userlog-int-date": (lambda c: c.userlog_get("credits", date_to=20240101), "Invalid to date"),
    "userlog-date-typo": (lambda c: c.userlog_get("credits", date_from="2024-03-011"), "Invalid from date"),
    "userlog-date-trailing-junk": (
        lambda c: c.userlog_get("credits", date_to="2024-03-01 yesterday"),
        "Invalid to date",
    ),
    "userlog-uid": (lambda c: c.userlog_get("credits", u_id=0), "u_id"),
    "stream-userlog-type": (lambda c: c.stream_userlog("nope").__enter__(), "Invalid userlog type"),
    "recv-add-num-0": (lambda c: c.recv_add(1, "+393331234567", 0), "num must be"),
    "recv-add-num-21": (lambda c: c.recv_add(1, "+393331234567", 21), "num must be"),
    "recv-add-num-bool": (lambda c: c.recv_add(1, "+393331234567", True), "num must be"),
    "recv-add-num-str": (lambda c: c.recv_add(1, "+393331234567", "2"), "num must be"),
    "recv-add-dest": (lambda c: c.recv_add(1, "123", 1), "Invalid phone number"),
    "recv-del-sharecode": (lambda c: c.recv_del(1, "+393331234567", ""), "sharecode"),
    "recv-del-dest": (lambda c: c.recv_del(1, "abc", "001"), "Invalid phone number"),
    "client-status-int": (lambda c: c.client_status(1, 1), "active must be"),
    "client-status-str": (lambda c: c.client_status(1, "yes"), "active must be"),
    # mnc, batch-status, credit
    "mnc-empty": (lambda c: c.mnc([]), "at least one number"),
    "mnc-invalid": (lambda c: c.mnc(["+393331234567", "12"]), "1 invalid phone number"),
    "mnc-over-max": (
        lambda c: c.mnc(["+393331234567", "+393401234567", "3351234567"], max_numbers=2),
        "mnc_chunked",
    ),
    "mnc-chunked-late-invalid": (
        lambda c: c.mnc_chunked(["+393331234567"] * 5 + ["bad"], chunk_size=2),
        "1 invalid phone number",
    ),
    "mnc-chunk-size-0": (lambda c: c.mnc_chunked(["+393331234567"], chunk_size=0), "chunk_size"),
    "batch-type": (lambda c: c.batch_status("HTTP1", "delivered"), "Invalid report type"),
    "batch-empty-id": (lambda c: c.batch_status("", "queue"), "request id"),
    "stream-batch-type": (
        lambda c: c.stream_batch_status("HTTP1", "sent").__enter__(),
        "Invalid report type",
    ),
    "credit-type": (lambda c: c.credit("x"), "Invalid credit type"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_without_any_request(gateway, case):
    call, fragment = REFUSED[case]
    with pytest.raises(SmSendValidationError) as info:
        call(make_client())
    assert fragment in str(info.value)
    assert gateway.called is False
    assert gateway.call_count == 0


def test_invalid_numbers_are_masked_in_the_error(gateway):
    with pytest.raises(SmSendValidationError) as info:
        make_client().mnc(["+393331234567", "+39333123456789012"])
    assert "+39333123456789012" not in str(info.value)
    assert gateway.call_count == 0


# --------------------------------------------------------------- accepted forms, on the wire


@pytest.mark.parametrize(
    ("rcpt", "expected"),
    [
        ("3331234567", "+393331234567"),
        ("0039 333 1234567", "+393331234567"),
        ("+39 333 123 4567", "+393331234567"),
    ],
)
def test_national_and_0039_forms_are_normalised(gateway, rcpt, expected):
    result = make_client().send(rcpt, "Ciao", sender="ACME")
    assert form(gateway.last_request)["rcpt"] == expected
    assert result.recipient == expected


def test_another_default_region(gateway):
    client = make_client(default_region="GB")
    client.send("07911 123456", "Hi", sender="ACME")
    assert form(gateway.last_request)["rcpt"] == "+447911123456"
    gateway.register_uri(rm_lib.ANY, rm_lib.ANY, text="OK HTTP2")
    client.mnc(["07911 123456", "+393331234567"])
    assert form(gateway.last_request)["numbers"] == "+447911123456,+393331234567"


@pytest.mark.parametrize(
    ("sender", "wire"),
    [
        ("ABCDEFGHIJK", "ABCDEFGHIJK"),
        ("Acme2024", "Acme2024"),
        ("+393331234567", "+393331234567"),
        ("0039 333 1234567", "+393331234567"),
    ],
)
def test_valid_senders(gateway, sender, wire):
    make_client().send("+393331234567", "Ciao", sender=sender)
    assert form(gateway.last_request)["sender"] == wire


def test_default_sender_and_quality_from_the_client(gateway):
    make_client(default_sender="DEFAULT", default_quality="n").send("+393331234567", "Ciao")
    sent = form(gateway.last_request)
    assert (sent["sender"], sent["qty"]) == ("DEFAULT", "n")


@pytest.mark.parametrize("quality", ["ll", "l", "a", "h", "n"])
def test_every_quality_accepted_for_text(gateway, quality):
    make_client().send("+393331234567", "Ciao", sender="ACME", quality=quality)
    assert form(gateway.last_request)["qty"] == quality


@pytest.mark.parametrize(
    ("text", "quality", "operation", "enc", "chars", "units", "segments"),
    [
        ("€" * 80, "l", "TEXT", "GSM", 80, 160, 1),
        ("a" * 160, "ll", "TEXT", "GSM", 160, 160, 1),
        ("a" * 161, "h", "MULTITEXT", "GSM", 161, 161, 2),
        ("a" * 918, "n", "MULTITEXT", "GSM", 918, 918, 6),
        ("ciao ç", "h", "UCS2", "UCS2", 6, 6, 1),
        ("😀" * 35, "h", "UCS2", "UCS2", 35, 70, 1),
        ("ç" * 71, "n", "MULTIUCS2", "UCS2", 71, 71, 2),
        ("ç" * 402, "h", "MULTIUCS2", "UCS2", 402, 402, 6),
    ],
)
def test_automatic_operation_choice(gateway, text, quality, operation, enc, chars, units, segments):
    result = make_client().send("+393331234567", text, sender="ACME", quality=quality)
    message = result.message
    assert (message.operation, message.encoding, message.characters, message.units, message.segments) == (
        operation,
        enc,
        chars,
        units,
        segments,
    )
    sent = form(gateway.last_request)
    assert sent["operation"] == operation
    assert sent["data"] == text


def test_explicit_operations_accepted(gateway):
    client = make_client()
    assert (
        client.send("+393331234567", "ciao", sender="A", operation="ucs2", quality="h").message.operation
        == "UCS2"
    )
    assert form(gateway.last_request)["operation"] == "UCS2"
    client.send("+393331234567", "Apri", sender="A", operation="WAPPUSH", url="https://e.it/x", quality="l")
    sent = form(gateway.last_request)
    assert (sent["operation"], sent["url"]) == ("WAPPUSH", "https://e.it/x")


def test_prepare_does_not_send(gateway):
    prepared = make_client().prepare("Ciao €", quality="l")
    assert (prepared.operation, prepared.units) == ("TEXT", 7)
    assert gateway.called is False


@pytest.mark.parametrize(
    ("amount", "wire"),
    [
        ("12,3456", "12.3456"),
        ("12.3456", "12.3456"),
        ("12,3", "12.3000"),
        (Decimal("0.0001"), "0.0001"),
        (5, "5.0000"),
    ],
)
def test_credit_amount_forms(gateway, amount, wire):
    gateway.register_uri(rm_lib.ANY, rm_lib.ANY, text="OK 9")
    make_client().credit_add(1, 2, amount)
    assert form(gateway.last_request)["credit"] == wire


def test_credit_is_optional(gateway):
    gateway.register_uri(rm_lib.ANY, rm_lib.ANY, text="OK 9")
    make_client().credit_add(1, 2)
    assert "credit" not in form(gateway.last_request)


def test_parse_credit_amount_returns_exact_decimal():
    assert validation.parse_credit_amount("12,3456") == Decimal("12.3456")
    assert type(validation.parse_credit_amount(3)) is Decimal


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (dt.date(2024, 3, 1), "2024-03-01"),
        (dt.datetime(2024, 3, 1, 23, 59), "2024-03-01"),
        ("2024-03-01", "2024-03-01"),
        (" 2024-03-01 ", "2024-03-01"),
        ("2024-03-01T10:15:00", "2024-03-01"),
        ("2024-03-01 10:15:00+01:00", "2024-03-01"),
    ],
)
def test_userlog_dates(gateway, value, wire):
    gateway.register_uri(rm_lib.ANY, rm_lib.ANY, text="id\tdate\tu_id\tusername\tbill_id\tcredit\r\n")
    make_client().userlog_get("credits", u_id="5", date_from=value, date_to=value)
    sent = form(gateway.last_request)
    assert (sent["from"], sent["to"], sent["u_id"], sent["type"]) == (wire, wire, "5", "credits")


@pytest.mark.parametrize("num", [1, 20])
def test_recv_add_num_bounds_accepted(gateway, num):
    gateway.register_uri(rm_lib.ANY, rm_lib.ANY, text="OK 001")
    make_client().recv_add(1, "3331234567", num)
    sent = form(gateway.last_request)
    assert (sent["num"], sent["dest"]) == (str(num), "+393331234567")


def test_mnc_exactly_max_numbers_is_one_request(gateway):
    gateway.register_uri(rm_lib.ANY, rm_lib.ANY, text="OK HTTP1")
    numbers = [f"+39333123{i:04d}" for i in range(3)]
    assert make_client().mnc(numbers, max_numbers=3) == "HTTP1"
    assert gateway.call_count == 1


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), (5, 0), (1, 2, 3), "5"])
def test_client_rejects_bad_timeouts(timeout):
    with pytest.raises(SmSendValidationError):
        make_client(timeout=timeout)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"charset": "klingon"}, "Unknown charset"),
        ({"default_quality": "zz"}, "Unknown quality"),
        ({"base_url": ""}, "host is empty"),
        ({"base_url": "ftp://gw.test"}, "Invalid gateway host"),
        ({"base_url": "https://u:p@gw.test"}, "credentials"),
    ],
)
def test_client_rejects_bad_configuration(kwargs, fragment):
    with pytest.raises(SmSendValidationError) as info:
        make_client(**kwargs)
    assert fragment in str(info.value)


def test_parse_list_text_reads_rendered_lists_and_names_bad_ones():
    from airflow_provider_smsend.client.batch_rules import normalize_request_ids
    from airflow_provider_smsend.client.validation import parse_list_text

    assert parse_list_text('["A", "B"]', name="ids") == ["A", "B"]
    assert parse_list_text("['A', 'B']", name="ids") == ["A", "B"]
    with pytest.raises(SmSendValidationError, match="request_ids '\\[A, B' looks like a list"):
        normalize_request_ids("[A, B")
    assert normalize_request_ids("['HTTP1', 'HTTP2']") == ["HTTP1", "HTTP2"]


def test_mnc_numbers_from_a_bad_rendered_list_fail_the_task():
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_smsend.operators.base import airflow_error
    from airflow_provider_smsend.operators.mnc import parse_numbers

    assert parse_numbers("['+393331234567', '+393331234568']") == ["+393331234567", "+393331234568"]
    with pytest.raises(SmSendValidationError, match="numbers") as raised:
        parse_numbers("[+393331234567,")
    assert isinstance(airflow_error(raised.value), AirflowFailException)  # the task fails, no retry
