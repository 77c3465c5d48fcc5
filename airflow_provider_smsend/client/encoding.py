"""Message encoding: GSM 03.38 septet counting, UCS-2 counting, operation choice.

The gateway counts a TEXT message in GSM 03.38 septets: characters of the basic table count 1,
characters of the extension table (``^ { } \\ [ ~ ] | €``) count 2 (an escape plus the
character). A text with any character outside GSM 03.38 must go as UCS2, counted in UTF-16
code units. Limits and the concatenation rule are in docs/gateway.md, "Messages":

=========== ========== ======================== =============================
operation   encoding   limit (units)            qualities
=========== ========== ======================== =============================
TEXT        GSM        160                      any
WAPPUSH     GSM        160 (text) + ``url``     any
UCS2        UCS-2      70                       h, n
MULTITEXT   GSM        918 (6 x 153)            h, n
MULTIUCS2   UCS-2      402 (6 x 67, decision)   h, n
=========== ========== ======================== =============================

A text longer than one part is split into parts of 153 septets or 67 code units, filled in
order: an extension character (escape + character) never straddles two parts, nor does a
UTF-16 surrogate pair, so a part may carry one unit less and a text may need one part more
than its length divided by the part size.

:func:`to_gsm` replaces the characters outside GSM 03.38 with GSM look-alikes (``Zoë`` ->
``Zoe``), so that a text can go as TEXT at GSM length (docs/gateway.md, "Cost").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# GSM 03.38 basic character set (default alphabet), as Unicode characters.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (escape + character).
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE_GSM = 160
MULTI_GSM_PART = 153
SINGLE_UCS2 = 70
MULTI_UCS2_PART = 67
MAX_PARTS = 6

OPERATIONS = ("TEXT", "WAPPUSH", "UCS2", "MULTITEXT", "MULTIUCS2")
#: Operations the gateway accepts only with quality ``h`` (high) or ``n`` (notification).
HIGH_QUALITY_ONLY = frozenset({"UCS2", "MULTITEXT", "MULTIUCS2"})
#: Maximum length of each operation, in the units of its encoding.
OPERATION_LIMITS = {
    "TEXT": SINGLE_GSM,
    "WAPPUSH": SINGLE_GSM,
    "UCS2": SINGLE_UCS2,
    "MULTITEXT": MAX_PARTS * MULTI_GSM_PART,  # 918, the spec's figure
    "MULTIUCS2": MAX_PARTS * MULTI_UCS2_PART,  # 402, docs/gateway.md, "Messages"
}
OPERATION_ENCODING = {
    "TEXT": "GSM",
    "WAPPUSH": "GSM",
    "UCS2": "UCS2",
    "MULTITEXT": "GSM",
    "MULTIUCS2": "UCS2",
}


@dataclass(frozen=True)
class TextInfo:
    """What a text costs on the wire.

    :param encoding: ``"GSM"`` when every character is in GSM 03.38, else ``"UCS2"``.
    :param characters: number of Unicode characters.
    :param units: septets (GSM) or UTF-16 code units (UCS-2) the text occupies.
    :param segments: SMS segments the text needs in that encoding (1 for an empty text).
    """

    encoding: str
    characters: int
    units: int
    segments: int


def is_gsm(text: str) -> bool:
    """Return True if every character of ``text`` is in GSM 03.38 (basic or extension table)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def gsm_septets(text: str) -> int:
    """Count the GSM 03.38 septets of ``text``; extension characters count 2.

    :raises ValueError: if ``text`` has a character outside GSM 03.38.
    """
    total = 0
    for ch in text:
        if ch in GSM_BASIC:
            total += 1
        elif ch in GSM_EXTENSION:
            total += 2
        else:
            raise ValueError(f"character {ch!r} is not in the GSM 03.38 alphabet")
    return total


def ucs2_units(text: str) -> int:
    """Count the UTF-16 code units of ``text`` (characters beyond the BMP count 2)."""
    return len(text.encode("utf-16-le")) // 2


def segments_for(text: str, encoding: str) -> int:
    """Return how many SMS segments ``text`` needs in ``encoding`` (1 for an empty text).

    Up to 160 septets (GSM) or 70 code units (UCS-2) go in one segment; a longer text fills
    parts of 153 septets or 67 code units in order, and a character that does not fit whole in
    what is left of a part (an extension character's two septets, a surrogate pair's two code
    units) starts the next part (docs/gateway.md, "Messages").

    :param text: the message text.
    :param encoding: ``"GSM"`` or ``"UCS2"``.
    :raises ValueError: if ``encoding`` is ``"GSM"`` and ``text`` is not GSM 03.38.
    """
    if encoding == "GSM":
        single, part, units = SINGLE_GSM, MULTI_GSM_PART, gsm_septets(text)
        wide = not GSM_EXTENSION.isdisjoint(text)
    else:
        single, part, units = SINGLE_UCS2, MULTI_UCS2_PART, ucs2_units(text)
        wide = units != len(text)  # a character beyond the BMP: a surrogate pair
    if units <= single:
        return 1
    if not wide:
        return -(-units // part)
    parts, used = 1, 0
    for ch in text:
        size = _unit_size(ch, encoding)
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


def _unit_size(ch: str, encoding: str) -> int:
    if encoding == "GSM":
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def analyse_text(text: str) -> TextInfo:
    """Describe ``text``: the cheapest encoding that carries it, its length and its segments."""
    if is_gsm(text):
        units = gsm_septets(text)
        encoding = "GSM"
    else:
        units = ucs2_units(text)
        encoding = "UCS2"
    return TextInfo(
        encoding=encoding, characters=len(text), units=units, segments=segments_for(text, encoding)
    )


def choose_operation(info: TextInfo) -> str:
    """Pick TEXT, MULTITEXT, UCS2 or MULTIUCS2 for a text described by ``info``."""
    if info.encoding == "GSM":
        return "TEXT" if info.units <= SINGLE_GSM else "MULTITEXT"
    return "UCS2" if info.units <= SINGLE_UCS2 else "MULTIUCS2"


def units_for_operation(text: str, operation: str) -> int:
    """Length of ``text`` in the units ``operation`` counts (septets or UTF-16 code units).

    :raises ValueError: if ``operation`` is GSM-based and ``text`` is not GSM 03.38.
    """
    if OPERATION_ENCODING[operation] == "GSM":
        return gsm_septets(text)
    return ucs2_units(text)


def non_gsm_characters(text: str) -> list[str]:
    """Return the distinct characters of ``text`` outside GSM 03.38, in order of first appearance."""
    return list(dict.fromkeys(ch for ch in text if ch not in GSM_BASIC and ch not in GSM_EXTENSION))


def segments_if_gsm(text: str) -> int:
    """Return the segments ``text`` would need in GSM 03.38 with one septet for each character outside it.

    Beside ``segments_for(text, "UCS2")``, what UCS-2 costs over a GSM look-alike of the text.
    """
    return segments_for("".join(ch if is_gsm(ch) else "?" for ch in text), "GSM")


def to_gsm(text: str) -> str:
    """Replace the characters of ``text`` outside GSM 03.38 with GSM look-alikes (``Zoë`` -> ``Zoe``).

    The text is first composed (Unicode NFC: ``e`` + combining diaeresis is ``ë``, and ``e`` + acute
    is the GSM ``é``). A character of GSM 03.38 stays as it is (``è``, ``ñ``, ``€``, ``ß``); one
    outside it becomes its transliteration by ``text_unidecode`` (``ë`` -> ``e``, ``Ł`` -> ``L``,
    ``“`` -> ``"``, ``—`` -> ``--``) when every character of that is GSM 03.38; a combining mark
    left alone is dropped; any other character (an emoji, a backtick) is kept, so the text stays
    UCS-2 and says so rather than lose it (docs/gateway.md, "Cost").

    :param text: the message text.
    """
    from text_unidecode import unidecode

    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in GSM_BASIC or ch in GSM_EXTENSION:
            out.append(ch)
        elif unicodedata.combining(ch):
            continue
        else:
            look_alike = unidecode(ch)
            out.append(look_alike if look_alike and is_gsm(look_alike) else ch)
    return "".join(out)
