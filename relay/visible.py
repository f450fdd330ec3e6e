"""What a person sees is what is there: invisible characters shown as escapes.

A subject ``abc\\u202egnp.exe`` displays as ``abcexe.png`` when the
right-to-left override (U+202E) is honoured, and a zero-width space makes
two addresses that look the same differ. Everything Outbox shows a person --
``list``, ``show``, ``flush``'s lines and the window -- passes subjects,
addresses and server replies through ``visible``, which writes each such
character as its Python escape (``\\u202e``). What is stored and what
``--json`` prints keep the real text: a program reading it gets the truth,
and a person reading the screen gets the truth too.

Escaped: Unicode's "Other" categories -- control characters (Cc), format
characters (Cf: the bidirectional embeddings, overrides and isolates
U+202A-U+202E and U+2066-U+2069, the marks U+200E/U+200F, zero-width
spaces and joiners, the BOM, soft hyphens, tag characters), surrogates,
private-use and unassigned code points -- and the line and paragraph
separators (U+2028, U+2029), which break a one-line view. Spaces of other
widths (no-break, thin) stay: they are visible as space and are common in
ordinary text. The backslash itself is left alone: the escape form is for
reading, not for decoding back.
"""

from __future__ import annotations

import unicodedata

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def visible(text: str, *, keep: str = "") -> str:
    """``text`` with every invisible or direction-changing character escaped.

    ``keep``: characters to leave as they are (a tab in a folded header).
    """
    if text.isprintable():  # the common case, in C: nothing to escape
        return text
    return "".join(_escape(char, keep) for char in text)


def _escape(char: str, keep: str) -> str:
    if char in keep or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
