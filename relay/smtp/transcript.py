"""The transcript of one SMTP session: what we said, what the server said, bounded.

Rules this module keeps:

- It never keeps a secret. Callers record what a person may read: the AUTH
  lines arrive here already as ``AUTH PLAIN ****`` and ``****``. What a
  server says is not under our control (a 535 may quote the AUTH line), so
  the strings given to ``hide`` are replaced by ``****`` in every line, and
  ``masked`` does the same for reply texts kept elsewhere.
- It never keeps a control character: what a server says ends up on a
  person's terminal (``outbox show``), where an escape sequence could retitle
  the window or hide text; ``printable`` writes them as ``\\x1b`` and the like.
- It is bounded. A hostile or broken server can answer with endless text; each
  line is cut at ``max_line_chars`` and the whole keeps at most ``max_chars``,
  dropping the oldest lines first but never the *preamble* (the connection,
  TLS and AUTH lines before ``pin()``), so a cut transcript still says where
  the session went and how it ended.
- Every line has a sequence number and the *owner* it was recorded for
  (``owner``: the transaction under way, or None for the session), so the
  transcript of one transaction is ``render(since=mark, owner=…)``: the
  preamble followed by that transaction's own lines only. Pipelining
  interleaves transactions on the wire -- the next message's envelope goes out
  with this one's final dot -- and a message's stored transcript must not hold
  another's recipients.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from enum import StrEnum
from itertools import islice


def printable(text: str) -> str:
    """``text`` with every non-printable character (C0, DEL, C1, bidi and other
    format characters) written as its Python escape; the rest untouched."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Direction(StrEnum):
    CLIENT = "C"  # we sent it
    SERVER = "S"  # the server sent it
    NOTE = "*"  # what happened without words on the wire (connected, TLS, lost …)


_CLIENT = "C: "
_SERVER = "S: "
_NOTE = "*: "


class Transcript:
    """An append-only, size-bounded record of one session, rendered as text.

    Each line is kept as the text it renders to (``C: MAIL FROM:<…>``), so
    rendering is a join; sequence numbers are implicit (the lines kept after
    the preamble are consecutive), which keeps recording a line cheap: a
    flush records about ten per message.
    """

    def __init__(self, *, max_chars: int = 256 * 1024, max_line_chars: int = 1000) -> None:
        self._max_chars = max_chars
        self._max_line_chars = max_line_chars
        self._preamble: list[str] = []
        self._preamble_end = 0  # sequence number just after the preamble
        self._pinned = False
        self._lines: deque[str] = deque()
        self._chars = 0
        self._next_seq = 0
        self._first_kept = 0  # sequence number of the oldest line kept after the preamble
        self._hidden: list[str] = []  # longest first, so no part of one survives another
        #: Whose lines are being recorded: a transaction's number, or None (the session's).
        self.owner: int | None = None
        self._owners: deque[int | None] = deque()  # of each line in ``_lines``

    def hide(self, *secrets: str) -> None:
        """Never record these strings; ``****`` stands in for them from now on."""
        self._hidden = sorted({*self._hidden, *(s for s in secrets if s)}, key=len, reverse=True)

    @property
    def hides(self) -> bool:
        """Whether any string is hidden (``masked`` changes nothing when not)."""
        return bool(self._hidden)

    def masked(self, text: str) -> str:
        """``text`` with every hidden string replaced by ``****``."""
        for secret in self._hidden:
            if secret in text:
                text = text.replace(secret, "****")
        return text

    def client(self, text: str) -> None:
        """A command as we sent it (secrets already replaced by ``****``)."""
        self._add(_CLIENT, text)

    def clients(self, lines: Iterable[str], *, owner: int | None = None) -> None:
        """Several commands as we sent them, in order (a pipelined group).

        ``owner``, when given, records them for that transaction rather than
        the current ``owner`` (the next message's group, sent with a final dot).
        """
        current = self.owner
        if owner is not None:
            self.owner = owner
        try:
            for text in lines:
                self._add(_CLIENT, text)
        finally:
            self.owner = current

    def server(self, code: int, lines: tuple[str, ...] | list[str]) -> None:
        """A reply, one transcript line per reply line, as ``250-…``/``250 …``."""
        if len(lines) == 1:  # the common case, a few a message
            self._add(_SERVER, f"{code:03d} {lines[0]}".rstrip())
            return
        if not lines:
            lines = [""]
        last = len(lines) - 1
        for index, line in enumerate(lines):
            separator = " " if index == last else "-"
            self._add(_SERVER, f"{code:03d}{separator}{line}".rstrip())

    def note(self, text: str) -> None:
        self._add(_NOTE, text)

    def pin(self) -> None:
        """Everything recorded so far is the preamble: kept, and part of every render."""
        if not self._pinned:
            self._preamble.extend(self._lines)
            self._preamble_end = self._next_seq if self._preamble else 0
            self._lines.clear()
            self._owners.clear()
            self._chars = 0
            self._first_kept = self._next_seq
            self._pinned = True

    def mark(self) -> int:
        """A position to render from later (see ``render``)."""
        return self._next_seq

    def render(self, since: int | None = None, *, owner: int | None = None) -> str:
        """The transcript as text: the preamble, then every kept line from ``since`` on
        (only those recorded for ``owner``, when given).

        A note says how many lines of that range were dropped to stay bounded.
        """
        start = self._preamble_end if since is None else max(since, self._preamble_end)
        out = list(self._preamble)
        dropped = self._first_kept - start
        if dropped > 0:
            out.append(f"{Direction.NOTE}: [{dropped} lines not kept: the transcript is bounded]")
        # Take the tail from the right, so rendering one transaction costs its
        # own lines, not the session's.
        wanted = min(len(self._lines), self._next_seq - start)
        if wanted > 0:
            tail = list(islice(reversed(self._lines), wanted))
            tail.reverse()
            if owner is not None:
                owners = list(islice(reversed(self._owners), wanted))
                owners.reverse()
                tail = [line for line, of in zip(tail, owners, strict=True) if of == owner]
            out.extend(tail)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()

    def _add(self, prefix: str, text: str) -> None:
        if self._hidden:
            text = self.masked(text)
        if not text.isprintable():  # CR, LF and other controls are not printable
            if "\r" in text or "\n" in text:
                text = text.replace("\r", "").replace("\n", " ")
            text = printable(text)
        if len(text) > self._max_line_chars:
            cut = len(text) - self._max_line_chars
            text = f"{text[: self._max_line_chars]}… [{cut} more characters]"
        self._next_seq += 1
        self._lines.append(prefix + text)
        self._owners.append(self.owner)
        self._chars += len(text) + 4
        if self._chars > self._max_chars:
            while self._chars > self._max_chars and len(self._lines) > 1:
                self._chars -= len(self._lines.popleft()) + 1
                self._owners.popleft()
                self._first_kept += 1
