"""Back-office (reseller) endpoints: ``/backoffice/*.php``.

Each handler checks, in order: access (IP allowlist, credentials, reseller rights), then the
parameters in the order of the document's error list, and answers ``OK ...``, a report, or the
document's ``KO`` text.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING

from airflow_provider_smsend.sandbox.accounts import format_money, money
from airflow_provider_smsend.sandbox.common import (
    KO_BAD_PARAMETERS,
    GatewayRequest,
    backoffice_auth,
    client_param,
    not_correct,
    not_set,
)
from airflow_provider_smsend.sandbox.models import rome_text
from airflow_provider_smsend.sandbox.outcomes import is_international

if TYPE_CHECKING:
    from collections.abc import Callable

CREDIT_FORMAT = re.compile(r"^\d+(?:[.,]\d{1,4})?$")
USERLOG_COLUMNS = {
    "credits": ("id", "date", "u_id", "username", "bill_id", "credit"),
    "recv_add": ("id", "date", "u_id", "username", "dest", "sharecode"),
    "recv_del": ("id", "date", "u_id", "username", "dest", "sharecode"),
}
MAX_SHARECODES_PER_CALL = 20


def _first_missing(
    request: GatewayRequest, names: tuple[str, ...], texts: dict[str, str] | None = None
) -> str | None:
    for name in names:
        if not request.value(name):
            return (texts or {}).get(name, not_set(name))
    return None


def client_add(request: GatewayRequest) -> str:
    """``client-add.php``: create a client (or a reseller, the gateway's default) -> ``OK <u_id>``."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    # The document prints this one text without its final period: kept to the letter.
    missing = _first_missing(
        request, ("name", "username", "password"), {"password": "KO Parametro password non impostato"}
    )
    if missing:
        return missing
    flag = request.value("reseller") or "1"  # the gateway's own default is 1 (reseller)
    if flag not in ("0", "1"):
        return KO_BAD_PARAMETERS
    if flag == "1" and not reseller.can_create_resellers:
        return "KO Impossibile creare un rivenditore."
    tpl_raw = request.value("tpl_id")
    tpl_id: int | None = None
    if tpl_raw:
        if not tpl_raw.isdigit() or int(tpl_raw) not in request.state.profiles:
            return "KO Profilo non corretto."
        tpl_id = int(tpl_raw)
    client = request.state.add_client(
        reseller,
        name=request.value("name"),
        username=request.value("username"),
        password=request.raw("password"),
        is_reseller=flag == "1",
        tpl_id=tpl_id,
        email=request.value("email"),
        contact=request.value("contact"),
        ref_id=request.value("ref_id"),
        vhost=request.value("vhost"),
    )
    if client is None:
        return "KO Username già esistente."
    return f"OK {client.u_id}"


def credit_add(request: GatewayRequest) -> str:
    """``credit-add.php``: add credit (``12,3456`` or ``12.3456``) under a tariff -> ``OK <credit id>``."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    missing = _first_missing(request, ("u_id", "bill_id"))
    if missing:
        return missing
    client = client_param(request, reseller)
    if isinstance(client, str):
        return client
    bill_raw = request.value("bill_id")
    tariff = request.state.tariffs.get(int(bill_raw)) if bill_raw.isdigit() else None
    if tariff is None:
        return "KO Tariffa non corretta."
    credit_raw = request.value("credit")
    if credit_raw:
        if not CREDIT_FORMAT.match(credit_raw):
            return not_correct("credit")
        amount = money(credit_raw.replace(",", "."))
    else:
        amount = tariff.default_credit
    return f"OK {request.state.add_credit(reseller, client, tariff, amount)}"


def credit_get(request: GatewayRequest) -> str:
    """``credit-get.php``: a client's credit in euros -> ``OK 123.4567``."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    if not request.value("u_id"):
        return not_set("u_id")
    client = client_param(request, reseller)
    if isinstance(client, str):
        return client
    return f"OK {format_money(client.credit)}"


def _parse_day(text: str) -> date | None:
    return datetime.strptime(text, "%Y-%m-%d").date() if text else None


def userlog_get(request: GatewayRequest) -> str:
    """``userlog-get.php``: TSV report (header first, CR LF line ends), no ``OK`` prefix."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    kind = request.value("type")
    if not kind:
        return not_set("type")
    if kind not in USERLOG_COLUMNS:
        return KO_BAD_PARAMETERS
    u_id: int | None = None
    if request.value("u_id"):
        client = client_param(request, reseller)
        if isinstance(client, str):
            return KO_BAD_PARAMETERS  # the document lists no "Utente non trovato" here
        u_id = client.u_id
    try:
        start, end = _parse_day(request.value("from")), _parse_day(request.value("to"))
    except ValueError:
        return KO_BAD_PARAMETERS
    columns = USERLOG_COLUMNS[kind]
    lines = ["\t".join(columns)]
    for entry in request.state.userlog_entries(reseller, kind, u_id, start, end):
        values = {
            "id": str(entry.id),
            "date": rome_text(entry.created_at),
            "u_id": str(entry.u_id),
            "username": entry.username,
            "bill_id": "" if entry.bill_id is None else str(entry.bill_id),
            "credit": entry.credit,
            "dest": entry.dest,
            "sharecode": entry.sharecode,
        }
        lines.append("\t".join(values[c] for c in columns))
    return "\r\n".join(lines) + "\r\n"


def _reception_number_ok(request: GatewayRequest, dest: str) -> bool:
    allowed = request.state.reception_numbers
    return is_international(dest) and (not allowed or dest in allowed)


def recv_add(request: GatewayRequest) -> str:
    """``recv-add.php``: create ``num`` share codes on a reception number -> ``OK 001,002``."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    missing = _first_missing(request, ("u_id", "dest"))
    if missing:
        return missing
    client = client_param(request, reseller)
    if isinstance(client, str):
        return client
    dest = request.value("dest")
    if not _reception_number_ok(request, dest):
        return "KO Numero di ricezione non corretto."
    num_raw = request.value("num") or "1"
    if not num_raw.isdigit() or int(num_raw) < 1:
        return not_correct("num")
    if int(num_raw) > MAX_SHARECODES_PER_CALL:
        return "KO Il parametro num deve essere <= 20."
    codes = request.state.add_sharecodes(reseller, client, dest, int(num_raw))
    if codes is None:
        return "KO Errore nella creazione."
    return "OK " + ",".join(codes)


def recv_del(request: GatewayRequest) -> str:
    """``recv-del.php``: revoke one share code -> ``OK``."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    missing = _first_missing(request, ("u_id", "dest", "sharecode"))
    if missing:
        return missing
    client = client_param(request, reseller)
    if isinstance(client, str):
        return client
    if not request.state.delete_sharecode(
        reseller, client, request.value("dest"), request.value("sharecode")
    ):
        return "KO Sharecode non associato all’utente specificato."
    return "OK"


def client_status(request: GatewayRequest) -> str:
    """``client-status.php``: enable (1) or disable (0) a client -> ``OK Attivato``/``OK Disattivato``."""
    reseller = backoffice_auth(request)
    if isinstance(reseller, str):
        return reseller
    missing = _first_missing(request, ("u_id", "active"))
    if missing:
        return missing
    client = client_param(request, reseller)
    if isinstance(client, str):
        return client
    active = request.value("active")
    if active not in ("0", "1"):
        return KO_BAD_PARAMETERS
    request.state.set_active(client, active == "1")
    return "OK Attivato" if active == "1" else "OK Disattivato"


#: Path -> handler of the back-office endpoints.
BACKOFFICE_ENDPOINTS: dict[str, Callable[[GatewayRequest], str]] = {
    "/backoffice/client-add.php": client_add,
    "/backoffice/credit-add.php": credit_add,
    "/backoffice/credit-get.php": credit_get,
    "/backoffice/userlog-get.php": userlog_get,
    "/backoffice/recv-add.php": recv_add,
    "/backoffice/recv-del.php": recv_del,
    "/backoffice/client-status.php": client_status,
}
