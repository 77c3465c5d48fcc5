"""What every HTTP endpoint of the sandbox shares: the request view, the gateway's texts, auth.

The Italian answer texts live here and in the endpoint modules, to the letter of the gateway's
documentation (including its typographic apostrophe in ``all’utente`` and the missing period of
``KO Parametro password non impostato``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_smsend.sandbox.accounts import Account
    from airflow_provider_smsend.sandbox.state import SandboxState

# Back-office access
KO_ACCESS_DENIED = "KO Accesso non consentito."
KO_BAD_CREDENTIALS = "KO Username o password errati."
KO_BAD_PARAMETERS = "KO Parametri non corretti."
KO_USER_NOT_FOUND = "KO Utente non trovato."
# SMS access
KO_IP_NOT_ENABLED = "KO Accesso non consentito (IP non abilitato)."
KO_USER_NOT_ENABLED = "KO Accesso non consentito (utente non abilitato)."


def not_set(name: str) -> str:
    """``KO Parametro <name> non impostato.``"""
    return f"KO Parametro {name} non impostato."


def not_valid(name: str) -> str:
    """``KO Parametro <name> non valido.`` (send.php, mnc.php)."""
    return f"KO Parametro {name} non valido."


def not_correct(name: str) -> str:
    """``KO Parametro <name> non corretto.`` (batch-status.php, credit.php, credit-add, recv-add)."""
    return f"KO Parametro {name} non corretto."


@dataclass
class GatewayRequest:
    """One decoded call to an HTTP endpoint.

    :param state: the sandbox state.
    :param params: form and query parameters, decoded (body values win over query values).
    :param ip: the caller's address.
    :param ko_queue: the fault injector decided this call answers "cannot queue".
    """

    state: SandboxState
    params: dict[str, str]
    ip: str | None
    ko_queue: bool = False

    def raw(self, name: str) -> str:
        """Return the parameter exactly as received ('' when absent)."""
        return self.params.get(name, "")

    def value(self, name: str) -> str:
        """Return the parameter with surrounding white space removed ('' when absent)."""
        return self.params.get(name, "").strip()


def backoffice_auth(request: GatewayRequest) -> Account | str:
    """Authenticate a back-office call (``smsusername``/``smspassword``, reseller accounts only).

    :return: the reseller account, or the KO answer to give.
    """
    state = request.state
    if not state.ip_allowed(request.ip):
        return KO_ACCESS_DENIED
    account = state.authenticate(request.value("smsusername"), request.raw("smspassword"))
    if account is None:
        return KO_BAD_CREDENTIALS
    if not account.is_reseller or not account.active:
        return KO_ACCESS_DENIED
    return account


def sms_auth(request: GatewayRequest) -> Account | str:
    """Authenticate an SMS call (``user``/``pass``): IP allowlist, credentials, active account.

    The SMS endpoints document only the two "Accesso non consentito" texts, so wrong credentials
    answer ``KO Accesso non consentito (utente non abilitato).`` like a disabled account.

    :return: the account, or the KO answer to give.
    """
    state = request.state
    if not state.ip_allowed(request.ip):
        return KO_IP_NOT_ENABLED
    account = state.authenticate(request.value("user"), request.raw("pass"))
    if account is None or not account.active:
        return KO_USER_NOT_ENABLED
    return account


def client_param(request: GatewayRequest, reseller: Account) -> Account | str:
    """Resolve ``u_id`` to a client of ``reseller`` (presence is checked by the caller).

    :return: the client, or ``KO Parametri non corretti.`` (not a number) / ``KO Utente non trovato.``.
    """
    raw = request.value("u_id")
    if not raw.isdigit():
        return KO_BAD_PARAMETERS
    client = request.state.client_of(reseller, int(raw))
    return client if client is not None else KO_USER_NOT_FOUND
