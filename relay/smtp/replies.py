"""SMTP replies from bytes: a parser with no I/O (bytes in, replies out).

``ReplyParser`` is fed whatever the connection delivered, in whatever pieces,
and hands back every reply those bytes complete, in order. It never reads,
writes, waits or keeps time: ``relay.smtp.wire.Wire`` feeds it and decides
what a reply means to the session (whether a command asked for it, when a
reader is woken). That split is h11's: the rules of the protocol live here,
where a test can enumerate them as a table, and the driver stays thin.

Rules it keeps (RFC 5321 section 4.2):

- ``ddd-text`` continues a reply; ``ddd text`` or a bare ``ddd`` ends it. A
  line is ended by CRLF, and a bare LF is taken as one too (servers that
  send it exist, and nothing else could be meant).
- Every line of one reply carries the same code (section 4.2.1): a reply
  whose lines disagree (``550-…`` then ``250 …``) says two things at once;
  it is a protocol error, never read as its last line.
- A reply may be at most ``max_reply_bytes`` long, line endings included,
  whether it is still arriving or complete: a server cannot make us hold an
  endless reply.
- Any split of the same bytes into pieces gives the same replies and, after
  a protocol error, the same replies before it and an error.

After a protocol error ``error`` says what was wrong, the replies before it
have been handed out, and everything fed later is ignored: a server that
breaks the protocol once cannot be paired with our commands again.

Costs that shaped it: a flush reads four or five replies a message, most of
them in one segment (PIPELINING), so ``feed`` parses every complete line of
what arrived in one pass with ``bytes.split``, holds back only the bytes of
an incomplete reply, and does nothing at all (no split, no decode) for a
piece that completes no line.
"""

from __future__ import annotations

#: The longest reply taken, in bytes (line endings included).
MAX_REPLY_BYTES = 64 * 1024

_SEPARATORS = (b"", b" ", b"-")


class ReplyError(Exception):
    """The server broke the reply syntax: its fault, and the session cannot go on."""


class RawReply:
    """One complete reply: its code and the text of each line (code and separator removed).

    A plain class rather than a frozen dataclass: a flush makes five a
    message, and a frozen dataclass's ``__init__`` costs twice as much.
    """

    __slots__ = ("code", "lines")

    def __init__(self, code: int, lines: tuple[str, ...]) -> None:
        self.code = code
        self.lines = lines

    @property
    def text(self) -> str:
        lines = self.lines
        if len(lines) == 1:
            return lines[0]
        return " ".join(line for line in lines if line)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawReply):
            return NotImplemented
        return self.code == other.code and self.lines == other.lines

    __hash__ = None  # type: ignore[assignment]  # mutable fields: no hash

    def __repr__(self) -> str:
        return f"RawReply({self.code!r}, {self.lines!r})"


class ReplyParser:
    """Turns the bytes a server sends into ``RawReply`` values; see the module's rules."""

    __slots__ = ("_buffer", "_max_reply_bytes", "error")

    def __init__(self, *, max_reply_bytes: int = MAX_REPLY_BYTES) -> None:
        self._max_reply_bytes = max_reply_bytes
        self._buffer = bytearray()  # the start of a reply not yet complete
        #: What was wrong, once the server broke the syntax; nothing is parsed after it.
        self.error: ReplyError | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes of a reply that has begun to arrive and is not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[RawReply]:
        """The replies ``data`` completes, oldest first (often none).

        On a protocol error: the replies before it, with ``error`` set.
        """
        if self.error is not None:
            return []
        buffer = self._buffer
        if buffer:
            buffer += data
            if b"\n" not in data:  # nothing new is complete
                if len(buffer) > self._max_reply_bytes:
                    self._fail(self._too_long())
                return []
            data = bytes(buffer)
            buffer.clear()
        replies: list[RawReply] = []
        used = self._parse(data, replies)
        if self.error is None and used < len(data):
            if len(data) - used > self._max_reply_bytes:
                self._fail(self._too_long())
            else:
                buffer += data[used:]
        return replies

    def _parse(self, data: bytes, replies: list[RawReply]) -> int:
        """Append every complete reply in ``data`` to ``replies``; the bytes they took.

        One pass over the complete lines, however many replies they hold.
        """
        complete = data.rfind(b"\n") + 1
        if not complete:
            return 0
        limit = self._max_reply_bytes
        used = offset = 0
        texts: list[str] = []
        first_code = b""
        for line in data[:complete].split(b"\n")[:-1]:
            offset += len(line) + 1
            if line[-1:] == b"\r":
                line = line.rstrip(b"\r")
            code_text, separator = line[:3], line[3:4]
            if not (code_text.isdigit() and separator in _SEPARATORS):
                shown = line[:80].decode("utf-8", "replace")
                self._fail(
                    ReplyError(f"the server sent a line that is not an SMTP reply: {shown!r}")
                )
                return used
            if texts and code_text != first_code:
                self._fail(
                    ReplyError(
                        "the server sent a reply whose lines carry different codes"
                        f" ({first_code.decode()} then {code_text.decode()}): it says two"
                        " things at once (RFC 5321 section 4.2.1 allows one code a reply)"
                    )
                )
                return used
            first_code = code_text
            texts.append(line[4:].decode("utf-8", "replace"))
            if separator != b"-":
                if offset - used > limit:
                    self._fail(self._too_long())
                    return used
                replies.append(RawReply(int(code_text), tuple(texts)))
                texts = []
                used = offset
        return used

    def _too_long(self) -> ReplyError:
        return ReplyError(f"the server sent a reply longer than {self._max_reply_bytes} bytes")

    def _fail(self, error: ReplyError) -> None:
        self.error = error
        self._buffer.clear()
