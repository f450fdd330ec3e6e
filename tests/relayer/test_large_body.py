"""A large stored message streams from the outbox file onto the wire, byte for byte.

The message is claimed from a real store (so its body is a ``StoredBody``,
read piece by piece while it is sent) and laid out so that the awkward cases
fall exactly on the boundaries of the pieces it is read in: a line starting
with a dot at a boundary, a CRLF split by one with a dot after it, a lone dot
line across one. aiosmtpd un-stuffs what arrives; it must be the stored
message exactly, through lock-step and through PIPELINING (where the next
message's commands travel with the final dot).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.message import parse_message
from relay.relayer import ManagedRelayer
from relay.report import OutgoingMessage
from relay.smtp.data_encoding import CHUNK_BYTES
from relay.store.body import StoredBody
from relay.store.outbox import Outbox
from tests.relayer.observer import RecordingObserver
from tests.support.fault_server import FaultServer
from tests.support.smtp_servers import RecordingHandler, smtp_server

HEAD = (
    b"From: ann@example.org\r\nTo: bob@example.net, carol@example.net\r\n"
    b"Subject: boundaries\r\nDate: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <boundaries@example.org>\r\n\r\n"
)
MARK = b"never-in-a-transcript"


#: What sits at a piece boundary: (starts a line, bytes before the boundary, text).
AWKWARD = [
    (True, 0, b".dot at the very start of a piece\r\n"),
    (False, 1, b"\r\n.dot after a CRLF split by the boundary\r\n"),
    (True, 1, b"..two dots, the boundary between them\r\n"),
    (True, 1, b".\r\n"),  # a lone dot line, the dot ending a piece
    (False, 1, b"\r\n.\r\n"),  # a piece ending in CR, a lone dot line after it
]


def boundary_message(boundaries: int = 48) -> bytes:
    """A message with one of ``AWKWARD`` at every multiple of ``CHUNK_BYTES``."""
    out = bytearray(HEAD)
    for index in range(1, boundaries + 1):
        starts_line, before, text = AWKWARD[index % len(AWKWARD)]
        _fill_to(out, index * CHUNK_BYTES - before, ends_line=starts_line)
        out += text
    _fill_to(out, len(out) + 2000, ends_line=True)
    out += MARK + b" and no line ending at the very end"
    return bytes(out)


def _fill_to(out: bytearray, target: int, *, ends_line: bool) -> None:
    """Append filler (lines of at most 900 octets) so that ``len(out) == target``."""
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    while target - len(out) > 900:
        out += b"f" * 700 + b"\r\n"
    rest = target - len(out)  # 199 to 900
    out += b"g" * (rest - 2) + b"\r\n" if ends_line else b"h" * rest
    assert len(out) == target


def test_the_awkward_cases_sit_exactly_on_the_piece_boundaries() -> None:
    body = parse_message(boundary_message()).raw
    assert body == boundary_message() + b"\r\n"  # intake ends the last line
    for index in range(1, 49):
        starts_line, before, text = AWKWARD[index % len(AWKWARD)]
        at = index * CHUNK_BYTES - before
        assert body[at : at + len(text)] == text
        assert (body[at - 2 : at] == b"\r\n") is starts_line


class PipeliningHandler(RecordingHandler):
    """aiosmtpd reads commands as they come, so saying PIPELINING is all it takes."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


def claimed(tmp_path: Path) -> tuple[Outbox, list[OutgoingMessage], bytes, bytes]:
    outbox = Outbox.open(tmp_path / "home")
    big = outbox.add_message(parse_message(boundary_message())).id
    small_raw = HEAD.replace(b"boundaries@", b"small@") + b".small one\r\n"
    small = outbox.add_message(parse_message(small_raw)).id
    messages = outbox.claim([big, small])
    assert isinstance(messages[0].body, StoredBody)
    return outbox, messages, outbox.raw(big), outbox.raw(small)


async def relay(account: Any, messages: list[OutgoingMessage]) -> RecordingObserver:
    observer = RecordingObserver()
    await ManagedRelayer(account, None, messages, observer).run()
    return observer


def check(observer: RecordingObserver, messages: list[OutgoingMessage]) -> None:
    big = messages[0]
    assert [r.end_of_data and r.end_of_data.code for r in observer.reports.values()] == [250, 250]
    sent = observer.sent_bytes(big.id)
    steps = [later - earlier for earlier, later in zip([0, *sent], sent, strict=False)]
    assert sent[-1] == big.size and max(steps) <= CHUNK_BYTES
    assert f"[message data: {big.size} bytes]" in observer.transcript
    assert MARK.decode() not in observer.transcript


async def test_a_streamed_message_arrives_byte_identical_in_lock_step(tmp_path: Path) -> None:
    outbox, messages, big, small = claimed(tmp_path)
    with outbox:
        async with smtp_server(size_limit=None) as server:
            observer = await relay(server.account(pipelining=False), messages)
        check(observer, messages)
        assert [r.body for r in server.received] == [big, small]
        assert server.received[0].rcpt_tos == ("bob@example.net", "carol@example.net")


async def test_a_streamed_message_arrives_byte_identical_with_pipelining(tmp_path: Path) -> None:
    outbox, messages, big, small = claimed(tmp_path)
    with outbox:
        async with smtp_server(size_limit=None, handler=PipeliningHandler()) as server:
            observer = await relay(server.account(pipelining=True), messages)
        check(observer, messages)
        assert [r.body for r in server.received] == [big, small]


async def test_the_pipelined_stream_really_pipelines_and_says_the_stored_size(
    tmp_path: Path,
) -> None:
    outbox, messages, big, small = claimed(tmp_path)
    extensions = ("PIPELINING", "8BITMIME", "SIZE 104857600")
    with outbox:
        async with FaultServer(enforce_order=True, extensions=extensions) as server:
            observer = await relay(server.account(pipelining=True), messages)
        check(observer, messages)
        assert [m.body for m in server.messages] == [big, small]
        assert server.pipelined > 0
        mail = [c for c in server.commands if c.startswith("MAIL FROM")]
        assert mail[0].endswith(f"SIZE={len(big)}")
