"""DATA on the wire: dot-stuffing, CRLF and the final dot, chunk by chunk (RFC 5321 4.5.2)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from relay.smtp.data_encoding import data_chunks


def wire(body: bytes, chunk_bytes: int = 64 * 1024) -> bytes:
    return b"".join(chunk.wire for chunk in data_chunks(body, chunk_bytes))


def unstuff(data: bytes) -> bytes:
    """What a server stores: the data up to the final dot line, leading dots removed."""
    assert data.endswith(b"\r\n.\r\n") or data == b".\r\n"
    lines = data[:-3].split(b"\r\n")
    for line in lines[:-1]:
        assert line != b".", "a lone dot inside the data would end it early"
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def test_a_dot_on_the_first_line_is_doubled() -> None:
    assert wire(b".hidden\r\nnext\r\n") == b"..hidden\r\nnext\r\n.\r\n"


def test_a_lone_dot_line_is_doubled_and_does_not_end_the_data() -> None:
    assert wire(b"a\r\n.\r\nb\r\n") == b"a\r\n..\r\nb\r\n.\r\n"


def test_dots_not_at_a_line_start_are_left_alone() -> None:
    assert wire(b"a.b\r\n x.\r\n") == b"a.b\r\n x.\r\n.\r\n"


def test_a_line_starting_exactly_at_a_chunk_boundary_is_stuffed() -> None:
    body = b"abc\r\n" + b".dot at the boundary\r\n"
    chunks = list(data_chunks(body, chunk_bytes=5))
    assert chunks[1].wire.startswith(b"..dot")
    assert unstuff(b"".join(c.wire for c in chunks)) == body


def test_a_dot_after_a_crlf_split_across_chunks_is_stuffed() -> None:
    body = b"abc\r\n.x\r\n"
    for size in range(2, len(body) + 2):
        assert wire(body, size) == b"abc\r\n..x\r\n.\r\n", size


def test_a_message_without_a_final_line_ending_gets_one_before_the_dot() -> None:
    assert wire(b"no newline") == b"no newline\r\n.\r\n"


def test_bare_line_feeds_and_carriage_returns_become_crlf() -> None:
    assert wire(b"a\nb\rc\r\n.d\n") == b"a\r\nb\r\nc\r\n..d\r\n.\r\n"


def test_an_empty_message_is_just_the_final_dot() -> None:
    assert wire(b"") == b".\r\n"


def test_the_final_dot_travels_in_the_same_chunk_as_the_last_bytes() -> None:
    chunks = list(data_chunks(b"x" * 100 + b"\r\n", chunk_bytes=64))
    assert [c.last for c in chunks] == [False, True]
    assert chunks[-1].wire.endswith(b"x\r\n.\r\n")


def test_chunks_never_exceed_the_chunk_size_and_report_message_offsets() -> None:
    body = b"line\r\n" * 1000
    chunks = list(data_chunks(body, chunk_bytes=64))
    ends = [c.end for c in chunks]
    assert ends == sorted(ends) and ends[-1] == len(body)
    steps = [b - a for a, b in zip([0, *ends], ends, strict=False)]
    assert max(steps) <= 64


def test_a_crlf_is_never_split_into_two_line_endings_at_a_boundary() -> None:
    body = b"ab\r\ncd\r\n"
    for size in range(2, len(body) + 1):
        assert wire(body, size) == b"ab\r\ncd\r\n.\r\n", size


lines = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=30,
)


@given(lines=lines, chunk_bytes=st.integers(min_value=2, max_value=50), final=st.booleans())
def test_any_crlf_message_survives_stuffing_and_unstuffing(
    lines: list[bytes], chunk_bytes: int, final: bool
) -> None:
    body = b"\r\n".join(lines) + (b"\r\n" if final and lines else b"")
    expected = body if body.endswith(b"\r\n") or not body else body + b"\r\n"
    assert unstuff(wire(body, chunk_bytes)) == expected


@given(body=st.binary(max_size=300), chunk_bytes=st.integers(min_value=2, max_value=70))
def test_any_bytes_come_out_as_crlf_lines_and_unstuff_to_the_normalised_message(
    body: bytes, chunk_bytes: int
) -> None:
    encoded = wire(body, chunk_bytes)
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", encoded) is None
    normalised = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    if normalised and not normalised.endswith(b"\r\n"):
        normalised += b"\r\n"
    assert unstuff(encoded) == normalised
