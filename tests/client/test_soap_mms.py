"""sendMms through SmSendSoapClient (client/soap.py): request, auth modes, cost, faults, validation, no
blind retry (the MMS model itself: test_mms.py)."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import requests_mock as rm
from lxml import etree
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_smsend.client.errors import (
    SOAP_FAULTS,
    SmSendInsufficientCreditError,
    SmSendReportError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.mms import MAX_ATTACHMENT_BYTES, MmsResult
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient

FIXTURES = Path(__file__).parent / "fixtures" / "soap"
BASE = "https://mms.example"
ENDPOINT = BASE + "/sms-gw/index.php"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML = {"Content-Type": "text/xml; charset=ISO-8859-1"}

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
MIDI = b"MThd\x00\x00\x00\x06" + b"\x00" * 32
MP3_ID3 = b"ID3\x04\x00" + b"\x00" * 32
GP3 = b"\x00\x00\x00\x18ftyp3gp4" + b"\x00" * 32


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_client(**kwargs: object) -> SmSendSoapClient:
    options: dict = {
        "mms_url": BASE,
        "mms_id": "C00000_001",
        "mms_password": "mms-secret-42",
        "retry": RetryPolicy(attempts=3, initial_wait=0, max_wait=0),
    }
    options.update(kwargs)
    return SmSendSoapClient(**options)


def sent_parts(body: bytes) -> list[etree._Element]:
    return list(etree.fromstring(body).find(f"{{{SOAP_ENV}}}Body")[0])


def values(body: bytes) -> dict[str, str | None]:
    return {etree.QName(p).localname: p.text for p in sent_parts(body)}


@pytest.fixture
def mocker():
    with rm.Mocker() as m:
        yield m


@pytest.fixture
def ok(mocker):
    mocker.post(ENDPOINT, content=fixture("mms_response.xml"), headers=XML)
    return mocker


def test_request_has_soapaction_and_the_documented_parts(ok):
    result = make_client().send_mms("Oggetto", "Testo dell'MMS", "+393477005440", image=GIF)

    request = ok.last_request
    assert request.url == ENDPOINT
    assert request.headers["SOAPAction"] == '"urn:sendMmswsdl#sendMms"'
    assert etree.fromstring(request.body).find(f"{{{SOAP_ENV}}}Body")[0].tag == "{urn:sendMmswsdl}sendMms"
    parts = sent_parts(request.body)
    documented = sent_parts(fixture("mms_request.xml"))
    names = [etree.QName(p).localname for p in parts]
    assert names[:8] == [etree.QName(p).localname for p in documented]
    assert names[8] == "videodata"
    assert [p.get(f"{{{XSI}}}type") for p in parts][:8] == [p.get(f"{{{XSI}}}type") for p in documented]
    sent = values(request.body)
    assert sent["id"] == "C00000_001"
    assert sent["password"] == "mms-secret-42"
    assert not sent["ticket"]
    assert sent["subject"] == "Oggetto"
    assert sent["text"] == "Testo dell'MMS"
    assert sent["rcpt"] == "+393477005440"
    assert base64.b64decode(sent["imagedata"] or "") == GIF
    assert [p.get(f"{{{XSI}}}nil") for p in parts[7:]] == ["true", "true"]  # sounddata, videodata
    assert result == MmsResult(cost=Decimal("0.3700"), cost_units=3700, recipients=("+393477005440",))


def test_documented_success_is_cost_in_ten_thousandths(ok):
    result = make_client().send_mms("Oggetto", "Testo", ["+393477005440"])
    assert result.cost == Decimal("0.3700")
    assert str(result.cost) == "0.3700"
    assert result.cost_units == 3700


def test_md5_ticket_is_sent_and_the_password_is_not(ok):
    client = make_client(mms_auth="md5", mms_password="segreta")
    client.send_mms("Oggetto", "Testo dell'MMS", ["+393477005440", "3331234567"])

    # Written out by hand: id + rcpt (exactly as sent, comma-joined) + subject + text + password.
    expected = hashlib.md5(b"C00000_001+393477005440,+393331234567OggettoTesto dell'MMSsegreta").hexdigest()
    sent = values(ok.last_request.body)
    assert sent["rcpt"] == "+393477005440,+393331234567"
    assert sent["ticket"] == expected
    assert not sent["password"]
    assert b"segreta" not in ok.last_request.body


def test_text_goes_out_in_iso_8859_1(ok):
    make_client().send_mms("Città", "Perché no", "+393477005440")
    body = ok.last_request.body
    assert b"encoding='ISO-8859-1'" in body.split(b"?>")[0]
    assert "Città".encode("iso-8859-1") in body
    assert values(body)["text"] == "Perché no"


def test_recipients_are_normalised_and_deduplicated(ok):
    result = make_client().send_mms("S", "T", "+39 347 700 5440, 3331234567,+393477005440")
    assert result.recipients == ("+393477005440", "+393331234567")
    assert values(ok.last_request.body)["rcpt"] == "+393477005440,+393331234567"


def test_attachments_from_paths_and_every_slot(ok, tmp_path):
    image = tmp_path / "picture.bin"  # the name says nothing: the content decides
    image.write_bytes(PNG)
    make_client().send_mms("S", "T", "+393477005440", image=image, sound=str_path(tmp_path, MIDI), video=GP3)
    sent = values(ok.last_request.body)
    assert base64.b64decode(sent["imagedata"] or "") == PNG
    assert base64.b64decode(sent["sounddata"] or "") == MIDI
    assert base64.b64decode(sent["videodata"] or "") == GP3


def str_path(directory: Path, data: bytes) -> str:
    path = directory / "sound.dat"
    path.write_bytes(data)
    return str(path)


def test_attachment_of_exactly_100_kb_is_accepted(ok):
    make_client().send_mms("S", "T", "+393477005440", image=PNG + b"\x00" * (MAX_ATTACHMENT_BYTES - len(PNG)))
    assert ok.call_count == 1
    assert MAX_ATTACHMENT_BYTES == 102400


LONG = "x" * 2401


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("", "T", "+393477005440"), {}, "subject is empty"),
        (("x" * 26, "T", "+393477005440"), {}, "26 characters: at most 25"),
        (("S", LONG, "+393477005440"), {}, "2401 characters: at most 2400"),
        (("S", "5 €", "+393477005440"), {}, r"'€' \(U\+20AC\) at position 2"),
        (("Ok ✓", "T", "+393477005440"), {}, r"subject has '✓' \(U\+2713\) at position 3"),
        (("S", "bell\x07", "+393477005440"), {}, "control character U\\+0007"),
        (("S", "T", "not-a-number"), {}, "invalid phone number"),
        (("S", "T", []), {}, "No MMS recipient"),
        (("S", "", "+393477005440"), {}, "text is empty"),
        (("S", " \n", "+393477005440"), {"image": PNG}, "text is empty"),
        (
            ("S", "T", "+393477005440"),
            {"image": PNG + b"\x00" * (MAX_ATTACHMENT_BYTES - len(PNG) + 1)},
            "102401 bytes",
        ),
        (("S", "T", "+393477005440"), {"sound": b"ID3" + b"\x00" * MAX_ATTACHMENT_BYTES}, "at most 100 kB"),
        (("S", "T", "+393477005440"), {"image": b"RIFF\x00\x00\x00\x00WEBPVP8 "}, "not a supported image"),
        (("S", "T", "+393477005440"), {"image": MP3_ID3}, "looks like audio/mpeg.*sound="),
        (("S", "T", "+393477005440"), {"video": PNG}, "looks like image/png.*image="),
        (("S", "T", "+393477005440"), {"sound": b""}, "is empty"),
        (("S", "T", "+393477005440"), {"image": "/nonexistent/picture.png"}, "Cannot read"),
        (("S", "T", "+393477005440"), {"image": 12345}, "bytes or a file path"),
    ],
)
def test_validation_happens_before_any_request(ok, args, kwargs, match):
    with pytest.raises(SmSendValidationError, match=match):
        make_client().send_mms(*args, **kwargs)
    assert ok.call_count == 0


def test_oversized_file_is_rejected_by_size_before_reading(ok, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\x00" * MAX_ATTACHMENT_BYTES)
    with pytest.raises(SmSendValidationError, match=r"big\.png.*at most 100 kB"):
        make_client().send_mms("S", "T", "+393477005440", image=big)
    assert ok.call_count == 0


def test_missing_mms_credentials_make_no_request(ok):
    with pytest.raises(SmSendValidationError, match="mms_id and mms_password"):
        make_client(mms_id=None).send_mms("S", "T", "+393477005440")
    assert ok.call_count == 0


def test_bad_auth_mode_is_rejected_at_construction():
    with pytest.raises(SmSendValidationError, match="mms_auth"):
        make_client(mms_auth="sha1")


def test_documented_fault_ko_211_is_insufficient_credit(mocker):
    mocker.post(ENDPOINT, content=fixture("mms_fault.xml"), status_code=500, headers=XML)
    with pytest.raises(SmSendInsufficientCreditError) as info:
        make_client().send_mms("S", "T", "+393477005440")
    assert info.value.retryable is False
    assert info.value.gateway_text == "KO 211 quota_abs reached"
    assert mocker.call_count == 1


@pytest.mark.parametrize("number", sorted(SOAP_FAULTS))
def test_every_documented_fault_code_maps(mocker, number):
    body = (
        fixture("mms_fault.xml")
        .replace(b"KO 211", f"KO {number}".encode())
        .replace(b"quota_abs reached", b"text")
    )
    mocker.post(ENDPOINT, content=body, status_code=500, headers=XML)
    rule = SOAP_FAULTS[number]
    with pytest.raises(rule.error) as info:
        make_client().send_mms("S", "T", "+393477005440")
    assert type(info.value) is rule.error
    assert info.value.code == rule.code
    assert info.value.retryable is rule.retryable
    assert mocker.call_count == 1  # a send that reached the gateway is never repeated


def test_read_timeout_is_not_retried_and_may_have_been_sent(mocker):
    mocker.post(ENDPOINT, exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(SmSendTimeoutError) as info:
        make_client().send_mms("S", "T", "+393477005440")
    assert info.value.request_sent is True
    assert mocker.call_count == 1


def test_connection_never_established_is_retried(mocker):
    refused = requests.exceptions.ConnectionError(
        MaxRetryError(None, ENDPOINT, reason=NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    )
    mocker.post(ENDPOINT, [{"exc": refused}, {"content": fixture("mms_response.xml"), "headers": XML}])
    result = make_client().send_mms("S", "T", "+393477005440")
    assert result.cost == Decimal("0.3700")
    assert mocker.call_count == 2


def test_connection_refused_every_time_says_not_sent(mocker):
    refused = requests.exceptions.ConnectionError(
        MaxRetryError(None, ENDPOINT, reason=NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    )
    mocker.post(ENDPOINT, exc=refused)
    with pytest.raises(SmSendTransportError) as info:
        make_client().send_mms("S", "T", "+393477005440")
    assert info.value.request_sent is False
    assert mocker.call_count == 3


def test_connection_dropped_after_sending_is_not_retried(mocker):
    mocker.post(ENDPOINT, exc=requests.exceptions.ConnectionError("Connection reset by peer"))
    with pytest.raises(SmSendTransportError) as info:
        make_client().send_mms("S", "T", "+393477005440")
    assert info.value.request_sent is True
    assert mocker.call_count == 1


def test_html_error_page_is_a_transport_error_and_not_retried(mocker):
    mocker.post(ENDPOINT, text="<html><body><h1>502 Bad Gateway</h1></body></html>", status_code=502)
    with pytest.raises(SmSendTransportError) as info:
        make_client().send_mms("S", "T", "+393477005440")
    assert info.value.status_code == 502
    assert mocker.call_count == 1


@pytest.mark.parametrize("answer", [b"", b"<response>abc</response>"])
def test_unreadable_cost_is_a_clear_error(mocker, answer):
    body = fixture("mms_response.xml").replace(b'<response xsi:type="xsd:int">3700</response>', answer)
    mocker.post(ENDPOINT, content=body, headers=XML)
    with pytest.raises(SmSendReportError, match="may have been sent"):
        make_client().send_mms("S", "T", "+393477005440")


def test_string_typed_cost_is_accepted(mocker):
    body = fixture("mms_response.xml").replace(b'xsi:type="xsd:int">3700', b'xsi:type="xsd:string">3700')
    mocker.post(ENDPOINT, content=body, headers=XML)
    assert make_client().send_mms("S", "T", "+393477005440").cost == Decimal("0.3700")
