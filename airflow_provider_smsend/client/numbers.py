"""Phone numbers: normalisation to E.164 with ``phonenumbers``, and masking for logs.

The gateway wants ``+XXYYYZZZZZZZ``. Users have national forms (``3331234567``), ``0039…``
prefixes and spaces; :func:`normalize_number` turns them into E.164 with a default region
(Italy unless configured), and rejects what is not a valid number, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from airflow_provider_smsend.client.errors import SmSendValidationError

DEFAULT_REGION = "IT"
_DIGITS = re.compile(r"\d")
#: What a written phone number may contain: digits, a leading +, spaces and the usual separators.
#: Letters are refused (phonenumbers would read them as keypad digits: "a" -> 2).
_NUMBER_CHARS = re.compile(r"^\+?[0-9 ().\-/]+$")


@lru_cache(maxsize=65536)
def _normalize(raw: str, region: str) -> str | None:
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
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_number(number: object, *, region: str = DEFAULT_REGION) -> str:
    """Return ``number`` in E.164 (``+393331234567``).

    :param number: a number as text (``"+39 333 123 4567"``, ``"3331234567"``, ``"0039333…"``) or int.
    :param region: ISO 3166 region used for numbers without an international prefix.
    :raises SmSendValidationError: if it is not a valid phone number.
    """
    if isinstance(number, bool) or not isinstance(number, str | int):
        raise SmSendValidationError(
            f"Phone number must be text, got {type(number).__name__}: {mask_number(str(number))!r}"
        )
    raw = str(number)
    result = _normalize(raw, region.upper())
    if result is None:
        raise SmSendValidationError(
            f"Invalid phone number {mask_number(raw)!r}: give it in international format (+39…) "
            f"or as a valid national number of region {region!r}."
        )
    return result


def normalize_numbers(numbers: Iterable[object], *, region: str = DEFAULT_REGION) -> list[str]:
    """Normalise every number; raise one error naming all invalid ones (masked), or return them all."""
    good: list[str] = []
    bad: list[str] = []
    for number in numbers:
        try:
            good.append(normalize_number(number, region=region))
        except SmSendValidationError:
            bad.append(mask_number(str(number)))
    if bad:
        shown = ", ".join(repr(b) for b in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise SmSendValidationError(f"{len(bad)} invalid phone number(s): {shown}. Nothing was sent.")
    return good


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
