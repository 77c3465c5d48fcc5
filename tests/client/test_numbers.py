"""Phone number normalisation (E.164 with a default region) and masking."""

from __future__ import annotations

import pytest

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import mask_number, normalize_number, normalize_numbers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+393331234567", "+393331234567"),
        ("+39 333 123 4567", "+393331234567"),
        ("3331234567", "+393331234567"),
        ("333 1234567", "+393331234567"),
        ("00393331234567", "+393331234567"),
        (3331234567, "+393331234567"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_normalize_with_default_region_italy(raw, expected):
    assert normalize_number(raw) == expected


def test_normalize_with_another_region():
    assert normalize_number("07911 123456", region="GB") == "+447911123456"
    assert normalize_number("07911 123456", region="gb") == "+447911123456"
    # The same national digits mean another number with another default region.
    assert normalize_number("06 12 34 56 78", region="FR") == "+33612345678"
    assert normalize_number("06 12 34 56 78", region="IT") == "+390612345678"
    # An international number ignores the region.
    assert normalize_number("+393331234567", region="GB") == "+393331234567"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "12",
        "+39",
        "+3933312345678901234",
        "+999 1234567",
        "+39 12",
        "+39333123456a7",
        "+39 333 CALL ME",
    ],
)
def test_invalid_numbers_raise(raw):
    with pytest.raises(SmSendValidationError):
        normalize_number(raw)


@pytest.mark.parametrize("raw", [None, 3.5, True, ["+393331234567"]])
def test_non_text_numbers_raise(raw):
    with pytest.raises(SmSendValidationError):
        normalize_number(raw)


def test_invalid_number_error_is_masked():
    with pytest.raises(SmSendValidationError) as info:
        normalize_number("+39 333 123 456 789 0")
    message = str(info.value)
    assert "123 456 789" not in message and "3331234567890" not in message
    assert "'+39 33* *** *** **9 0'" in message


def test_normalize_numbers_names_all_invalid_ones_masked():
    with pytest.raises(SmSendValidationError) as info:
        normalize_numbers(["+393331234567", "12345678901234567", "nope", "3331234567"])
    message = str(info.value)
    assert message.startswith("2 invalid phone number(s)")
    assert "12345678901234567" not in message
    assert "'1234**********567'" in message
    assert "'n**e'" in message
    assert "Nothing was sent" in message


def test_normalize_numbers_caps_the_list_at_ten():
    with pytest.raises(SmSendValidationError) as info:
        normalize_numbers([f"bad{i}" for i in range(13)])
    assert "and 3 more" in str(info.value)


def test_normalize_numbers_keeps_order():
    assert normalize_numbers(["3331234567", "+393401234567"]) == ["+393331234567", "+393401234567"]


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+393331234567", "+39333****567"),
        ("3331234567", "3331***567"),
        ("12345", "1***5"),
        ("ab", "**"),
        ("", ""),
    ],
)
def test_mask_number(number, masked):
    assert mask_number(number) == masked
