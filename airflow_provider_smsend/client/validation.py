"""Validation done before any request, so that nothing is sent on bad input.

Each function returns the value as the gateway wants it on the wire, or raises
:class:`~airflow_provider_smsend.client.errors.SmSendValidationError` saying what to fix.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

from airflow_provider_smsend.client import encoding
from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import normalize_number

QUALITIES = ("ll", "l", "a", "h", "n")
QUALITY_NAMES = {"ll": "low", "l": "medium", "a": "automatic", "h": "high", "n": "notification"}
CREDIT_TYPES = ("credit", "n", "h", "hqs", "a", "l", "ll", "lqs")
REPORT_TYPES = ("queue", "notify", "mnc")
USERLOG_TYPES = ("credits", "recv_add", "recv_del")
_ALNUM_SENDER = re.compile(r"^[A-Za-z0-9]{1,11}$")
_CREDIT = re.compile(r"^\d+(?:[.,]\d{1,4})?$")


@dataclass(frozen=True)
class PreparedMessage:
    """A text checked against the rules of its operation.

    :param text: the text as it will be sent.
    :param operation: TEXT, WAPPUSH, UCS2, MULTITEXT or MULTIUCS2.
    :param encoding: ``"GSM"`` or ``"UCS2"``.
    :param characters: Unicode characters in the text.
    :param units: septets (GSM) or UTF-16 code units (UCS-2).
    :param segments: SMS segments the message occupies.
    """

    text: str
    operation: str
    encoding: str
    characters: int
    units: int
    segments: int


def validate_quality(quality: str) -> str:
    """Check a quality code (``ll``, ``l``, ``a``, ``h``, ``n``)."""
    if quality not in QUALITIES:
        raise SmSendValidationError(
            f"Unknown quality {quality!r}: use one of {', '.join(QUALITIES)} "
            "(low, medium, automatic, high, notification)."
        )
    return quality


def validate_sender(sender: str | None, *, region: str = "IT") -> str:
    """Check a sender: up to 11 ASCII letters/digits, or a number in international format.

    The sender is never truncated: a longer one is an error.
    """
    if sender is None or not str(sender).strip():
        raise SmSendValidationError(
            "A sender is required: pass sender= or set default_sender in the connection extras."
        )
    text = str(sender).strip()
    if text.startswith("+") or text.startswith("00"):
        return normalize_number(text, region=region, allow_landlines=True)  # a sender, not a recipient
    if _ALNUM_SENDER.match(text):
        return text
    raise SmSendValidationError(
        f"Invalid sender {text!r}: use up to 11 letters and digits (no spaces or accents), "
        "or a phone number in international format (+39…). It is never truncated."
    )


def prepare_message(
    text: str, *, operation: str | None = None, quality: str, url: str | None = None
) -> PreparedMessage:
    """Check ``text`` for ``operation`` and ``quality``; choose the operation when it is None.

    :param text: the message text.
    :param operation: TEXT, WAPPUSH, UCS2, MULTITEXT, MULTIUCS2, or None to choose from the text.
    :param quality: the quality code; UCS2/MULTITEXT/MULTIUCS2 need ``h`` or ``n``.
    :param url: the link of a WAPPUSH message.
    """
    if not isinstance(text, str):
        raise SmSendValidationError(f"Message text must be a string, got {type(text).__name__}.")
    if not text:
        raise SmSendValidationError("Message text is empty: nothing to send.")
    validate_quality(quality)
    info = encoding.analyse_text(text)
    if operation is None:
        op = encoding.choose_operation(info)
    else:
        op = str(operation).upper()
        if op not in encoding.OPERATIONS:
            raise SmSendValidationError(
                f"Unknown operation {operation!r}: use one of {', '.join(encoding.OPERATIONS)}."
            )
    if op in encoding.HIGH_QUALITY_ONLY and quality not in ("h", "n"):
        raise SmSendValidationError(
            f"Operation {op} can only be sent with quality 'h' (high) or 'n' (notification), not {quality!r}"
            + (" (chosen because the text is long or not GSM 03.38)" if operation is None else "")
            + ": set quality='h'."
        )
    if op == "WAPPUSH":
        validate_url(url)
    elif url is not None:
        raise SmSendValidationError("url is only used with operation WAPPUSH.")
    op_encoding = encoding.OPERATION_ENCODING[op]
    if op_encoding == "GSM" and info.encoding != "GSM":
        bad = next(ch for ch in text if not encoding.is_gsm(ch))
        raise SmSendValidationError(
            f"Character {bad!r} is not in the GSM 03.38 alphabet required by {op}: "
            "use operation UCS2/MULTIUCS2 or leave operation unset."
        )
    units = encoding.units_for_operation(text, op)
    limit = encoding.OPERATION_LIMITS[op]
    if units > limit:
        unit_name = "septets" if op_encoding == "GSM" else "UCS-2 characters"
        raise SmSendValidationError(
            f"Text too long for {op}: {units} {unit_name}, the limit is {limit}"
            + (" (extension characters ^{}\\[~]|€ count 2)" if op_encoding == "GSM" else "")
            + ". Shorten it or use a MULTI operation."
        )
    return PreparedMessage(
        text=text,
        operation=op,
        encoding=op_encoding,
        characters=len(text),
        units=units,
        segments=encoding.segments_for(text, op_encoding),
    )


def validate_url(url: str | None) -> str:
    """Check the link of a WAPPUSH message (http or https, with a host)."""
    if not url:
        raise SmSendValidationError("Operation WAPPUSH needs url= (the link the phone opens).")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SmSendValidationError(f"Invalid WAPPUSH url {url!r}: give an http:// or https:// address.")
    return url


def parse_credit_amount(amount: object) -> Decimal:
    """Accept ``12,3456``, ``12.3456``, an int or a Decimal; at most 4 decimals, more than zero.

    Floats are refused: money is exact.
    """
    if isinstance(amount, bool) or isinstance(amount, float):
        raise SmSendValidationError(
            f"Credit amount {amount!r} must be a Decimal, an int or a string like '12.3456', never a float."
        )
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, str) and _CREDIT.match(amount.strip()):
        value = Decimal(amount.strip().replace(",", "."))
    else:
        raise SmSendValidationError(f"Invalid credit amount {amount!r}: use a form like 12.3456 or 12,3456.")
    try:
        exponent = value.as_tuple().exponent
    except InvalidOperation:  # pragma: no cover
        exponent = 0
    if not value.is_finite() or value <= 0 or (isinstance(exponent, int) and exponent < -4):
        raise SmSendValidationError(
            f"Invalid credit amount {amount!r}: it must be positive with at most 4 decimals."
        )
    return value


def format_credit(value: Decimal) -> str:
    """Format a credit amount for the wire: ``12.3456``."""
    return f"{value:.4f}"


def validate_positive_id(value: object, *, name: str) -> int:
    """Check an id such as ``u_id`` or ``bill_id``: a positive integer (int or digits)."""
    if isinstance(value, bool):
        raise SmSendValidationError(f"{name} must be a positive integer, got {value!r}.")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and int(value) > 0:
        return int(value)
    raise SmSendValidationError(f"{name} must be a positive integer, got {value!r}.")


def validate_choice(value: str, choices: tuple[str, ...], *, name: str) -> str:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise SmSendValidationError(f"Invalid {name} {value!r}: use one of {', '.join(choices)}.")
    return value


def format_date(value: object, *, name: str) -> str:
    """Format a userlog date as ``YYYY-MM-DD`` (docs/gateway.md, "userlog-get TSV") from a date, datetime or string."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        # The whole string must be a date or a datetime: "2024-03-011" is a typo, not March 1st.
        for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
            try:
                parsed = parse(value.strip())
            except ValueError:
                continue
            return (parsed.date() if isinstance(parsed, dt.datetime) else parsed).isoformat()
    raise SmSendValidationError(f"Invalid {name} date {value!r}: use a date or 'YYYY-MM-DD'.")


def validate_text_field(value: object, *, name: str, max_length: int | None = None) -> str:
    """Check a required free-text field (non-empty, optionally bounded)."""
    if not isinstance(value, str) or not value.strip():
        raise SmSendValidationError(f"{name} is required and must be a non-empty string.")
    if max_length is not None and len(value) > max_length:
        raise SmSendValidationError(f"{name} is {len(value)} characters long; the limit is {max_length}.")
    return value


def parse_list_text(text: str, *, name: str) -> object:
    """Parse the text a template renders for a list (``'["a", "b"]'`` or ``"['a', 'b']"``).

    A rendered XCom of a list arrives as its text unless the DAG renders native objects.

    :raises SmSendValidationError: when ``text`` is neither a JSON nor a Python literal.
    """
    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise SmSendValidationError(
                f"{name} {text[:80]!r} looks like a list but is neither JSON nor a Python list: pass a list, "
                "or values separated by commas."
            ) from None
