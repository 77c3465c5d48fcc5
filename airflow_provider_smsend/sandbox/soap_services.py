"""The two SOAP services: receiveSms (``/wsdl/index.php``) and sendMms (``/sms-gw/index.php``).

receiveSms faults (the document lists none, so the sandbox reuses the sendMms codes):
``KO 106`` IP not enabled, ``KO 101`` wrong user/pass, ``KO 104`` disabled account,
``KO 102`` missing rcpt/sharecode, share code not assigned to the user on that number, or
``messages`` not a positive integer.

sendMms checks, in order: IP (``KO 106``), id (``KO 101``), account enabled (``KO 104``), auth
mode (``KO 107``: a password for an MD5 account or a ticket for a plain one), password or ticket
(``KO 105``), subject/text present (``KO 102``), subject <= 25 and text <= 2400 characters
(``KO 124``), recipients (``KO 103``; numbers ending 0003: ``KO 109``), image (215/216), sound
(217/218), video (too big or wrong type: ``KO 310``), credit (``KO 211``), queue fault (``KO 301``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING

from airflow_provider_smsend.sandbox.models import rome_text
from airflow_provider_smsend.sandbox.outcomes import is_international
from airflow_provider_smsend.sandbox.soap import SoapFault, render_int_response, render_recv_list

if TYPE_CHECKING:
    from airflow_provider_smsend.sandbox.state import SandboxState

MAX_ATTACHMENT_BYTES = 100 * 1024
MAX_SUBJECT = 25
MAX_TEXT = 2400


def image_type(data: bytes) -> str | None:
    """Return ``image/jpeg``, ``image/gif`` or ``image/png`` from the magic bytes, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def sound_type(data: bytes) -> str | None:
    """Return ``audio/midi`` (``MThd``) or ``audio/mpeg`` (``ID3`` or an MPEG frame sync), else None."""
    if data.startswith(b"MThd"):
        return "audio/midi"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def video_type(data: bytes) -> str | None:
    """Return ``video/quicktime`` (``ftypqt`` or a ``moov``/``mdat`` atom) or ``video/3gpp``, else None."""
    box = data[4:8]
    if box == b"ftyp":
        brand = data[8:12]
        if brand.startswith(b"qt"):
            return "video/quicktime"
        if brand.startswith((b"3gp", b"3g2")):
            return "video/3gpp"
        return None
    if box in (b"moov", b"mdat", b"wide", b"free"):
        return "video/quicktime"
    return None


def _decode(value: str | None) -> bytes | None:
    if not value or not value.strip():
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""  # undecodable: reported as an unsupported type


def _check_attachment(value: str | None, kind: str) -> str | None:
    rules = {
        "image": (image_type, 215, 216),
        "sound": (sound_type, 217, 218),
        "video": (video_type, 310, 310),
    }
    detect, too_big, bad_type = rules[kind]
    data = _decode(value)
    if data is None:
        return None
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise SoapFault.ko(too_big)
    detected = detect(data)
    if detected is None:
        raise SoapFault.ko(bad_type)
    return detected


def ticket_matches(ticket: str, parts: list[str]) -> bool:
    """True if ``ticket`` is the lowercase hex MD5 of the concatenated ``parts``.

    The concatenation is hashed as ISO-8859-1 (the wire charset) and, failing that, as UTF-8.
    """
    joined = "".join(parts)
    candidates = [joined.encode("utf-8")]
    try:
        candidates.insert(0, joined.encode("iso-8859-1"))
    except UnicodeEncodeError:
        pass
    return any(hashlib.md5(c).hexdigest() == ticket.strip() for c in candidates)  # noqa: S324 - protocol


def receive_sms(state: SandboxState, params: dict[str, str | None], ip: str | None) -> bytes:
    """Answer ``receiveSms(user, pass, rcpt, sharecode, messages)``.

    :return: the SOAP answer body.
    :raises SoapFault: on refused access or bad parameters (see the module docstring).
    """
    if not state.ip_allowed(ip):
        raise SoapFault.ko(106)
    account = state.authenticate((params.get("user") or "").strip(), params.get("pass") or "")
    if account is None:
        raise SoapFault.ko(101)
    if not account.active:
        raise SoapFault.ko(104)
    rcpt = (params.get("rcpt") or "").strip()
    sharecode = (params.get("sharecode") or "").strip()
    messages = (params.get("messages") or "").strip()
    if not rcpt or not sharecode or not messages.isdigit() or int(messages) < 1:
        raise SoapFault.ko(102)
    if state.sharecode_owner(rcpt, sharecode) != account.u_id:
        raise SoapFault.ko(102)
    items = [
        (m.id, m.sender, m.text, rome_text(m.received_at))
        for m in state.inbound_for(rcpt, sharecode, int(messages))
    ]
    return render_recv_list(items)


def send_mms(state: SandboxState, params: dict[str, str | None], ip: str | None, ko_queue: bool) -> bytes:
    """Answer ``sendMms(id, password, ticket, subject, text, rcpt, imagedata, sounddata, videodata)``.

    :param ko_queue: the fault injector decided this call fails with ``KO 301`` (nothing charged).
    :return: the SOAP answer body, whose ``response`` is the cost in ten-thousandths of a euro.
    :raises SoapFault: on any documented failure (see the module docstring).
    """
    if not state.ip_allowed(ip):
        raise SoapFault.ko(106)
    mms_id = (params.get("id") or "").strip()
    account = state.mms_accounts.get(mms_id)
    if account is None:
        raise SoapFault.ko(101)
    owner = state.accounts.get(account.u_id)
    if owner is None or not account.active or not owner.active:
        raise SoapFault.ko(104)
    password = params.get("password") or ""
    ticket = params.get("ticket") or ""
    subject = params.get("subject") or ""
    text = params.get("text") or ""
    rcpt = params.get("rcpt") or ""
    if account.auth == "md5":
        if not ticket:
            raise SoapFault.ko(107)
        if password or not ticket_matches(ticket, [mms_id, rcpt, subject, text, account.password]):
            raise SoapFault.ko(105)
    else:
        if not password:
            raise SoapFault.ko(107)
        if password != account.password:
            raise SoapFault.ko(105)
    if not subject or not text:
        raise SoapFault.ko(102)
    if len(subject) > MAX_SUBJECT or len(text) > MAX_TEXT:
        raise SoapFault.ko(124)
    numbers = [n.strip() for n in rcpt.split(",")]
    if not rcpt.strip() or not all(is_international(n) for n in numbers):
        raise SoapFault.ko(103)
    if any(n.endswith("0003") for n in numbers):
        raise SoapFault.ko(109)
    attachments = [
        found
        for found in (
            _check_attachment(params.get("imagedata"), "image"),
            _check_attachment(params.get("sounddata"), "sound"),
            _check_attachment(params.get("videodata"), "video"),
        )
        if found
    ]
    unit = state.price(owner, "mms")
    if owner.credit < unit * len(numbers):
        raise SoapFault.ko(211)
    if ko_queue:
        raise SoapFault.ko(301)
    items = [{"rcpt": n, "subject": subject, "text": text, "attachments": list(attachments)} for n in numbers]
    if state.record_batch(owner, "mms", unit, items) is None:
        raise SoapFault.ko(211)
    return render_int_response("sendMms", "urn:sendMmswsdl", int(unit * len(numbers) * 10000))
