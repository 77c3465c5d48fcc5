"""GSM 03.38 septet counting, UCS-2 counting, segments and the operation choice."""

from __future__ import annotations

import itertools

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


def _runs(text: str) -> str:
    """A short test id for a long text: ``"a" * 152 + "€"`` -> ``a*152+€``."""
    runs = [(ch, len(list(group))) for ch, group in itertools.groupby(text)]
    return "+".join(ch if n == 1 else f"{ch}*{n}" for ch, n in runs)


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
    ("text", "enc", "segments"),
    [
        ("", "GSM", 1),
        ("a", "GSM", 1),
        ("a" * 160, "GSM", 1),
        ("a" * 161, "GSM", 2),
        ("a" * 306, "GSM", 2),
        ("a" * 307, "GSM", 3),
        ("a" * 918, "GSM", 6),
        ("a" * 919, "GSM", 7),
        ("ж" * 70, "UCS2", 1),
        ("ж" * 71, "UCS2", 2),
        ("ж" * 134, "UCS2", 2),
        ("ж" * 135, "UCS2", 3),
        ("ж" * 402, "UCS2", 6),
        # GSM 03.38: an escape (ESC + character) never straddles two parts of 153 septets.
        ("€" * 80, "GSM", 1),  # 160 septets, one message: no parts, nothing to straddle
        ("a" * 152 + "€", "GSM", 1),  # 154 septets still fit one message
        ("€" * 81, "GSM", 2),  # 162 septets: 76 + 5 characters, 152 + 10 septets
        ("€" * 153, "GSM", 3),  # 306 septets, but 76 € per part: 76 + 76 + 1
        ("a" * 152 + "€" + "a" * 152, "GSM", 3),  # the € starts part 2: 152 | 2 + 151 | 1
        ("a" * 151 + "€" + "a" * 153, "GSM", 2),  # the € ends part 1 exactly: 153 | 153
        ("€" * 459, "GSM", 7),  # 918 septets, the MULTITEXT limit, in 7 parts of 152
        ("€" * 456, "GSM", 6),
        ("€" * 457, "GSM", 7),
        # UCS-2: a surrogate pair (a character beyond the BMP) never straddles two parts of 67.
        ("😀" * 35, "UCS2", 1),  # 70 code units, one message
        ("😀" * 36, "UCS2", 2),  # 72 code units: 33 + 3 characters
        ("😀" * 67, "UCS2", 3),  # 134 code units, but 33 per part: 33 + 33 + 1
        ("a" * 66 + "😀" + "a" * 66, "UCS2", 3),  # 66 | 2 + 65 | 1
        ("a" * 65 + "😀" + "a" * 67, "UCS2", 2),  # the pair ends part 1 exactly: 67 | 67
        ("😀" * 201, "UCS2", 7),  # 402 code units, the MULTIUCS2 limit, in 7 parts of 66
        ("€" * 153, "UCS2", 3),  # € is one code unit in UCS-2: 153 = 67 + 67 + 19
    ],
    ids=lambda value: _runs(value) if isinstance(value, str) and len(value) > 4 else None,
)
def test_segments_for(text, enc, segments):
    assert segments_for(text, enc) == segments


def test_segments_for_refuses_text_outside_gsm():
    with pytest.raises(ValueError):
        segments_for("ciao 😀" * 40, "GSM")


def test_analyse_gsm_text_with_extension():
    info = analyse_text("€" * 80)
    assert (info.encoding, info.characters, info.units, info.segments) == ("GSM", 80, 160, 1)
    info = analyse_text("€" * 81)
    assert (info.encoding, info.characters, info.units, info.segments) == ("GSM", 81, 162, 2)
    info = analyse_text("€" * 153)
    assert (info.encoding, info.characters, info.units, info.segments) == ("GSM", 153, 306, 3)


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


# ---------------------------------------------------------------- GSM look-alikes (issue 16, item 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ciao Zoë", "Ciao Zoe"),
        ("Łukasz", "Lukasz"),
        ("Zoe\u0308", "Zoe"),  # e + combining diaeresis: composed, then transliterated
        ("Jose\u0301", "José"),  # e + combining acute composes to the GSM é: kept
        ("“Saldi” — fino al 30%…", '"Saldi" -- fino al 30%...'),
        ("Ångström è ñ ß € Δ", "Ångström è ñ ß € Δ"),  # GSM 03.38 already: unchanged
    ],
)
def test_to_gsm_replaces_characters_outside_gsm_with_look_alikes(text, expected):
    assert encoding.to_gsm(text) == expected
    assert is_gsm(encoding.to_gsm(text))


def test_to_gsm_keeps_a_character_without_a_gsm_look_alike():
    # An emoji has no transliteration, a backtick's is itself (not GSM 03.38): kept, so the text stays
    # UCS-2 and the estimate names the character rather than lose it.
    assert encoding.to_gsm("Zoë 😀 `x`") == "Zoe 😀 `x`"
    assert encoding.non_gsm_characters(encoding.to_gsm("Zoë 😀 `x`")) == ["😀", "`"]


def test_to_gsm_keeps_a_long_name_campaign_single_segment():
    text = "Ciao Zoë, il tuo ordine è pronto: ritiralo entro venerdì in negozio. A presto!"
    assert analyse_text(text).encoding == "UCS2" and analyse_text(text).segments == 2
    assert analyse_text(encoding.to_gsm(text)) == encoding.TextInfo("GSM", len(text), len(text), 1)


def test_non_gsm_characters_in_order_of_first_appearance():
    assert encoding.non_gsm_characters("Zoë, Łukasz, Chloë") == ["ë", "Ł"]
    assert encoding.non_gsm_characters("plain € text") == []


@pytest.mark.parametrize(
    ("text", "ucs2", "gsm"),
    [
        ("ë" * 70, 1, 1),
        ("ë" + "a" * 69, 1, 1),
        ("ë" + "a" * 70, 2, 1),
        ("ë" + "a" * 159, 3, 1),
        ("ë" + "a" * 160, 3, 2),
    ],
)
def test_segments_if_gsm_is_what_a_gsm_look_alike_needs(text, ucs2, gsm):
    assert (segments_for(text, "UCS2"), encoding.segments_if_gsm(text)) == (ucs2, gsm)
