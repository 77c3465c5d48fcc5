"""SOAP services of the sandbox: the spec's envelopes verbatim, faults, MD5 tickets, WSDL, zeep."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sandbox_helpers import RESELLER, post

import airflow_provider_smsend.client as client_package

if TYPE_CHECKING:
    import requests

SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSDL_DIR = Path(client_package.__file__).parent / "wsdl"

# The document's receiveSms request, with its typographic quotes made plain (docs/gateway.md, "SOAP web services") and
# nothing else changed: several attribute values stay unquoted, as printed.
SPEC_RECEIVE_REQUEST = """<?xml version="1.0" encoding="ISO-8859-1"?>
<SOAP-ENV:Envelope
    SOAP-ENV:encodingStyle=http://schemas.xmlsoap.org/soap/encoding/
    xmlns:SOAP-ENV=http://schemas.xmlsoap.org/soap/envelope/
    xmlns:xsd=http://www.w3.org/2001/XMLSchema
    xmlns:xsi=http://www.w3.org/2001/XMLSchema-instance
    xmlns:SOAP-ENC=http://schemas.xmlsoap.org/soap/encoding/
    xmlns:tns="urn:receiveSmswsdl">
<SOAP-ENV:Body>
    <tns:receiveSms xmlns:tns="urn:receiveSmswsdl">
        <user xsi:type="xsd:string">username</user>
        <pass xsi:type="xsd:string">password</pass>
        <rcpt xsi:type="xsd:string">+39XXXYYYYYYY</rcpt>
        <sharecode xsi:type="xsd:string">001</sharecode>
        <messages xsi:type="xsd:string">10</messages>
    </tns:receiveSms>
</SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

SPEC_MMS_REQUEST = """<?xml version="1.0" encoding="ISO-8859-1"?>
<SOAP-ENV:Envelope
    SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"
    xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"
    xmlns:tns="urn:sendMmswsdl">
    <SOAP-ENV:Body>
       <tns:sendMms xmlns:tns="urn:sendMmswsdl">
          <id xsi:type="xsd:string">{id}</id>
          <password xsi:type="xsd:string">{password}</password>
          <ticket xsi:type="xsd:string">{ticket}</ticket>
          <subject xsi:type="xsd:string">{subject}</subject>
          <text xsi:type="xsd:string">{text}</text>
          <rcpt xsi:type="xsd:string">{rcpt}</rcpt>
          <imagedata
          xsi:type="xsd:base64Binary">{image}</imagedata>
          <sounddata xsi:nil="true" xsi:type="xsd:base64Binary"/>
       </tns:sendMms>
    </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

GIF = b"GIF89a\x10\x00\x10\x00" + b"\x00" * 40
DEST = "+393399999999"


def soap(http, url: str, body: str, action: str) -> requests.Response:
    return http.post(
        url,
        data=body.encode("iso-8859-1"),
        timeout=10,
        headers={"Content-Type": "text/xml; charset=ISO-8859-1", "SOAPAction": f'"{action}"'},
    )


def mms(http, sandbox, **fields) -> requests.Response:
    values = {
        "id": "C00000_001",
        "password": "mms-pass",
        "ticket": "",
        "subject": "Oggetto",
        "text": "Testo dell&apos;MMS",
        "rcpt": "+393477005440",
        "image": base64.b64encode(GIF).decode(),
    }
    values.update(fields)
    return soap(
        http, f"{sandbox.url}/sms-gw/index.php", SPEC_MMS_REQUEST.format(**values), "urn:sendMmswsdl#sendMms"
    )


def fault_of(answer: requests.Response) -> tuple[str, str]:
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "text/xml; charset=ISO-8859-1"
    root = ET.fromstring(answer.content)
    return root.findtext(".//faultcode") or "", root.findtext(".//faultstring") or ""


def assign_sharecode(http, sandbox) -> None:
    assert post(http, sandbox, "/backoffice/recv-add.php", **RESELLER, u_id="1001", dest=DEST) == "OK 001"


def test_spec_receive_request_verbatim_answers_like_the_spec_example(http, sandbox):
    assign_sharecode(http, sandbox)
    sandbox.admin.inject_inbound(DEST, "001", "+393401112222", "texte du message", "2005-11-22 11:07:02")
    sandbox.admin.inject_inbound(DEST, "002", "+393401112222", "another share code")
    answer = soap(http, f"{sandbox.url}/wsdl/index.php", receive_body(), "urn:receiveSmswsdl#receiveSms")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/xml; charset=ISO-8859-1"
    assert answer.content.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    root = ET.fromstring(answer.content)
    [response] = root.iter("response")
    assert response.get(f"{{{XSI}}}type") == "SOAP-ENC:Array"
    assert response.get(f"{{{SOAP_ENC}}}arrayType") == "tns:recvSms[1]"
    [item] = response.findall("item")
    assert item.get(f"{{{XSI}}}type") == "tns:recvSms"
    assert {child.tag: child.text for child in item} == {
        "id": "1",
        "sender": "+393401112222",
        "text": "texte du message",
        "date": "2005-11-22 11:07:02",
    }


def test_receive_returns_the_most_recent_messages_first(http, sandbox):
    assign_sharecode(http, sandbox)
    for n in range(3):
        sandbox.admin.inject_inbound(DEST, "001", "+393401112222", f"m{n} è", f"2024-01-0{n + 1} 10:00:00")
    answer = soap(http, f"{sandbox.url}/wsdl/", receive_body(messages="2"), "urn:receiveSmswsdl#receiveSms")
    root = ET.fromstring(answer.content)
    assert [item.findtext("text") for item in root.iter("item")] == ["m2 è", "m1 è"]


def receive_body(password: str = "demo-pass", sharecode: str = "001", messages: str = "10") -> str:
    return (
        SPEC_RECEIVE_REQUEST.replace(">username<", ">demo<")
        .replace(">password<", f">{password}<")
        .replace("+39XXXYYYYYYY", DEST)
        .replace(">001<", f">{sharecode}<")
        .replace(">10<", f">{messages}<")
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [({"password": "bad"}, "KO 101"), ({"sharecode": "002"}, "KO 102"), ({"messages": "zero"}, "KO 102")],
)
def test_receive_faults(http, sandbox, fields, code):
    assign_sharecode(http, sandbox)
    answer = soap(
        http, f"{sandbox.url}/wsdl/index.php", receive_body(**fields), "urn:receiveSmswsdl#receiveSms"
    )
    assert fault_of(answer) == (code, {"KO 101": "not allowed", "KO 102": "operation not permitted"}[code])


def test_malformed_soap_is_a_client_fault(http, sandbox):
    assert fault_of(soap(http, f"{sandbox.url}/wsdl/index.php", "<not xml", "x"))[0] == "SOAP-ENV:Client"
    doctype = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    assert fault_of(soap(http, f"{sandbox.url}/wsdl/index.php", doctype, "x")) == (
        "SOAP-ENV:Client",
        "DTDs are not allowed",
    )


def test_send_mms_spec_request_succeeds_and_charges(http, sandbox):
    answer = mms(http, sandbox)
    assert answer.status_code == 200, answer.text
    root = ET.fromstring(answer.content)
    [response] = root.iter("response")
    assert response.get(f"{{{XSI}}}type") == "xsd:int" and response.text == "3700"
    [message] = sandbox.admin.messages(kind="mms")
    assert message["text"] == "Testo dell'MMS" and message["attachments"] == ["image/gif"]
    assert sandbox.admin.credit(1001) == "99.6300"


def test_send_mms_to_two_recipients_costs_twice(http, sandbox):
    answer = mms(http, sandbox, rcpt="+393477005440,+393477005441")
    assert ET.fromstring(answer.content).findtext(".//response") == "7400"


def test_send_mms_md5_ticket(http, sandbox):
    rcpt, subject, text = "+393477005440", "Oggetto", "Testo"
    ticket = hashlib.md5(f"C00000_002{rcpt}{subject}{text}mms-md5-pass".encode()).hexdigest()
    ok = mms(
        http, sandbox, id="C00000_002", password="", ticket=ticket, subject=subject, text=text, rcpt=rcpt
    )
    assert ok.status_code == 200, ok.text
    assert fault_of(
        mms(
            http,
            sandbox,
            id="C00000_002",
            password="",
            ticket="0" * 32,
            subject=subject,
            text=text,
            rcpt=rcpt,
        )
    ) == ("KO 105", "not allowed")
    assert fault_of(mms(http, sandbox, id="C00000_002", password="mms-md5-pass"))[0] == "KO 107"


def _png(size: int) -> str:
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (size - 8)).decode()


@pytest.mark.parametrize(
    ("fields", "fault"),
    [
        ({"id": "C99"}, ("KO 101", "not allowed")),
        ({"password": "bad"}, ("KO 105", "not allowed")),
        ({"password": ""}, ("KO 107", "no auth suitable")),
        ({"subject": ""}, ("KO 102", "operation not permitted")),
        ({"subject": "x" * 26}, ("KO 124", "text too long")),
        ({"text": "x" * 2401}, ("KO 124", "text too long")),
        ({"rcpt": "3477005440"}, ("KO 103", "bad recipient")),
        ({"rcpt": "+393477000003"}, ("KO 109", "carrier problem")),
        ({"image": _png(100 * 1024 + 1)}, ("KO 215", "Image file cannot be bigger than 100kB")),
        (
            {"image": base64.b64encode(b"BM" + b"\x00" * 50).decode()},
            ("KO 216", "Image file type not supported"),
        ),
    ],
)
def test_send_mms_faults(http, sandbox, fields, fault):
    assert fault_of(mms(http, sandbox, **fields)) == fault
    assert sandbox.admin.messages(kind="mms") == []


def test_send_mms_exact_limit_image_is_accepted(http, sandbox):
    assert mms(http, sandbox, image=_png(100 * 1024)).status_code == 200


def test_send_mms_sound_and_video_checks(http, sandbox):
    def with_part(name: str, data: bytes) -> requests.Response:
        body = SPEC_MMS_REQUEST.replace(
            '<sounddata xsi:nil="true" xsi:type="xsd:base64Binary"/>',
            f'<{name} xsi:type="xsd:base64Binary">{base64.b64encode(data).decode()}</{name}>',
        )
        values = {
            "id": "C00000_001",
            "password": "mms-pass",
            "ticket": "",
            "subject": "S",
            "text": "T",
            "rcpt": "+393477005440",
            "image": "",
        }
        return soap(http, f"{sandbox.url}/sms-gw/index.php", body.format(**values), "urn:sendMmswsdl#sendMms")

    assert with_part("sounddata", b"MThd" + b"\x00" * 20).status_code == 200
    assert with_part("sounddata", b"ID3" + b"\x00" * 20).status_code == 200
    assert fault_of(with_part("sounddata", b"RIFF" + b"\x00" * 20))[0] == "KO 218"
    assert fault_of(with_part("sounddata", b"ID3" + b"\x00" * 102400))[0] == "KO 217"
    assert with_part("videodata", b"\x00\x00\x00\x14ftyp3gp4" + b"\x00" * 20).status_code == 200
    assert with_part("videodata", b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 20).status_code == 200
    assert fault_of(with_part("videodata", b"\x00\x00\x00\x14ftypisom" + b"\x00" * 20))[0] == "KO 310"
    assert fault_of(with_part("videodata", b"\x00\x00\x00\x14ftyp3gp4" + b"\x00" * 102400))[0] == "KO 310"


def test_send_mms_without_credit(http, sandbox):
    sandbox.admin.set_credit(1001, "0.3699")
    assert fault_of(mms(http, sandbox)) == ("KO 211", "quota_abs reached")


@pytest.mark.parametrize("path", ["/wsdl/?wsdl", "/wsdl/index.php?wsdl", "/sms-gw/?wsdl"])
def test_wsdl_points_at_the_sandbox(http, sandbox, path):
    answer = http.get(f"{sandbox.url}{path}", timeout=10)
    assert answer.status_code == 200
    endpoint = "/sms-gw/index.php" if path.startswith("/sms-gw") else "/wsdl/index.php"
    assert f'location="{sandbox.url}{endpoint}"' in answer.text
    ET.fromstring(answer.content)


def test_generated_wsdl_has_the_documented_signature():
    from airflow_provider_smsend.sandbox.wsdl import generate_wsdl

    receive = ET.fromstring(generate_wsdl("receiveSms", "http://h/wsdl/index.php"))
    wsdl = "{http://schemas.xmlsoap.org/wsdl/}"
    parts = {
        m.get("name"): [(p.get("name"), p.get("type")) for p in m] for m in receive.iter(f"{wsdl}message")
    }
    assert parts["receiveSmsResponse"] == [("response", "tns:recvList")]
    assert [name for name, _ in parts["receiveSmsRequest"]] == [
        "user",
        "pass",
        "rcpt",
        "sharecode",
        "messages",
    ]
    send = ET.fromstring(generate_wsdl("sendMms", "http://h/sms-gw/index.php"))
    parts = {m.get("name"): [(p.get("name"), p.get("type")) for p in m] for m in send.iter(f"{wsdl}message")}
    assert parts["sendMmsResponse"] == [("response", "xsd:int")]
    assert ("videodata", "xsd:base64Binary") in parts["sendMmsRequest"]


@pytest.mark.skipif(
    not (WSDL_DIR / "receiveSms.wsdl").is_file() or not (WSDL_DIR / "soap-encoding.xsd").is_file(),
    reason="the client's bundled WSDL/schema files (client/wsdl/) are not there yet",
)
def test_zeep_loads_the_served_wsdl_and_calls_both_services(http, sandbox):
    import zeep
    from zeep.transports import Transport

    local = {
        "http://schemas.xmlsoap.org/soap/encoding/": WSDL_DIR / "soap-encoding.xsd",
        "http://schemas.xmlsoap.org/wsdl/": WSDL_DIR / "wsdl-arraytype.xsd",
    }

    class LocalSchemas(Transport):
        def load(self, url: str) -> bytes:
            return local[url].read_bytes() if url in local else super().load(url)

    assign_sharecode(http, sandbox)
    sandbox.admin.inject_inbound(DEST, "001", "+393401112222", "Ciao è €", "2005-11-22 11:07:02")
    receive = zeep.Client(f"{sandbox.url}/wsdl/?wsdl", transport=LocalSchemas())
    [sms] = receive.service.receiveSms("demo", "demo-pass", DEST, "001", 10)
    assert (sms.id, sms.text, sms.date.isoformat()) == (1, "Ciao è €", "2005-11-22T11:07:02")
    send = zeep.Client(f"{sandbox.url}/sms-gw/?wsdl", transport=LocalSchemas())
    skip = zeep.xsd.SkipValue
    assert (
        send.service.sendMms("C00000_001", "mms-pass", "", "S", "T", "+393331234567", GIF, skip, skip) == 3700
    )
    with pytest.raises(zeep.exceptions.Fault) as caught:
        send.service.sendMms(
            "C00000_001", "mms-pass", "", "S", "T", "+393331234567", b"GIF89a" + b"0" * 102400, skip, skip
        )
    assert caught.value.code == "KO 215"
