"""SmSendInboundToSqlOperator against the suite's sandbox (receiveSms over real HTTP) into SQLite,
PostgreSQL and MariaDB: masked rows by default, full ones on request, opt-outs into the suppression
list once, the ids of this run's inbound events, a rerun without duplicates, missing ids refused."""

from __future__ import annotations

import time
from datetime import UTC
from types import SimpleNamespace
from typing import Any

import pytest
from transfer_helpers import context

from airflow_provider_smsend.sql.suppression import SuppressionList
from airflow_provider_smsend.transfers.base import sql_hook
from airflow_provider_smsend.transfers.inbound_to_sql import SmSendInboundToSqlOperator

RECEPTION = "+393400000001"
CUSTOMER, OTHER, THIRD = "+393331234567", "+393479876543", "+393405555555"


@pytest.fixture
def sharecode(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_SMSEND_INBOUND", sandbox.connection_uri)
    from airflow_provider_smsend.hooks.smsend import SmSendHook

    return str(SmSendHook(smsend_conn_id="smsend_inbound").client.recv_add(1001, RECEPTION, 1)[0])


def operator(target: Any, sharecode: str, **kwargs: Any) -> SmSendInboundToSqlOperator:
    settings: dict[str, Any] = {
        "task_id": "record_replies",
        "rcpt": RECEPTION,
        "sharecode": sharecode,
        "conn_id": target.conn_id,
        "smsend_conn_id": "smsend_inbound",
        "table": target.table("inbound"),
        "suppression_table": target.table("suppression"),
    }
    settings.update(kwargs)
    return SmSendInboundToSqlOperator(**settings)


def inject(sandbox: Any, sharecode: str, sender: str, text: str) -> int:
    return int(
        sandbox.admin.inject_inbound(RECEPTION, sharecode, sender, text, received_at=time.time())["id"]
    )


def test_received_sms_load_masked_and_opt_outs_land_in_the_suppression_list_once(
    sandbox: Any, sharecode: str, target: Any
) -> None:
    inject(sandbox, sharecode, CUSTOMER, "Stop!")
    inject(sandbox, sharecode, OTHER, "ciao, a che ora?")
    inject(sandbox, sharecode, THIRD, "cancèllami")
    inject(sandbox, sharecode, CUSTOMER, "STOP")  # again: already suppressed
    task = operator(target, sharecode)
    result = task.execute(context())
    assert (result["rows"], result["messages"], result["opt_outs"], result["suppressed_new"]) == (4, 4, 3, 2)
    rows = target.rows(task.table, "sender, text, opt_out, rcpt, sharecode", order="id")
    assert [r[0] for r in rows] == ["+39333****567", "+39347****543", "+39340****555", "+39333****567"]
    assert [r[1] for r in rows] == [None] * 4  # no text unless asked
    assert [r[2] for r in rows] == ["STOP", None, "CANCELLAMI", "STOP"]
    assert {r[3] for r in rows} == {"+39340****001"} and {r[4] for r in rows} == {sharecode}
    assert not any(n in str(rows) + str(result) for n in (CUSTOMER, OTHER, THIRD, RECEPTION))
    optouts = SuppressionList(sql_hook(target.conn_id), task.suppression_table)
    assert optouts.suppressed([CUSTOMER, OTHER, THIRD]) == {CUSTOMER, THIRD}
    reasons = target.rows(task.suppression_table, "number, reason", order="number")
    assert reasons == [(CUSTOMER, "STOP reply"), (THIRD, "CANCELLAMI reply")]
    # A rerun (a retry, or the next event's run) neither duplicates rows nor re-adds numbers.
    again = task.execute(context())
    assert (again["rows"], again["deleted"], again["suppressed_new"]) == (4, 4, 0)
    assert target.count(task.table) == 4


def test_full_numbers_and_texts_only_when_asked_and_keywords_configurable(
    sandbox: Any, sharecode: str, target: Any
) -> None:
    inject(sandbox, sharecode, CUSTOMER, "Basta")
    inject(sandbox, sharecode, OTHER, "STOP")
    task = operator(target, sharecode, unmask_numbers=True, include_text=True, opt_out_keywords="BASTA")
    result = task.execute(context())
    assert (result["opt_outs"], result["suppressed_new"]) == (1, 1)
    rows = target.rows(task.table, "sender, text, opt_out, rcpt", order="id")
    assert rows == [(CUSTOMER, "Basta", "BASTA", RECEPTION), (OTHER, "STOP", None, RECEPTION)]
    none = operator(target, sharecode, opt_out_keywords=[]).execute(context())
    assert (none["rows"], none["opt_outs"]) == (2, 0)


def event(sms_id: int, sharecode: str, rcpt: str = "+39340****001") -> SimpleNamespace:
    """An asset event as the task sees it: the trigger's payload under extra['payload']."""
    payload = {
        "id": sms_id,
        "sharecode": sharecode,
        "rcpt": rcpt,
        "sender": "+39333****567",
        "cursor_key": "k",
    }
    return SimpleNamespace(extra={"from_trigger": True, "payload": payload})


def test_a_run_scheduled_by_inbound_events_loads_their_messages_only(
    sandbox: Any, sharecode: str, target: Any
) -> None:
    first = inject(sandbox, sharecode, CUSTOMER, "hello")
    stop = inject(sandbox, sharecode, OTHER, "STOP")
    events = {
        "asset-a": [event(stop, sharecode)],
        "asset-b": [
            event(stop, sharecode),
            event(first, "999"),
            event(first, sharecode, rcpt="+39340****999"),
        ],
    }
    task = operator(target, sharecode)
    result = task.execute(context(triggering_asset_events=events))
    assert (result["rows"], result["opt_outs"], result["suppressed_new"]) == (1, 1, 1)
    assert target.rows(task.table, "id") == [(stop,)]
    # Events from other sources only: nothing to load.
    other = operator(target, sharecode).execute(context(triggering_asset_events={"a": [event(first, "999")]}))
    assert (other["rows"], other["messages"]) == (0, 0)
    # Explicit ids win over the events.
    assert operator(target, sharecode, message_ids=f"{first}").execute(context())["rows"] == 1
    assert operator(target, sharecode).wanted_ids(context()) is None  # a manual run: every SMS listed
    assert operator(target, sharecode, message_ids=f"[{first}, {stop}]").wanted_ids(context()) == {
        first,
        stop,
    }


def trigger_event(sms_id: int, rcpt: str, sharecode: str) -> SimpleNamespace:
    """The asset event the inbound event trigger really fires for ``sms_id`` on ``rcpt``."""
    from datetime import datetime

    from airflow_provider_smsend.client.soap import ReceivedSms
    from airflow_provider_smsend.triggers.inbound_event import SmSendInboundSmsEventTrigger

    trig = SmSendInboundSmsEventTrigger(rcpt=rcpt, sharecode=sharecode, cursor_conn_id="unused")
    sms = ReceivedSms(id=sms_id, sender=CUSTOMER, text="STOP", received_at=datetime.now(UTC))
    return SimpleNamespace(extra={"from_trigger": True, "payload": trig.payload(sms)})


def test_events_match_on_the_number_not_its_mask(
    sandbox: Any,
    sharecode: str,
    target: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trigger written '3400000001' feeds an operator written '+393400000001'; a number that masks
    alike ('+393401230001' -> '+39340****001') does not, and events of no number here warn."""
    stop = inject(sandbox, sharecode, CUSTOMER, "STOP")
    alike = "+393401230001"
    assert trigger_event(1, alike, sharecode).extra["payload"]["rcpt"] == "+39340****001"
    national = {
        "a": [trigger_event(stop, "3400000001", sharecode), trigger_event(stop + 1, alike, sharecode)]
    }
    task = operator(target, sharecode)
    assert task.wanted_ids(context(triggering_asset_events=national)) == {stop}
    result = task.execute(context(triggering_asset_events=national))
    assert (result["rows"], result["opt_outs"]) == (1, 1)
    caplog.clear()
    capsys.readouterr()
    others = {"a": [trigger_event(stop, alike, sharecode), trigger_event(stop, RECEPTION, "999")]}
    with caplog.at_level("WARNING"):
        assert operator(target, sharecode).execute(context(triggering_asset_events=others))["rows"] == 0
    out = caplog.text + "".join(capsys.readouterr())
    assert "2 inbound SMS event(s) in this run, none of +39340****001" in out
    assert RECEPTION not in out and alike not in out


def test_an_id_no_longer_listed_fails_before_anything_is_written(
    sandbox: Any, sharecode: str, target: Any
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    old = inject(sandbox, sharecode, CUSTOMER, "STOP")
    inject(sandbox, sharecode, OTHER, "newer")
    task = operator(target, sharecode, messages=1, message_ids=[old])
    with pytest.raises(AirflowFailException, match=r"no longer among the latest 1.*raise messages="):
        task.execute(context())
    assert not target.exists(task.table) and not target.exists(task.suppression_table)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="messages"):
        SmSendInboundToSqlOperator(task_id="t", rcpt=RECEPTION, sharecode="001", conn_id="w", messages=0)
    task = SmSendInboundToSqlOperator(
        task_id="t", rcpt=RECEPTION, sharecode="001", conn_id="w", message_ids="1, x"
    )
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="message_ids"):
        task.wanted_ids(context())
