"""MMS content for the sendMms SOAP service: validation, attachments, MD5 ticket, result.

Everything here runs before a request is made, so a rejected MMS costs nothing. The limits are
the gateway's documentation's (docs/gateway.md, "SOAP web services"):

- ``subject`` and ``text`` are both required ("parametro obbligatorio"): non-empty, at most 25
  and 2400 characters;
- both representable in ISO-8859-1 (the service's charset), without XML-forbidden control
  characters;
- recipients in international format, comma-joined into ``rcpt``;
- each attachment at most 100 kB. Decision: 100 kB = 100 * 1024 = 102400 bytes, measured on the
  file before base64 (the gateway's own faults 215/217 say "bigger than 100kB");
- the attachment type is decided from the content's magic bytes, never from a file name.

No zeep here: :mod:`airflow_provider_smsend.client.soap` sends what this module builds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

from airflow_provider_smsend.client.errors import SmSendReportError, SmSendValidationError
from airflow_provider_smsend.client.numbers import DEFAULT_REGION, normalize_numbers

MAX_SUBJECT_CHARS = 25
MAX_TEXT_CHARS = 2400
#: 100 kB, read as 100 * 1024 bytes (decision, see the module docstring).
MAX_ATTACHMENT_BYTES = 102_400

AttachmentKind = Literal["image", "sound", "video"]
#: What a caller passes as an attachment: the content, or a path to the file.
AttachmentInput = bytes | bytearray | memoryview | str | os.PathLike[str]

_KIND_HINT: dict[str, str] = {
    "image": "JPEG, GIF or PNG",
    "sound": "MIDI or MP3",
    "video": "MOV or 3GP",
}

# MPEG audio frame header: bitrate index 1..14, sampling-rate index 0..2, layer != 0 (reserved).
_MPEG_BAD_BITRATE = (0x00, 0xF0)


def detect_media_type(data: bytes) -> tuple[AttachmentKind, str] | None:
    """Return ``(kind, media type)`` decided from the content's magic bytes, or None.

    Recognised: JPEG, GIF, PNG (image); MIDI (``MThd``), MP3 (``ID3`` tag or an MPEG audio frame
    sync) (sound); QuickTime MOV (``ftyp`` brand ``qt  ``, or a leading ``moov``/``mdat``/``wide``
    atom) and 3GP (``ftyp`` brand ``3gp*``) (video).

    :param data: the attachment's bytes.
    """
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "image/gif"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png"
    if head.startswith(b"MThd"):
        return "sound", "audio/midi"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "sound", "audio/mpeg"
    atom = head[4:8]
    if atom == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video", "video/quicktime"
        if brand.startswith(b"3gp"):
            return "video", "video/3gpp"
        return None
    if atom in (b"moov", b"mdat", b"wide"):
        return "video", "video/quicktime"
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0x03
    layer = (head[1] >> 1) & 0x03
    bitrate = head[2] & 0xF0
    sampling = (head[2] >> 2) & 0x03
    return version != 0x01 and layer != 0x00 and bitrate not in _MPEG_BAD_BITRATE and sampling != 0x03


@dataclass(frozen=True)
class MmsAttachment:
    """One validated attachment: its kind, media type and bytes (sent base64-encoded by zeep).

    :param kind: ``"image"``, ``"sound"`` or ``"video"``: the sendMms parameter it goes to.
    :param media_type: the type detected from the content (``"image/png"``...).
    :param data: the file's bytes, at most :data:`MAX_ATTACHMENT_BYTES`.
    """

    kind: AttachmentKind
    media_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """Size in bytes, before base64."""
        return len(self.data)


def load_attachment(value: AttachmentInput, kind: AttachmentKind) -> MmsAttachment:
    """Read and check one attachment.

    :param value: the content (bytes) or a path (``str`` or :class:`~pathlib.Path`) to the file.
    :param kind: the slot it is passed in (``image``, ``sound`` or ``video``).
    :raises SmSendValidationError: unreadable file, empty, larger than 100 kB, or a content whose
        type is not one the slot accepts.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        data, label = bytes(value), f"{kind} attachment"
    elif isinstance(value, str | os.PathLike):
        path = Path(value)
        label = f"{kind} file {str(path)!r}"
        try:
            size = path.stat().st_size
            if size > MAX_ATTACHMENT_BYTES:
                raise SmSendValidationError(_too_big(label, size))
            data = path.read_bytes()
        except OSError as exc:
            raise SmSendValidationError(
                f"Cannot read the {label}: {exc.strerror or exc}. Pass an existing file or its bytes."
            ) from exc
    else:
        raise SmSendValidationError(
            f"The {kind} attachment must be bytes or a file path, got {type(value).__name__}."
        )
    if not data:
        raise SmSendValidationError(f"The {label} is empty: pass the file's content, or leave {kind} unset.")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise SmSendValidationError(_too_big(label, len(data)))
    detected = detect_media_type(data)
    if detected is None:
        raise SmSendValidationError(
            f"The {label} is not a supported {kind} type: the gateway accepts {_KIND_HINT[kind]} "
            "(decided from the content, not the file name)."
        )
    detected_kind, media_type = detected
    if detected_kind != kind:
        raise SmSendValidationError(
            f"The {label} looks like {media_type}, not {_KIND_HINT[kind]}: pass it as "
            f"{detected_kind}= instead."
        )
    return MmsAttachment(kind=kind, media_type=media_type, data=data)


def _too_big(label: str, size: int) -> str:
    return (
        f"The {label} is {size} bytes: the gateway accepts at most 100 kB "
        f"({MAX_ATTACHMENT_BYTES} bytes) per attachment, before base64. Shrink it."
    )


def check_latin1_text(name: str, value: object, *, max_chars: int, allow_empty: bool) -> str:
    """Check a subject or text: a string, within ``max_chars``, representable in ISO-8859-1.

    :raises SmSendValidationError: naming the first offending character and its position.
    """
    if not isinstance(value, str):
        raise SmSendValidationError(f"The MMS {name} must be text, got {type(value).__name__}.")
    if not allow_empty and not value.strip():
        raise SmSendValidationError(f"The MMS {name} is empty: the gateway requires one.")
    if len(value) > max_chars:
        raise SmSendValidationError(
            f"The MMS {name} has {len(value)} characters: at most {max_chars} are allowed. Shorten it."
        )
    for position, char in enumerate(value):
        code = ord(char)
        if code > 0xFF:
            raise SmSendValidationError(
                f"The MMS {name} has {char!r} (U+{code:04X}) at position {position}, which ISO-8859-1 "
                "(the MMS service's charset) cannot represent: replace or remove it."
            )
        if (code < 0x20 and char not in "\t\n\r") or 0x7F <= code < 0xA0:
            raise SmSendValidationError(
                f"The MMS {name} has the control character U+{code:04X} at position {position}: remove it."
            )
    return value


@dataclass(frozen=True)
class MmsMessage:
    """A validated MMS, ready to send.

    :param subject: at most 25 characters.
    :param text: non-empty, at most 2400 characters.
    :param recipients: numbers in E.164, without duplicates, in the caller's order.
    """

    subject: str
    text: str
    recipients: tuple[str, ...]
    image: MmsAttachment | None = None
    sound: MmsAttachment | None = None
    video: MmsAttachment | None = None

    @property
    def rcpt(self) -> str:
        """The ``rcpt`` parameter exactly as sent: numbers joined by commas."""
        return ",".join(self.recipients)


def build_mms_message(
    subject: str,
    text: str,
    recipients: str | Iterable[str],
    *,
    image: AttachmentInput | None = None,
    sound: AttachmentInput | None = None,
    video: AttachmentInput | None = None,
    region: str = DEFAULT_REGION,
) -> MmsMessage:
    """Validate everything of an MMS; raise :class:`SmSendValidationError` on the first problem.

    :param recipients: one number, several separated by commas, or an iterable of numbers.
    :param region: region for numbers given without an international prefix.
    """
    check_latin1_text("subject", subject, max_chars=MAX_SUBJECT_CHARS, allow_empty=False)
    check_latin1_text("text", text, max_chars=MAX_TEXT_CHARS, allow_empty=False)
    raw = recipients.split(",") if isinstance(recipients, str) else list(recipients)
    raw = [r for r in raw if not (isinstance(r, str) and not r.strip())]
    if not raw:
        raise SmSendValidationError("No MMS recipient given: pass at least one number.")
    numbers = tuple(dict.fromkeys(normalize_numbers(raw, region=region)))
    slots: tuple[tuple[AttachmentKind, AttachmentInput | None], ...] = (
        ("image", image),
        ("sound", sound),
        ("video", video),
    )
    attachments = {kind: load_attachment(value, kind) for kind, value in slots if value is not None}
    return MmsMessage(
        subject=subject,
        text=text,
        recipients=numbers,
        image=attachments.get("image"),
        sound=attachments.get("sound"),
        video=attachments.get("video"),
    )


def mms_ticket(mms_id: str, rcpt: str, subject: str, text: str, password: str) -> str:
    """The MD5 authentication ticket: lowercase hex MD5 of ``id + rcpt + subject + text + password``.

    The concatenation is hashed as ISO-8859-1 bytes, the service's charset (decision: the gateway
    recomputes the hash on the parameters it decoded from the ISO-8859-1 envelope; for ASCII
    input this is the same as UTF-8).
    """
    joined = f"{mms_id}{rcpt}{subject}{text}{password}"
    return hashlib.md5(joined.encode("iso-8859-1"), usedforsecurity=False).hexdigest()


_TEN_THOUSANDTHS = Decimal("0.0001")


@dataclass(frozen=True)
class MmsResult:
    """Outcome of a sent MMS.

    :param cost: credit charged, in euros with 4 decimals (``Decimal("0.3700")``).
    :param cost_units: the gateway's raw answer, in ten-thousandths of a euro (``3700``).
    :param recipients: the numbers the MMS was sent to, as sent.
    """

    cost: Decimal
    cost_units: int
    recipients: tuple[str, ...]

    @classmethod
    def from_response(cls, response: object, recipients: tuple[str, ...]) -> MmsResult:
        """Build the result from the ``response`` value of sendMms (int, or its text)."""
        units = parse_cost_units(response)
        return cls(cost=Decimal(units) * _TEN_THOUSANDTHS, cost_units=units, recipients=recipients)


def parse_cost_units(response: object) -> int:
    """Read the credit charged (ten-thousandths of a euro) from the sendMms ``response``."""
    if isinstance(response, bool):
        response = None
    if isinstance(response, int) and response >= 0:
        return response
    text = str(response).strip() if response is not None else ""
    if text.isascii() and text.isdigit() and len(text) <= 30:  # int() refuses > 4300 digits
        return int(text)
    raise SmSendReportError(
        f"The MMS gateway answered {response!r} where the credit charged (an integer) was expected; "
        "the MMS may have been sent: check the account before sending again."
    )
