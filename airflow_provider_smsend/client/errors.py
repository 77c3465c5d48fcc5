"""Errors raised by the smSend client, and the map from the gateway's KO texts to them.

Every ``KO`` text of the gateway's documentation maps to one class of a small hierarchy, with a
stable ``code``, a ``retryable`` flag and an English explanation that says what to do. Callers
catch types (``SmSendAuthError``), never strings::

    try:
        client.send("+393331234567", "hello", sender="ACME")
    except SmSendInsufficientCreditError:
        ...

The Italian originals appear once, in :data:`KO_RULES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class SmSendError(Exception):
    """Base of every error this provider raises.

    :param message: English explanation of what happened and what to do next.
    :param gateway_text: the gateway's original answer text, when there is one.
    :param code: a stable short name for the error (``"ip_not_enabled"``, ...).
    :param retryable: True when the same call may succeed later.
    """

    retryable: bool = False
    default_code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        gateway_text: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.gateway_text = gateway_text
        self.code = code or self.default_code
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        if self.gateway_text:
            return f"{self.message} (gateway said: {self.gateway_text!r})"
        return self.message


class SmSendValidationError(SmSendError, ValueError):
    """Input rejected by the client before any request was made: nothing was sent."""

    default_code = "invalid_input"


class SmSendTransportError(SmSendError):
    """The gateway could not be reached, or answered something that is not an OK/KO answer.

    :param request_sent: False only when the request provably never reached the gateway (the
        connection was refused or never established); True when it may have been processed.
    """

    retryable = True
    default_code = "transport"

    def __init__(self, message: str, *, request_sent: bool = True, status_code: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.request_sent = request_sent
        self.status_code = status_code


class SmSendTimeoutError(SmSendTransportError):
    """The gateway did not answer within the configured timeout."""

    default_code = "timeout"


class SmSendReportError(SmSendError):
    """A report (CSV/TSV) or SOAP answer could not be parsed; ``line`` names where, if known."""

    default_code = "malformed_report"

    def __init__(self, message: str, *, line: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.line = line


class SmSendAmbiguousOutcomeError(SmSendError):
    """An earlier try started an action whose outcome is unknown: it is not done again on its own.

    The message says when it started, what was checked, and that ``resend_unknown=True`` does it
    again at the risk of doing it twice (docs/gateway.md, "Once-only actions").
    """

    default_code = "ambiguous_outcome"


class SmSendClaimedError(SmSendError):
    """Another try of the same task holds the action right now (two tries running at once).

    Retryable: a later try finds the other's outcome in the ledger.
    """

    retryable = True
    default_code = "claimed_by_another_try"


class SmSendLedgerError(SmSendError):
    """The send ledger's database could not be read or written, even after retries.

    Retryable: a later try resumes from what the ledger holds.
    """

    retryable = True
    default_code = "ledger"


class SmSendGatewayError(SmSendError):
    """The gateway answered ``KO <text>`` (or a SOAP Fault ``KO nnn``)."""

    default_code = "gateway_error"


class SmSendAuthError(SmSendGatewayError):
    """Access refused: wrong credentials, disabled user or IP address not enabled."""

    default_code = "access_denied"


class SmSendInvalidParameterError(SmSendGatewayError):
    """The gateway rejected a parameter."""

    default_code = "invalid_parameter"


class SmSendNotFoundError(SmSendGatewayError):
    """The client, tariff or share code named does not exist for this reseller."""

    default_code = "not_found"


class SmSendInsufficientCreditError(SmSendGatewayError):
    """Not enough credit (or notifications) left on the account."""

    default_code = "insufficient_credit"


class SmSendTemporaryError(SmSendGatewayError):
    """The gateway could not queue the request now; nothing was queued, it may work later."""

    retryable = True
    default_code = "temporary"


class SmSendInternalError(SmSendGatewayError):
    """The gateway reported an internal error."""

    retryable = True
    default_code = "internal"


@dataclass(frozen=True)
class KoRule:
    """One documented KO text: a pattern on the text (without ``KO``), and what it means."""

    pattern: re.Pattern[str]
    error: type[SmSendGatewayError]
    code: str
    explanation: str
    retryable: bool | None = None


def _rule(
    pattern: str,
    error: type[SmSendGatewayError],
    code: str,
    explanation: str,
    retryable: bool | None = None,
) -> KoRule:
    # Texts may or may not end with a period (docs/gateway.md, "Answers"): match on content, ignore case and the dot.
    return KoRule(re.compile(rf"^{pattern}\.?$", re.IGNORECASE), error, code, explanation, retryable)


_P = r"(?P<param>[A-Za-z_]+)"

#: Every KO text of the documentation, most specific first.
KO_RULES: tuple[KoRule, ...] = (
    _rule(
        r"Accesso non consentito \(IP non abilitato\)",
        SmSendAuthError,
        "ip_not_enabled",
        "IP not enabled: enable this machine's public address (or subnet) in the smSend back-office, "
        "then run the task again.",
    ),
    _rule(
        r"Accesso non consentito \(utente non abilitato\)",
        SmSendAuthError,
        "user_not_enabled",
        "Access refused (user not enabled): check the connection's login and password, then ask smSend "
        "(or your reseller) to enable the account for the API.",
    ),
    _rule(
        r"Accesso non consentito",
        SmSendAuthError,
        "access_denied",
        "Access denied: this account or address may not use the back-office API; check the reseller "
        "credentials and the enabled IP addresses.",
    ),
    _rule(
        r"Username o password errati",
        SmSendAuthError,
        "bad_credentials",
        "Wrong username or password: fix the login/password (or reseller_username/reseller_password "
        "extras) of the Airflow connection.",
    ),
    _rule(
        r"Impossibile creare un rivenditore",
        SmSendAuthError,
        "reseller_not_allowed",
        "This account may not create resellers: create a plain client (reseller=False).",
    ),
    _rule(
        r"Parametr[io] non corrett[io]",
        SmSendInvalidParameterError,
        "bad_parameters",
        "The gateway rejected the parameters: check the values passed to this call.",
    ),
    _rule(
        rf"Parametro {_P} non impostato",
        SmSendInvalidParameterError,
        "missing_parameter",
        "A required parameter was not set: pass a value for it.",
    ),
    _rule(
        rf"Parametro {_P} non (?:valido|corretto)",
        SmSendInvalidParameterError,
        "invalid_parameter",
        "A parameter has a value the gateway does not accept: correct it.",
    ),
    _rule(
        rf"Il parametro {_P} (?:pu[oò]|puo') contenere al massimo (?P<n>\d+) (?P<unit>caratteri|numeri)",
        SmSendInvalidParameterError,
        "too_long",
        "A parameter is longer than the gateway allows: shorten it (or split the numbers into chunks).",
    ),
    _rule(
        r"Il parametro num deve essere <= 20",
        SmSendInvalidParameterError,
        "num_too_large",
        "At most 20 share codes can be created per call: pass num between 1 and 20.",
    ),
    _rule(
        r"Profilo non corretto",
        SmSendInvalidParameterError,
        "bad_profile",
        "The profile (tpl_id) does not exist: use a profile id from the reseller panel.",
    ),
    _rule(
        r"Username gi[aà] esistente",
        SmSendInvalidParameterError,
        "username_exists",
        "That username is taken: choose another username for the new client.",
    ),
    _rule(
        r"Tariffa non corretta",
        SmSendInvalidParameterError,
        "bad_tariff",
        "The tariff (bill_id) is not valid: use a tariff id from the reseller panel.",
    ),
    _rule(
        r"Numero di ricezione non corretto",
        SmSendInvalidParameterError,
        "bad_reception_number",
        "The reception number (dest) is not valid: pass a number in international format.",
    ),
    _rule(
        r"Operatore sconosciuto",
        SmSendInvalidParameterError,
        "unknown_operator",
        "The recipient's mobile operator is unknown: check the number.",
    ),
    _rule(
        r"Utente non trovato",
        SmSendNotFoundError,
        "user_not_found",
        "Client not found: check the client id (u_id) belongs to this reseller.",
    ),
    _rule(
        r"Sharecode non associato all['’]utente specificato",
        SmSendNotFoundError,
        "sharecode_not_found",
        "That share code is not assigned to this client and number: check u_id, dest and sharecode.",
    ),
    _rule(
        r"Credito insufficiente",
        SmSendInsufficientCreditError,
        "insufficient_credit",
        "Insufficient credit: top up the account (or assign credit to the client) before sending.",
    ),
    _rule(
        r"Impossibile accodare (?:il/i messaggio/i|la/e richiesta/e)",
        SmSendTemporaryError,
        "queue_unavailable",
        "The gateway could not queue the request; nothing was queued or charged. Try again later.",
    ),
    _rule(
        r"Errore nella creazione",
        SmSendInternalError,
        "creation_failed",
        "The gateway failed to create the object; check in the back-office whether it exists before "
        "trying again.",
        retryable=False,
    ),
    _rule(
        r"Errore interno",
        SmSendInternalError,
        "internal",
        "The gateway reported an internal error; try again later.",
    ),
)


def error_from_ko(text: str) -> SmSendGatewayError:
    """Build the error for a KO answer; ``text`` is what follows ``"KO "`` (or the whole line).

    An undocumented text gives a plain, non-retryable :class:`SmSendGatewayError`.
    """
    body = text.strip()
    if body[:2].upper() == "KO":
        body = body[2:].strip()
    for rule in KO_RULES:
        match = rule.pattern.match(body)
        if match:
            explanation = rule.explanation
            param = match.groupdict().get("param")
            if param:
                explanation = f"{explanation} (parameter {param!r})"
            return rule.error(
                explanation, gateway_text=f"KO {body}", code=rule.code, retryable=rule.retryable
            )
    return SmSendGatewayError(
        "The gateway refused the request with an undocumented answer; read the gateway's text.",
        gateway_text=f"KO {body}",
        code="undocumented",
    )


@dataclass(frozen=True)
class FaultRule:
    """One documented sendMms SOAP fault code."""

    error: type[SmSendGatewayError]
    code: str
    explanation: str
    retryable: bool


def _fault(
    error: type[SmSendGatewayError], code: str, explanation: str, retryable: bool = False
) -> FaultRule:
    return FaultRule(error, code, explanation, retryable)


_NOT_ALLOWED = _fault(SmSendAuthError, "not_allowed", "Not allowed: check the MMS id, password or ticket.")
_INTERNAL = _fault(SmSendInternalError, "internal", "The MMS gateway reported an internal error.", True)

#: sendMms fault codes (``KO nnn``), with the retry decisions of docs/gateway.md, "SOAP web services".
SOAP_FAULTS: dict[int, FaultRule] = {
    101: _NOT_ALLOWED,
    102: _fault(
        SmSendAuthError, "operation_not_permitted", "Operation not permitted for this account or request."
    ),
    103: _fault(SmSendInvalidParameterError, "bad_recipient", "Bad recipient: check the numbers (rcpt)."),
    104: _NOT_ALLOWED,
    105: _NOT_ALLOWED,
    106: _NOT_ALLOWED,
    107: _fault(
        SmSendAuthError,
        "no_auth_suitable",
        "No suitable authentication: use the auth mode the MMS account has (plain password or MD5 ticket).",
    ),
    109: _fault(SmSendTemporaryError, "carrier_problem", "Carrier problem; try again later.", True),
    110: _fault(SmSendAuthError, "message_blocked", "The message was blocked by the gateway."),
    111: _fault(SmSendAuthError, "banned", "The account or recipient is banned."),
    124: _fault(SmSendInvalidParameterError, "text_too_long", "MMS text too long: at most 2400 characters."),
    211: _fault(SmSendInsufficientCreditError, "quota_abs", "No credit left for MMS: top up the account."),
    213: _fault(SmSendInsufficientCreditError, "quota_ny", "No notifications left: top up the account."),
    215: _fault(SmSendInvalidParameterError, "image_too_big", "Image larger than 100 kB: shrink it."),
    216: _fault(SmSendInvalidParameterError, "image_type", "Image type not supported: use JPEG, GIF or PNG."),
    217: _fault(SmSendInvalidParameterError, "sound_too_big", "Sound larger than 100 kB: shrink it."),
    218: _fault(SmSendInvalidParameterError, "sound_type", "Sound type not supported: use MIDI or MP3."),
    300: _INTERNAL,
    301: _fault(
        SmSendTemporaryError, "connection_problem", "Gateway connection problem; try again later.", True
    ),
    302: _fault(SmSendInternalError, "generic", "Generic gateway error.", True),
    303: _fault(
        SmSendTemporaryError, "connection_problem", "Gateway connection problem; try again later.", True
    ),
    310: _fault(SmSendInvalidParameterError, "type_unsupported", "Attachment type unsupported."),
    311: _fault(SmSendInternalError, "send_error", "The gateway failed to send the MMS.", True),
    400: _INTERNAL,
    401: _INTERNAL,
    402: _INTERNAL,
    500: _INTERNAL,
    501: _INTERNAL,
    502: _INTERNAL,
    555: _fault(SmSendTemporaryError, "relay_error", "Relay error; try again later.", True),
}

_FAULT_CODE = re.compile(r"^\s*KO\s*(\d{3})\s*$", re.IGNORECASE)


def error_from_fault(faultcode: str | None, faultstring: str | None) -> SmSendGatewayError:
    """Build the error for a SOAP Fault whose faultcode is ``KO nnn``."""
    text = f"{(faultcode or '').strip()} {(faultstring or '').strip()}".strip()
    match = _FAULT_CODE.match(faultcode or "")
    if match:
        number = int(match.group(1))
        rule = SOAP_FAULTS.get(number)
        if rule is not None:
            return rule.error(rule.explanation, gateway_text=text, code=rule.code, retryable=rule.retryable)
    return SmSendGatewayError(
        "The SOAP service answered an undocumented fault; read the gateway's text.",
        gateway_text=text,
        code="undocumented_fault",
    )
