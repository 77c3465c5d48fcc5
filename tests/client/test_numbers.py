"""Phone number normalisation (E.164 with a default region) and masking."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from airflow_provider_smsend.client.errors import SmSendValidationError
from airflow_provider_smsend.client.numbers import (
    LANDLINE,
    mask_number,
    normalize_number,
    normalize_numbers,
    pseudonym,
)


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
    assert normalize_number("06 12 34 56 78", region="IT", allow_landlines=True) == "+390612345678"
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


@pytest.mark.parametrize(
    "raw",
    [
        3331234590.0,  # a pandas column of numbers with a NaN is a float column
        np.float64(3331234590.0),
        393331234590.0,
        "3331234590.0",  # the same float, rendered into a template or cast with astype(str)
        "+393331234590.0",
        3.5,
    ],
)
def test_a_float_is_refused_never_turned_into_digits(raw):
    with pytest.raises(SmSendValidationError, match="float") as info:
        normalize_number(raw)
    message = str(info.value)
    assert "dtype=str" in message
    assert "333123459" not in message  # masked


@pytest.mark.parametrize(
    "raw", [float("nan"), np.nan, None, pd.NA, pd.NaT, "nan", "NaN", "<NA>", "None", "", "  "]
)
def test_a_missing_number_is_named_missing(raw):
    with pytest.raises(SmSendValidationError, match="missing"):
        normalize_number(raw)


def test_floats_among_numbers_are_named_and_nothing_is_returned():
    column = pd.Series(["3331234567", None, "3401234567"]).astype("float64")  # what read_csv makes
    with pytest.raises(SmSendValidationError) as info:
        normalize_numbers(column.tolist())
    assert str(info.value).startswith("3 invalid phone number(s)")


@pytest.mark.parametrize("raw", [3331234567, np.int64(3331234567), np.int32(333123456)])
def test_integers_are_fine(raw):
    assert normalize_number(raw) == f"+39{int(raw)}"


@pytest.mark.parametrize(
    "raw", [True, False, np.bool_(True), -3331234567, Decimal("3331234567"), b"3331234567"]
)
def test_other_types_and_negative_ints_raise(raw):
    with pytest.raises(SmSendValidationError, match="text or a non-negative int"):
        normalize_number(raw)


@pytest.mark.parametrize(
    ("raw", "region", "masked"),
    [
        ("+39 06 1234 5678", "IT", "'+39 06 **** *678'"),  # Rome
        ("0612345678", "IT", "'0612***678'"),
        ("02 1234567", "IT", "'02 1***567'"),  # Milan
        (390612345678, "IT", "'3906*****678'"),
        ("+44 20 7946 0000", "IT", "'+44 20 **** *000'"),  # London
        ("01 23 45 67 89", "FR", "'01 2* ** ** 89'"),  # Paris
    ],
)
def test_a_landline_is_refused_unless_allowed(raw, region, masked):
    with pytest.raises(SmSendValidationError, match="landline") as info:
        normalize_number(raw, region=region)
    assert info.value.code == LANDLINE
    assert masked in str(info.value)
    assert "allow_landlines=True" in str(info.value)
    assert normalize_number(raw, region=region, allow_landlines=True).startswith("+")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("+39 333 123 4567", "mobile"),
        ("+1 201 555 0123", "fixed line or mobile: cannot be told apart in the US"),
        ("+39 800 123 456", "toll free"),
        ("+39 899 123 456", "premium rate"),
        ("+44 7911 123456", "mobile"),
    ],
)
def test_only_a_definite_landline_is_refused(raw, kind):
    assert normalize_number(raw).startswith("+"), kind


def test_normalize_numbers_names_landlines_apart():
    numbers = ["+393331234567", "+390612345678", "nope", "0298765432"]
    with pytest.raises(SmSendValidationError) as info:
        normalize_numbers(numbers)
    message = str(info.value)
    assert message.startswith("1 invalid phone number(s): 'n**e'; 2 landline number(s)")
    assert "'+39061****678', '0298***432'" in message
    assert "allow_landlines=True" in message and "Nothing was sent" in message
    assert info.value.code != LANDLINE
    with pytest.raises(SmSendValidationError) as info:
        normalize_numbers(numbers[:2])
    assert info.value.code == LANDLINE
    assert normalize_numbers(numbers[:2], allow_landlines=True) == ["+393331234567", "+390612345678"]


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


def test_a_number_is_valid_exactly_when_phonenumbers_says_so():
    """normalize_number reads validity from phonenumbers.number_type (UNKNOWN for an invalid number)
    rather than asking is_valid_number too: the two agree on numbers of many kinds and countries."""
    import random

    import phonenumbers

    rng = random.Random(15)
    prefixes = ["+39", "+39 3", "+39 0", "+39 06 698", "+1", "+44", "+33", "+49", "+379", "+800", "+882", ""]
    checked = 0
    for _ in range(3000):
        raw = rng.choice(prefixes) + "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
        try:
            parsed = phonenumbers.parse(raw, "IT")
        except phonenumbers.NumberParseException:
            continue
        checked += 1
        try:
            normalize_number(raw, allow_landlines=True)
            accepted = True
        except SmSendValidationError:
            accepted = False
        assert accepted == phonenumbers.is_valid_number(parsed), raw
    assert checked > 2000


def test_a_pseudonym_is_keyed_stable_and_needs_a_key():
    import hashlib
    import hmac

    number = "+393331234567"
    assert pseudonym(number, "secret") == pseudonym(number, "secret")
    assert len(pseudonym(number, "secret")) == 16
    assert pseudonym(number, "secret") != pseudonym(number, "other")
    assert pseudonym(number, "secret") != hashlib.sha256(number.encode()).hexdigest()[:16]
    assert pseudonym(number, "secret") == hmac.new(b"secret", number.encode(), "sha256").hexdigest()[:16]
    for bad in ("", None):
        with pytest.raises(SmSendValidationError, match="secret key"):
            pseudonym(number, bad)  # type: ignore[arg-type]
