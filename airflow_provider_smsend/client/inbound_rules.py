"""Which inbound SMS answers the question? Matching rules over receiveSms results, no Airflow inside.

The inbound SMS sensor (poke/reschedule) and its trigger (deferrable) both call :func:`find_match`,
so they pick the same message. A message matches when it was received at or after
``received_after``, comes from ``sender`` (compared as E.164 numbers when both parse, else as
text, case-insensitively) if one is given, and its text matches ``text_pattern``
(:func:`re.search`) if one is given. The earliest match wins (by reception time, then id).

Example::

    from datetime import datetime, timezone

    from airflow_provider_smsend.client.inbound_rules import find_match

    reply = find_match(
        soap_client.receive_sms("+393400000001", "001", messages=50),
        sender="+393331234567",
        text_pattern=r"^\\s*(si|sì)\\b",
        received_after=datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc),
    )
    if reply is not None:
        print(reply["id"], reply["received_at"])
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import DEFAULT_REGION

if TYPE_CHECKING:
    from airflow_provider_smsend.client.soap import ReceivedSms


def compile_text_pattern(pattern: str | None, *, ignore_case: bool = True) -> re.Pattern[str] | None:
    """Compile a text regex, naming the pattern in the error if it is invalid."""
    if pattern is None or pattern == "":
        return None
    if not isinstance(pattern, str):
        raise SmSendValidationError(f"text_pattern must be a regular expression string, got {pattern!r}.")
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise SmSendValidationError(
            f"text_pattern {pattern!r} is not a valid regular expression: {exc}."
        ) from None


def sender_key(sender: str, *, region: str = DEFAULT_REGION) -> str:
    """A comparable form of a sender or reception number: E.164 when it is a valid number (``3400000001``
    -> ``+393400000001``), else stripped lowercase text."""
    from airflow_provider_smsend.client.numbers import normalize_number

    text = str(sender).strip()
    try:
        return normalize_number(text, region=region, allow_landlines=True)  # who wrote, not a recipient
    except SmSendValidationError:
        return text.lower()


def reception_key(rcpt: str, sharecode: str, *, region: str = DEFAULT_REGION) -> str:
    """Which reception number and share code an event comes from: 16 hex digits of SHA-256.

    Of the number in E.164 (:func:`sender_key`: ``+393400000001`` and ``3400000001`` give
    one key) and the share code. Exact where the masked number is not (two numbers may mask
    alike), and no number in the event: the event's ``reception``, which
    :class:`~airflow_provider_smsend.transfers.inbound_to_sql.SmSendInboundToSqlOperator` matches.
    """
    text = f"{sender_key(rcpt, region=region)}\x1f{str(sharecode).strip()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_received_after(value: object) -> datetime:
    """An aware datetime from a datetime or ISO 8601 text; naive values are UTC (Airflow's convention)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise SmSendValidationError(
                f"received_after must be an ISO 8601 date and time (like '{{{{ ts }}}}'), got {value!r}."
            ) from None
    else:
        raise SmSendValidationError(f"received_after must be a datetime or ISO 8601 text, got {value!r}.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def received_sms_to_dict(sms: ReceivedSms, match: re.Match[str] | None = None) -> dict[str, Any]:
    """A JSON-able dict of a message (what the sensor returns), with the regex match if any."""
    return {
        "id": sms.id,
        "sender": sms.sender,
        "text": sms.text,
        "received_at": sms.received_at.isoformat(),
        "match": match.group(0) if match else None,
        "groups": list(match.groups()) if match else [],
        "named_groups": match.groupdict() if match else {},
    }


def find_match(
    messages: Iterable[ReceivedSms],
    *,
    received_after: datetime,
    sender: str | None = None,
    text_pattern: str | re.Pattern[str] | None = None,
    ignore_case: bool = True,
    region: str = DEFAULT_REGION,
) -> dict[str, Any] | None:
    """The earliest message matching the criteria, as :func:`received_sms_to_dict`, or None.

    :param messages: what receiveSms listed.
    :param received_after: messages received before this (aware) moment are ignored.
    :param sender: only messages from this number (any form ``normalize_number`` accepts).
    :param text_pattern: only messages whose text matches this regex (``re.search``).
    :param ignore_case: match ``text_pattern`` case-insensitively (when given as text).
    :param region: region of national numbers, for ``sender``.
    """
    if received_after.tzinfo is None:
        raise SmSendValidationError("received_after must be timezone-aware.")
    pattern = (
        text_pattern
        if isinstance(text_pattern, re.Pattern)
        else compile_text_pattern(text_pattern, ignore_case=ignore_case)
    )
    wanted = sender_key(sender, region=region) if sender else None
    candidates: list[tuple[datetime, int, dict[str, Any]]] = []
    for sms in messages:
        if sms.received_at < received_after:
            continue
        if wanted is not None and sender_key(sms.sender, region=region) != wanted:
            continue
        match = pattern.search(sms.text or "") if pattern is not None else None
        if pattern is not None and match is None:
            continue
        candidates.append((sms.received_at, sms.id, received_sms_to_dict(sms, match)))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


#: The opt-out keywords of :func:`opt_out_keyword` unless configured: English and Italian.
DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "CANCELLAMI")
#: Longest message text a received-SMS table keeps (a concatenated SMS of 10 segments).
MAX_STORED_TEXT = 1600


def keyword_form(text: str) -> str:
    """A text compared as a keyword: accents dropped (NFKD), case folded, spaces collapsed, and
    punctuation around it stripped (``" Cancèllami! "`` -> ``"cancellami"``)."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(plain.split()).strip(" .,;:!?¡¿'\"()[]-_*~")


def opt_out_keyword(text: str | None, keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS) -> str | None:
    """The keyword (as configured) that the whole message is, or None.

    Whole-message, case- and accent-insensitive: ``"stop"``, ``"Stop!"`` and ``" STÓP "`` are
    ``STOP``; ``"non stop"`` and ``"STOP please"`` are not (a reply that only mentions the word is no
    opt-out).

    :param text: the message text.
    :param keywords: the opt-out keywords (e.g. ``["STOP", "CANCELLAMI", "BASTA"]``).
    """
    if not text:
        return None
    form = keyword_form(text)
    for keyword in keywords:
        if form and form == keyword_form(keyword):
            return str(keyword)
    return None


def inbound_frame(
    messages: Iterable[ReceivedSms],
    *,
    rcpt: str,
    sharecode: str,
    key: str,
    masked: bool = True,
    include_text: bool = False,
    keywords: Iterable[str] = (),
    region: str = DEFAULT_REGION,
) -> Any:
    """Received SMS as a pandas DataFrame with exact Arrow types, one row per message.

    Columns: ``id``, ``rcpt`` and ``sender`` (masked unless ``masked=False``), ``sender_key`` (16
    the sender's :func:`~airflow_provider_smsend.client.numbers.pseudonym` in E.164 under the secret
    ``key``, as the outcomes' ``recipient_key``: joinable, not computable without the key),
    ``sharecode``, ``received_at`` (UTC), ``text`` (only with ``include_text=True``, at most
    :data:`MAX_STORED_TEXT` characters; else NULL), ``opt_out`` (the keyword the text is, or NULL).
    """
    import pandas as pd
    import pyarrow as pa

    from airflow_provider_smsend.client.numbers import mask_number, pseudonym

    rows = list(messages)
    keywords = tuple(keywords)
    show = (lambda number: number) if not masked else mask_number
    table = pa.table(
        {
            "id": pa.array([m.id for m in rows], pa.int64()),
            "rcpt": pa.array([show(rcpt) for _ in rows], pa.string()),
            "sharecode": pa.array([sharecode for _ in rows], pa.string()),
            "sender": pa.array([show(m.sender) for m in rows], pa.string()),
            "sender_key": pa.array(
                [pseudonym(sender_key(m.sender, region=region), key) for m in rows],
                pa.string(),
            ),
            "received_at": pa.array([m.received_at for m in rows], pa.timestamp("us", tz="UTC")),
            "text": pa.array([m.text[:MAX_STORED_TEXT] if include_text else None for m in rows], pa.string()),
            "opt_out": pa.array([opt_out_keyword(m.text, keywords) for m in rows], pa.string()),
        }
    )
    return table.to_pandas(types_mapper=pd.ArrowDtype)


__all__ = [
    "DEFAULT_OPT_OUT_KEYWORDS",
    "compile_text_pattern",
    "find_match",
    "inbound_frame",
    "keyword_form",
    "opt_out_keyword",
    "parse_received_after",
    "reception_key",
    "received_sms_to_dict",
    "sender_key",
]
