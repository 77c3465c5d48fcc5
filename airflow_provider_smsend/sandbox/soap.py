"""SOAP plumbing for the sandbox: parse an rpc/encoded call, render NuSOAP-style answers and faults.

Answers are shaped like the document's examples: ISO-8859-1 declaration, the ``SOAP-ENV``
envelope with its ``encodingStyle``, ``ns1:<operation>Response`` and typed parts. Characters
outside ISO-8859-1 are written as XML character references.

Requests are parsed with the standard library's expat parser, which never fetches external
entities; documents with a DOCTYPE are refused outright. A request that is not well-formed is
retried once after repairing the two artefacts of the gateway's own document: typographic
quotes and unquoted attribute values.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
CONTENT_TYPE = "text/xml; charset=ISO-8859-1"

#: Fault strings of the sendMms codes, as the document prints them (211/213 as in its example).
FAULT_TEXTS: dict[int, str] = {
    101: "not allowed",
    102: "operation not permitted",
    103: "bad recipient",
    104: "not allowed",
    105: "not allowed",
    106: "not allowed",
    107: "no auth suitable",
    109: "carrier problem",
    110: "Msg Blocked",
    111: "banned",
    124: "text too long",
    211: "quota_abs reached",
    213: "quota_ny reached",
    215: "Image file cannot be bigger than 100kB",
    216: "Image file type not supported",
    217: "Sound file bigger than 100kB",
    218: "Sound file type not supported",
    300: "System (Internal Error)",
    301: "(Connection Problem)",
    302: "(Generic Error)",
    303: "(Connection Problem)",
    310: "type unsupported",
    311: "send error",
    400: "(Internal Error)",
    401: "(Internal Error)",
    402: "(Internal Error)",
    500: "ERROR (Internal Error)",
    501: "ERROR (Internal Error)",
    502: "(Internal Error)",
    555: "Relay Error",
}

_TYPOGRAPHIC_QUOTES = (b"\xe2\x80\x9c", b"\xe2\x80\x9d", b"\x93", b"\x94")
_TAG = re.compile(rb"<[^<>]+>")
_UNQUOTED_ATTRIBUTE = re.compile(rb"""(\s[\w:.-]+)=([^\s"'<>]+?)(?=\s|/?>|\?>)""")


class SoapFault(Exception):
    """A SOAP fault to answer with HTTP 500.

    :param faultcode: ``KO nnn`` for gateway faults, ``SOAP-ENV:Client`` for malformed requests.
    :param faultstring: the human-readable text.
    """

    def __init__(self, faultcode: str, faultstring: str) -> None:
        super().__init__(f"{faultcode}: {faultstring}")
        self.faultcode = faultcode
        self.faultstring = faultstring

    @classmethod
    def ko(cls, code: int) -> SoapFault:
        """The gateway fault ``KO <code>`` with its documented text."""
        return cls(f"KO {code}", FAULT_TEXTS[code])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _repair(body: bytes) -> bytes:
    for quote in _TYPOGRAPHIC_QUOTES:
        body = body.replace(quote, b'"')
    return _TAG.sub(lambda m: _UNQUOTED_ATTRIBUTE.sub(rb'\1="\2"', m.group(0)), body)


def parse_call(body: bytes) -> tuple[str, dict[str, str | None]]:
    """Parse an rpc/encoded SOAP request.

    :param body: the raw request body (its XML declaration names the encoding).
    :return: the operation's local name and its parameters (None for ``xsi:nil`` or absent text).
    :raises SoapFault: ``SOAP-ENV:Client`` if the body is not a SOAP call.
    """
    if b"<!DOCTYPE" in body or b"<!doctype" in body:
        raise SoapFault("SOAP-ENV:Client", "DTDs are not allowed")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        try:
            root = ET.fromstring(_repair(body))
        except ET.ParseError as exc:
            raise SoapFault("SOAP-ENV:Client", f"XML error parsing SOAP payload: {exc}") from None
    body_element = next((child for child in root if _local(child.tag) == "Body"), None)
    call = next(iter(body_element), None) if body_element is not None else None
    if call is None:
        raise SoapFault("SOAP-ENV:Client", "no SOAP Body with an operation")
    params: dict[str, str | None] = {}
    for child in call:
        if child.get(f"{{{XSI}}}nil") in ("true", "1"):
            params[_local(child.tag)] = None
        else:
            params[_local(child.tag)] = child.text or ""
    return _local(call.tag), params


def _envelope(body: str, tns: str | None = None) -> bytes:
    tns_decl = f'\n   xmlns:tns="{tns}"' if tns else ""
    text = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f'<SOAP-ENV:Envelope SOAP-ENV:encodingStyle="{SOAP_ENC}"\n'
        f'   xmlns:SOAP-ENV="{SOAP_ENV}"\n'
        f'   xmlns:xsd="{XSD}"\n'
        f'   xmlns:xsi="{XSI}"\n'
        f'   xmlns:SOAP-ENC="{SOAP_ENC}"{tns_decl}>\n'
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body>\n"
        "</SOAP-ENV:Envelope>\n"
    )
    return text.encode("iso-8859-1", "xmlcharrefreplace")


def _typed(name: str, xsd_type: str, value: str) -> str:
    return f'<{name} xsi:type="{xsd_type}">{escape(value)}</{name}>'


def render_response(operation: str, namespace: str, part_xml: str, tns: str | None = None) -> bytes:
    """Render ``<ns1:<operation>Response>`` around ``part_xml``."""
    return _envelope(
        f'<ns1:{operation}Response xmlns:ns1="{namespace}">{part_xml}</ns1:{operation}Response>', tns
    )


def render_int_response(operation: str, namespace: str, value: int) -> bytes:
    """Render a response whose ``response`` part is an ``xsd:int`` (sendMms)."""
    return render_response(operation, namespace, _typed("response", "xsd:int", str(value)))


def render_recv_list(items: list[tuple[int, str, str, str]]) -> bytes:
    """Render the receiveSms answer: a ``SOAP-ENC:Array`` of ``tns:recvSms``.

    :param items: ``(id, sender, text, date)`` tuples; ``date`` already ``YYYY-MM-DD HH:MM:SS``.
    """
    rows = "".join(
        '<item xsi:type="tns:recvSms">'
        + _typed("id", "xsd:int", str(sms_id))
        + _typed("sender", "xsd:string", sender)
        + _typed("text", "xsd:string", text)
        + _typed("date", "xsd:dateTime", when)
        + "</item>"
        for sms_id, sender, text, when in items
    )
    part = (
        f'<response xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="tns:recvSms[{len(items)}]">'
        f"{rows}</response>"
    )
    return render_response("receiveSms", "urn:receiveSmswsdl", part, tns="urn:receiveSmswsdl")


def render_fault(fault: SoapFault) -> bytes:
    """Render a ``SOAP-ENV:Fault`` shaped like the document's example."""
    return _envelope(
        "<SOAP-ENV:Fault>"
        + _typed("faultcode", "xsd:string", fault.faultcode)
        + _typed("faultactor", "xsd:string", "")
        + _typed("faultstring", "xsd:string", fault.faultstring)
        + _typed("detail", "xsd:string", "")
        + "</SOAP-ENV:Fault>"
    )
