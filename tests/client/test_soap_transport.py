"""SOAP transport edges (client/soap.py over client/_soap_zeep.py): WSDL loading without network, timeouts,
non-SOAP answers, secrets and personal data in the DEBUG envelope logs."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import requests_mock as rm

from airflow_provider_smsend.client._soap_zeep import (
    LocalSchemaTransport,
    install_log_redaction,
    make_transport,
    mask_envelope,
)
from airflow_provider_smsend.client.errors import SmSendError, SmSendTimeoutError, SmSendTransportError
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.client.soap import SmSendSoapClient, bundled_wsdl

FIXTURES = Path(__file__).parent / "fixtures" / "soap"
BASE = "https://dnsservice.example"
RECEIVE = BASE + "/wsdl/index.php"
MMS = BASE + "/sms-gw/index.php"
XML = {"Content-Type": "text/xml; charset=ISO-8859-1"}
PASSWORD = "Pw-receive-9f3a"
MMS_PASSWORD = "Mms-secret-77c1"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_client(**kwargs: object) -> SmSendSoapClient:
    options: dict = {
        "receive_url": BASE,
        "mms_url": BASE,
        "username": "acme",
        "password": PASSWORD,
        "mms_id": "C00000_001",
        "mms_password": MMS_PASSWORD,
        "retry": RetryPolicy(attempts=3, initial_wait=0, max_wait=0),
    }
    options.update(kwargs)
    return SmSendSoapClient(**options)


@pytest.fixture
def mocker():
    with rm.Mocker() as m:
        yield m


def test_loading_the_bundled_wsdls_makes_no_http_request(mocker):
    client = make_client()
    client._service("receive")
    client._service("mms")
    assert mocker.call_count == 0


def test_services_are_built_once_and_cached(mocker):
    mocker.post(RECEIVE, content=fixture("receive_response_empty.xml"), headers=XML)
    client = make_client()
    client.receive_sms("+393331234567", "001")
    first = client._service("receive")
    client.receive_sms("+393331234567", "001")
    assert client._service("receive") is first


def test_constructor_does_no_io_and_does_not_import_zeep():
    code = (
        "import sys\n"
        "from airflow_provider_smsend.client.soap import SmSendSoapClient\n"
        "SmSendSoapClient(receive_url='https://x.example', username='u', password='p')\n"
        "print('zeep' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_schema_urls_are_served_from_the_package():
    transport = make_transport(session=None, timeout=(1, 1), operation_timeout=(1, 1))
    assert isinstance(transport, LocalSchemaTransport)
    for url in ("http://schemas.xmlsoap.org/soap/encoding/", "https://schemas.xmlsoap.org/soap/encoding"):
        assert b'targetNamespace="http://schemas.xmlsoap.org/soap/encoding/"' in transport.load(url)
    assert b"arrayType" in transport.load("http://schemas.xmlsoap.org/wsdl/")


def test_live_wsdl_url_override_is_used(mocker):
    wsdl_url = BASE + "/wsdl/?wsdl"
    mocker.get(wsdl_url, content=Path(bundled_wsdl("receiveSms.wsdl")).read_bytes())
    mocker.post(RECEIVE, content=fixture("receive_response.xml"), headers=XML)
    [sms] = make_client(wsdl_receive=wsdl_url).receive_sms("+393331234567", "001")
    assert sms.id == 5678
    assert [r.method for r in mocker.request_history] == ["GET", "POST"]
    assert mocker.request_history[1].url == RECEIVE  # our endpoint, not the WSDL's soap:address


def test_wsdl_path_override_is_used(mocker, tmp_path):
    path = tmp_path / "mms.wsdl"
    path.write_bytes(
        Path(bundled_wsdl("sendMms.wsdl")).read_bytes().replace(b"sendMmswsdlBinding", b"OtherBinding")
    )
    mocker.post(MMS, content=fixture("mms_response.xml"), headers=XML)
    assert make_client(wsdl_mms=str(path)).send_mms("S", "T", "+393477005440").cost_units == 3700


def test_unreachable_wsdl_is_a_transport_error_marked_unsent(mocker):
    mocker.get(BASE + "/sms-gw/?wsdl", exc=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(SmSendTimeoutError) as info:
        make_client(wsdl_mms=BASE + "/sms-gw/?wsdl", retry=RetryPolicy(attempts=1)).send_mms(
            "S", "T", "+393477005440"
        )
    assert info.value.request_sent is False
    assert mocker.call_count == 1


def test_unusable_wsdl_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.wsdl"
    bad.write_text("<definitions/>")
    with pytest.raises(SmSendError, match="WSDL"):
        make_client(wsdl_receive=str(bad)).receive_sms("+393331234567", "001")
    with pytest.raises(SmSendError, match="Cannot load"):
        make_client(wsdl_receive=str(tmp_path / "missing.wsdl")).receive_sms("+393331234567", "001")


def test_read_timeout_is_a_timeout_error_after_retries(mocker):
    mocker.post(RECEIVE, exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(SmSendTimeoutError) as info:
        make_client().receive_sms("+393331234567", "001")
    assert info.value.request_sent is True
    assert mocker.call_count == 3  # a read: retried


def test_connect_timeout_says_not_sent(mocker):
    mocker.post(RECEIVE, exc=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(SmSendTimeoutError) as info:
        make_client(retry=RetryPolicy(attempts=1)).receive_sms("+393331234567", "001")
    assert info.value.request_sent is False


def test_timeouts_reach_requests(mocker):
    mocker.post(RECEIVE, content=fixture("receive_response_empty.xml"), headers=XML)
    make_client(timeout=(3.0, 7.0)).receive_sms("+393331234567", "001")
    assert mocker.last_request.timeout == (3.0, 7.0)
    make_client(operation_timeout=12.5).receive_sms("+393331234567", "001")
    assert mocker.last_request.timeout == 12.5


@pytest.mark.parametrize(
    ("status", "body", "retried"),
    [
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", True),
        (503, b"", True),
        (200, b"", False),
        (200, b"OK 0.0500", False),
        (200, b"<html><head><title>Login</title></head><body/></html>", False),
        (200, b"<?xml version='1.0'?><result>ok</result>", False),
        (
            500,
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
            True,
        ),
    ],
)
def test_non_soap_answers_are_transport_errors_with_status(mocker, status, body, retried):
    mocker.post(RECEIVE, content=body, status_code=status)
    with pytest.raises(SmSendTransportError) as info:
        make_client().receive_sms("+393331234567", "001")
    assert type(info.value) is SmSendTransportError
    assert info.value.status_code == status
    assert f"HTTP {status}" in str(info.value)
    assert mocker.call_count == (3 if retried else 1)


def test_repr_shows_no_secret():
    text = repr(make_client(mms_auth="md5"))
    assert "acme" in text and "C00000_001" in text
    assert PASSWORD not in text and MMS_PASSWORD not in text


@pytest.mark.parametrize("auth", ["plain", "md5"])
def test_secrets_never_reach_the_logs(mocker, caplog, auth):
    caplog.set_level(logging.DEBUG)
    mocker.post(RECEIVE, content=fixture("receive_response.xml"), headers=XML)
    mocker.post(MMS, content=fixture("mms_response.xml"), headers=XML)
    client = make_client(mms_auth=auth)

    client.receive_sms("+393331234567", "001")
    client.send_mms("Oggetto", "Testo", "+393477005440")

    sent = mocker.request_history[1].body
    ticket = sent.split(b"<ticket")[1].split(b">", 1)[1].split(b"<", 1)[0].decode()
    assert (ticket != "") is (auth == "md5")
    assert "receiveSms" in caplog.text and "sendMms" in caplog.text  # the envelopes were logged
    for secret in (PASSWORD, MMS_PASSWORD, ticket or PASSWORD):
        assert secret not in caplog.text


def test_filter_redacts_what_zeep_itself_logs(caplog):
    install_log_redaction()
    caplog.set_level(logging.DEBUG, logger="zeep.transports")
    logging.getLogger("zeep.transports").debug(
        "HTTP Post to %s:\n%s",
        "https://x.example",
        "<ns0:sendMms><password xsi:type='xsd:string'>hunter2</password><ticket>abc123</ticket>"
        "<user>acme</user></ns0:sendMms>",
    )
    assert "hunter2" not in caplog.text and "abc123" not in caplog.text
    assert "<user>acme</user>" in caplog.text


def test_mask_envelope_masks_numbers_texts_and_attachments_and_blanks_secrets():
    envelope = (
        '<ns0:sendMms><id xsi:type="xsd:string">C00000_001</id><password>hunter2</password>'
        "<ticket>0cc175b9c0f1b6a831c399e269772661</ticket><subject>Saldi per Zoë</subject>"
        "<text>Ciao Maria, a presto</text><rcpt>+393331234567,+393477005440</rcpt>"
        '<imagedata xsi:type="xsd:base64Binary">R0lGODlhAQABAAAAACw=</imagedata>'
        '<sounddata xsi:nil="true"/></ns0:sendMms>'
        "<item><sender>393209999999</sender><text><![CDATA[Sì, grazie]]></text></item>"
        "<faultstring>KO 103 recipient +393401112223 not valid</faultstring>"
    )
    masked = mask_envelope(envelope)
    for personal in (
        "3331234567",
        "3477005440",
        "3209999999",
        "3401112223",
        "Maria",
        "Zoë",
        "grazie",
        "R0lG",
    ):
        assert personal not in masked
    for secret in ("hunter2", "0cc175b9c0f1b6a831c399e269772661"):
        assert secret not in masked
    assert "<rcpt>+39333****567,+39347****440</rcpt>" in masked
    assert "<sender>3932*****999</sender>" in masked
    assert "<subject>[13 characters not logged]</subject>" in masked
    assert "<password>***</password>" in masked and "<ticket>***</ticket>" in masked
    assert "recipient +39340****223 not valid" in masked
    assert '<id xsi:type="xsd:string">C00000_001</id>' in masked and '<sounddata xsi:nil="true"/>' in masked
    assert mask_envelope(masked) == masked  # the transport's line, then the logger's filter


def test_documented_envelopes_logged_at_debug_keep_no_number_or_text(mocker, caplog):
    caplog.set_level(logging.DEBUG)
    mocker.post(RECEIVE, content=fixture("receive_response_many.xml"), headers=XML)
    mocker.post(MMS, content=fixture("mms_response.xml"), headers=XML)
    client = make_client(mms_auth="md5")

    listed = client.receive_sms("+393331234567", "001", messages=50)
    client.send_mms("Offerta Maria", "Ciao Maria, guarda", "+393477005440", image=b"GIF89a" + b"\0" * 64)

    assert "receiveSmsResponse" in caplog.text and "<ns0:sendMms" in caplog.text  # the envelopes were logged
    personal = {"3331234567", "3477005440", "Maria", "R0lGODlh"}
    personal |= {sms.sender[-7:] for sms in listed} | {sms.text for sms in listed if len(sms.text) > 3}
    leaked = sorted(value for value in personal if value in caplog.text)
    assert leaked == []
