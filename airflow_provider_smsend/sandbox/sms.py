"""SMS endpoints: ``/sms/send.php``, ``/sms/mnc.php``, ``/sms/batch-status.php``, ``/sms/credit.php``.

Check order: access (IP allowlist, credentials, active account), then each parameter in the
order the document lists them, then the operator, the credit and the queue.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_provider_smsend.client.encoding import (
    HIGH_QUALITY_ONLY,
    OPERATION_ENCODING,
    OPERATION_LIMITS,
    OPERATIONS,
    is_gsm,
    units_for_operation,
)
from airflow_provider_smsend.sandbox.accounts import format_money
from airflow_provider_smsend.sandbox.common import (
    KO_ACCESS_DENIED,
    GatewayRequest,
    not_correct,
    not_set,
    not_valid,
    sms_auth,
)
from airflow_provider_smsend.sandbox.outcomes import is_international, outcome_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_smsend.sandbox.models import Message

QUALITIES = ("ll", "l", "a", "h", "n")
ALPHANUMERIC_SENDER = re.compile(r"^[A-Za-z0-9]{1,11}$")
MAX_MNC_NUMBERS = 500
KO_CREDIT = "KO Credito insufficiente."
#: credit.php ``type`` -> price key (``credit`` answers euros).
CREDIT_TYPES = {"n": "n", "h": "h", "hqs": "h", "a": "a", "l": "l", "ll": "ll", "lqs": "ll"}
#: GSM 03.38 extension table: two septets each (escape + character). The document lists
#: ``^ { } \\ [ ~ ] | €``; the standard's table also has the form feed.
GSM_EXTENSION_TABLE = "^{}\\[~]|€\f"
#: (units in a single message, units per part of a concatenated one), per encoding.
PART_SIZES = {"GSM": (160, 153), "UCS2": (70, 67)}
REPORT_HEADERS = {
    "queue": "id,dest,status,status_text",
    "notify": "id,dest,status,status_text",
    "mnc": "id,dest,status,netcode,status_text",
}


def charged_segments(text: str, encoding: str) -> int:
    """Count the segments the sandbox charges for ``text``, from the rules of docs/gateway.md.

    The text is cut into parts character by character: a part takes the next character only if
    all its units fit (so an escape pair or a surrogate pair is never split). This is the
    sandbox's own count: a counting bug in the client shows up as a different charge.
    """
    single, part = PART_SIZES[encoding]
    sizes = [_units_of(ch, encoding) for ch in text]
    if sum(sizes) <= single:
        return 1
    parts, room = 1, part
    for size in sizes:
        if size > room:
            parts, room = parts + 1, part
        room -= size
    return parts


def _units_of(ch: str, encoding: str) -> int:
    if encoding == "GSM":
        return 2 if ch in GSM_EXTENSION_TABLE else 1
    return 2 if ord(ch) > 0xFFFF else 1  # beyond the BMP: a UTF-16 surrogate pair


def _valid_sender(sender: str) -> bool:
    return bool(ALPHANUMERIC_SENDER.match(sender)) or is_international(sender)


def send(request: GatewayRequest) -> str:
    """``send.php``: send one SMS -> ``OK <cost>`` or, with ``return_id=1``, ``OK <cost> <id>``."""
    account = sms_auth(request)
    if isinstance(account, str):
        return account
    rcpt = request.value("rcpt")
    if not rcpt:
        return not_set("rcpt")
    if not is_international(rcpt):
        return not_valid("rcpt")
    data = request.raw("data")
    if not data.strip():
        return not_set("data")
    sender = request.value("sender")
    if not sender:
        return not_set("sender")
    if not _valid_sender(sender):
        return not_valid("sender")
    qty = request.value("qty")
    if not qty:
        return not_set("qty")
    if qty not in QUALITIES:
        return not_valid("qty")
    operation = request.value("operation").upper() or "TEXT"
    if operation not in OPERATIONS or (operation in HIGH_QUALITY_ONLY and qty not in ("h", "n")):
        return not_valid("operation")
    url = request.value("url")
    if operation == "WAPPUSH" and not url:
        return not_set("url")
    encoding = OPERATION_ENCODING[operation]
    if encoding == "GSM" and not is_gsm(data):
        return not_valid("data")
    units = units_for_operation(data, operation)
    limit = OPERATION_LIMITS[operation]
    if units > limit:
        return f"KO Il parametro data può contenere al massimo {limit} caratteri."
    return_id = request.value("return_id")
    if return_id not in ("", "0", "1"):
        return not_valid("return_id")
    if outcome_for(rcpt).unknown_operator:
        return "KO Operatore sconosciuto."
    segments = 1 if operation == "WAPPUSH" else charged_segments(data, encoding)
    cost = request.state.price(account, qty) * segments
    if account.credit < cost:
        return KO_CREDIT
    if request.ko_queue:
        return "KO Impossibile accodare il/i messaggio/i."
    item = {
        "rcpt": rcpt,
        "sender": sender,
        "text": data,
        "qty": qty,
        "operation": operation,
        "url": url,
        "segments": segments,
    }
    request_id = request.state.record_batch(account, "sms", cost, [item])
    if request_id is None:
        return KO_CREDIT
    if return_id == "1":
        return f"OK {format_money(cost)} {request_id}"
    return f"OK {format_money(cost)}"


def mnc(request: GatewayRequest) -> str:
    """``mnc.php``: queue mobile number checks -> ``OK`` or, with ``return_id=1``, ``OK <id>``."""
    account = sms_auth(request)
    if isinstance(account, str):
        return account
    raw = request.value("numbers")
    if not raw:
        return not_set("numbers")
    numbers = [n.strip() for n in raw.split(",")]
    if len(numbers) > MAX_MNC_NUMBERS:
        return f"KO Il parametro numbers può contenere al massimo {MAX_MNC_NUMBERS} numeri."
    if not all(is_international(n) for n in numbers):
        return not_valid("numbers")
    return_id = request.value("return_id")
    if return_id not in ("", "0", "1"):
        return not_valid("return_id")
    unit = request.state.price(account, "mnc")
    if account.credit < unit * len(numbers):
        return KO_CREDIT
    if request.ko_queue:
        return "KO Impossibile accodare la/e richiesta/e."
    request_id = request.state.record_batch(account, "mnc", unit, [{"rcpt": n} for n in numbers])
    if request_id is None:
        return KO_CREDIT
    return f"OK {request_id}" if return_id == "1" else "OK"


def _mnc_row(message: Message, status: int, text: str, full: bool) -> str:
    netcode = outcome_for(message.rcpt).netcode if 200 <= status < 300 else ""
    if full:
        return f"{message.id},{message.rcpt},{status},{netcode},{text}"
    # The document's ragged rows: four fields, the network name (with a leading space) for 2xx.
    if 200 <= status < 300:
        return f"{message.id},{message.rcpt},{status}, {text}"
    return f"{message.id},{message.rcpt},{status},{text}"


def batch_status(request: GatewayRequest) -> str:
    """``batch-status.php``: CSV report of a request id (header first), no ``OK`` prefix."""
    account = sms_auth(request)
    if isinstance(account, str):
        return account
    for name in ("id", "type", "schema"):
        if not request.value(name):
            return not_set(name)
    kind = request.value("type")
    if kind not in REPORT_HEADERS:
        return not_correct("type")
    if request.value("schema") != "1":
        return not_correct("schema")
    state = request.state
    batch = state.batches.get(request.value("id"))
    if batch is None:
        return not_correct("id")
    if batch.u_id != account.u_id:
        return KO_ACCESS_DENIED
    lines = [REPORT_HEADERS[kind]]
    if (kind == "mnc") == (batch.kind == "mnc"):
        now, delay = state.now(), state.settings.delivery_delay
        full = state.settings.mnc_report == "full"
        for message in state.batch_messages(batch):
            status, text = message.statuses(now, delay)[kind]
            if kind == "mnc":
                lines.append(_mnc_row(message, status, text, full))
            else:
                lines.append(f"{message.id},{message.rcpt},{status},{text}")
    return "\n".join(lines) + "\n"


def credit(request: GatewayRequest) -> str:
    """``credit.php``: euros left (``type=credit``, the default) or SMS left for a quality."""
    account = sms_auth(request)
    if isinstance(account, str):
        return account
    kind = request.value("type") or "credit"
    if kind == "credit":
        return f"OK {format_money(account.credit)}"
    quality = CREDIT_TYPES.get(kind)
    if quality is None:
        return not_correct("type")
    return f"OK {int(account.credit // request.state.price(account, quality))}"


#: Path -> handler of the SMS endpoints.
SMS_ENDPOINTS: dict[str, Callable[[GatewayRequest], str]] = {
    "/sms/send.php": send,
    "/sms/mnc.php": mnc,
    "/sms/batch-status.php": batch_status,
    "/sms/credit.php": credit,
}
#: Endpoints where the ``ko_queue`` fault applies.
QUEUEING_ENDPOINTS = frozenset({"/sms/send.php", "/sms/mnc.php"})
