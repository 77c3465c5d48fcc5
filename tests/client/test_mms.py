"""client/mms.py: the MMS model with no transport: media types from magic bytes, attachments, the
subject and text in ISO-8859-1, recipients, the MD5 ticket, the cost in ten-thousandths (sendMms
itself: tests/client/test_soap_mms.py)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from airflow_provider_smsend.client.errors import SmSendReportError, SmSendValidationError
from airflow_provider_smsend.client.mms import (
    MAX_ATTACHMENT_BYTES,
    MmsResult,
    build_mms_message,
    check_latin1_text,
    detect_media_type,
    load_attachment,
    mms_ticket,
    parse_cost_units,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
MIDI = b"MThd\x00\x00\x00\x06" + b"\x00" * 32
MP3_ID3 = b"ID3\x04\x00" + b"\x00" * 32
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 32  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
MOV = b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 32
MOV_ATOM = b"\x00\x00\x00\x08moov" + b"\x00" * 32
GP3 = b"\x00\x00\x00\x18ftyp3gp4" + b"\x00" * 32


def test_md5_ticket_hashes_iso_8859_1_bytes():
    expected = hashlib.md5("C1+393331234567Caffètè!pw".encode("iso-8859-1")).hexdigest()
    assert mms_ticket("C1", "+393331234567", "Caffè", "tè!", "pw") == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, ("image", "image/png")),
        (GIF, ("image", "image/gif")),
        (b"GIF87a" + b"\x00" * 8, ("image", "image/gif")),
        (JPEG, ("image", "image/jpeg")),
        (MIDI, ("sound", "audio/midi")),
        (MP3_ID3, ("sound", "audio/mpeg")),
        (MP3_FRAME, ("sound", "audio/mpeg")),
        (MOV, ("video", "video/quicktime")),
        (MOV_ATOM, ("video", "video/quicktime")),
        (b"\x00\x00\x00\x08mdat" + b"\x00" * 8, ("video", "video/quicktime")),
        (GP3, ("video", "video/3gpp")),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8, None),  # MP4, not MOV/3GP
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"\xff\xff\xff\xff", None),  # not a valid MPEG frame header
        (b"hello world", None),
    ],
)
def test_media_type_from_magic_bytes(data, expected):
    assert detect_media_type(data) == expected


def test_attachments_from_bytes_or_paths_are_checked_by_content(tmp_path: Path) -> None:
    picture = tmp_path / "holiday.mp3"  # the name says nothing: the content decides
    picture.write_bytes(PNG)
    loaded = load_attachment(picture, "image")
    assert (loaded.kind, loaded.media_type, loaded.size, loaded.data) == ("image", "image/png", len(PNG), PNG)
    assert load_attachment(bytearray(MIDI), "sound").media_type == "audio/midi"
    assert load_attachment(PNG + b"\x00" * (MAX_ATTACHMENT_BYTES - len(PNG)), "image").size == 102_400
    with pytest.raises(SmSendValidationError, match="looks like image/png.*pass it as image="):
        load_attachment(PNG, "video")
    with pytest.raises(SmSendValidationError, match="at most 100 kB"):
        load_attachment(PNG + b"\x00" * MAX_ATTACHMENT_BYTES, "image")
    with pytest.raises(SmSendValidationError, match="is empty"):
        load_attachment(b"", "image")
    with pytest.raises(SmSendValidationError, match="Cannot read the image file"):
        load_attachment(tmp_path / "missing.png", "image")
    with pytest.raises(SmSendValidationError, match="must be bytes or a file path, got int"):
        load_attachment(42, "image")  # type: ignore[arg-type]


def test_subject_and_text_are_iso_8859_1_within_their_length() -> None:
    assert check_latin1_text("text", "Perché è così", max_chars=20, allow_empty=False) == "Perché è così"
    assert check_latin1_text("subject", "", max_chars=5, allow_empty=True) == ""
    with pytest.raises(SmSendValidationError, match=r"'€' \(U\+20AC\) at position 6"):
        check_latin1_text("text", "costa €5", max_chars=20, allow_empty=False)
    with pytest.raises(SmSendValidationError, match="control character U\\+0007 at position 1"):
        check_latin1_text("text", "a\ab", max_chars=20, allow_empty=False)
    with pytest.raises(SmSendValidationError, match="has 6 characters: at most 5"):
        check_latin1_text("subject", "abcdef", max_chars=5, allow_empty=False)
    with pytest.raises(SmSendValidationError, match="is empty"):
        check_latin1_text("subject", "  ", max_chars=5, allow_empty=False)
    with pytest.raises(SmSendValidationError, match="must be text, got int"):
        check_latin1_text("text", 5, max_chars=5, allow_empty=False)


def test_a_message_has_its_recipients_normalised_once_each_and_its_attachments_checked() -> None:
    message = build_mms_message("S", "T", "+39 347 700 5440, 3331234567,,+393477005440", image=GIF, video=GP3)
    assert message.recipients == ("+393477005440", "+393331234567")
    assert message.rcpt == "+393477005440,+393331234567"
    assert (message.image.media_type, message.sound, message.video.media_type) == (
        "image/gif",
        None,
        "video/3gpp",
    )
    with pytest.raises(SmSendValidationError, match="No MMS recipient given"):
        build_mms_message("S", "T", [" ", ""])


@pytest.mark.parametrize(("answer", "units"), [(3700, 3700), ("3700", 3700), (0, 0)])
def test_cost_units_read_from_the_answer(answer, units):
    assert parse_cost_units(answer) == units


@pytest.mark.parametrize("answer", [-3700, "-3700", "37.00", None, True, "x"])
def test_a_cost_that_is_not_a_non_negative_integer_is_refused(answer):

    with pytest.raises(SmSendReportError, match="credit charged"):
        parse_cost_units(answer)


def test_the_result_is_the_cost_in_euros() -> None:
    assert MmsResult.from_response("3700", ("+393477005440",)) == MmsResult(
        cost=Decimal("0.3700"), cost_units=3700, recipients=("+393477005440",)
    )
