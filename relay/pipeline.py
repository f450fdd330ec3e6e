"""PIPELINING (RFC 2920) for the mail phase: several commands on the wire before their replies.

When the server offers PIPELINING and the account allows it, the relayer
sends each message's envelope as one group -- ``MAIL FROM``, every ``RCPT
TO``, ``DATA`` -- and writes the next message's group in the same write as
this message's final dot, so a steady stream costs one client turn per
message (``DATA`` has to wait for its 354, so that is the floor).

Replies still come one per command, in order (RFC 2920 section 3.1), so the
relayer reads them exactly as in lock-step and reports exactly the same
things. What differs is only what is already on the wire when a reply says
no; ``Pipeline`` keeps track of that:

- after a refused ``MAIL`` (or when every ``RCPT`` was refused), the replies
  to the rest of the group belong to no one: they are read and dropped
  *after* the transaction is reported (``settle``), as lock-step's ``RSET``
  would have been, and the next group starts with ``RSET``;
- a reply that cannot answer the command it lines up with (a 354 to anything
  but ``DATA``, a 2xx to ``DATA``) means replies and commands are out of
  step: nothing more is matched, the session ends, and what is not finished
  is left to the attempt manager as after any lost session;
- a 354 to a ``DATA`` whose transaction has no accepted recipient would take
  whatever comes next as message data: the session ends instead;
- a stop while the next message's group is already out: the connection is
  dropped (that message was never reported as started, so it is handed back
  untouched, and without its data the server delivers nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from relay.connection import Session, SessionLost
from relay.report import FailureKind, OutgoingMessage, Reply, SessionFailure, Stage

Command = tuple[Stage, str]


def envelope(message: OutgoingMessage, mail_line: str, rcpt_parameters: str = "") -> list[Command]:
    """The group that opens a transaction: MAIL FROM, each RCPT TO (with
    ``rcpt_parameters``, such as DSN's `` NOTIFY=…``), DATA."""
    return [
        (Stage.MAIL, mail_line),
        *(
            (Stage.RCPT, f"RCPT TO:<{address}>{rcpt_parameters}")
            for address in message.recipients
        ),
        (Stage.DATA, "DATA"),
    ]


class Pipeline:
    """What one session has on the wire ahead of its replies."""

    def __init__(self, session: Session) -> None:
        self.session = session
        #: The message whose envelope went out with the previous message's final dot.
        self.ahead: int | None = None
        #: The next group starts with RSET (the last transaction failed before its data).
        self.reset_pending = False
        self._unclaimed: list[Stage] = []

    def send_envelope(self, commands: Sequence[Command]) -> bool:
        """Write a transaction's group (after RSET when one is due); true if RSET went first."""
        reset = self.reset_pending
        self.reset_pending = False
        self.session.send_commands([(Stage.RSET, "RSET"), *commands] if reset else commands)
        return reset

    async def read(self, stage: Stage, *, timeout_s: float | None = None) -> Reply:
        """The reply to the oldest outstanding command, which is a ``stage`` command."""
        reply = await self.session.read_reply(stage, timeout_s=timeout_s)
        if _out_of_step(stage, reply):
            raise self._end(
                f"{self.session.account.host} answered {stage.value.upper()} with {reply}:"
                " replies are out of step with the pipelined commands"
            )
        return reply

    def leave_unclaimed(self, stages: Sequence[Stage]) -> None:
        """Replies the transaction will not read (its MAIL or every RCPT was refused)."""
        self._unclaimed.extend(stages)

    @property
    def unsettled(self) -> bool:
        """Whether replies nobody claimed wait to be read (``settle``)."""
        return bool(self._unclaimed)

    async def settle(self) -> None:
        """Read and drop the replies nobody claimed; then the next group starts with RSET."""
        stages, self._unclaimed = self._unclaimed, []
        for stage in stages:
            reply = await self.read(stage)
            if stage is Stage.DATA and reply.code == 354:
                raise self._end(
                    f"{self.session.account.host} accepted DATA for a transaction"
                    f" it had refused ({reply}); ending the session so nothing is sent"
                )
        if stages:
            self.reset_pending = True

    def _end(self, text: str) -> SessionLost:
        self.session.transcript.note(text)
        self.session.abort()
        return SessionLost(SessionFailure(FailureKind.PROTOCOL, text))


def _out_of_step(stage: Stage, reply: Reply) -> bool:
    if stage is Stage.DATA:
        return 200 <= reply.code < 300
    if stage in (Stage.MAIL, Stage.RCPT, Stage.RSET):
        return reply.code == 354
    return False
