"""The gateway's plain-text answers: ``OK [value]`` / ``KO <text>``, and how bodies are decoded.

HTTP 200 carries both success and failure; anything that is neither ``OK`` nor ``KO`` (an empty
body, an HTML page, garbage) is a transport-level error, never an unexpected exception.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from airflow_provider_smsend.client.errors import SmSendTransportError, error_from_ko

CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_MONEY = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_OK = re.compile(r"^OK(?:\s+(.*))?$", re.DOTALL)
_KO = re.compile(r"^KO(?:\s+(.*))?$", re.DOTALL)


def decode_body(content: bytes, content_type: str | None) -> str:
    """Decode an answer body: the Content-Type charset if valid, else UTF-8, else ISO-8859-1 (docs/gateway.md, "Hosts and transport")."""
    match = CHARSET.search(content_type or "")
    if match:
        try:
            return content.decode(match.group(1))
        except (LookupError, UnicodeError):  # UnicodeError: some codecs (punycode) raise the base class
            pass
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("iso-8859-1")


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_ko(text: str) -> bool:
    """True if ``text`` is a ``KO`` answer (possibly preceded by white space)."""
    return _KO.match(text.strip()) is not None


def raise_for_ko(text: str) -> None:
    """Raise the mapped :class:`SmSendGatewayError` if ``text`` is a ``KO`` answer."""
    stripped = text.strip()
    match = _KO.match(stripped)
    if match:
        raise error_from_ko(match.group(1) or "")


def parse_answer(text: str) -> str:
    """Return the value after ``OK`` (``""`` for a bare ``OK``).

    :raises SmSendGatewayError: (a subclass) for a ``KO`` answer.
    :raises SmSendTransportError: for anything else.
    """
    stripped = text.strip()
    match = _OK.match(stripped)
    if match:
        return (match.group(1) or "").strip()
    raise_for_ko(stripped)
    if not stripped:
        raise SmSendTransportError("The gateway answered with an empty body; is the host right?")
    raise SmSendTransportError(
        f"The gateway answered something that is not an OK/KO answer: {_excerpt(stripped)!r}; "
        "check that the connection's host points to an smSend gateway."
    )


def parse_money(value: str, *, what: str = "amount") -> Decimal:
    """Parse a euro amount (``123.4567``; a ``,`` separator is tolerated) into an exact Decimal."""
    token = value.strip()
    if not _MONEY.match(token):
        raise SmSendTransportError(f"The gateway's {what} is not a number: {_excerpt(token)!r}")
    try:
        return Decimal(token.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid decimals
        raise SmSendTransportError(f"The gateway's {what} is not a number: {token!r}") from exc


def parse_int(value: str, *, what: str = "id") -> int:
    """Parse an integer value of an OK answer."""
    token = value.strip()
    if not (token.isascii() and token.isdigit()):  # int() would take '１２' and choke on '²'
        raise SmSendTransportError(f"The gateway's {what} is not an integer: {_excerpt(token)!r}")
    try:
        return int(token)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise SmSendTransportError(
            f"The gateway's {what} is not a usable integer: {_excerpt(token)!r}"
        ) from None


def split_cost_and_id(value: str) -> tuple[Decimal, str | None]:
    """Parse ``<cost> [<id>]`` of a send answer; the id is the token that is not a number (docs/gateway.md, "Answers")."""
    cost: Decimal | None = None
    request_id: str | None = None
    for token in value.split():
        if _MONEY.match(token) and cost is None:
            cost = parse_money(token, what="cost")
        elif request_id is None and not _MONEY.match(token):
            request_id = token
        else:
            raise SmSendTransportError(f"Unexpected send answer from the gateway: {_excerpt(value)!r}")
    if cost is None:
        raise SmSendTransportError(f"The gateway's send answer has no cost: {_excerpt(value)!r}")
    return cost, request_id


def parse_request_id(value: str) -> str | None:
    """Parse the optional request id of an mnc answer (``OK`` or ``OK <id>``)."""
    tokens = value.split()
    if not tokens:
        return None
    if len(tokens) > 1:
        raise SmSendTransportError(f"Unexpected mnc answer from the gateway: {_excerpt(value)!r}")
    return tokens[0]
