"""zeep plumbing of :mod:`airflow_provider_smsend.client.soap`; imports zeep, so import it lazily.

- :class:`LocalSchemaTransport`: a zeep transport that serves the SOAP-ENC / WSDL schemas from the
  package (never downloaded), posts ISO-8859-1 envelopes like NuSOAP, turns ``requests`` failures
  into :class:`SmSendTransportError` / :class:`SmSendTimeoutError` at the point they happen, and
  rejects answers that are not SOAP envelopes (HTML error pages, empty bodies) with the status.
- :class:`EncodedTypesPlugin`: adds the ``xsi:type`` of every rpc/encoded part, as the
  documentation's envelopes show; NuSOAP decodes base64Binary attachments only when typed.
- :func:`mask_envelope`: what a logged envelope may show: ``<pass>``, ``<password>`` and ``<ticket>``
  blanked; numbers (``rcpt``, ``sender``, any ``+`` number elsewhere) masked as the INFO logs mask them;
  texts (``text``, ``subject``) and attachments replaced by their length. The transport logs envelopes
  at DEBUG only through it, and :class:`EnvelopeMaskingFilter` applies it to whatever zeep itself logs
  (README, "Reliability": personal data).
- :func:`translate_errors`: no zeep, lxml or requests exception reaches the caller.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import zeep
from lxml import etree
from zeep.plugins import Plugin
from zeep.transports import Transport

from airflow_provider_smsend.client.deadline import (
    MAX_SOAP_ANSWER_BYTES,
    Deadline,
    attempt_budget,
    current,
    deadline,
    mount_deadlines,
)
from airflow_provider_smsend.client.errors import (
    SmSendError,
    SmSendGatewayError,
    SmSendTimeoutError,
    SmSendTransportError,
    SmSendValidationError,
    error_from_fault,
    error_from_ko,
)
from airflow_provider_smsend.client.http import never_connected, timed_out
from airflow_provider_smsend.client.numbers import mask_number

log = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NUSOAP_NSMAP = {"SOAP-ENV": SOAP_ENV, "xsd": XSD, "xsi": XSI, "SOAP-ENC": SOAP_ENC}
WIRE_CHARSET = "ISO-8859-1"

#: Schemas zeep would download, by URL without scheme or trailing slash -> bundled file.
LOCAL_SCHEMAS = {
    "schemas.xmlsoap.org/soap/encoding": "soap-encoding.xsd",
    "schemas.xmlsoap.org/wsdl": "wsdl-arraytype.xsd",
}
#: Loggers that may carry envelopes (zeep's, and ours).
REDACTED_LOGGERS = ("zeep.transports", "zeep.wsdl.bindings.soap", "zeep.client", __name__)

_SECRET_TAGS = ("pass", "password", "ticket")
_NUMBER_TAGS = ("rcpt", "sender")
_TEXT_TAGS = ("text", "subject", "imagedata", "sounddata", "videodata")
_ELEMENT = re.compile(
    r"(?P<open><(?P<tag>(?:[\w.-]+:)?(?P<name>"
    + "|".join(_SECRET_TAGS + _NUMBER_TAGS + _TEXT_TAGS)
    + r"))(?:\s[^>]*)?>)(?P<value>.*?)(?P<close></(?P=tag)\s*>)",
    re.DOTALL,
)
#: A number in international format anywhere else in an envelope (a fault text quoting a recipient).
_INTERNATIONAL_NUMBER = re.compile(r"\+\d{6,15}")


_LEFT_OUT = re.compile(r"\[\d+ characters not logged\]")


def _masked_value(name: str, value: str) -> str:
    if name in _SECRET_TAGS:
        return "***"
    if name in _NUMBER_TAGS:  # mask_number leaves a masked number as it is
        return ",".join(mask_number(part.strip()) for part in value.split(","))
    if _LEFT_OUT.fullmatch(value):  # already masked (the transport's own log line, then the filter)
        return value
    return f"[{len(value)} characters not logged]"


def mask_envelope(text: str) -> str:
    """An envelope as it may be logged: secrets blanked, numbers masked, texts and attachments left out.

    ``<pass>``, ``<password>`` and ``<ticket>`` become ``***``; ``<rcpt>`` and ``<sender>`` keep the
    masked form of each comma-separated number (``+39333****567``, as the INFO logs show it);
    ``<text>``, ``<subject>`` and the attachments become their length; any other ``+`` number (a fault
    text quoting a recipient) is masked too. Empty elements stay as they are.
    """

    def element(match: re.Match[str]) -> str:
        if not match["value"]:
            return match[0]
        return f"{match['open']}{_masked_value(match['name'], match['value'])}{match['close']}"

    masked = _ELEMENT.sub(element, text)
    return _INTERNATIONAL_NUMBER.sub(lambda m: mask_number(m[0]), masked)


class EnvelopeMaskingFilter(logging.Filter):
    """Logging filter that applies :func:`mask_envelope` to a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        masked = mask_envelope(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_redaction() -> None:
    """Attach one :class:`EnvelopeMaskingFilter` to each logger that may log envelopes."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, EnvelopeMaskingFilter) for f in logger.filters):
            logger.addFilter(EnvelopeMaskingFilter())


def _secure_parser(charset: str | None = None) -> etree.XMLParser:
    return etree.XMLParser(
        encoding=charset, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )


def parse_envelope(content: bytes, *, charset: str | None = None) -> etree._Element:
    """Parse an answer body securely (no entities, no network); raise :class:`SmSendTransportError`.

    ``charset`` (from Content-Type) is used only when the XML has no encoding declaration.
    """
    stripped = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    declared = stripped.startswith(b"<?xml") and b"encoding" in stripped[: stripped.find(b"?>") + 1]
    try:
        root = etree.fromstring(content, _secure_parser(None if declared else charset))
    except (etree.XMLSyntaxError, LookupError, ValueError) as exc:
        raise SmSendTransportError(
            f"The SOAP service answered something that is not XML ({exc}); starts with {_snippet(content)!r}.",
            retryable=False,
        ) from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SmSendTransportError(
            f"The SOAP service answered XML that is not a SOAP 1.1 envelope (root {root.tag!r}).",
            retryable=False,
        )
    return root


def _snippet(content: bytes, size: int = 120) -> str:
    return content[:size].decode("utf-8", errors="replace")


def fault_error(faultcode: str | None, faultstring: str | None) -> SmSendGatewayError:
    """Map a SOAP Fault: ``KO nnn`` codes by :func:`error_from_fault`; a fault whose string is a
    documented KO text (as the HTTP API's) by :func:`error_from_ko`; the rest as undocumented."""
    error = error_from_fault(faultcode, faultstring)
    if error.code == "undocumented_fault" and faultstring:
        by_text = error_from_ko(faultstring)
        if by_text.code != "undocumented":
            by_text.gateway_text = error.gateway_text
            return by_text
    return error


def requests_error(
    exc: requests.RequestException, what: str, *, before_call: bool = False
) -> SmSendTransportError:
    """Translate a ``requests`` failure; ``before_call`` when no operation had been posted yet."""
    sent = not (before_call or never_connected(exc))
    if timed_out(exc):
        phase = "connecting to" if isinstance(exc, requests.exceptions.ConnectTimeout) else "waiting for"
        return SmSendTimeoutError(
            f"Timed out {phase} {what}"
            + ("; the request may have been processed: check before repeating it." if sent else "."),
            request_sent=sent,
        )
    return SmSendTransportError(
        f"Could not talk to {what}: {type(exc).__name__}"
        + ("; the request may have been processed: check before repeating it." if sent else "."),
        request_sent=sent,
    )


class LocalSchemaTransport(Transport):
    """zeep transport: bundled schemas, ISO-8859-1 envelopes, translated HTTP failures.

    :param wsdl_dir: directory of the bundled schema files.
    """

    def __init__(self, *, wsdl_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wsdl_dir = wsdl_dir

    def load(self, url: str) -> bytes:
        key = url.split("://", 1)[-1].rstrip("/")
        if key in LOCAL_SCHEMAS:
            with open(f"{self.wsdl_dir}/{LOCAL_SCHEMAS[key]}", "rb") as handle:
                return handle.read()
        try:
            return super().load(url)
        except requests.RequestException as exc:
            raise requests_error(exc, f"the WSDL at {url!r}", before_call=True) from exc

    def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> requests.Response:
        message = etree.tostring(envelope, xml_declaration=True, encoding=WIRE_CHARSET)
        headers = {**headers, "Content-Type": f"text/xml; charset={WIRE_CHARSET}"}
        return self.post(address, message, headers)

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> requests.Response:
        """POST an envelope under the current deadline (else one of its own: the connect plus the read
        operation timeout, answers up to :data:`MAX_SOAP_ANSWER_BYTES`)."""
        if self.logger.isEnabledFor(logging.DEBUG):
            text = message.decode(WIRE_CHARSET) if isinstance(message, bytes) else message
            self.logger.debug("HTTP Post to %s:\n%s", address, mask_envelope(text))
        limit = current() or Deadline(
            attempt_budget(timeout_pair(self.operation_timeout)),
            max_bytes=MAX_SOAP_ANSWER_BYTES,
            what=f"the SOAP service at {address!r}",
        )
        try:
            with deadline(limit):
                response = self.session.post(
                    address, data=message, headers=headers, timeout=self.operation_timeout
                )
        except requests.RequestException as exc:
            raise requests_error(exc, f"the SOAP service at {address!r}") from exc
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(
                "HTTP Response from %s (status: %d):\n%s",
                address,
                response.status_code,
                mask_envelope(response.content.decode(response.encoding or WIRE_CHARSET, errors="replace")),
            )
        check_soap_answer(response, address)
        return response


def check_soap_answer(response: requests.Response, address: str) -> None:
    """Raise :class:`SmSendTransportError` (with the status) unless the answer is a SOAP envelope,
    and, for a non-200 status, one carrying a Fault."""
    status = response.status_code
    retryable = status >= 500
    where = f"The SOAP service at {address!r} answered HTTP {status}"
    if not response.content.strip():
        raise SmSendTransportError(f"{where} with an empty body.", status_code=status, retryable=retryable)
    try:
        root = parse_envelope(response.content)
    except SmSendTransportError as exc:
        raise SmSendTransportError(
            f"{where}, not a SOAP answer: {exc.message}", status_code=status, retryable=retryable
        ) from None
    if status != 200 and root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault") is None:
        raise SmSendTransportError(f"{where} without a SOAP Fault.", status_code=status, retryable=retryable)


class EncodedTypesPlugin(Plugin):
    """Shape the envelope like NuSOAP's: ``SOAP-ENV:encodingStyle``, ``xsi:type`` on every part."""

    def egress(
        self, envelope: Any, http_headers: dict[str, str], operation: Any, binding_options: Any
    ) -> Any:
        root = etree.Element(envelope.tag, nsmap=NUSOAP_NSMAP)
        root.set(f"{{{SOAP_ENV}}}encodingStyle", SOAP_ENC)
        for child in list(envelope):
            root.append(child)
        try:
            elements = operation.input.body.type.elements
        except AttributeError:  # not an rpc operation as our WSDLs define it: leave the parts alone
            return root, http_headers
        types = {name: element.type.qname for name, element in elements}
        body = root.find(f"{{{SOAP_ENV}}}Body")
        for call in body if body is not None else ():
            for part in call:
                qname = types.get(etree.QName(part).localname)
                if qname is not None and etree.QName(qname).namespace == XSD:
                    part.set(f"{{{XSI}}}type", f"xsd:{etree.QName(qname).localname}")
        return root, http_headers


def timeout_pair(timeout: float | tuple[float, float] | None) -> tuple[float, float]:
    """A requests timeout as ``(connect, read)`` (one number is both; None: 300 s, zeep's default)."""
    if timeout is None:
        return (300.0, 300.0)
    if isinstance(timeout, tuple):
        return (float(timeout[0]), float(timeout[1]))
    return (float(timeout), float(timeout))


def make_transport(
    *, session: requests.Session | None, timeout: Any, operation_timeout: Any
) -> LocalSchemaTransport:
    """Build the transport; installs the log redaction first.

    Without a ``session``, the transport's own session gets the deadline adapter
    (:func:`~airflow_provider_smsend.client.deadline.mount_deadlines`); a given session is used as it is.
    """
    from importlib import resources

    install_log_redaction()
    user_agent = session.headers.get("User-Agent") if session is not None else None
    if session is None:
        session = requests.Session()
        mount_deadlines(session)
    wsdl_dir = str(resources.files("airflow_provider_smsend.client").joinpath("wsdl"))
    transport = LocalSchemaTransport(
        wsdl_dir=wsdl_dir, session=session, timeout=timeout, operation_timeout=operation_timeout
    )
    if user_agent is not None:  # zeep overwrites the User-Agent of the session it is given
        transport.session.headers["User-Agent"] = user_agent
    return transport


def build_service(
    wsdl: str, transport: LocalSchemaTransport, binding: str, operation: str, address: str
) -> tuple[zeep.Client, Any]:
    """Load ``wsdl`` and bind ``address``: the named binding, else the one offering ``operation``."""
    try:
        client = zeep.Client(wsdl, transport=transport, plugins=[EncodedTypesPlugin()])
    except SmSendError:
        raise
    except (OSError, zeep.exceptions.Error, etree.LxmlError) as exc:
        raise SmSendError(
            f"Cannot load the {operation} WSDL {wsdl!r}: {exc}. Leave the WSDL unset to use the bundled one.",
            code="wsdl_unusable",
        ) from exc
    bindings = client.wsdl.bindings
    if binding not in bindings:
        found = [name for name, b in bindings.items() if operation in getattr(b, "_operations", {})]
        if not found:
            raise SmSendError(
                f"The WSDL {wsdl!r} has no binding with operation {operation!r}.", code="wsdl_unusable"
            )
        binding = found[0]
    return client, client.create_service(binding, address)


@contextmanager
def translate_errors(operation: str, address: str) -> Iterator[None]:
    """Turn zeep, lxml and requests exceptions into :class:`SmSendError` subclasses."""
    try:
        yield
    except SmSendError:
        raise
    except zeep.exceptions.Fault as exc:
        raise fault_error(exc.code, exc.message) from None
    except zeep.exceptions.ValidationError as exc:
        raise SmSendValidationError(
            f"{operation}: zeep rejected a parameter: {exc}. Nothing was sent."
        ) from None
    except zeep.exceptions.TransportError as exc:
        raise SmSendTransportError(
            f"{operation} at {address!r} failed: HTTP {exc.status_code}.", status_code=exc.status_code
        ) from None
    except requests.RequestException as exc:
        raise requests_error(exc, f"the SOAP service at {address!r}") from None
    except (zeep.exceptions.Error, etree.LxmlError) as exc:
        raise SmSendTransportError(
            f"{operation} at {address!r} answered something zeep could not read: {type(exc).__name__}: {exc}"
        ) from None
