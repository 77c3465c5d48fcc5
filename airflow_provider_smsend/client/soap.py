"""The gateway's SOAP web services, receiveSms and sendMms, through zeep (no Airflow here).

Both services are NuSOAP-style rpc/encoded, ISO-8859-1 (docs/gateway.md, "SOAP web services"). The
WSDLs are bundled (``client/wsdl/``) with local copies of the schemas they refer to; the zeep
transport built here serves those copies, so loading a WSDL never touches the network. zeep is
imported inside functions only, to keep DAG parsing fast: the zeep-bound pieces (transport,
plugin, log filter, error translation) live in :mod:`airflow_provider_smsend.client._soap_zeep`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from airflow_provider_smsend.client.deadline import (
    MAX_SOAP_ANSWER_BYTES,
    SOAP_BYTES_PER_MESSAGE,
    SOAP_ENVELOPE_BYTES,
    Deadline,
    attempt_budget,
    deadline,
)
from airflow_provider_smsend.client.errors import SmSendReportError, SmSendValidationError
from airflow_provider_smsend.client.mms import (
    AttachmentInput,
    MmsResult,
    build_mms_message,
    mms_ticket,
)
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, mask_number, normalize_number
from airflow_provider_smsend.client.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import requests
    from lxml import etree

log = logging.getLogger(__name__)

ROME = ZoneInfo("Europe/Rome")
DEFAULT_BASE_URL = "https://app.smsend.it"
#: receiveSms ``messages`` bounds. Decision: the documentation gives none; 1..1000 keeps one answer
#: to a size a task can hold, and 0 or negatives are certainly mistakes.
MAX_RECEIVE_MESSAGES = 1000


def check_messages(messages: object) -> int:
    """The number of SMS one receiveSms call asks for: an integer from 1 to ``MAX_RECEIVE_MESSAGES``.

    The one check for the client, the inbound event trigger and ``SmSendInboundToSqlOperator``.

    :raises SmSendValidationError: (a ``ValueError``) anything else; nothing was sent.
    """
    if (
        isinstance(messages, bool)
        or not isinstance(messages, int)
        or not 1 <= messages <= MAX_RECEIVE_MESSAGES
    ):
        raise SmSendValidationError(
            f"messages must be an integer from 1 to {MAX_RECEIVE_MESSAGES}, got {messages!r}."
        )
    return messages


SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
RECEIVE_NAMESPACE = "urn:receiveSmswsdl"
RECEIVE_BINDING = "{urn:receiveSmswsdl}receiveSmswsdlBinding"
RECEIVE_PATH = "/wsdl/index.php"
MMS_NAMESPACE = "urn:sendMmswsdl"
MMS_BINDING = "{urn:sendMmswsdl}sendMmswsdlBinding"
MMS_PATH = "/sms-gw/index.php"

Timeout = float | tuple[float, float]
ServiceKind = Literal["receive", "mms"]


def bundled_wsdl(name: str) -> str:
    """Path of a WSDL or schema file shipped in ``client/wsdl/`` (``"receiveSms.wsdl"``...)."""
    return str(resources.files("airflow_provider_smsend.client").joinpath("wsdl", name))


@dataclass(frozen=True)
class ReceivedSms:
    """One SMS received on a reception number, as listed by receiveSms.

    :param id: the gateway's unique id of the message.
    :param sender: the sender's number (text, as the gateway gives it).
    :param text: the message text.
    :param received_at: reception time, timezone-aware, Europe/Rome.
    """

    id: int
    sender: str
    text: str
    received_at: datetime


def parse_received_at(value: str | None) -> datetime:
    """Parse a receiveSms ``date``: ``2005-11-22 11:07:02`` (the documentation's form) or ISO 8601.

    A value without a zone is Europe/Rome local time; a value with a zone is converted to it.

    :raises SmSendReportError: if the value is not a date and time.
    """
    text = (value or "").strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SmSendReportError(
            f"receiveSms answered the date {value!r}, which is neither 'YYYY-MM-DD HH:MM:SS' nor ISO 8601."
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=ROME)
    return parsed.astimezone(ROME)


def parse_receive_sms_response(
    content: bytes, *, charset: str | None = None, limit: int | None = None
) -> list[ReceivedSms]:
    """Parse a receiveSms answer envelope into :class:`ReceivedSms` items.

    Why raw XML rather than zeep's parsed result: the answer's ``date`` is typed ``xsd:dateTime``
    (by ``xsi:type`` on each element, which takes precedence over anything the WSDL says) but the
    gateway's own example carries ``2005-11-22 11:07:02``. zeep turns a dateTime it cannot parse
    into ``None`` with only a log line, silently losing the date, and overriding its built-in
    dateTime type would change it process-wide for every zeep user. Reading the four fields of
    each array item ourselves is short, accepts both forms, and fails loudly on anything else.

    :param content: the HTTP body.
    :param charset: the Content-Type charset, used when the XML has no encoding declaration.
    :param limit: the messages asked: more items than that are not read (the first ``limit`` are kept).
    :raises SmSendGatewayError: (a subclass) when the answer is a SOAP Fault.
    :raises SmSendReportError: when the envelope does not have the documented shape.
    """
    from airflow_provider_smsend.client._soap_zeep import fault_error, parse_envelope

    root = parse_envelope(content, charset=charset)
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None:
        raise SmSendReportError("receiveSms answered an envelope without a Body.")
    fault = body.find(f"{{{SOAP_ENV}}}Fault")
    if fault is not None:
        raise fault_error(_child_text(fault, "faultcode"), _child_text(fault, "faultstring"))
    wrapper = _first_child(body)
    if wrapper is None:
        raise SmSendReportError("receiveSms answered an empty Body: expected receiveSmsResponse.")
    array = _child(wrapper, "response")
    if array is None:
        array = _first_child(wrapper)
    if array is None:
        raise SmSendReportError("receiveSms answered without its 'response' list.")
    items = _children(array)
    if limit is not None and len(items) > limit:
        log.warning(
            "receiveSms answered %d messages for %d asked: the first %d are kept.", len(items), limit, limit
        )
        items = items[:limit]
    return [_received_sms(_dereference(item, root), n) for n, item in enumerate(items)]


def _received_sms(item: etree._Element, index: int) -> ReceivedSms:
    raw_id = _child_text(item, "id")
    try:
        sms_id = int((raw_id or "").strip())
    except ValueError:
        raise SmSendReportError(f"receiveSms item {index}: id {raw_id!r} is not an integer.") from None
    try:
        received_at = parse_received_at(_child_text(item, "date"))
    except SmSendReportError as exc:
        raise SmSendReportError(f"receiveSms item {index} (id {sms_id}): {exc.message}") from None
    return ReceivedSms(
        id=sms_id,
        sender=(_child_text(item, "sender") or "").strip(),
        text=_child_text(item, "text") or "",
        received_at=received_at,
    )


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _first_child(element: etree._Element) -> etree._Element | None:
    children = _children(element)
    return children[0] if children else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: etree._Element, name: str) -> etree._Element | None:
    for child in _children(element):
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: etree._Element, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else child.text


def _dereference(item: etree._Element, root: etree._Element) -> etree._Element:
    """Follow a SOAP-ENC multi-reference (``href="#id"``) if the gateway used one."""
    href = item.get("href")
    if not href or not href.startswith("#"):
        return item
    for target in root.iter():
        if target.get("id") == href[1:]:
            return target
    raise SmSendReportError(f"receiveSms answer refers to {href!r}, which it does not contain.")


class SmSendSoapClient:
    """Client of the gateway's SOAP services: receiveSms (inbound SMS) and sendMms.

    The constructor does no I/O; each service's zeep client is built on first use and cached.
    Reads (receiveSms) are retried with backoff; sendMms is never retried once it may have
    reached the gateway.

    :param receive_url: base URL of the receiveSms host (your ``dnsservice``); the endpoint is
        ``<receive_url>/wsdl/index.php``.
    :param mms_url: base URL of the sendMms host; the endpoint is ``<mms_url>/sms-gw/index.php``.
    :param username: SMS API login (``user``) for receiveSms.
    :param password: SMS API password (``pass``) for receiveSms.
    :param mms_id: the MMS account id issued by smSend.
    :param mms_password: the MMS account password (sent, or used for the MD5 ticket).
    :param mms_auth: ``"plain"`` (password sent) or ``"md5"`` (ticket sent, password never sent).
    :param timeout: ``(connect, read)`` seconds for loading a WSDL.
    :param operation_timeout: seconds (or ``(connect, read)``) for each SOAP call; default ``timeout``.
        Each attempt of a call, connect to the answer's last byte, ends within its connect plus read
        seconds (one number counts twice); receiveSms answers are capped by the messages asked,
        sendMms answers at 1 MiB (docs/gateway.md, "Deadlines and size caps").
    :param retry: retry policy for receiveSms (and unsent sendMms connection failures).
    :param wsdl_receive: receiveSms WSDL: a URL (the live ``?wsdl``) or a path; default bundled.
    :param wsdl_mms: sendMms WSDL: a URL or a path; default bundled.
    :param session: a :class:`requests.Session` to use (proxies, TLS settings); not closed by us.
    :param region: region for phone numbers given without an international prefix.

    Example::

        client = SmSendSoapClient(
            receive_url="https://dnsservice.smsend.it",
            username="acme",
            password="secret",
            mms_url="https://dnsservice.smsend.it",
            mms_id="C00000_001",
            mms_password="mms-secret",
            mms_auth="md5",
        )
        for sms in client.receive_sms("+393331234567", "001", messages=50):
            print(sms.id, sms.sender, sms.received_at, sms.text)
        result = client.send_mms("Offer", "See the picture", ["+393331234567"], image="promo.png")
        print(result.cost)  # Decimal('0.3700')
    """

    def __init__(
        self,
        *,
        receive_url: str = DEFAULT_BASE_URL,
        mms_url: str = DEFAULT_BASE_URL,
        username: str | None = None,
        password: str | None = None,
        mms_id: str | None = None,
        mms_password: str | None = None,
        mms_auth: Literal["plain", "md5"] = "plain",
        timeout: tuple[float, float] = (10.0, 60.0),
        operation_timeout: Timeout | None = None,
        retry: RetryPolicy | None = None,
        wsdl_receive: str | None = None,
        wsdl_mms: str | None = None,
        session: requests.Session | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        if mms_auth not in ("plain", "md5"):
            raise SmSendValidationError(f"mms_auth must be 'plain' or 'md5', got {mms_auth!r}.")
        self.receive_url = _base_url(receive_url, "receive_url")
        self.mms_url = _base_url(mms_url, "mms_url")
        self.username = username
        self._password = password
        self.mms_id = mms_id
        self._mms_password = mms_password
        self.mms_auth = mms_auth
        self.timeout = timeout
        self.operation_timeout: Timeout = operation_timeout if operation_timeout is not None else timeout
        self.retry = retry or RetryPolicy()
        self.wsdl_receive = wsdl_receive or bundled_wsdl("receiveSms.wsdl")
        self.wsdl_mms = wsdl_mms or bundled_wsdl("sendMms.wsdl")
        self.region = region
        self._session = session
        self._owns_session = session is None
        self._transport: Any = None
        self._services: dict[ServiceKind, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(receive_url={self.receive_url!r}, mms_url={self.mms_url!r}, "
            f"username={self.username!r}, mms_id={self.mms_id!r}, mms_auth={self.mms_auth!r})"
        )

    def __enter__(self) -> SmSendSoapClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        with self._lock:
            if self._transport is not None and self._owns_session:
                self._transport.session.close()
            self._transport = None
            self._services.clear()

    # ------------------------------------------------------------------ receiveSms
    def receive_sms(self, rcpt: str, sharecode: str, messages: int = 10) -> list[ReceivedSms]:
        """List the SMS received on a reception number (receiveSms), newest as the gateway orders them.

        :param rcpt: the reception number (international format, or national for ``region``).
        :param sharecode: the share code assigned with the number (``"001"``: text, keep the zeros).
        :param messages: how many messages to list, 1..1000.
        :return: the messages; an empty list when there are none.
        :raises SmSendValidationError: bad input; nothing was sent.
        :raises SmSendGatewayError: the service answered a SOAP Fault (subclass by code).
        :raises SmSendTransportError: unreachable, timed out, or not a SOAP answer.
        """
        number = normalize_number(rcpt, region=self.region, allow_landlines=True)  # a reception number
        if not isinstance(sharecode, str) or not sharecode.strip():
            raise SmSendValidationError(
                f"sharecode must be the non-empty share code text (like '001'), got {sharecode!r}."
            )
        check_messages(messages)
        if not self.username or not self._password:
            raise SmSendValidationError("receiveSms needs username and password (the SMS API login).")
        code = sharecode.strip()
        log.info("receiveSms for %s, share code %s, up to %d messages", mask_number(number), code, messages)
        return call_with_retry(
            lambda: self._receive_once(number, code, messages), policy=self.retry, idempotent=True
        )

    def _receive_once(self, rcpt: str, sharecode: str, messages: int) -> list[ReceivedSms]:
        from airflow_provider_smsend.client._soap_zeep import translate_errors

        with translate_errors("receiveSms", self._endpoint("receive")):
            client, service = self._service("receive")
            params = {"user": self.username, "pass": self._password, "rcpt": rcpt}
            cap = SOAP_ENVELOPE_BYTES + SOAP_BYTES_PER_MESSAGE * messages
            with client.settings(raw_response=True), deadline(self._attempt_deadline("receiveSms", cap)):
                response = service.receiveSms(**params, sharecode=sharecode, messages=messages)
            return parse_receive_sms_response(response.content, charset=_charset(response), limit=messages)

    # ------------------------------------------------------------------ sendMms
    def send_mms(
        self,
        subject: str,
        text: str,
        recipients: str | Iterable[str],
        *,
        image: AttachmentInput | None = None,
        sound: AttachmentInput | None = None,
        video: AttachmentInput | None = None,
    ) -> MmsResult:
        """Send an MMS (sendMms); everything is validated before the request.

        :param subject: at most 25 characters, ISO-8859-1.
        :param text: at most 2400 characters, ISO-8859-1.
        :param recipients: a number, numbers separated by commas, or an iterable of numbers.
        :param image: JPEG/GIF/PNG, bytes or a path, at most 100 kB (102400 bytes).
        :param sound: MIDI/MP3, bytes or a path, at most 100 kB.
        :param video: MOV/3GP, bytes or a path, at most 100 kB.
        :return: the credit charged and the recipients.
        :raises SmSendValidationError: bad input; nothing was sent.
        :raises SmSendGatewayError: a ``KO nnn`` SOAP Fault (subclass by code).
        :raises SmSendTransportError: unreachable, timed out, or not a SOAP answer. When
            ``request_sent`` is True the MMS may have been sent: check before sending again.
        """
        message = build_mms_message(
            subject, text, recipients, image=image, sound=sound, video=video, region=self.region
        )
        if not self.mms_id or not self._mms_password:
            raise SmSendValidationError("sendMms needs mms_id and mms_password (issued by smSend).")
        mms_id, secret = self.mms_id, self._mms_password
        if self.mms_auth == "md5":
            password, ticket = "", mms_ticket(mms_id, message.rcpt, message.subject, message.text, secret)
        else:
            password, ticket = secret, ""
        log.info(
            "sendMms to %d recipient(s) (%s), attachments: %s",
            len(message.recipients),
            ", ".join(mask_number(n) for n in message.recipients[:5]),
            ", ".join(a.media_type for a in (message.image, message.sound, message.video) if a) or "none",
        )
        params = {
            "id": mms_id,
            "password": password,
            "ticket": ticket,
            "subject": message.subject,
            "text": message.text,
            "rcpt": message.rcpt,
            "imagedata": message.image.data if message.image else None,
            "sounddata": message.sound.data if message.sound else None,
            "videodata": message.video.data if message.video else None,
        }
        response = call_with_retry(lambda: self._send_mms_once(params), policy=self.retry, idempotent=False)
        result = MmsResult.from_response(response, message.recipients)
        log.info("sendMms accepted, cost %s EUR", result.cost)
        return result

    def _send_mms_once(self, params: dict[str, Any]) -> object:
        from zeep import xsd

        from airflow_provider_smsend.client._soap_zeep import translate_errors

        with translate_errors("sendMms", self._endpoint("mms")):
            _, service = self._service("mms")
            # A missing attachment is sent as xsi:nil, as in the documentation's example.
            values = {k: (xsd.Nil if v is None else v) for k, v in params.items()}
            with deadline(self._attempt_deadline("sendMms", MAX_SOAP_ANSWER_BYTES)):
                return service.sendMms(**values)

    # ------------------------------------------------------------------ zeep plumbing
    def _attempt_deadline(self, operation: str, max_bytes: int) -> Deadline:
        """The deadline of one attempt: the operation's connect plus read timeout, answers up to ``max_bytes``."""
        from airflow_provider_smsend.client._soap_zeep import timeout_pair

        budget = attempt_budget(timeout_pair(self.operation_timeout))
        return Deadline(budget, max_bytes=max_bytes, what=operation)

    def _endpoint(self, kind: ServiceKind) -> str:
        return self.receive_url + RECEIVE_PATH if kind == "receive" else self.mms_url + MMS_PATH

    def _service(self, kind: ServiceKind) -> tuple[Any, Any]:
        """The cached ``(zeep.Client, service proxy)`` of a service, built on first use."""
        with self._lock:
            cached = self._services.get(kind)
            if cached is not None:
                return cached
            from airflow_provider_smsend.client._soap_zeep import build_service, make_transport

            if self._transport is None:
                self._transport = make_transport(
                    session=self._session, timeout=self.timeout, operation_timeout=self.operation_timeout
                )
            if kind == "receive":
                built = build_service(
                    self.wsdl_receive, self._transport, RECEIVE_BINDING, "receiveSms", self._endpoint(kind)
                )
            else:
                built = build_service(
                    self.wsdl_mms, self._transport, MMS_BINDING, "sendMms", self._endpoint(kind)
                )
            self._services[kind] = built
            return built


def _base_url(url: str, name: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SmSendValidationError(f"{name} must be an http:// or https:// base URL, got {url!r}.")
    return url.rstrip("/")


def _charset(response: requests.Response) -> str | None:
    content_type = response.headers.get("Content-Type", "")
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_RECEIVE_MESSAGES",
    "check_messages",
    "MmsResult",
    "ReceivedSms",
    "SmSendSoapClient",
    "bundled_wsdl",
    "parse_receive_sms_response",
    "parse_received_at",
]
