"""client/soap.py: receiveSms through SmSendSoapClient: the request zeep builds, the answer's parsing,
validation (sendMms: test_soap_mms.py; the zeep transport's edges, client/_soap_zeep.py:
test_soap_transport.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests_mock as rm
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendGatewayError,
    SmSendReportError,
    SmSendValidationError,
)
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import (
    ReceivedSms,
    SmSendSoapClient,
    parse_receive_sms_response,
    parse_received_at,
)

FIXTURES = Path(__file__).parent / "fixtures" / "soap"
BASE = "https://dnsservice.example"
ENDPOINT = BASE + "/wsdl/index.php"
ROME = ZoneInfo("Europe/Rome")
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XML = {"Content-Type": "text/xml; charset=ISO-8859-1"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_client(**kwargs: object) -> SmSendSoapClient:
    options: dict = {
        "receive_url": BASE,
        "username": "acme",
        "password": "pw-receive-123",
        "retry": RetryPolicy(attempts=3, initial_wait=0, max_wait=0),
    }
    options.update(kwargs)
    return SmSendSoapClient(**options)


def soap_fault(code: str, string: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body><SOAP-ENV:Fault>'
        f"<faultcode>{code}</faultcode><faultstring>{string}</faultstring>"
        "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode("iso-8859-1")


def call_parts(body: bytes) -> etree._Element:
    """The operation element of a request envelope (its children are the parts)."""
    root = etree.fromstring(body)
    return root.find(f"{{{SOAP_ENV}}}Body")[0]


@pytest.fixture
def mocker():
    with rm.Mocker() as m:
        yield m


def test_request_has_soapaction_and_the_documented_parts(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response.xml"), headers=XML)

    make_client().receive_sms("+39 333 123 4567", "001", messages=25)

    request = mocker.last_request
    assert request.url == ENDPOINT
    assert request.headers["SOAPAction"] == '"urn:receiveSmswsdl#receiveSms"'
    assert "charset=ISO-8859-1" in request.headers["Content-Type"]
    sent = call_parts(request.body)
    assert sent.tag == "{urn:receiveSmswsdl}receiveSms"
    values = {etree.QName(p).localname: p.text for p in sent}
    assert values == {
        "user": "acme",
        "pass": "pw-receive-123",
        "rcpt": "+393331234567",
        "sharecode": "001",
        "messages": "25",
    }
    documented = call_parts(fixture("receive_request.xml"))
    assert [etree.QName(p).localname for p in sent] == [etree.QName(p).localname for p in documented]
    # Same xsi:type as the documentation for the strings; messages is an int in the signature
    # (the example types it xsd:string): we follow the signature.
    assert [p.get(XSI_TYPE) for p in sent] == ["xsd:string"] * 4 + ["xsd:int"]
    assert [p.get(XSI_TYPE) for p in documented][:4] == ["xsd:string"] * 4


def test_trailing_slash_in_base_url_is_ignored(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response_empty.xml"), headers=XML)
    assert make_client(receive_url=BASE + "/").receive_sms("+393331234567", "001") == []
    assert mocker.last_request.url == ENDPOINT


def test_documented_answer_parses(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response.xml"), headers=XML)

    [sms] = make_client().receive_sms("+393331234567", "001")

    assert sms == ReceivedSms(
        id=5678,
        sender="+39XXXYYYYYYY",
        text="texte du message",
        received_at=datetime(2005, 11, 22, 11, 7, 2, tzinfo=ROME),
    )
    assert sms.received_at.isoformat() == "2005-11-22T11:07:02+01:00"
    assert sms.received_at.tzinfo == ROME


def test_empty_answer_is_an_empty_list(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response_empty.xml"), headers=XML)
    assert make_client().receive_sms("+393331234567", "001") == []


def test_many_items_latin1_text_and_every_date_form(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response_many.xml"), headers=XML)

    items = make_client().receive_sms("+393331234567", "001", messages=4)

    assert [s.id for s in items] == [1, 2, 3, 4]
    assert items[0].text == "Perché no? Città & caffè"
    assert items[2].text == ""
    assert items[3].sender == "ACME"
    summer = timedelta(hours=2)
    assert items[0].received_at == datetime(2024, 7, 1, 9, 30, tzinfo=ROME)  # "YYYY-MM-DD HH:MM:SS"
    assert items[1].received_at == datetime(2024, 7, 1, 9, 31, tzinfo=ROME)  # ISO, no zone
    assert items[2].received_at == datetime(2024, 7, 1, 9, 32, tzinfo=ROME)  # ISO, Z -> Rome
    assert items[2].received_at.utcoffset() == summer
    assert items[3].received_at == datetime(2024, 1, 15, 10, 0, tzinfo=ROME)  # ISO, +01:00
    assert all(s.received_at.tzinfo == ROME for s in items)


def test_answer_without_xml_declaration_uses_content_type_charset():
    body = fixture("receive_response_many.xml").split(b"?>", 1)[1]
    items = parse_receive_sms_response(body, charset="ISO-8859-1")
    assert items[0].text == "Perché no? Città & caffè"


def test_multiref_items_are_followed():
    body = f"""<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body>
      <ns1:receiveSmsResponse xmlns:ns1="urn:receiveSmswsdl"><response><item href="#m1"/></response>
      </ns1:receiveSmsResponse>
      <multiRef id="m1"><id>7</id><sender>+393331111111</sender><text>hi</text>
      <date>2024-02-01 08:00:00</date></multiRef></SOAP-ENV:Body></SOAP-ENV:Envelope>""".encode()
    [sms] = parse_receive_sms_response(body)
    assert (sms.id, sms.text) == (7, "hi")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2005-11-22 11:07:02", datetime(2005, 11, 22, 11, 7, 2, tzinfo=ROME)),
        ("2005-11-22T11:07:02", datetime(2005, 11, 22, 11, 7, 2, tzinfo=ROME)),
        ("2005-11-22T10:07:02Z", datetime(2005, 11, 22, 11, 7, 2, tzinfo=ROME)),
        ("2005-11-22T11:07:02.250+01:00", datetime(2005, 11, 22, 11, 7, 2, 250000, tzinfo=ROME)),
        (" 2005-11-22 11:07:02 ", datetime(2005, 11, 22, 11, 7, 2, tzinfo=ROME)),
    ],
)
def test_parse_received_at_forms(value, expected):
    parsed = parse_received_at(value)
    assert parsed == expected
    assert parsed.tzinfo == ROME


@pytest.mark.parametrize("value", ["", None, "22/11/2005 11:07", "yesterday", "2005-13-01 00:00:00"])
def test_parse_received_at_rejects_non_dates(value):
    with pytest.raises(SmSendReportError, match="ISO 8601"):
        parse_received_at(value)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)))
def test_naive_gateway_dates_are_rome_wall_time(moment):
    moment = moment.replace(microsecond=0)
    parsed = parse_received_at(moment.strftime("%Y-%m-%d %H:%M:%S"))
    assert parsed.replace(tzinfo=None) == moment
    assert parsed.tzinfo == ROME


def test_bad_item_names_the_item():
    body = fixture("receive_response.xml").replace(b">5678<", b">abc<")
    with pytest.raises(SmSendReportError, match="item 0"):
        parse_receive_sms_response(body)
    body = fixture("receive_response.xml").replace(b"2005-11-22 11:07:02", b"soon")
    with pytest.raises(SmSendReportError, match=r"item 0 \(id 5678\)"):
        parse_receive_sms_response(body)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rcpt": "12"}, "Invalid phone number"),
        ({"sharecode": ""}, "sharecode"),
        ({"sharecode": "   "}, "sharecode"),
        ({"sharecode": 1}, "sharecode"),
        ({"messages": 0}, "messages"),
        ({"messages": 1001}, "messages"),
        ({"messages": True}, "messages"),
        ({"messages": "10"}, "messages"),
    ],
)
def test_validation_happens_before_any_request(mocker, kwargs, match):
    mocker.post(ENDPOINT, content=fixture("receive_response.xml"), headers=XML)
    args = {"rcpt": "+393331234567", "sharecode": "001", "messages": 10, **kwargs}
    with pytest.raises(SmSendValidationError, match=match):
        make_client().receive_sms(**args)
    assert mocker.call_count == 0


def test_missing_credentials_make_no_request(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response.xml"), headers=XML)
    with pytest.raises(SmSendValidationError, match="username and password"):
        make_client(password=None).receive_sms("+393331234567", "001")
    assert mocker.call_count == 0


def test_messages_bounds_are_accepted(mocker):
    mocker.post(ENDPOINT, content=fixture("receive_response_empty.xml"), headers=XML)
    client = make_client()
    client.receive_sms("+393331234567", "001", messages=1)
    client.receive_sms("+393331234567", "001", messages=1000)
    assert mocker.call_count == 2


def test_fault_with_documented_ko_text_maps_to_its_error(mocker):
    mocker.post(
        ENDPOINT, content=soap_fault("SOAP-ENV:Server", "Username o password errati"), status_code=500
    )
    with pytest.raises(SmSendAuthError) as info:
        make_client().receive_sms("+393331234567", "001")
    assert info.value.code == "bad_credentials"
    assert mocker.call_count == 1  # not retryable: not repeated


def test_fault_ko_code_maps_like_sendmms(mocker):
    mocker.post(ENDPOINT, content=soap_fault("KO 101", "not allowed"), status_code=500)
    with pytest.raises(SmSendAuthError):
        make_client().receive_sms("+393331234567", "001")


def test_undocumented_fault_is_a_gateway_error(mocker):
    mocker.post(ENDPOINT, content=soap_fault("SOAP-ENV:Server", "something odd"), status_code=500)
    with pytest.raises(SmSendGatewayError) as info:
        make_client().receive_sms("+393331234567", "001")
    assert type(info.value) is SmSendGatewayError
    assert info.value.code == "undocumented_fault"
    assert "something odd" in str(info.value)


def test_transient_failure_is_retried_then_succeeds(mocker):
    mocker.post(
        ENDPOINT,
        [
            {"text": "<html><body>502 Bad Gateway</body></html>", "status_code": 502},
            {"content": fixture("receive_response.xml"), "headers": XML},
        ],
    )
    [sms] = make_client().receive_sms("+393331234567", "001")
    assert sms.id == 5678
    assert mocker.call_count == 2
