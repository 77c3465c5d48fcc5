"""The WSDL documents the sandbox serves, with ``soap:address`` pointing at the sandbox itself.

When the client package ships ``client/wsdl/receiveSms.wsdl`` and ``client/wsdl/sendMms.wsdl``
those files are served (read at the first request, re-read when they change) with their
``soap:address location`` rewritten. Otherwise an equivalent NuSOAP-style rpc/encoded WSDL is
generated here.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from pathlib import Path

_ADDRESS = re.compile(r'(<(?:\w+:)?address\s+location=")[^"]*(")')
_cache: dict[str, tuple[float, str]] = {}
_cache_lock = threading.Lock()

SERVICES = {
    # service -> (namespace, endpoint path)
    "receiveSms": ("urn:receiveSmswsdl", "/wsdl/index.php"),
    "sendMms": ("urn:sendMmswsdl", "/sms-gw/index.php"),
}

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1"?>
<definitions xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
             xmlns:xsd="http://www.w3.org/2001/XMLSchema"
             xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
             xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"
             xmlns:tns="{ns}"
             xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
             xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
             xmlns="http://schemas.xmlsoap.org/wsdl/"
             targetNamespace="{ns}">
<types><xsd:schema targetNamespace="{ns}">
<xsd:import namespace="http://schemas.xmlsoap.org/soap/encoding/"/>
<xsd:import namespace="http://schemas.xmlsoap.org/wsdl/"/>
{types}</xsd:schema></types>
"""

_RECV_TYPES = """<xsd:complexType name="recvSms"><xsd:all>
<xsd:element name="id" type="xsd:int"/><xsd:element name="sender" type="xsd:string"/>
<xsd:element name="text" type="xsd:string"/><xsd:element name="date" type="xsd:dateTime"/>
</xsd:all></xsd:complexType>
<xsd:complexType name="recvList"><xsd:complexContent><xsd:restriction base="SOAP-ENC:Array">
<xsd:attribute ref="SOAP-ENC:arrayType" wsdl:arrayType="tns:recvSms[]"/>
</xsd:restriction></xsd:complexContent></xsd:complexType>
"""

_TAIL = """<message name="{op}Request">{inputs}</message>
<message name="{op}Response"><part name="response" type="{output}"/></message>
<portType name="{op}wsdlPortType"><operation name="{op}">
<input message="tns:{op}Request"/><output message="tns:{op}Response"/></operation></portType>
<binding name="{op}wsdlBinding" type="tns:{op}wsdlPortType">
<soap:binding style="rpc" transport="http://schemas.xmlsoap.org/soap/http"/>
<operation name="{op}"><soap:operation soapAction="{ns}#{op}" style="rpc"/>
<input><soap:body use="encoded" namespace="{ns}" encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"/></input>
<output><soap:body use="encoded" namespace="{ns}" encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"/></output>
</operation></binding>
<service name="{op}wsdl"><port name="{op}wsdlPort" binding="tns:{op}wsdlBinding">
<soap:address location="{location}"/></port></service>
</definitions>
"""

_INPUTS = {
    "receiveSms": [
        ("user", "xsd:string"),
        ("pass", "xsd:string"),
        ("rcpt", "xsd:string"),
        ("sharecode", "xsd:string"),
        ("messages", "xsd:int"),
    ],
    "sendMms": [
        ("id", "xsd:string"),
        ("password", "xsd:string"),
        ("ticket", "xsd:string"),
        ("subject", "xsd:string"),
        ("text", "xsd:string"),
        ("rcpt", "xsd:string"),
        ("imagedata", "xsd:base64Binary"),
        ("sounddata", "xsd:base64Binary"),
        ("videodata", "xsd:base64Binary"),
    ],
}
_OUTPUTS = {"receiveSms": "tns:recvList", "sendMms": "xsd:int"}


def generate_wsdl(service: str, location: str) -> str:
    """Generate the WSDL of ``service`` (``receiveSms`` or ``sendMms``) bound to ``location``."""
    namespace, _ = SERVICES[service]
    inputs = "".join(f'<part name="{name}" type="{kind}"/>' for name, kind in _INPUTS[service])
    head = _HEAD.format(ns=namespace, types=_RECV_TYPES if service == "receiveSms" else "")
    return head + _TAIL.format(
        op=service, ns=namespace, inputs=inputs, output=_OUTPUTS[service], location=location
    )


def _bundled_path(service: str) -> Path | None:
    try:
        path = Path(
            str(resources.files("airflow_provider_smsend.client").joinpath("wsdl", f"{service}.wsdl"))
        )
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def _bundled_text(path: Path) -> str:
    mtime = path.stat().st_mtime
    key = str(path)
    with _cache_lock:
        cached = _cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
    text = path.read_bytes().decode("iso-8859-1")
    with _cache_lock:
        _cache[key] = (mtime, text)
    return text


def wsdl_document(service: str, base_url: str) -> bytes:
    """Return the WSDL of ``service`` with its endpoint at ``base_url`` + the service path.

    :param service: ``receiveSms`` or ``sendMms``.
    :param base_url: the sandbox's URL as the client reached it, e.g. ``http://127.0.0.1:8765``.
    :return: the document encoded in ISO-8859-1.
    """
    _, endpoint = SERVICES[service]
    location = base_url.rstrip("/") + endpoint
    path = _bundled_path(service)
    if path is not None:
        text = _ADDRESS.sub(lambda m: m.group(1) + location + m.group(2), _bundled_text(path))
    else:
        text = generate_wsdl(service, location)
    return text.encode("iso-8859-1", "xmlcharrefreplace")
