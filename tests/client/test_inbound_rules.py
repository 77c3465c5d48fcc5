"""client/inbound_rules.py: which received SMS answers an inbound sensor or trigger (no Airflow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.inbound_rules import (
    DEFAULT_OPT_OUT_KEYWORDS,
    MAX_STORED_TEXT,
    find_match,
    inbound_frame,
    keyword_form,
    opt_out_keyword,
    parse_received_after,
    reception_key,
    sender_key,
)
from airflow_provider_smsend.client.soap import ROME, ReceivedSms

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def sms(sms_id: int, sender: str, text: str, minutes: float) -> ReceivedSms:
    return ReceivedSms(
        id=sms_id, sender=sender, text=text, received_at=(START + timedelta(minutes=minutes)).astimezone(ROME)
    )


def test_find_match_ignores_messages_before_start_and_picks_the_earliest():
    messages = [
        sms(1, "+393331234567", "SI", -5),
        sms(4, "+393331234567", "si grazie", 3),
        sms(3, "+393331234567", "Si", 2),
        sms(2, "+393339999999", "SI", 1),
    ]
    found = find_match(messages, received_after=START, sender="333 123 4567", text_pattern=r"^\s*si\b")
    assert found is not None
    assert found["id"] == 3
    assert found["match"] == "Si"
    assert found["received_at"] == "2024-05-01T11:02:00+02:00"


def test_find_match_case_and_groups():
    messages = [sms(7, "+393331234567", "Your code: 123456", 1)]
    found = find_match(messages, received_after=START, text_pattern=r"code: (?P<code>\d{6})")
    assert found is not None and found["named_groups"] == {"code": "123456"} and found["groups"] == ["123456"]
    assert find_match(messages, received_after=START, text_pattern="YOUR", ignore_case=False) is None
    assert find_match(messages, received_after=START, text_pattern="YOUR") is not None


def test_find_match_without_criteria_takes_any_new_message_and_none_when_empty():
    assert find_match([sms(1, "ACME", "hello", 0)], received_after=START)["id"] == 1
    assert find_match([], received_after=START) is None
    assert find_match([sms(1, "ACME", "hello", -0.01)], received_after=START) is None


def test_sender_key_compares_numbers_and_alphanumeric_senders():
    assert sender_key("0039 333 1234567") == sender_key("+393331234567") == "+393331234567"
    assert sender_key(" ACME ") == "acme"


def test_reception_key_is_one_per_number_and_share_code():
    key = reception_key("+393400000001", "001")
    assert key == reception_key(" 3400000001", " 001 ")  # national form, spaces: the same reception
    assert len(key) == 16 and "3400000001" not in key
    assert key != reception_key("+393400000002", "001")  # masks alike (+39340******1/2), differs here
    assert key != reception_key("+393400000001", "002")


def test_invalid_inputs_are_named():
    with pytest.raises(SmSendValidationError, match="not a valid regular expression"):
        find_match([], received_after=START, text_pattern="(")
    with pytest.raises(SmSendValidationError, match="timezone-aware"):
        find_match([], received_after=datetime(2024, 1, 1))
    with pytest.raises(SmSendValidationError, match="ISO 8601"):
        parse_received_after("yesterday")
    assert parse_received_after("2024-05-01T09:00:00") == START
    assert parse_received_after("2024-05-01T11:00:00+02:00") == START


@pytest.mark.parametrize(
    "text, expected",
    [
        ("STOP", "STOP"),
        (" stop! ", "STOP"),
        ("Stòp.", "STOP"),
        ("Cancèllami", "CANCELLAMI"),
        ("  CANCELLAMI\n", "CANCELLAMI"),
        ("non stop", None),
        ("STOP please", None),
        ("stopp", None),
        ("", None),
        (None, None),
    ],
)
def test_an_opt_out_is_the_whole_message_a_keyword_whatever_its_case_and_accents(text, expected):
    assert opt_out_keyword(text) == expected


def test_opt_out_keywords_are_configurable_and_compared_in_the_same_form():
    assert opt_out_keyword("basta", ["BASTA", "Disiscrivimi"]) == "BASTA"
    assert opt_out_keyword("DISISCRÌVIMI", ["BASTA", "Disiscrivimi"]) == "Disiscrivimi"
    assert opt_out_keyword("STOP", ["BASTA"]) is None
    assert opt_out_keyword("STOP", []) is None
    assert keyword_form(" Cancèllami! ") == "cancellami"


def test_inbound_frame_masks_numbers_keeps_no_text_unless_asked_and_marks_opt_outs():
    messages = [sms(7, "+393331234567", "Stop", 1), sms(8, "333 9876543", "ciao " * 400, 2)]
    frame = inbound_frame(
        messages, rcpt="+393400000001", sharecode="001", key="k", keywords=DEFAULT_OPT_OUT_KEYWORDS
    )
    assert frame["id"].tolist() == [7, 8]
    assert frame["sender"].tolist() == ["+39333****567", "333 ****543"]
    assert frame["rcpt"].tolist() == ["+39340****001"] * 2 and frame["sharecode"].tolist() == ["001"] * 2
    assert frame["text"].isna().all()
    assert frame["opt_out"].tolist()[0] == "STOP" and frame["opt_out"].isna().tolist() == [False, True]
    assert frame["received_at"].tolist()[0] == START + timedelta(minutes=1)
    # the same number in another form has the same key (E.164): joinable with the outcomes' recipient_key
    other = inbound_frame([sms(9, "3331234567", "x", 3)], rcpt="+393400000001", sharecode="001", key="k")
    assert other["sender_key"][0] == frame["sender_key"][0]
    from airflow_provider_smsend.client.ledger import LedgerEntry, outcomes_frame

    texted = outcomes_frame([LedgerEntry("job", "+393331234567", "accepted")], key="k")
    assert texted["recipient_key"][0] == frame["sender_key"][0]  # one pseudonym under one key
    full = inbound_frame(
        messages, rcpt="+393400000001", sharecode="001", key="k", masked=False, include_text=True
    )
    assert full["sender"].tolist() == ["+393331234567", "333 9876543"]
    assert full["text"][0] == "Stop" and len(full["text"][1]) == MAX_STORED_TEXT
    assert full["opt_out"].isna().all()  # no keywords given
