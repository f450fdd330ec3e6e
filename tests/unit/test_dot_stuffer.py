"""DATA encoding piece by piece (``DotStuffer``, ``stream_chunks``) against the whole message.

However a message is cut into pieces -- a piece ending in a CR, in a CRLF,
between CR and LF, a dot starting the next piece, one-byte pieces, empty
ones -- the bytes on the wire must be exactly those of the one-shot encoding
(RFC 5321 section 4.5.2), and the offsets handed out for progress must be the
message bytes really encoded so far.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

from hypothesis import given
from hypothesis import strategies as st

from relay.smtp.data_encoding import DotStuffer, data_chunks, stream_chunks


def one_shot(body: bytes) -> bytes:
    """The reference encoding, written independently: regular expressions over the whole."""
    text = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", text) + b".\r\n"


def split(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``body`` cut at the given offsets (clamped, in order; repeats give empty pieces)."""
    points = sorted(min(max(cut, 0), len(body)) for cut in cuts)
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def streamed(pieces: Sequence[bytes], *, crlf: bool = False) -> bytes:
    return b"".join(chunk.wire for chunk in stream_chunks(iter(pieces), crlf=crlf))


def fed(pieces: Sequence[bytes], *, crlf: bool = False) -> bytes:
    stuffer = DotStuffer(crlf=crlf)
    return b"".join(stuffer.feed(piece) for piece in pieces) + stuffer.end()


crlf_bodies = st.lists(
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=20,
).map(lambda lines: b"\r\n".join(lines))
cuts = st.lists(st.integers(min_value=0, max_value=700), max_size=12)


@given(body=st.binary(max_size=600), cuts=cuts)
def test_any_bytes_in_any_pieces_encode_exactly_as_the_whole(body: bytes, cuts: list[int]) -> None:
    pieces = split(body, cuts)
    assert streamed(pieces) == one_shot(body)
    assert fed(pieces) == one_shot(body)


@given(
    body=crlf_bodies,
    final=st.booleans(),
    dots=st.lists(st.integers(min_value=0, max_value=700), max_size=6),
    cuts=cuts,
)
def test_any_crlf_message_in_any_pieces_encodes_as_the_whole_without_the_line_ending_check(
    body: bytes, final: bool, dots: list[int], cuts: list[int]
) -> None:
    for at in sorted(dots, reverse=True):  # dots wherever, line starts included
        at = min(at, len(body))
        at += body[at - 1 : at] == b"\r"  # not between a CR and its LF: after them
        body = body[:at] + b"." + body[at:]
    body += b"\r\n" if final else b""
    pieces = split(body, cuts)
    assert streamed(pieces, crlf=True) == one_shot(body)
    assert streamed(pieces) == one_shot(body)


@given(body=st.binary(max_size=600), chunk_bytes=st.integers(min_value=2, max_value=90))
def test_data_chunks_of_any_size_give_the_one_shot_bytes(body: bytes, chunk_bytes: int) -> None:
    assert b"".join(c.wire for c in data_chunks(body, chunk_bytes)) == one_shot(body)


@given(body=st.binary(max_size=400), cuts=cuts)
def test_offsets_count_the_message_bytes_encoded_so_far(body: bytes, cuts: list[int]) -> None:
    pieces = split(body, cuts)
    chunks = list(stream_chunks(iter(pieces)))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].end == len(body)
    wire = b""
    for chunk in chunks[:-1]:
        wire += chunk.wire
        # What is on the wire so far is the encoding of exactly ``end`` message bytes.
        normalised = re.sub(rb"\r\n|\r|\n", b"\r\n", body[: chunk.end])
        assert wire == re.sub(rb"(?m)^\.", b"..", normalised)


def test_a_piece_ending_in_cr_does_not_make_two_line_endings_of_a_crlf() -> None:
    assert streamed([b"ab\r", b"\ncd\r\n"]) == b"ab\r\ncd\r\n.\r\n"
    assert streamed([b"ab\r", b"\ncd\r\n"], crlf=True) == b"ab\r\ncd\r\n.\r\n"


def test_a_cr_held_at_a_piece_end_is_not_counted_as_sent_yet() -> None:
    chunks = list(stream_chunks(iter([b"ab\r", b"\ncd\r\n"])))
    assert [(c.wire, c.end) for c in chunks] == [(b"ab", 2), (b"\r\ncd\r\n.\r\n", 8)]


def test_a_bare_cr_ending_a_piece_becomes_a_line_ending_before_the_next() -> None:
    assert streamed([b"ab\r", b"cd\r\n"]) == b"ab\r\ncd\r\n.\r\n"
    assert streamed([b"ab\r", b".cd\r\n"]) == b"ab\r\n..cd\r\n.\r\n"


def test_a_dot_after_a_crlf_split_between_cr_and_lf_is_stuffed() -> None:
    for crlf in (False, True):
        assert streamed([b"ab\r", b"\n.cd\r\n"], crlf=crlf) == b"ab\r\n..cd\r\n.\r\n"


def test_a_dot_starting_the_piece_after_a_crlf_is_stuffed() -> None:
    for crlf in (False, True):
        assert streamed([b"ab\r\n", b".cd\r\n"], crlf=crlf) == b"ab\r\n..cd\r\n.\r\n"
        assert streamed([b"ab\r\n", b".", b"\r\n"], crlf=crlf) == b"ab\r\n..\r\n.\r\n"


def test_a_dot_starting_a_piece_in_the_middle_of_a_line_is_left_alone() -> None:
    for crlf in (False, True):
        assert streamed([b"ab", b".cd\r\n"], crlf=crlf) == b"ab.cd\r\n.\r\n"


def test_the_very_first_byte_being_a_dot_is_stuffed() -> None:
    for crlf in (False, True):
        assert streamed([b".", b"x\r\n"], crlf=crlf) == b"..x\r\n.\r\n"
        assert streamed([b".x\r\n"], crlf=crlf) == b"..x\r\n.\r\n"


def test_a_body_without_a_final_line_ending_gets_one_before_the_dot() -> None:
    for crlf in (False, True):
        assert streamed([b"abc", b"def"], crlf=crlf) == b"abcdef\r\n.\r\n"
    assert streamed([b"abc\r"]) == b"abc\r\n.\r\n"


def test_no_pieces_or_only_empty_ones_are_just_the_final_dot() -> None:
    assert streamed([]) == b".\r\n"
    assert streamed([b"", b""]) == b".\r\n"


def test_the_final_dot_is_in_the_same_chunk_as_the_last_piece() -> None:
    chunks = list(stream_chunks(iter([b"a" * 10 + b"\r\n", b"b" * 10 + b"\r\n"])))
    assert [c.wire for c in chunks] == [b"a" * 10 + b"\r\n", b"b" * 10 + b"\r\n.\r\n"]


def test_pieces_are_taken_one_ahead_of_the_chunks_handed_out() -> None:
    taken: list[int] = []

    def pieces() -> Iterator[bytes]:
        for index in range(4):
            taken.append(index)
            yield b"line\r\n"

    chunks = stream_chunks(pieces())
    next(chunks)
    assert taken == [0, 1]
    next(chunks)
    assert taken == [0, 1, 2]
