"""SMS endpoints of the sandbox over real HTTP: answers, KO texts, check order, charging, lifecycle."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sandbox_helpers import DEMO, post

from airflow_provider_smsend.client.http import SmSendClient
from airflow_provider_smsend.client.retry import NO_RETRY

SEND = {**DEMO, "rcpt": "+393331234567", "data": "Hello", "sender": "ACME", "qty": "h"}


def send(http, sandbox, **overrides) -> str:
    return post(http, sandbox, "/sms/send.php", **{**SEND, **overrides})


def status(http, sandbox, request_id: str, kind: str) -> list[str]:
    return post(
        http, sandbox, "/sms/batch-status.php", **DEMO, id=request_id, type=kind, schema="1"
    ).splitlines()


def test_send_answers_cost_and_charges_the_account(http, sandbox):
    assert send(http, sandbox) == "OK 0.0850"
    assert sandbox.admin.credit(1001) == "99.9150"
    [message] = sandbox.admin.messages(rcpt="+393331234567")
    assert message["sender"] == "ACME" and message["text"] == "Hello" and message["segments"] == 1


def test_send_with_return_id_answers_cost_and_request_id(http, sandbox):
    first = send(http, sandbox, return_id="1").split()
    second = send(http, sandbox, return_id="1", qty="ll").split()
    assert first == ["OK", "0.0850", "HTTP00000000001"]
    assert second == ["OK", "0.0450", "HTTP00000000002"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"rcpt": ""}, "KO Parametro rcpt non impostato."),
        ({"rcpt": "3331234567"}, "KO Parametro rcpt non valido."),
        ({"data": ""}, "KO Parametro data non impostato."),
        ({"sender": ""}, "KO Parametro sender non impostato."),
        ({"sender": "TWELVECHARSX"}, "KO Parametro sender non valido."),
        ({"qty": ""}, "KO Parametro qty non impostato."),
        ({"qty": "x"}, "KO Parametro qty non valido."),
        ({"operation": "FAX"}, "KO Parametro operation non valido."),
        ({"operation": "UCS2", "qty": "ll"}, "KO Parametro operation non valido."),
        ({"operation": "MULTITEXT", "qty": "a"}, "KO Parametro operation non valido."),
        ({"operation": "WAPPUSH"}, "KO Parametro url non impostato."),
        ({"data": "Ciao 😀"}, "KO Parametro data non valido."),
        ({"data": "x" * 161}, "KO Il parametro data può contenere al massimo 160 caratteri."),
        ({"data": "€" * 81}, "KO Il parametro data può contenere al massimo 160 caratteri."),
        (
            {"data": "ж" * 71, "operation": "UCS2"},
            "KO Il parametro data può contenere al massimo 70 caratteri.",
        ),
        (
            {"data": "x" * 919, "operation": "MULTITEXT"},
            "KO Il parametro data può contenere al massimo 918 caratteri.",
        ),
        ({"return_id": "2"}, "KO Parametro return_id non valido."),
        ({"rcpt": "+393331230003"}, "KO Operatore sconosciuto."),
    ],
)
def test_send_ko_texts(http, sandbox, overrides, expected):
    assert send(http, sandbox, **overrides) == expected
    assert sandbox.admin.messages() == []
    assert sandbox.admin.credit(1001) == "100.0000"


def test_sender_may_be_an_international_number(http, sandbox):
    assert send(http, sandbox, sender="+393351112222") == "OK 0.0850"


def test_unencoded_plus_reaches_the_gateway_as_a_space(http, sandbox):
    answer = http.post(
        f"{sandbox.url}/sms/send.php",
        data="user=demo&pass=demo-pass&rcpt=+393331234567&data=x&sender=A&qty=h",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.text == "KO Parametro rcpt non valido."


def test_auth_is_checked_before_parameters(http, sandbox):
    assert (
        send(http, sandbox, **{"pass": "wrong", "rcpt": ""})
        == "KO Accesso non consentito (utente non abilitato)."
    )
    assert post(http, sandbox, "/sms/mnc.php", user="nobody", numbers="") == (
        "KO Accesso non consentito (utente non abilitato)."
    )


def test_parameters_are_checked_in_documented_order(http, sandbox):
    assert send(http, sandbox, rcpt="bad", data="", sender="", qty="") == "KO Parametro rcpt non valido."
    assert send(http, sandbox, data="", sender="", qty="zz") == "KO Parametro data non impostato."
    assert send(http, sandbox, sender="!", qty="zz") == "KO Parametro sender non valido."


def test_disabled_client_is_refused(http, sandbox):
    assert (
        post(
            http,
            sandbox,
            "/backoffice/client-status.php",
            smsusername="reseller",
            smspassword="reseller-pass",
            u_id="1001",
            active="0",
        )
        == "OK Disattivato"
    )
    assert send(http, sandbox) == "KO Accesso non consentito (utente non abilitato)."
    assert (
        post(http, sandbox, "/sms/credit.php", **DEMO) == "KO Accesso non consentito (utente non abilitato)."
    )


def test_ip_allowlist(http, sandbox):
    sandbox.admin.set_settings(allow_ips=["10.0.0.0/8"])
    assert send(http, sandbox, **{"pass": "wrong"}) == "KO Accesso non consentito (IP non abilitato)."
    assert (
        post(
            http, sandbox, "/backoffice/credit-get.php", smsusername="reseller", smspassword="x", u_id="1001"
        )
        == "KO Accesso non consentito."
    )
    sandbox.admin.set_settings(allow_ips=["127.0.0.1"])
    assert send(http, sandbox) == "OK 0.0850"


def test_charging_is_per_segment(http, sandbox):
    assert send(http, sandbox, data="x" * 161, operation="MULTITEXT") == "OK 0.1700"  # 2 x 153
    assert send(http, sandbox, data="x" * 307, operation="MULTITEXT") == "OK 0.2550"  # 3 segments
    assert send(http, sandbox, data="ж" * 71, operation="MULTIUCS2") == "OK 0.1700"
    assert send(http, sandbox, data="[" * 80, qty="ll") == "OK 0.0450"  # 160 septets, one segment
    assert sandbox.admin.credit(1001) == str(Decimal("100.0000") - Decimal("0.6400"))


@pytest.mark.parametrize(
    ("data", "operation", "segments"),
    [
        ("€" * 153, "MULTITEXT", 3),  # 306 septets, but an escape never straddles two parts: 76 € each
        ("a" * 152 + "€" + "a" * 152, "MULTITEXT", 3),  # the € starts part 2
        ("a" * 151 + "€" + "a" * 153, "MULTITEXT", 2),  # the € ends part 1 exactly
        ("€" * 459, "MULTITEXT", 7),  # 918 septets, the longest MULTITEXT, in 7 parts
        ("😀" * 67, "MULTIUCS2", 3),  # 134 code units, but a surrogate pair never straddles: 33 each
        ("a" * 66 + "😀" + "a" * 66, "MULTIUCS2", 3),
        ("😀" * 201, "MULTIUCS2", 7),  # 402 code units, the longest MULTIUCS2, in 7 parts
        ("€" * 153, "MULTIUCS2", 3),  # € is one code unit in UCS-2
    ],
    ids=[
        "euro*153",
        "euro-starts-part-2",
        "euro-ends-part-1",
        "euro*459",
        "emoji*67",
        "emoji-starts-part-2",
        "emoji*201",
        "euro*153-ucs2",
    ],
)
def test_charging_never_splits_an_escape_or_a_surrogate_pair(http, sandbox, data, operation, segments):
    expected = Decimal("0.0850") * segments
    assert send(http, sandbox, data=data, operation=operation) == f"OK {expected}"
    [message] = sandbox.admin.messages()
    assert message["segments"] == segments


@pytest.mark.parametrize(
    "text",
    ["€" * 153, "Prezzo: 5€ [IVA] " * 20, "a" * 152 + "€" * 80, "😀" * 67, "Ciao 😀 " * 30, "ж" * 200 + "🎉"],
    ids=["euro*153", "prices", "euro-after-152", "emoji*67", "greetings", "cyrillic-and-emoji"],
)
def test_the_client_estimates_what_the_sandbox_charges(sandbox, text):
    """The sandbox counts on its own: the client's segments times the price is the charge."""
    client = SmSendClient(
        base_url=sandbox.url,
        username="demo",
        password="demo-pass",
        default_sender="ACME",
        default_quality="h",
        retry=NO_RETRY,
    )
    result = client.send("+393331234567", text)
    assert result.message.segments > 1
    assert result.cost == Decimal("0.0850") * result.message.segments


def test_insufficient_credit(http, sandbox):
    sandbox.admin.set_credit(1001, "0.0849")
    assert send(http, sandbox) == "KO Credito insufficiente."
    assert send(http, sandbox, qty="ll") == "OK 0.0450"
    assert sandbox.admin.credit(1001) == "0.0399"
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers=",".join(["+393331234567"] * 10)) == (
        "KO Credito insufficiente."
    )


def test_get_query_parameters_are_accepted(http, sandbox):
    answer = http.get(f"{sandbox.url}/sms/credit.php", params={**DEMO, "type": "credit"})
    assert answer.text == "OK 100.0000"


def test_request_charset_is_honoured(http, sandbox):
    body = "user=demo&pass=demo-pass&rcpt=%2B393331234567&sender=A&qty=h&data=caf%E8"
    answer = http.post(
        f"{sandbox.url}/sms/send.php",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=iso-8859-1"},
    )
    assert answer.text == "OK 0.0850"
    assert sandbox.admin.messages()[0]["text"] == "cafè"


def test_credit_types(http, sandbox):
    assert post(http, sandbox, "/sms/credit.php", **DEMO) == "OK 100.0000"
    expected = {
        "credit": "100.0000",
        "n": "1052",
        "h": "1176",
        "hqs": "1176",
        "a": "1428",
        "l": "1666",
        "ll": "2222",
        "lqs": "2222",
    }
    for kind, value in expected.items():
        assert post(http, sandbox, "/sms/credit.php", **DEMO, type=kind) == f"OK {value}"
    assert post(http, sandbox, "/sms/credit.php", **DEMO, type="x") == "KO Parametro type non corretto."


def test_lifecycle_follows_the_advanceable_clock(http, sandbox):
    sandbox.admin.set_settings(delivery_delay=2.0)  # queue final after 2 s, notify after 4 s
    request_id = send(http, sandbox, return_id="1").split()[2]
    assert status(http, sandbox, request_id, "queue") == [
        "id,dest,status,status_text",
        "1,+393331234567,100,Queued",
    ]
    assert status(http, sandbox, request_id, "notify")[1] == "1,+393331234567,100,Waiting"
    sandbox.admin.advance(2)
    assert status(http, sandbox, request_id, "queue")[1] == "1,+393331234567,200,Sent"
    assert status(http, sandbox, request_id, "notify")[1] == "1,+393331234567,100,Waiting"
    sandbox.admin.advance(2)
    assert status(http, sandbox, request_id, "notify")[1] == "1,+393331234567,200,Delivered"


def test_lifecycle_follows_the_delivery_delay(http, sandbox):
    sandbox.admin.set_settings(delivery_delay=0)
    request_id = send(http, sandbox, return_id="1").split()[2]
    assert status(http, sandbox, request_id, "notify")[1].endswith(",200,Delivered")


@pytest.mark.parametrize(
    ("rcpt", "queue", "notify"),
    [
        ("+393330000000", "200,Sent", "300,Unknown subscriber"),
        ("+393330000001", "302,Temporary failure", "302,Temporary failure"),
        ("+393330000002", "100,Queued", "100,Waiting"),
    ],
)
def test_number_patterns(http, sandbox, rcpt, queue, notify):
    request_id = send(http, sandbox, rcpt=rcpt, return_id="1").split()[2]
    sandbox.admin.advance(3600)
    assert status(http, sandbox, request_id, "queue")[1] == f"1,{rcpt},{queue}"
    assert status(http, sandbox, request_id, "notify")[1] == f"1,{rcpt},{notify}"


def test_mnc_report_rows_as_in_the_document(http, sandbox):
    sandbox.admin.set_settings(delivery_delay=2.0)  # pending until the clock moves
    numbers = "+393331234567,+393400000000,+393209999999,+393510000002,+393470000001"
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers=numbers) == "OK"
    request_id = post(http, sandbox, "/sms/mnc.php", **DEMO, numbers=numbers, return_id="1").split()[1]
    assert request_id == "HTTP00000000002"
    assert status(http, sandbox, request_id, "mnc")[1] == "6,+393331234567,100,Waiting"
    sandbox.admin.advance(5)
    assert status(http, sandbox, request_id, "mnc") == [
        "id,dest,status,netcode,status_text",
        "6,+393331234567,200, TIM",
        "7,+393400000000,300,Unknown subscriber",
        "8,+393209999999,200, WindTre",
        "9,+393510000002,100,Waiting",
        "10,+393470000001,302,Temporary failure",
    ]
    sandbox.admin.set_settings(mnc_report="full")
    assert status(http, sandbox, request_id, "mnc")[1:3] == [
        "6,+393331234567,200,22201,TIM",
        "7,+393400000000,300,,Unknown subscriber",
    ]
    assert sandbox.admin.credit(1001) == "99.9500"  # 10 numbers x 0.0050


def test_mnc_ko_texts(http, sandbox):
    assert post(http, sandbox, "/sms/mnc.php", **DEMO) == "KO Parametro numbers non impostato."
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers="+393331234567,333") == (
        "KO Parametro numbers non valido."
    )
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers=",".join(["+393331234567"] * 501)) == (
        "KO Il parametro numbers può contenere al massimo 500 numeri."
    )
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers=",".join(["+393331234567"] * 500)) == "OK"
    assert post(http, sandbox, "/sms/mnc.php", **DEMO, numbers="+393331234567", return_id="x") == (
        "KO Parametro return_id non valido."
    )


def test_batch_status_ko_texts(http, sandbox):
    request_id = send(http, sandbox, return_id="1").split()[2]
    bs = "/sms/batch-status.php"
    assert post(http, sandbox, bs, **DEMO, type="queue", schema="1") == "KO Parametro id non impostato."
    assert post(http, sandbox, bs, **DEMO, id=request_id, schema="1") == "KO Parametro type non impostato."
    assert (
        post(http, sandbox, bs, **DEMO, id=request_id, type="queue") == "KO Parametro schema non impostato."
    )
    assert (
        post(http, sandbox, bs, **DEMO, id=request_id, type="x", schema="1")
        == "KO Parametro type non corretto."
    )
    assert post(http, sandbox, bs, **DEMO, id=request_id, type="queue", schema="2") == (
        "KO Parametro schema non corretto."
    )
    assert (
        post(http, sandbox, bs, **DEMO, id="HTTP99", type="queue", schema="1")
        == "KO Parametro id non corretto."
    )
    assert (
        post(
            http, sandbox, bs, user="demo2", **{"pass": "demo2-pass"}, id=request_id, type="queue", schema="1"
        )
        == "KO Accesso non consentito."
    )
    assert status(http, sandbox, request_id, "mnc") == ["id,dest,status,netcode,status_text"]
