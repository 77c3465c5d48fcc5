"""Back-office endpoints of the sandbox over real HTTP: answers, KO texts, userlog reports."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from sandbox_helpers import RESELLER, post

from airflow_provider_smsend.sandbox.testing import run_sandbox

WHOLESALE = {"smsusername": "wholesale", "smspassword": "wholesale-pass"}


def bo(http, sandbox, endpoint: str, auth=RESELLER, **params) -> str:
    return post(http, sandbox, f"/backoffice/{endpoint}.php", **auth, **params)


def test_client_add_creates_a_client_that_can_log_in(http, sandbox):
    answer = bo(
        http,
        sandbox,
        "client-add",
        name="New",
        username="new",
        password="pw",
        reseller="0",
        tpl_id="2",
        email="new@example.com",
    )
    assert answer == "OK 1003"
    assert bo(http, sandbox, "credit-get", u_id="1003") == "OK 0.0000"
    assert post(http, sandbox, "/sms/credit.php", user="new", **{"pass": "pw"}) == "OK 0.0000"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"username": "x", "password": "y", "reseller": "0"}, "KO Parametro name non impostato."),
        ({"name": "x", "password": "y", "reseller": "0"}, "KO Parametro username non impostato."),
        ({"name": "x", "username": "y", "reseller": "0"}, "KO Parametro password non impostato"),
        ({"name": "x", "username": "y", "password": "z"}, "KO Impossibile creare un rivenditore."),
        ({"name": "x", "username": "y", "password": "z", "reseller": "2"}, "KO Parametri non corretti."),
        (
            {"name": "x", "username": "y", "password": "z", "reseller": "0", "tpl_id": "9"},
            "KO Profilo non corretto.",
        ),
        ({"name": "x", "username": "demo", "password": "z", "reseller": "0"}, "KO Username già esistente."),
    ],
)
def test_client_add_ko_texts(http, sandbox, params, expected):
    assert bo(http, sandbox, "client-add", **params) == expected


def test_a_reseller_with_rights_creates_a_reseller_by_default(http, sandbox):
    assert (
        bo(http, sandbox, "client-add", auth=WHOLESALE, name="R", username="sub", password="p") == "OK 1003"
    )
    assert bo(http, sandbox, "credit-get", auth={"smsusername": "sub", "smspassword": "p"}, u_id="1001") == (
        "KO Utente non trovato."
    )


def test_backoffice_access(http, sandbox):
    assert bo(http, sandbox, "credit-get", auth={**RESELLER, "smspassword": "bad"}, u_id="") == (
        "KO Username o password errati."
    )
    assert (
        bo(http, sandbox, "credit-get", auth={"smsusername": "demo", "smspassword": "demo-pass"}, u_id="1001")
        == "KO Accesso non consentito."
    )
    assert bo(http, sandbox, "credit-get", auth=WHOLESALE, u_id="1001") == "KO Utente non trovato."


def test_credit_add_accepts_both_decimal_separators(http, sandbox):
    assert bo(http, sandbox, "credit-add", u_id="1001", bill_id="1", credit="12,3456") == "OK 1"
    assert bo(http, sandbox, "credit-add", u_id="1001", bill_id="1", credit="0.0001") == "OK 2"
    assert bo(http, sandbox, "credit-get", u_id="1001") == "OK 112.3457"
    assert bo(http, sandbox, "credit-add", u_id="1002", bill_id="2") == "OK 3"  # tariff's default credit
    assert bo(http, sandbox, "credit-get", u_id="1002") == "OK 205.0000"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"bill_id": "1"}, "KO Parametro u_id non impostato."),
        ({"u_id": "1001"}, "KO Parametro bill_id non impostato."),
        ({"u_id": "4242", "bill_id": "1"}, "KO Utente non trovato."),
        ({"u_id": "abc", "bill_id": "1"}, "KO Parametri non corretti."),
        ({"u_id": "1001", "bill_id": "9"}, "KO Tariffa non corretta."),
        ({"u_id": "1001", "bill_id": "1", "credit": "12.34567"}, "KO Parametro credit non corretto."),
        ({"u_id": "1001", "bill_id": "1", "credit": "-1"}, "KO Parametro credit non corretto."),
        ({"u_id": "1001", "bill_id": "1", "credit": "1.2.3"}, "KO Parametro credit non corretto."),
    ],
)
def test_credit_add_ko_texts(http, sandbox, params, expected):
    assert bo(http, sandbox, "credit-add", **params) == expected


def test_credit_get(http, sandbox):
    assert bo(http, sandbox, "credit-get", u_id="1001") == "OK 100.0000"
    assert bo(http, sandbox, "credit-get") == "KO Parametro u_id non impostato."
    assert bo(http, sandbox, "credit-get", u_id="999") == "KO Utente non trovato."


def test_recv_add_and_recv_del(http, sandbox):
    assert bo(http, sandbox, "recv-add", u_id="1001", dest="+393399999999") == "OK 001"
    assert bo(http, sandbox, "recv-add", u_id="1002", dest="+393399999999", num="2") == "OK 002,003"
    assert bo(http, sandbox, "recv-del", u_id="1001", dest="+393399999999", sharecode="002") == (
        "KO Sharecode non associato all’utente specificato."
    )
    assert bo(http, sandbox, "recv-del", u_id="1002", dest="+393399999999", sharecode="002") == "OK"
    assert bo(http, sandbox, "recv-add", u_id="1001", dest="+393399999999") == "OK 002"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"dest": "+393399999999"}, "KO Parametro u_id non impostato."),
        ({"u_id": "1001"}, "KO Parametro dest non impostato."),
        ({"u_id": "7", "dest": "+393399999999"}, "KO Utente non trovato."),
        ({"u_id": "1001", "dest": "3399999999"}, "KO Numero di ricezione non corretto."),
        ({"u_id": "1001", "dest": "+393399999999", "num": "zero"}, "KO Parametro num non corretto."),
        ({"u_id": "1001", "dest": "+393399999999", "num": "0"}, "KO Parametro num non corretto."),
        ({"u_id": "1001", "dest": "+393399999999", "num": "21"}, "KO Il parametro num deve essere <= 20."),
    ],
)
def test_recv_add_ko_texts(http, sandbox, params, expected):
    assert bo(http, sandbox, "recv-add", **params) == expected


def test_recv_del_ko_texts(http, sandbox):
    assert bo(http, sandbox, "recv-del", dest="+39", sharecode="001") == "KO Parametro u_id non impostato."
    assert bo(http, sandbox, "recv-del", u_id="1001", sharecode="001") == "KO Parametro dest non impostato."
    assert (
        bo(http, sandbox, "recv-del", u_id="1001", dest="+393399999999")
        == "KO Parametro sharecode non impostato."
    )
    assert (
        bo(http, sandbox, "recv-del", u_id="5", dest="+393399999999", sharecode="001")
        == "KO Utente non trovato."
    )


def test_client_status(http, sandbox):
    assert bo(http, sandbox, "client-status", u_id="1002", active="0") == "OK Disattivato"
    assert post(http, sandbox, "/sms/credit.php", user="demo2", **{"pass": "demo2-pass"}) == (
        "KO Accesso non consentito (utente non abilitato)."
    )
    assert bo(http, sandbox, "client-status", u_id="1002", active="1") == "OK Attivato"
    assert post(http, sandbox, "/sms/credit.php", user="demo2", **{"pass": "demo2-pass"}) == "OK 5.0000"
    assert bo(http, sandbox, "client-status", active="1") == "KO Parametro u_id non impostato."
    assert bo(http, sandbox, "client-status", u_id="1002") == "KO Parametro active non impostato."
    assert bo(http, sandbox, "client-status", u_id="3", active="1") == "KO Utente non trovato."
    assert bo(http, sandbox, "client-status", u_id="1002", active="yes") == "KO Parametri non corretti."


def test_userlog_reports(http, sandbox):
    bo(http, sandbox, "credit-add", u_id="1001", bill_id="1", credit="10")
    bo(http, sandbox, "credit-add", u_id="1002", bill_id="2", credit="1,5")
    bo(http, sandbox, "recv-add", u_id="1001", dest="+393399999999", num="2")
    bo(http, sandbox, "recv-del", u_id="1001", dest="+393399999999", sharecode="001")
    today = datetime.now(ZoneInfo("Europe/Rome")).strftime("%Y-%m-%d")

    credits = bo(http, sandbox, "userlog-get", type="credits")
    assert credits.endswith("\r\n") and "\n" not in credits.replace("\r\n", "")
    rows = [line.split("\t") for line in credits.split("\r\n")[:-1]]
    assert rows[0] == ["id", "date", "u_id", "username", "bill_id", "credit"]
    assert [r[2:] for r in rows[1:]] == [["1001", "demo", "1", "10.0000"], ["1002", "demo2", "2", "1.5000"]]
    assert rows[1][1].startswith(today) and len(rows[1][1]) == 19

    only = bo(http, sandbox, "userlog-get", type="credits", u_id="1002").split("\r\n")
    assert len(only) == 3 and only[1].split("\t")[3] == "demo2"
    added = bo(http, sandbox, "userlog-get", type="recv_add").split("\r\n")
    assert added[0] == "id\tdate\tu_id\tusername\tdest\tsharecode"
    assert [line.split("\t")[4:] for line in added[1:3]] == [
        ["+393399999999", "001"],
        ["+393399999999", "002"],
    ]
    deleted = bo(http, sandbox, "userlog-get", type="recv_del", **{"from": today, "to": today}).split("\r\n")
    assert deleted[1].split("\t")[5] == "001"
    assert bo(http, sandbox, "userlog-get", type="credits", **{"to": "2000-01-01"}) == (
        "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n"
    )
    assert (
        bo(http, sandbox, "userlog-get", type="credits", auth=WHOLESALE)
        == "id\tdate\tu_id\tusername\tbill_id\tcredit\r\n"
    )


def test_userlog_ko_texts(http, sandbox):
    assert bo(http, sandbox, "userlog-get") == "KO Parametro type non impostato."
    assert bo(http, sandbox, "userlog-get", type="sms") == "KO Parametri non corretti."
    assert (
        bo(http, sandbox, "userlog-get", type="credits", **{"from": "22/11/2005"})
        == "KO Parametri non corretti."
    )
    assert bo(http, sandbox, "userlog-get", type="credits", u_id="77") == "KO Parametri non corretti."


def test_reception_numbers_can_be_restricted(http):
    fixture = json.loads(
        resources.files("airflow_provider_smsend.sandbox")
        .joinpath("default_accounts.json")
        .read_text(encoding="utf-8")
    )
    fixture["reception_numbers"] = ["+393351234567"]
    with run_sandbox(config=fixture) as sandbox:
        assert bo(http, sandbox, "recv-add", u_id="1001", dest="+393399999999") == (
            "KO Numero di ricezione non corretto."
        )
        assert bo(http, sandbox, "recv-add", u_id="1001", dest="+393351234567") == "OK 001"
