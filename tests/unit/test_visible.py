"""What a person sees is what is there: one row per kind of invisible character."""

from __future__ import annotations

import pytest

from relay.visible import visible


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("abc\u202egnp.exe", "abc\\u202egnp.exe"),  # would display as abcexe.png
        ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),  # embeddings, overrides
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),  # isolates
        ("a\u200eb\u200fc", "a\\u200eb\\u200fc"),  # direction marks
        ("pay\u200bpal", "pay\\u200bpal"),  # zero-width space
        ("x\u200c\u200dy\u2060", "x\\u200c\\u200dy\\u2060"),  # joiners, word joiner
        ("\ufeffhi", "\\ufeffhi"),  # byte order mark
        ("soft\u00adhyphen", "soft\\xadhyphen"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("bell\x07 esc\x1b del\x7f c1\x85", "bell\\x07 esc\\x1b del\\x7f c1\\x85"),
        ("one\u2028two\u2029", "one\\u2028two\\u2029"),
        ("private\ue000", "private\\ue000"),
    ],
)
def test_invisible_and_direction_changing_characters_are_escaped(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "Plain subject",
        "Réunion\u00a0: ordre du jour",  # a no-break space is a visible space
        "שלום עולם",  # right-to-left letters are text, not controls
        "مرحبا",
        "emoji 📬 and ü",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert visible(text) == text


def test_a_kept_character_stays() -> None:
    assert visible("Subject: a\n\tb\u202e", keep="\t") == "Subject: a\\x0a\tb\\u202e"
