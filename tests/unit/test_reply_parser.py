"""The reply parser by table: bytes in (in pieces), replies or a protocol error out.

``ReplyParser`` does no I/O, so each row is the pieces a server's bytes
arrive in, the replies they complete, and whether the server broke the
protocol (RFC 5321 section 4.2); a property checks that any other split of
the same bytes gives the same answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from relay.smtp.replies import RawReply, ReplyParser

LIMIT = 64  # max_reply_bytes in the table: small, so that oversize rows stay short


@dataclass(frozen=True)
class Row:
    pieces: tuple[bytes, ...]
    replies: tuple[tuple[int, tuple[str, ...]], ...]
    error: str | None = None  # a word the error must hold; None: no error
    pending: int = 0  # bytes of an incomplete reply held at the end


TABLE: dict[str, Row] = {
    "one line": Row((b"250 OK\r\n",), ((250, ("OK",)),)),
    "a bare code ends a reply": Row((b"250\r\n",), ((250, ("",)),)),
    "a line in two pieces": Row((b"250 O", b"K\r\n"), ((250, ("OK",)),)),
    "split between CR and LF": Row((b"250 OK\r", b"\n"), ((250, ("OK",)),)),
    "a line byte by byte": Row(tuple(bytes([b]) for b in b"221 Bye\r\n"), ((221, ("Bye",)),)),
    "a partial line is held, not a reply": Row((b"250 O",), (), pending=5),
    "multi-line": Row(
        (b"250-mail.example.net\r\n250-SIZE 1000\r\n250 PIPELINING\r\n",),
        ((250, ("mail.example.net", "SIZE 1000", "PIPELINING")),),
    ),
    "multi-line split mid-line": Row(
        (b"250-a\r\n250-", b"b\r\n250 ", b"c\r\n"), ((250, ("a", "b", "c")),)
    ),
    "an unfinished multi-line reply is held whole": Row(
        (b"250-a\r\n250-b\r\n",), (), pending=len(b"250-a\r\n250-b\r\n")
    ),
    "bare LF ends a line": Row((b"250 OK\n",), ((250, ("OK",)),)),
    "bare LF and CRLF mixed in one reply": Row((b"250-a\n250 b\r\n",), ((250, ("a", "b")),)),
    "several replies in one piece (pipelining)": Row(
        (b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 Go ahead\r\n",),
        ((250, ("2.1.0 OK",)), (250, ("2.1.5 OK",)), (354, ("Go ahead",))),
    ),
    "a complete reply then a partial one": Row(
        (b"250 OK\r\n451-wait\r\n451 ",), ((250, ("OK",)),), pending=len(b"451-wait\r\n451 ")
    ),
    "text that is not UTF-8 is replaced, not refused": Row(
        (b"250 caf\xe9\r\n",), ((250, ("caf\ufffd",)),)
    ),
    "different codes in one reply": Row(
        (b"220 hi\r\n550-no\r\n250 yes\r\n",), ((220, ("hi",)),), error="different codes"
    ),
    "different codes across pieces": Row(
        (b"550-no\r\n", b"250 yes\r\n"), (), error="different codes"
    ),
    "a line that is not a reply": Row(
        (b"250 OK\r\nhello there\r\n",), ((250, ("OK",)),), error="not an SMTP reply"
    ),
    "an empty line": Row((b"\r\n",), (), error="not an SMTP reply"),
    "a code of two digits": Row((b"25 OK\r\n",), (), error="not an SMTP reply"),
    "a code of four digits": Row((b"2500 OK\r\n",), (), error="not an SMTP reply"),
    "a code followed by a wrong separator": Row((b"250:OK\r\n",), (), error="not an SMTP reply"),
    "an endless line": Row((b"250 " + b"x" * LIMIT,), (), error="longer than"),
    "an endless line in small pieces": Row(
        (b"250 ", *(b"x" * 10 for _ in range(LIMIT // 10 + 1))), (), error="longer than"
    ),
    "an oversize reply arriving whole": Row(
        (b"250 OK\r\n" + b"250-" + b"x" * LIMIT + b"\r\n250 end\r\n",),
        ((250, ("OK",)),),
        error="longer than",
    ),
    "an oversize multi-line reply, each line short": Row(
        (b"250-" + b"x" * 20 + b"\r\n",) * 4 + (b"250 end\r\n",), (), error="longer than"
    ),
    "a reply exactly at the limit is taken": Row(
        (b"250 " + b"x" * (LIMIT - 6) + b"\r\n",), ((250, ("x" * (LIMIT - 6),)),)
    ),
    "nothing is parsed after an error": Row(
        (b"hello\r\n", b"250 OK\r\n"), (), error="not an SMTP reply"
    ),
}


def fed(parser: ReplyParser, pieces: Sequence[bytes]) -> list[tuple[int, tuple[str, ...]]]:
    return [(reply.code, reply.lines) for piece in pieces for reply in parser.feed(piece)]


@pytest.mark.parametrize("name", TABLE)
def test_reply_parser_table(name: str) -> None:
    row = TABLE[name]
    parser = ReplyParser(max_reply_bytes=LIMIT)
    assert fed(parser, row.pieces) == list(row.replies)
    if row.error is None:
        assert parser.error is None
        assert parser.pending_bytes == row.pending
    else:
        assert parser.error is not None and row.error in str(parser.error)
        assert parser.pending_bytes == 0


def test_each_piece_hands_out_the_replies_it_completes_as_they_complete() -> None:
    parser = ReplyParser()
    assert parser.feed(b"250 2.1.0 OK\r\n250-a\r\n") == [RawReply(250, ("2.1.0 OK",))]
    assert parser.feed(b"250 b\r\n354 ") == [RawReply(250, ("a", "b"))]
    assert parser.feed(b"go\r\n") == [RawReply(354, ("go",))]


def test_a_multi_line_reply_reads_as_its_lines_joined() -> None:
    (reply,) = ReplyParser().feed(b"550-5.1.1 no such user\r\n550-\r\n550 5.1.1 try again\r\n")
    assert reply.text == "5.1.1 no such user 5.1.1 try again"


reply_lines = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30
).map(str.encode)
replies = st.tuples(
    st.integers(min_value=200, max_value=599),
    st.lists(reply_lines, min_size=1, max_size=4),
    st.sampled_from([b"\r\n", b"\n"]),
)
garbage = st.sampled_from([b"", b"oops\r\n", b"250-a\r\n451 b\r\n", b"250 " + b"y" * 100])


def encode(code: int, lines: list[bytes], ending: bytes) -> bytes:
    last = len(lines) - 1
    return b"".join(
        b"%d%s%s%s" % (code, b" " if index == last else b"-", line, ending)
        for index, line in enumerate(lines)
    )


@given(
    stream=st.lists(replies, max_size=6),
    tail=garbage,
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
@example(stream=[(250, [b"x" * 30] * 3, b"\r\n")], tail=b"", cuts=[68])  # over the limit
def test_any_split_of_the_same_bytes_gives_the_same_replies_and_the_same_verdict(
    stream: list[tuple[int, list[bytes], bytes]], tail: bytes, cuts: list[int]
) -> None:
    data = b"".join(encode(*reply) for reply in stream) + tail
    points = sorted(min(cut, len(data)) for cut in cuts)
    pieces = [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]
    whole, split = ReplyParser(max_reply_bytes=LIMIT), ReplyParser(max_reply_bytes=LIMIT)
    assert fed(split, pieces) == fed(whole, [data])
    assert (split.error is None) == (whole.error is None)
    assert split.pending_bytes == whole.pending_bytes
