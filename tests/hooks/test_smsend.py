"""SmSendHook: Airflow connection (env var, URI and JSON forms) -> configured client."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
import requests

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import RetryPolicy
from airflow_provider_smsend.hooks.smsend import SmSendHook

SANDBOX_URI = "smsend://demo:demo-pass@127.0.0.1:8765/?scheme=http&reseller_username=reseller&reseller_password=reseller-pass"
PASSWORD = "Pw-0f-the-API"
RESELLER_PASSWORD = "Rs-Secret-77"


def set_json(monkeypatch, conn_id: str = "smsend_default", **fields) -> None:
    fields.setdefault("conn_type", "smsend")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_default_conn_id():
    assert SmSendHook().smsend_conn_id == "smsend_default" == SmSendHook.default_conn_name
    assert SmSendHook.conn_type == "smsend"


def test_sandbox_uri(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_DEFAULT", SANDBOX_URI)
    client = SmSendHook().client
    assert isinstance(client, SmSendClient)
    assert client.base_url == "http://127.0.0.1:8765"
    assert client.username == "demo"
    assert client._password == "demo-pass"
    assert client.reseller_username == "reseller"
    assert client._reseller_password == "reseller-pass"


def test_other_conn_id(monkeypatch):
    set_json(monkeypatch, "my_sms", host="sms.reseller.example", login="u", password=PASSWORD)
    hook = SmSendHook(smsend_conn_id="my_sms")
    assert hook.client.base_url == "https://sms.reseller.example"
    assert hook.get_conn() is hook.client


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "app.smsend.it"}, "https://app.smsend.it"),
        ({"host": "app.smsend.it", "port": 8443}, "https://app.smsend.it:8443"),
        ({"host": "http://gw.local:8080"}, "http://gw.local:8080"),
        ({"host": "http://127.0.0.1", "port": 8765}, "http://127.0.0.1:8765"),
        ({"host": "https://sms.reseller.example/api", "port": 8443}, "https://sms.reseller.example:8443/api"),
        ({"host": "http://gw.local:8080", "port": 9999}, "http://gw.local:8080"),
        ({"host": "https://sms.reseller.example/"}, "https://sms.reseller.example"),
        ({"host": "127.0.0.1", "port": 8765, "extra": {"scheme": "http"}}, "http://127.0.0.1:8765"),
        ({"host": "gw.local", "extra": {"scheme": "HTTP"}}, "http://gw.local"),
        ({}, "https://app.smsend.it"),
    ],
)
def test_host_forms(monkeypatch, fields, url):
    set_json(monkeypatch, login="u", password=PASSWORD, **fields)
    assert SmSendHook().client.base_url == url


def test_uri_with_bare_host_is_https(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_DEFAULT", f"smsend://user:{PASSWORD}@app.smsend.it")
    assert SmSendHook().client.base_url == "https://app.smsend.it"


def test_reseller_credentials_default_to_login_and_password(monkeypatch):
    set_json(monkeypatch, host="app.smsend.it", login="user", password=PASSWORD)
    client = SmSendHook().client
    assert (client.reseller_username, client._reseller_password) == ("user", PASSWORD)


def test_extras_reach_the_client(monkeypatch):
    set_json(
        monkeypatch,
        host="app.smsend.it",
        login="user",
        password=PASSWORD,
        extra={
            "timeout": "12.5",
            "connect_timeout": 2,
            "charset": "iso-8859-1",
            "default_region": "GB",
            "default_sender": "ACME",
            "default_quality": "n",
        },
    )
    client = SmSendHook().client
    assert client.timeout == (2.0, 12.5)
    assert (client.charset, client.default_region, client.default_sender, client.default_quality) == (
        "iso-8859-1",
        "GB",
        "ACME",
        "n",
    )


def test_default_timeouts_are_finite(monkeypatch):
    set_json(monkeypatch, host="app.smsend.it", login="user", password=PASSWORD)
    connect, read = SmSendHook().client.timeout
    assert 0 < connect < float("inf") and 0 < read < float("inf")


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"timeout": "abc"}, "timeout"),
        ({"timeout": "0"}, "timeout"),
        ({"timeout": -3}, "timeout"),
        ({"timeout": "inf"}, "timeout"),
        ({"timeout": "nan"}, "timeout"),
        ({"connect_timeout": [1]}, "connect_timeout"),
    ],
)
def test_invalid_timeouts_give_a_clear_error(monkeypatch, extra, key):
    set_json(monkeypatch, host="app.smsend.it", login="user", password=PASSWORD, extra=extra)
    with pytest.raises(SmSendValidationError) as info:
        SmSendHook().client  # noqa: B018
    assert repr(key) in str(info.value)
    assert "seconds" in str(info.value) or "finite" in str(info.value)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"host": "app.smsend.it", "login": "user"}, "login and a password"),
        ({"host": "app.smsend.it", "password": PASSWORD}, "login and a password"),
        ({"host": "gw", "login": "u", "password": PASSWORD, "extra": {"scheme": "ftp"}}, "'scheme'"),
        ({"host": "gw", "login": "u", "password": PASSWORD, "extra": {"default_quality": "top"}}, "quality"),
        ({"host": "gw", "login": "u", "password": PASSWORD, "extra": {"charset": "klingon"}}, "charset"),
    ],
)
def test_invalid_connections(monkeypatch, fields, fragment):
    set_json(monkeypatch, **fields)
    with pytest.raises(SmSendValidationError) as info:
        SmSendHook().client  # noqa: B018
    assert fragment in str(info.value)
    assert PASSWORD not in str(info.value)


def test_no_io_in_constructor(requests_mock):
    SmSendHook(smsend_conn_id="does_not_exist_anywhere")
    assert requests_mock.called is False


# ------------------------------------------------------------------ test_connection


@pytest.fixture
def hook(monkeypatch) -> SmSendHook:
    set_json(
        monkeypatch,
        host="gw.test",
        login="user",
        password=PASSWORD,
        extra={"reseller_username": "reseller", "reseller_password": RESELLER_PASSWORD},
    )
    hook = SmSendHook()
    hook.client.retry = RetryPolicy(attempts=2, initial_wait=0)  # keep failing checks fast
    return hook


USERLOG_CREDITS = (
    "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n1\t2026-12-02 09:00:00\t7\tmario.rossi\t1\t5.0000\r\n"
)


def test_test_connection_checks_the_api_then_the_backoffice(requests_mock, hook):
    requests_mock.post("https://gw.test/sms/credit.php", text="OK 12.3400")
    requests_mock.post("https://gw.test/backoffice/userlog-get.php", text=USERLOG_CREDITS)
    ok, message = hook.test_connection()
    assert ok is True
    assert "12.3400" in message and "back-office credentials work" in message
    assert [r.path for r in requests_mock.request_history] == [
        "/sms/credit.php",
        "/backoffice/userlog-get.php",
    ]
    credit_body, userlog_body = (r.body.decode() for r in requests_mock.request_history)
    assert "type=credit" in credit_body and "user=user" in credit_body
    # read-only: the credits log of one day, with the reseller's own credentials
    assert "type=credits" in userlog_body and "smsusername=reseller" in userlog_body
    fields = dict(part.split("=", 1) for part in userlog_body.split("&"))
    assert fields["from"] == fields["to"] and len(fields["from"]) == 10
    assert "mario.rossi" not in message


def test_test_connection_without_backoffice_credentials_calls_only_credit(monkeypatch, requests_mock):
    set_json(monkeypatch, host="gw.test", login="user", password=PASSWORD, extra={"reseller_username": None})
    requests_mock.post("https://gw.test/sms/credit.php", text="OK 12.3400")
    ok, message = SmSendHook().test_connection()
    assert ok is True and "12.3400" in message and "back-office" not in message
    assert [r.path for r in requests_mock.request_history] == ["/sms/credit.php"]


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ({"text": "KO Username o password errati."}, "Wrong username or password"),
        ({"text": "KO Accesso non consentito (IP non abilitato)."}, "IP not enabled"),
        ({"status_code": 502, "text": "<html>bad gateway</html>"}, "HTTP 502"),
    ],
)
def test_test_connection_names_failing_backoffice_credentials(requests_mock, hook, answer, fragment, caplog):
    requests_mock.post("https://gw.test/sms/credit.php", text="OK 12.3400")
    requests_mock.post("https://gw.test/backoffice/userlog-get.php", **answer)
    with caplog.at_level(logging.DEBUG):
        ok, message = hook.test_connection()
    assert ok is False
    assert "back-office credentials (reseller_username, reseller_password) failed" in message
    assert "SMS API works" in message and fragment.lower() in message.lower()
    assert requests_mock.call_count == 2  # one attempt, no retry
    for secret in (PASSWORD, RESELLER_PASSWORD):
        assert secret not in message and secret not in caplog.text


def test_test_connection_names_failing_api_credentials(requests_mock, hook):
    requests_mock.post("https://gw.test/sms/credit.php", text="KO Username o password errati.")
    ok, message = hook.test_connection()
    assert ok is False
    assert message.startswith("The SMS API user and password failed the credit check")
    assert "back-office" not in message
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ({"text": "KO Accesso non consentito (IP non abilitato)."}, "IP not enabled"),
        ({"text": "KO Username o password errati."}, "Wrong username or password"),
        ({"status_code": 500, "text": "<html>boom</html>"}, "HTTP 500"),
        ({"text": "<html>captive portal</html>"}, "not an OK/KO answer"),
        ({"exc": requests.ConnectionError("Connection reset by peer")}, "connection"),
        ({"exc": requests.ReadTimeout("slow")}, "did not answer"),
    ],
)
def test_test_connection_failure_never_raises(requests_mock, hook, answer, fragment, caplog):
    requests_mock.post("https://gw.test/sms/credit.php", **answer)
    with caplog.at_level(logging.DEBUG):
        ok, message = hook.test_connection()
    assert ok is False
    assert fragment.lower() in message.lower()
    assert {r.path for r in requests_mock.request_history} == {"/sms/credit.php"}
    for secret in (PASSWORD, RESELLER_PASSWORD):
        assert secret not in message
        assert secret not in repr(hook.client)
        assert not any(secret in record.getMessage() for record in caplog.records)
        assert secret not in caplog.text


def test_test_connection_makes_one_attempt_and_keeps_the_policy(requests_mock, hook):
    requests_mock.post("https://gw.test/sms/credit.php", status_code=503, text="busy")
    policy = RetryPolicy(attempts=4, initial_wait=0)
    hook.client.retry = policy
    ok, _ = hook.test_connection()
    assert ok is False
    assert requests_mock.call_count == 1
    assert hook.client.retry is policy


def test_test_connection_with_broken_configuration_never_raises(monkeypatch, requests_mock):
    set_json(monkeypatch, host="gw.test", login="user", password=PASSWORD, extra={"timeout": "soon"})
    ok, message = SmSendHook().test_connection()
    assert ok is False and "timeout" in message
    assert requests_mock.called is False


def test_test_connection_without_connection_never_raises(requests_mock):
    ok, message = SmSendHook(smsend_conn_id="smsend_missing_conn_xyz").test_connection()
    assert ok is False and message
    assert requests_mock.called is False


def test_password_not_in_client_repr(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_DEFAULT", SANDBOX_URI)
    text = repr(SmSendHook().client)
    assert "demo-pass" not in text and "reseller-pass" not in text


def test_hook_client_works_end_to_end(requests_mock, hook):
    requests_mock.post("https://gw.test/backoffice/credit-get.php", text="OK 3.5000")
    assert hook.client.credit_get(7) == Decimal("3.5000")
    body = requests_mock.last_request.body.decode()
    assert "smsusername=reseller" in body and f"smspassword={RESELLER_PASSWORD}" in body


# ------------------------------------------------------------------ UI


def test_ui_field_behaviour():
    behaviour = SmSendHook.get_ui_field_behaviour()
    assert set(behaviour) == {"hidden_fields", "relabeling", "placeholders"}
    assert isinstance(behaviour["hidden_fields"], list)
    assert {"host", "login", "password"} <= set(behaviour["relabeling"])
    assert "host" in behaviour["placeholders"]
    for shown in ("host", "login", "password"):
        assert shown not in behaviour["hidden_fields"]


@pytest.mark.parametrize(("retries", "attempts"), [(None, 4), ("0", 1), (2, 3), ("10", 11)])
def test_retries_extra_sets_the_read_retry_policy(monkeypatch, retries, attempts):
    extra = {} if retries is None else {"retries": retries}
    set_json(monkeypatch, host="gw.test", login="user", password=PASSWORD, extra=extra)
    assert SmSendHook().client.retry.attempts == attempts


@pytest.mark.parametrize("retries", ["-1", "many", "11", True, "2.5"])
def test_invalid_retries_extra_is_a_clear_error(monkeypatch, retries):
    set_json(monkeypatch, host="gw.test", login="user", password=PASSWORD, extra={"retries": retries})
    with pytest.raises(SmSendValidationError, match="retries"):
        _ = SmSendHook().client


# ------------------------------------------------------------------ the UI form's extras


def test_extras_stored_as_null_by_the_form_mean_the_hook_defaults(monkeypatch):
    from airflow_provider_smsend.get_provider_info import conn_fields

    set_json(monkeypatch, "plain", host="gw.test", login="user", password=PASSWORD)
    set_json(
        monkeypatch,
        "from_form",
        host="gw.test",
        login="user",
        password=PASSWORD,
        extra=dict.fromkeys(conn_fields()),
    )
    plain, from_form = SmSendHook(smsend_conn_id="plain"), SmSendHook(smsend_conn_id="from_form")
    for hook in (plain, from_form):
        assert not hook.backoffice_configured
        assert hook.default_recipients == []
        assert hook.price_per_segment("h") is None
    attributes = ("base_url", "timeout", "charset", "default_region", "default_sender", "default_quality")
    attributes += ("reseller_username", "max_report_bytes")
    for name in attributes:
        assert getattr(plain.client, name) == getattr(from_form.client, name), name
    assert plain.client.retry.attempts == from_form.client.retry.attempts == 4
    assert from_form.soap_client.mms_auth == plain.soap_client.mms_auth


@pytest.mark.parametrize("key", ["timeout", "connect_timeout", "retries", "max_report_bytes"])
def test_the_form_bounds_are_the_hooks(monkeypatch, key):
    from airflow_provider_smsend.get_provider_info import LIMITS, conn_fields

    schema = conn_fields()[key]["schema"]
    minimum, maximum = LIMITS[key]
    assert (schema["minimum"], schema.get("maximum")) == (minimum, maximum)
    integer = schema["type"][0] == "integer"
    accepted = [minimum] + ([maximum] if maximum is not None else [])
    rejected = [minimum - (1 if integer else minimum / 2)] + ([maximum + 1] if maximum is not None else [])
    for value, ok in [(v, True) for v in accepted] + [(v, False) for v in rejected]:
        set_json(monkeypatch, host="gw.test", login="user", password=PASSWORD, extra={key: value})
        if ok:
            SmSendHook().client  # noqa: B018
        else:
            with pytest.raises(SmSendValidationError, match=key):
                SmSendHook().client  # noqa: B018


@pytest.mark.parametrize(
    ("reseller_password", "ok", "fragment"),
    [("reseller-pass", True, "back-office credentials work"), ("not-the-password", False, "back-office")],
)
def test_test_connection_against_the_sandbox(monkeypatch, sandbox, reseller_password, ok, fragment):
    set_json(
        monkeypatch,
        host=sandbox.url,
        login="demo",
        password="demo-pass",
        extra={"reseller_username": "reseller", "reseller_password": reseller_password},
    )
    result, message = SmSendHook().test_connection()
    assert (result, fragment in message) == (ok, True), message
    assert reseller_password not in message


def test_the_pseudonym_key_is_the_extra_else_the_password(monkeypatch):
    set_json(monkeypatch, host="app.smsend.it", login="user", password=PASSWORD)
    assert SmSendHook().pseudonym_key == PASSWORD
    set_json(
        monkeypatch, host="app.smsend.it", login="user", password=PASSWORD, extra={"pseudonym_key": "pk"}
    )
    assert SmSendHook().pseudonym_key == "pk"
    set_json(monkeypatch, host="app.smsend.it", login="user")
    with pytest.raises(SmSendValidationError, match="pseudonym_key"):
        SmSendHook().pseudonym_key  # noqa: B018
