"""GSM 03.38 septet counting, UCS-2 counting, segments and the operation choice."""

from __future__ import annotations

import pytest

from airflow_provider_smsend.client import encoding
from airflow_provider_smsend.client.encoding import (
    analyse_text,
    choose_operation,
    gsm_septets,
    is_gsm,
    segments_for,
    ucs2_units,
)

EXTENSION = "^{}\\[~]|€"


def test_basic_characters_count_one():
    text = "Hello @£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r"
    assert is_gsm(text)
    assert gsm_septets(text) == len(text)


@pytest.mark.parametrize("char", list(EXTENSION))
def test_extension_characters_count_two(char):
    assert gsm_septets(char) == 2
    assert gsm_septets("a" + char + "b") == 4


def test_mixed_count():
    assert gsm_septets("Costo: 5€ [scontato]") == len("Costo: 5€ [scontato]") + 3


@pytest.mark.parametrize("char", ["ç", "ê", "á", "Ç̧", "😀", "中", "\t", "`"])
def test_non_gsm_characters(char):
    assert not is_gsm("ok " + char)
    with pytest.raises(ValueError):
        gsm_septets("ok " + char)


def test_ucs2_units_count_surrogate_pairs():
    assert ucs2_units("ciao") == 4
    assert ucs2_units("😀") == 2
    assert ucs2_units("a😀b") == 4
    assert ucs2_units("中文") == 2


@pytest.mark.parametrize(
    ("units", "enc", "segments"),
    [
        (0, "GSM", 1),
        (1, "GSM", 1),
        (160, "GSM", 1),
        (161, "GSM", 2),
        (306, "GSM", 2),
        (307, "GSM", 3),
        (918, "GSM", 6),
        (919, "GSM", 7),
        (70, "UCS2", 1),
        (71, "UCS2", 2),
        (134, "UCS2", 2),
        (135, "UCS2", 3),
        (402, "UCS2", 6),
    ],
)
def test_segments_for(units, enc, segments):
    assert segments_for(units, enc) == segments


def test_analyse_gsm_text_with_extension():
    info = analyse_text("€" * 80)
    assert (info.encoding, info.characters, info.units, info.segments) == ("GSM", 80, 160, 1)
    info = analyse_text("€" * 81)
    assert (info.encoding, info.characters, info.units, info.segments) == ("GSM", 81, 162, 2)


def test_analyse_ucs2_text_with_emoji():
    info = analyse_text("Ciao 😀")
    assert (info.encoding, info.characters, info.units, info.segments) == ("UCS2", 6, 7, 1)


@pytest.mark.parametrize(
    ("text", "operation"),
    [
        ("a" * 160, "TEXT"),
        ("a" * 161, "MULTITEXT"),
        ("€" * 80, "TEXT"),
        ("€" * 80 + "a", "MULTITEXT"),
        ("ç" * 70, "UCS2"),
        ("ç" * 71, "MULTIUCS2"),
        ("😀" * 35, "UCS2"),
        ("😀" * 35 + "a", "MULTIUCS2"),
    ],
)
def test_choose_operation(text, operation):
    assert choose_operation(analyse_text(text)) == operation


def test_limits_per_operation():
    assert encoding.OPERATION_LIMITS == {
        "TEXT": 160,
        "WAPPUSH": 160,
        "UCS2": 70,
        "MULTITEXT": 918,
        "MULTIUCS2": 402,
    }
    assert encoding.HIGH_QUALITY_ONLY == {"UCS2", "MULTITEXT", "MULTIUCS2"}


def test_units_for_operation():
    assert encoding.units_for_operation("€€", "TEXT") == 4
    assert encoding.units_for_operation("€€", "UCS2") == 2
    with pytest.raises(ValueError):
        encoding.units_for_operation("😀", "MULTITEXT")
