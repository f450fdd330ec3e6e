"""Delivery status notifications (RFC 3461): what ``-N``, ``-R`` and ``-V`` ask for.

A caller (mutt's ``dsn_notify``/``dsn_return``, ``sendmail -N success``) may
ask the servers along the way to report delivery: NOTIFY on each RCPT, RET
and ENVID on MAIL. They are stored with the message and passed on only to a
server that offers DSN; to one that does not they are left out (RFC 3461 §5
lets a client relay the message without them) and the attempt's transcript
says so.

Importing this module is cheap: ``outbox sendmail`` checks the values.
"""

from __future__ import annotations

from relay.errors import UsageError

NOTIFY_WORDS = ("SUCCESS", "FAILURE", "DELAY")
RET_WORDS = ("FULL", "HDRS")
MAX_ENVID_CHARS = 100  # RFC 3461 §4.4


class DsnRequest:
    """What the caller asked for; None where it asked nothing.

    ``notify`` is ``"NEVER"`` or a comma-separated subset of SUCCESS, FAILURE,
    DELAY (upper case); ``ret`` is FULL or HDRS; ``envid`` printable ASCII as
    given (encoded as xtext only on the wire). A plain class, not a dataclass:
    ``outbox sendmail`` builds one and must not pay for ``dataclasses``.
    """

    __slots__ = ("envid", "notify", "ret")

    def __init__(
        self, notify: str | None = None, ret: str | None = None, envid: str | None = None
    ) -> None:
        self.notify = notify
        self.ret = ret
        self.envid = envid

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.notify, self.ret, self.envid))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DsnRequest):
            return NotImplemented
        return (self.notify, self.ret, self.envid) == (other.notify, other.ret, other.envid)

    def __hash__(self) -> int:
        return hash((self.notify, self.ret, self.envid))

    def __repr__(self) -> str:
        return f"DsnRequest(notify={self.notify!r}, ret={self.ret!r}, envid={self.envid!r})"

    def describe(self) -> str:
        """``NOTIFY=… RET=… ENVID=…``, as far as asked."""
        return (self.rcpt_parameters() + self.mail_parameters()).strip()

    def mail_parameters(self) -> str:
        """`` RET=… ENVID=…`` for MAIL FROM (empty when neither was asked)."""
        words = []
        if self.ret is not None:
            words.append(f" RET={self.ret}")
        if self.envid is not None:
            words.append(f" ENVID={xtext(self.envid)}")
        return "".join(words)

    def rcpt_parameters(self) -> str:
        """`` NOTIFY=…`` for each RCPT TO (empty when it was not asked)."""
        return f" NOTIFY={self.notify}" if self.notify is not None else ""


def parse_notify(value: str) -> str:
    """``-N``: ``never``, or a comma list of success, failure, delay (any case)."""
    words = [word.strip().upper() for word in value.split(",")]
    if words == ["NEVER"]:
        return "NEVER"
    if not words or any(word not in NOTIFY_WORDS for word in words):
        raise UsageError(
            f"bad DSN notify {value!r}: 'never', or one or more of success,failure,delay"
        )
    return ",".join(word for word in NOTIFY_WORDS if word in words)


def parse_ret(value: str) -> str:
    """``-R``: ``full`` or ``hdrs`` (any case)."""
    word = value.strip().upper()
    if word not in RET_WORDS:
        raise UsageError(f"bad DSN return {value!r}: 'full' or 'hdrs'")
    return word


def check_envid(value: str) -> str:
    """``-V``: printable ASCII, at most 100 characters (RFC 3461 §4.4)."""
    if not value or len(value) > MAX_ENVID_CHARS:
        raise UsageError(f"bad DSN envelope id: 1 to {MAX_ENVID_CHARS} characters")
    if not all(" " <= char <= "~" for char in value):
        raise UsageError("bad DSN envelope id: printable ASCII only")
    return value


def xtext(value: str) -> str:
    """RFC 3461 §4 xtext: ``+`` ``=`` and anything outside ``!``..``~`` as ``+XX``."""
    return "".join(
        char if "!" <= char <= "~" and char not in "+=" else f"+{ord(char):02X}" for char in value
    )
