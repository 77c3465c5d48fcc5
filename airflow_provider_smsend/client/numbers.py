"""Phone numbers: normalisation to E.164 with ``phonenumbers``, and masking for logs.

The gateway wants ``+XXYYYZZZZZZZ``. Users have national forms (``3331234567``), ``0039…``
prefixes and spaces; :func:`normalize_number` turns them into E.164 with a default region
(Italy unless configured), and rejects what is not a valid number, naming it (masked).

Two more refusals (docs/gateway.md, "Numbers"): a number given as a float (or NaN, a bool, any
type but text and integers) is never turned into digits, and a landline (phonenumbers type
``FIXED_LINE``) is refused unless the caller passes ``allow_landlines=True``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache
from numbers import Integral

from airflow_provider_smsend.client.errors import SmSendValidationError

DEFAULT_REGION = "IT"
_DIGITS = re.compile(r"\d")
#: What a written phone number may contain: digits, a leading +, spaces and the usual separators.
#: Letters are refused (phonenumbers would read them as keypad digits: "a" -> 2).
_NUMBER_CHARS = re.compile(r"^\+?[0-9 ().\-/]+$")
#: The text of a float (``str(3331234590.0)``): a number that went through a float column.
_FLOAT_TEXT = re.compile(r"^\+?\d+\.0$")
#: What pandas, NumPy and Python print for a missing value.
_MISSING_TEXT = frozenset({"nan", "<na>", "nat", "none", "null"})
#: The ``code`` of the SmSendValidationError that refuses a landline (other refusals keep the default).
LANDLINE = "landline"


@lru_cache(maxsize=65536)
def _normalize(raw: str, region: str) -> tuple[str, bool] | None:
    """``(E.164, is a landline)`` of a written number, or None when it is not a valid number."""
    import phonenumbers  # heavy metadata: imported on first use, not at DAG parse time

    text = raw.strip()
    if not _NUMBER_CHARS.match(text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # number_type is UNKNOWN exactly for the numbers is_valid_number refuses (phonenumbers' docs):
    # one look at the number's patterns instead of two, a third of a bulk send's planning.
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, kind == phonenumbers.PhoneNumberType.FIXED_LINE


def _written(number: object) -> str:
    """The text of ``number``; refuse a float, NaN, a bool or any type but text and integers."""
    if isinstance(number, str):
        text = number.strip()
        if text.lower() in _MISSING_TEXT or not text:
            raise SmSendValidationError(
                f"Phone number is missing ({number!r}): give a number or leave the recipient out."
            )
        if _FLOAT_TEXT.match(text):
            raise SmSendValidationError(
                f"Phone number {mask_number(text)!r} is the text of a float (it ends in '.0'): the "
                "number went through a float (a pandas column with missing values is one) and may "
                "have gained or lost digits. Read the column as text (dtype=str)."
            )
        return number
    if isinstance(number, float) and math.isnan(number):
        raise SmSendValidationError(
            "Phone number is missing (NaN, an empty cell of a pandas column): leave the recipient out."
        )
    if isinstance(number, float):
        raise SmSendValidationError(
            f"Phone number {mask_number(str(number))!r} is a float: a float is never turned into "
            "digits (a pandas column with missing values turns numbers into floats, and a float "
            "may have gained or lost digits). Read the column as text (dtype=str), or pass an int."
        )
    if isinstance(number, Integral) and not isinstance(number, bool) and int(number) >= 0:
        return str(int(number))  # an int, or a NumPy integer (a pandas column without gaps)
    if number is None or str(number).strip().lower() in _MISSING_TEXT:  # None, pandas.NA, NaT
        raise SmSendValidationError(
            f"Phone number must be text or a non-negative int, got {number!r}: the number is missing. "
            "Give one, or leave the recipient out."
        )
    raise SmSendValidationError(
        f"Phone number must be text or a non-negative int, got {type(number).__name__}: "
        f"{mask_number(str(number))!r}."
    )


def _parse(number: object, region: str) -> tuple[str, bool]:
    raw = _written(number)
    result = _normalize(raw, region.upper())
    if result is None:
        raise SmSendValidationError(
            f"Invalid phone number {mask_number(raw)!r}: give it in international format (+39…) "
            f"or as a valid national number of region {region!r}."
        )
    return result


def _landline_error(raw: object) -> SmSendValidationError:
    return SmSendValidationError(
        f"Phone number {mask_number(str(raw))!r} is a landline (fixed line): it cannot receive SMS. "
        "Leave it out, or pass allow_landlines=True if your landlines receive SMS.",
        code=LANDLINE,
    )


def normalize_number(number: object, *, region: str = DEFAULT_REGION, allow_landlines: bool = False) -> str:
    """Return ``number`` in E.164 (``+393331234567``).

    :param number: a number as text (``"+39 333 123 4567"``, ``"3331234567"``, ``"0039333…"``) or
        an int. A float (``3331234590.0``), its text (``"3331234590.0"``), NaN, a bool or any other
        type is refused, never turned into digits.
    :param region: ISO 3166 region used for numbers without an international prefix.
    :param allow_landlines: accept a number whose type is definitely a landline (phonenumbers
        ``FIXED_LINE``, e.g. ``+39 06…``); refused by default, since it cannot receive SMS. Numbers
        that may be mobile (``FIXED_LINE_OR_MOBILE``) or whose type is unknown are accepted
        (docs/gateway.md, "Numbers").
    :raises SmSendValidationError: if it is not a valid phone number, or is a refused landline
        (then ``code`` is ``"landline"``); the message masks the number.
    """
    e164, landline = _parse(number, region)
    if landline and not allow_landlines:
        raise _landline_error(number)
    return e164


def normalize_numbers(
    numbers: Iterable[object], *, region: str = DEFAULT_REGION, allow_landlines: bool = False
) -> list[str]:
    """Normalise every number; raise one error naming all invalid ones (masked), or return them all.

    :param allow_landlines: as for :func:`normalize_number`. Refused landlines are named apart; the
        error's ``code`` is ``"landline"`` when they are the only problem.
    """
    good: list[str] = []
    bad: list[str] = []
    landlines: list[str] = []
    for number in numbers:
        try:
            e164, landline = _parse(number, region)
        except SmSendValidationError:
            bad.append(mask_number(str(number)))
            continue
        if landline and not allow_landlines:
            landlines.append(mask_number(str(number)))
        else:
            good.append(e164)
    problems = []
    if bad:
        problems.append(f"{len(bad)} invalid phone number(s): {_some(bad)}")
    if landlines:
        problems.append(
            f"{len(landlines)} landline number(s), which cannot receive SMS: {_some(landlines)} "
            "(leave them out, or pass allow_landlines=True)"
        )
    if problems:
        raise SmSendValidationError(
            "; ".join(problems) + ". Nothing was sent.", code=None if bad else LANDLINE
        )
    return good


def _some(masked: list[str]) -> str:
    return ", ".join(repr(m) for m in masked[:10]) + (
        f" and {len(masked) - 10} more" if len(masked) > 10 else ""
    )


def pseudonym(number: str, key: str) -> str:
    """A number's pseudonym for warehouse tables: 16 hex digits of HMAC-SHA256 keyed with ``key``.

    Stable for a number and a key (joins and upserts: the outcomes' ``recipient_key``, the received
    SMS's ``sender_key``), and not computable without the key. An unkeyed hash would not do: beside
    a masked number (``+39333****567``) only 10,000 candidates remain, and even a whole national
    numbering plan is tried in minutes. ``key`` is secret (docs/gateway.md, "Pseudonyms").

    :raises SmSendValidationError: an empty key.
    """
    import hashlib
    import hmac

    if not isinstance(key, str) or not key:
        raise SmSendValidationError("A pseudonym needs a non-empty secret key.")
    return hmac.new(key.encode("utf-8"), number.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def mask_number(number: str) -> str:
    """Mask the middle digits of a number for logs: ``+393331234567`` -> ``+39333****567``.

    Short strings keep only their first and last character visible.
    """
    text = str(number)
    digits = len(_DIGITS.findall(text))
    if digits < 7:
        if len(text) <= 2:
            return "*" * len(text)
        return text[0] + "*" * (len(text) - 2) + text[-1]
    head_len = 6 if text.startswith("+") else 4  # "+39333": country code and operator prefix
    head, middle, tail = text[:head_len], text[head_len:-3], text[-3:]
    return head + _DIGITS.sub("*", middle) + tail
