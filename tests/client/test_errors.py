"""Every KO text of the gateway's documentation, and every sendMms SOAP fault, maps to its error.

The KO texts go through the real client call: requests-mock answers them with HTTP 200 (the
gateway's way), and the test checks the exception type, code, retry flag, the preserved gateway
text and the English explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_smsend.client import errors
from airflow_provider_smsend.client.errors import (
    SmSendAuthError,
    SmSendError,
    SmSendGatewayError,
    SmSendInsufficientCreditError,
    SmSendInternalError,
    SmSendInvalidParameterError,
    SmSendNotFoundError,
    SmSendTemporaryError,
    SmSendTransportError,
    SmSendValidationError,
    error_from_fault,
    error_from_ko,
)
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import NO_RETRY

BASE = "https://gw.test"

# endpoint -> (path, the client call that reaches it with valid input)
CALLS: dict[str, tuple[str, Callable[[SmSendClient], Any]]] = {
    "client-add": ("/backoffice/client-add.php", lambda c: c.client_add("Mario", "mario", "secret1")),
    "credit-add": ("/backoffice/credit-add.php", lambda c: c.credit_add(7, 3, "12,3456")),
    "credit-get": ("/backoffice/credit-get.php", lambda c: c.credit_get(7)),
    "userlog-get": ("/backoffice/userlog-get.php", lambda c: c.userlog_get("credits")),
    "recv-add": ("/backoffice/recv-add.php", lambda c: c.recv_add(7, "+393331234567", 2)),
    "recv-del": ("/backoffice/recv-del.php", lambda c: c.recv_del(7, "+393331234567", "001")),
    "client-status": ("/backoffice/client-status.php", lambda c: c.client_status(7, True)),
    "send": ("/sms/send.php", lambda c: c.send("+393331234567", "Ciao", sender="ACME", quality="h")),
    "mnc": ("/sms/mnc.php", lambda c: c.mnc(["+393331234567", "+393401234567"])),
    "batch-status": ("/sms/batch-status.php", lambda c: c.batch_status("HTTP00000000111", "notify")),
    "credit": ("/sms/credit.php", lambda c: c.credit("credit")),
}

AUTH = SmSendAuthError
PARAM = SmSendInvalidParameterError
NOTFOUND = SmSendNotFoundError
CREDIT = SmSendInsufficientCreditError
TEMP = SmSendTemporaryError
INTERNAL = SmSendInternalError

# (endpoint, KO text as documented, class, code, retryable), endpoint by endpoint in document order.
DOCUMENTED_KO: list[tuple[str, str, type[SmSendGatewayError], str, bool]] = [
    # client-add
    ("client-add", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("client-add", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("client-add", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("client-add", "KO Parametro name non impostato.", PARAM, "missing_parameter", False),
    ("client-add", "KO Parametro username non impostato.", PARAM, "missing_parameter", False),
    ("client-add", "KO Parametro password non impostato", PARAM, "missing_parameter", False),
    ("client-add", "KO Impossibile creare un rivenditore.", AUTH, "reseller_not_allowed", False),
    ("client-add", "KO Profilo non corretto.", PARAM, "bad_profile", False),
    ("client-add", "KO Username già esistente.", PARAM, "username_exists", False),
    ("client-add", "KO Errore nella creazione.", INTERNAL, "creation_failed", False),
    # credit-add
    ("credit-add", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("credit-add", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("credit-add", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("credit-add", "KO Parametro u_id non impostato.", PARAM, "missing_parameter", False),
    ("credit-add", "KO Parametro bill_id non impostato.", PARAM, "missing_parameter", False),
    ("credit-add", "KO Utente non trovato.", NOTFOUND, "user_not_found", False),
    ("credit-add", "KO Tariffa non corretta.", PARAM, "bad_tariff", False),
    ("credit-add", "KO Parametro credit non corretto.", PARAM, "invalid_parameter", False),
    # credit-get
    ("credit-get", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("credit-get", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("credit-get", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("credit-get", "KO Parametro u_id non impostato.", PARAM, "missing_parameter", False),
    ("credit-get", "KO Utente non trovato.", NOTFOUND, "user_not_found", False),
    # userlog-get
    ("userlog-get", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("userlog-get", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("userlog-get", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("userlog-get", "KO Parametro type non impostato.", PARAM, "missing_parameter", False),
    # recv-add
    ("recv-add", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("recv-add", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("recv-add", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("recv-add", "KO Parametro u_id non impostato.", PARAM, "missing_parameter", False),
    ("recv-add", "KO Parametro dest non impostato.", PARAM, "missing_parameter", False),
    ("recv-add", "KO Utente non trovato.", NOTFOUND, "user_not_found", False),
    ("recv-add", "KO Numero di ricezione non corretto.", PARAM, "bad_reception_number", False),
    ("recv-add", "KO Parametro num non corretto.", PARAM, "invalid_parameter", False),
    ("recv-add", "KO Il parametro num deve essere <= 20.", PARAM, "num_too_large", False),
    ("recv-add", "KO Errore nella creazione.", INTERNAL, "creation_failed", False),
    # recv-del
    ("recv-del", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("recv-del", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("recv-del", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("recv-del", "KO Parametro u_id non impostato.", PARAM, "missing_parameter", False),
    ("recv-del", "KO Parametro dest non impostato.", PARAM, "missing_parameter", False),
    ("recv-del", "KO Parametro sharecode non impostato.", PARAM, "missing_parameter", False),
    ("recv-del", "KO Utente non trovato.", NOTFOUND, "user_not_found", False),
    (
        "recv-del",
        "KO Sharecode non associato all’utente specificato.",
        NOTFOUND,
        "sharecode_not_found",
        False,
    ),
    # client-status
    ("client-status", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("client-status", "KO Username o password errati.", AUTH, "bad_credentials", False),
    ("client-status", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("client-status", "KO Parametro u_id non impostato.", PARAM, "missing_parameter", False),
    ("client-status", "KO Parametro active non impostato.", PARAM, "missing_parameter", False),
    ("client-status", "KO Utente non trovato.", NOTFOUND, "user_not_found", False),
    # send (placeholders filled as the gateway would)
    ("send", "KO Accesso non consentito (utente non abilitato).", AUTH, "user_not_enabled", False),
    ("send", "KO Accesso non consentito (IP non abilitato).", AUTH, "ip_not_enabled", False),
    ("send", "KO Parametro rcpt non impostato.", PARAM, "missing_parameter", False),
    ("send", "KO Parametro sender non impostato.", PARAM, "missing_parameter", False),
    ("send", "KO Parametro rcpt non valido.", PARAM, "invalid_parameter", False),
    ("send", "KO Parametro qty non valido.", PARAM, "invalid_parameter", False),
    ("send", "KO Il parametro data può contenere al massimo 160 caratteri.", PARAM, "too_long", False),
    ("send", "KO Il parametro sender può contenere al massimo 11 caratteri.", PARAM, "too_long", False),
    ("send", "KO Operatore sconosciuto.", PARAM, "unknown_operator", False),
    ("send", "KO Credito insufficiente.", CREDIT, "insufficient_credit", False),
    ("send", "KO Impossibile accodare il/i messaggio/i.", TEMP, "queue_unavailable", True),
    # mnc
    ("mnc", "KO Accesso non consentito (utente non abilitato).", AUTH, "user_not_enabled", False),
    ("mnc", "KO Accesso non consentito (IP non abilitato).", AUTH, "ip_not_enabled", False),
    ("mnc", "KO Parametro numbers non impostato.", PARAM, "missing_parameter", False),
    ("mnc", "KO Parametro numbers non valido.", PARAM, "invalid_parameter", False),
    ("mnc", "KO Parametro non corretti.", PARAM, "bad_parameters", False),
    ("mnc", "KO Il parametro numbers può contenere al massimo 500 numeri.", PARAM, "too_long", False),
    ("mnc", "KO Impossibile accodare la/e richiesta/e.", TEMP, "queue_unavailable", True),
    # batch-status
    ("batch-status", "KO Accesso non consentito (utente non abilitato).", AUTH, "user_not_enabled", False),
    ("batch-status", "KO Accesso non consentito (IP non abilitato).", AUTH, "ip_not_enabled", False),
    ("batch-status", "KO Parametro id non impostato.", PARAM, "missing_parameter", False),
    ("batch-status", "KO Parametro schema non corretto.", PARAM, "invalid_parameter", False),
    ("batch-status", "KO Accesso non consentito.", AUTH, "access_denied", False),
    ("batch-status", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
    ("batch-status", "KO Errore interno.", INTERNAL, "internal", True),
    # credit
    ("credit", "KO Accesso non consentito (utente non abilitato).", AUTH, "user_not_enabled", False),
    ("credit", "KO Accesso non consentito (IP non abilitato).", AUTH, "ip_not_enabled", False),
    ("credit", "KO Errore interno.", INTERNAL, "internal", True),
    ("credit", "KO Parametro type non corretto.", PARAM, "invalid_parameter", False),
    ("credit", "KO Parametri non corretti.", PARAM, "bad_parameters", False),
]

ITALIAN_WORDS = {"non", "Parametro", "Parametri", "consentito", "Impossibile", "errati", "trovato", "nella"}


def _variants() -> list[Any]:
    cases = []
    for endpoint, text, cls, code, retryable in DOCUMENTED_KO:
        other = text[:-1] if text.endswith(".") else text + "."
        for variant, label in ((text, "documented"), (other, "period-toggled")):
            cases.append(
                pytest.param(endpoint, variant, cls, code, retryable, id=f"{endpoint}:{variant}:{label}")
            )
    return cases


def make_client() -> SmSendClient:
    return SmSendClient(username="user", password="pw-Secret9", base_url=BASE, retry=NO_RETRY)


@pytest.mark.parametrize(("endpoint", "text", "cls", "code", "retryable"), _variants())
def test_documented_ko_maps_through_the_client(requests_mock, endpoint, text, cls, code, retryable):
    path, call = CALLS[endpoint]
    requests_mock.post(BASE + path, text=text, status_code=200)

    with pytest.raises(SmSendGatewayError) as info:
        call(make_client())

    exc = info.value
    assert type(exc) is cls
    assert exc.code == code
    assert exc.retryable is retryable
    assert exc.gateway_text == text
    assert text in str(exc)
    # An English explanation, not the Italian text again.
    assert exc.message and not ITALIAN_WORDS & set(exc.message.replace("(", " ").split())
    assert requests_mock.call_count == 1
    assert requests_mock.last_request.path == path


def test_every_endpoint_has_documented_ko_cases():
    assert {endpoint for endpoint, *_ in DOCUMENTED_KO} == set(CALLS)


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("KO Parametro rcpt non valido.", "rcpt"),
        ("KO Parametro u_id non impostato.", "u_id"),
        ("KO Il parametro data può contenere al massimo 160 caratteri.", "data"),
        ("KO Il parametro numbers può contenere al massimo 500 numeri.", "numbers"),
        ("KO Parametro type non corretto.", "type"),
    ],
)
def test_placeholder_parameter_is_named_in_the_explanation(text, param):
    exc = error_from_ko(text)
    assert f"'{param}'" in exc.message


@pytest.mark.parametrize(
    "text",
    [
        "KO Il parametro data puo' contenere al massimo 160 caratteri.",
        "KO Il parametro data puo contenere al massimo 160 caratteri",
        "KO il parametro DATA può contenere al massimo 160 caratteri.",
    ],
)
def test_too_long_tolerates_spelling_and_case(text):
    exc = error_from_ko(text)
    assert isinstance(exc, SmSendInvalidParameterError)
    assert exc.code == "too_long"


def test_most_specific_access_denied_wins():
    assert error_from_ko("Accesso non consentito (IP non abilitato).").code == "ip_not_enabled"
    assert error_from_ko("Accesso non consentito.").code == "access_denied"


def test_ip_not_enabled_explains_what_to_do():
    exc = error_from_ko("KO Accesso non consentito (IP non abilitato).")
    assert "IP" in exc.message and "back-office" in exc.message
    assert exc.retryable is False


@pytest.mark.parametrize("text", ["KO Something new happened.", "KO", "KO   ", "Totally unknown"])
def test_undocumented_ko_is_a_plain_non_retryable_gateway_error(text):
    exc = error_from_ko(text)
    assert type(exc) is SmSendGatewayError
    assert exc.code == "undocumented"
    assert exc.retryable is False
    assert exc.gateway_text is not None and exc.gateway_text.startswith("KO")


def test_undocumented_ko_through_client(requests_mock):
    requests_mock.post(BASE + "/sms/credit.php", text="KO Servizio in manutenzione")
    with pytest.raises(SmSendGatewayError) as info:
        make_client().credit()
    assert type(info.value) is SmSendGatewayError
    assert info.value.gateway_text == "KO Servizio in manutenzione"


def test_error_from_ko_with_or_without_prefix_is_the_same():
    a = error_from_ko("KO Credito insufficiente.")
    b = error_from_ko("Credito insufficiente.")
    assert type(a) is type(b) and a.code == b.code and a.gateway_text == b.gateway_text


def test_hierarchy():
    assert issubclass(SmSendValidationError, ValueError)
    assert issubclass(SmSendValidationError, SmSendError)
    assert issubclass(errors.SmSendTimeoutError, SmSendTransportError)
    for cls in (AUTH, PARAM, NOTFOUND, CREDIT, TEMP, INTERNAL):
        assert issubclass(cls, SmSendGatewayError)
    assert SmSendTransportError("x").request_sent is True
    assert SmSendTransportError("x").retryable is True
    assert SmSendTransportError("x", retryable=False).retryable is False


def test_str_without_gateway_text_is_the_message():
    assert str(SmSendValidationError("Bad input.")) == "Bad input."


# ----------------------------------------------------------------- SOAP faults (sendMms)

# The spec's own fault texts, by code.
SPEC_FAULT_TEXTS = {
    101: "not allowed",
    102: "operation not permitted",
    103: "bad recipient",
    104: "not allowed",
    105: "not allowed",
    106: "not allowed",
    107: "no auth suitable",
    109: "carrier problem",
    110: "Msg Blocked",
    111: "banned",
    124: "text too long",
    211: "quota_abs reached (credito non disponibile)",
    213: "quota_ny reached (notifiche non disponibili)",
    215: "Image file cannot be bigger than 100kB",
    216: "Image file type not supported",
    217: "Sound file bigger than 100kB",
    218: "Sound file type not supported",
    300: "System (Internal Error)",
    301: "(Connection Problem)",
    302: "(Generic Error)",
    303: "(Connection Problem)",
    310: "type unsupported",
    311: "send error",
    400: "(Internal Error)",
    401: "(Internal Error)",
    402: "(Internal Error)",
    500: "ERROR (Internal Error)",
    501: "ERROR (Internal Error)",
    502: "(Internal Error)",
    555: "Relay Error",
}
# docs/gateway.md, "SOAP web services": 109, 301, 303, 555 and the 3xx/4xx/5xx internal errors are transient.
TRANSIENT_FAULTS = {109, 300, 301, 302, 303, 311, 400, 401, 402, 500, 501, 502, 555}
FAULT_CLASSES = {
    101: AUTH,
    104: AUTH,
    105: AUTH,
    106: AUTH,
    107: AUTH,
    102: AUTH,
    211: CREDIT,
    213: CREDIT,
    103: PARAM,
    124: PARAM,
    215: PARAM,
    216: PARAM,
    217: PARAM,
    218: PARAM,
    310: PARAM,
}


def test_soap_fault_table_covers_the_spec():
    assert set(errors.SOAP_FAULTS) == set(SPEC_FAULT_TEXTS)


@pytest.mark.parametrize("number", sorted(SPEC_FAULT_TEXTS))
def test_soap_fault_maps(number):
    text = SPEC_FAULT_TEXTS[number]
    exc = error_from_fault(f"KO {number}", text)
    rule = errors.SOAP_FAULTS[number]
    assert type(exc) is rule.error
    assert exc.code == rule.code
    assert exc.retryable is (number in TRANSIENT_FAULTS)
    assert exc.gateway_text == f"KO {number} {text}"
    if number in FAULT_CLASSES:
        assert type(exc) is FAULT_CLASSES[number]
    if number in TRANSIENT_FAULTS:
        assert isinstance(exc, SmSendTemporaryError | SmSendInternalError)


def test_soap_fault_spec_example_quota_abs():
    exc = error_from_fault("KO 211", "quota_abs reached")
    assert isinstance(exc, SmSendInsufficientCreditError)
    assert exc.retryable is False
    assert "quota_abs reached" in str(exc)


@pytest.mark.parametrize("faultcode", ["  KO 211 ", "ko 211", "KO211"])
def test_soap_fault_code_spacing_and_case(faultcode):
    assert error_from_fault(faultcode, "x").code == "quota_abs"


@pytest.mark.parametrize(
    ("faultcode", "faultstring"), [("KO 999", "new"), ("SOAP-ENV:Server", "boom"), (None, None)]
)
def test_undocumented_soap_fault(faultcode, faultstring):
    exc = error_from_fault(faultcode, faultstring)
    assert type(exc) is SmSendGatewayError
    assert exc.code == "undocumented_fault"
    assert exc.retryable is False
