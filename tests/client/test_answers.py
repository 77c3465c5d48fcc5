"""OK/KO answer parsing and body decoding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from airflow_provider_smsend.client import answers
from airflow_provider_smsend.client.errors import (
    SmSendError,
    SmSendGatewayError,
    SmSendInsufficientCreditError,
    SmSendTransportError,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("OK", ""),
        ("OK\n", ""),
        ("  OK 12.3456\r\n", "12.3456"),
        ("OK 0.0450 HTTP00000000111", "0.0450 HTTP00000000111"),
        ("OK Attivato", "Attivato"),
        ("OK 001,002,003", "001,002,003"),
    ],
)
def test_parse_answer_ok(text, value):
    assert answers.parse_answer(text) == value


def test_parse_answer_ko_raises_the_mapped_error():
    with pytest.raises(SmSendInsufficientCreditError) as info:
        answers.parse_answer("KO Credito insufficiente.\r\n")
    assert info.value.gateway_text == "KO Credito insufficiente."


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \r\n",
        "<html><body>502 Bad Gateway</body></html>",
        "OKAY",
        "KOALA",
        "ok 1",
        "Internal Server Error",
    ],
)
def test_parse_answer_other_is_transport_error(text):
    with pytest.raises(SmSendTransportError) as info:
        answers.parse_answer(text)
    assert not isinstance(info.value, SmSendGatewayError)


def test_parse_answer_excerpt_is_short_for_a_big_page():
    with pytest.raises(SmSendTransportError) as info:
        answers.parse_answer("<html>" + "x" * 10_000 + "</html>")
    assert len(str(info.value)) < 400


def test_is_ko_and_raise_for_ko():
    assert answers.is_ko(" KO Errore interno.")
    assert not answers.is_ko("OK")
    answers.raise_for_ko("id,dest,status,status_text")  # a report: no error
    with pytest.raises(SmSendGatewayError):
        answers.raise_for_ko("KO Errore interno.")


@pytest.mark.parametrize(
    ("content", "ctype", "expected"),
    [
        ("è".encode(), None, "è"),
        ("è".encode(), "text/plain", "è"),
        ("è".encode("iso-8859-1"), None, "è"),  # not UTF-8: ISO-8859-1 fallback
        ("è".encode("iso-8859-1"), "text/plain; charset=ISO-8859-1", "è"),
        ("è".encode("cp1252"), 'text/plain; charset="windows-1252"', "è"),
        ("€".encode("cp1252"), "text/plain; charset=windows-1252", "€"),
        ("è".encode(), "text/plain; charset=no-such-charset", "è"),
        ("è".encode("iso-8859-1"), "text/plain; charset=utf-8", "è"),  # wrong header: fall back
    ],
)
def test_decode_body(content, ctype, expected):
    assert answers.decode_body(content, ctype) == expected


def test_decode_body_header_charset_wins_over_utf8_guess():
    # These bytes are valid UTF-8 ("Ã¨" when read as latin-1); the declared charset decides.
    assert answers.decode_body("è".encode(), "text/plain; charset=iso-8859-1") == "Ã¨"


@pytest.mark.parametrize("charset", ["punycode", "hex", "zlib", "idna", "utf-16", "rot13"])
def test_decode_body_never_raises_for_odd_declared_charsets(charset):
    for content in (b"OK a.b-\xff", b"a.a.a", b"OK 1"):
        assert isinstance(answers.decode_body(content, f"text/plain; charset={charset}"), str)


def test_decode_body_odd_charset_falls_back_to_utf8():
    # The punycode codec raises a bare UnicodeError on this body: the fallback must still apply.
    assert answers.decode_body(b"OK 1", "text/plain; charset=punycode") == "OK 1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123.4567", Decimal("123.4567")),
        ("0.0450", Decimal("0.0450")),
        ("12,3456", Decimal("12.3456")),
        ("7", Decimal(7)),
    ],
)
def test_parse_money_is_exact_decimal(value, expected):
    result = answers.parse_money(value)
    assert type(result) is Decimal
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize("value", ["", "abc", "1.2.3", "1e3", "NaN", "Infinity", "12.34 EUR"])
def test_parse_money_rejects_non_numbers(value):
    with pytest.raises(SmSendTransportError):
        answers.parse_money(value)


def test_parse_int():
    assert answers.parse_int(" 42 ") == 42


@pytest.mark.parametrize("value", ["", "-1", "4.2", "x1", "²", "１２"])
def test_parse_int_rejects(value):
    with pytest.raises(SmSendError):
        answers.parse_int(value)


@pytest.mark.parametrize(
    ("value", "cost", "request_id"),
    [
        ("0.0450 HTTP00000000111", Decimal("0.0450"), "HTTP00000000111"),
        ("HTTP0001 0.05", Decimal("0.05"), "HTTP0001"),
        ("0.0450", Decimal("0.0450"), None),
        ("0,0450   HTTP9", Decimal("0.0450"), "HTTP9"),
    ],
)
def test_split_cost_and_id(value, cost, request_id):
    assert answers.split_cost_and_id(value) == (cost, request_id)


@pytest.mark.parametrize("value", ["", "HTTP1", "0.1 0.2", "0.1 A B", "A B"])
def test_split_cost_and_id_rejects(value):
    with pytest.raises(SmSendTransportError):
        answers.split_cost_and_id(value)


def test_parse_request_id():
    assert answers.parse_request_id("") is None
    assert answers.parse_request_id(" HTTP00000000111 ") == "HTTP00000000111"
    with pytest.raises(SmSendTransportError):
        answers.parse_request_id("A B")
