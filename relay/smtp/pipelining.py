"""How a transaction's commands go out: pipelined (RFC 2920) or in lock-step, read the same way.

The relayer has one code path for a transaction. It hands a message's
envelope -- ``MAIL FROM``, every ``RCPT TO``, ``DATA`` -- to a *dialogue*
with ``send_envelope`` and then reads one reply per command, in order, with
``read``. The two dialogues differ only in when a command leaves:

- ``Pipeline`` (the server offers PIPELINING and the account allows it)
  writes the envelope as one group, and the next message's group in the same
  write as this message's final dot (``for_the_dot``), so a steady stream
  costs one client turn per message (``DATA`` has to wait for its 354, so
  that is the floor). A group is written at most ``GROUP_COMMANDS`` commands
  at a time; the rest follow once those are answered, so a message with
  thousands of recipients never has more than that many replies in flight.
- ``Lockstep`` writes each command only when its reply is asked for, so a
  command after a refusal is never sent at all.

Replies come one per command, in order (RFC 2920 section 3.1), so what the
relayer reads and reports is the same either way; the same checks apply to
both:

- after a refused ``MAIL`` (or when every ``RCPT`` was refused), the replies
  to the rest of the group belong to no one: a pipeline reads and drops them
  *after* the transaction is reported (``settle``); either way the next
  group starts with ``RSET``;
- a reply that cannot answer the command it lines up with -- a 354 to
  anything but ``DATA``, anything positive but 354 to ``DATA`` (a 2xx, or a
  3xx that invites nothing we know) -- means replies and commands are out of
  step: nothing more is matched, the session ends, and what is not finished
  is left to the attempt manager as after any lost session;
- a 354 to a ``DATA`` whose transaction has no accepted recipient would take
  whatever comes next as message data: the session ends instead;
- once the server's recipient limit is reached (a 452 after an accepted
  ``RCPT``), the group's ``RCPT`` commands not yet written stay unwritten
  (``withhold_recipients``) and ``DATA`` follows the ones already out;
- a stop while the next message's group is already out: the connection is
  dropped (that message was never reported as started, so it is handed back
  untouched, and without its data the server delivers nothing).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from relay.report import FailureKind, OutgoingMessage, Reply, SessionFailure, Stage
from relay.smtp.session import Session, SessionLost

Command = tuple[Stage, str]

#: Commands of one group written at once, at most (the rest follow as they are answered).
#: RFC 5321 section 4.5.3.1.8: a server buffers at least 100 recipients.
GROUP_COMMANDS = 100


def envelope(message: OutgoingMessage, mail_line: str, rcpt_parameters: str = "") -> list[Command]:
    """The group that opens a transaction: MAIL FROM, each RCPT TO (with
    ``rcpt_parameters``, such as DSN's `` NOTIFY=…``), DATA."""
    return [
        (Stage.MAIL, mail_line),
        *((Stage.RCPT, f"RCPT TO:<{address}>{rcpt_parameters}") for address in message.recipients),
        (Stage.DATA, "DATA"),
    ]


class Dialogue:
    """What the two ways of sending share: the bookkeeping between transactions."""

    #: Whether the next group may go out with a final dot (``for_the_dot``).
    pipelining = False

    def __init__(self, session: Session) -> None:
        self.session = session
        #: The transaction (its serial) whose envelope went out with the last final dot.
        self.ahead: int | None = None
        #: The next group starts with RSET (the last transaction failed).
        self.reset_pending = False

    def send_envelope(self, commands: Sequence[Command]) -> bool:
        """Queue a transaction's group (after RSET when one is due); true if RSET goes first."""
        raise NotImplementedError

    def for_the_dot(self, commands: Sequence[Command]) -> list[Command]:
        """The part of the next group to write with this final dot (the rest is queued)."""
        return []

    async def read(self, stage: Stage, *, timeout_s: float | None = None) -> Reply:
        """The reply to the oldest command not yet answered, which is a ``stage`` command."""
        raise NotImplementedError

    def leave_unclaimed(self, stages: Sequence[Stage]) -> None:
        """The rest of the group will not be read (its MAIL or every RCPT was refused)."""
        raise NotImplementedError

    def withhold_recipients(self) -> int:
        """Write no further ``RCPT`` of this group (the server's recipient limit is
        reached); ``DATA`` still goes. How many were never written, and now never
        will be: the group's last ones. Those already written are read as usual."""
        raise NotImplementedError

    @property
    def unsettled(self) -> bool:
        """Whether replies nobody claimed wait to be read (``settle``)."""
        return False

    async def settle(self) -> None:
        """Read and drop the replies nobody claimed; then the next group starts with RSET."""

    def _checked(self, stage: Stage, reply: Reply) -> Reply:
        if _out_of_step(stage, reply):
            raise self._end(
                f"{self.session.account.host} answered {stage.value.upper()} with {reply}:"
                + (
                    " only 354 invites the message data, so the data was not sent and"
                    " nothing further can be paired with a reply"
                    if stage is Stage.DATA
                    else " replies are out of step with the commands"
                )
            )
        return reply

    def _end(self, text: str) -> SessionLost:
        self.session.transcript.note(text)
        self.session.abort()
        return SessionLost(SessionFailure(FailureKind.PROTOCOL, text))


class Lockstep(Dialogue):
    """One command, then its reply: a command goes out only when its reply is asked for."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._queued: deque[Command] = deque()

    def send_envelope(self, commands: Sequence[Command]) -> bool:
        reset = self.reset_pending
        self.reset_pending = False
        self._queued = deque([(Stage.RSET, "RSET"), *commands] if reset else commands)
        return reset

    async def read(self, stage: Stage, *, timeout_s: float | None = None) -> Reply:
        if stage is Stage.END_OF_DATA:  # the final dot's reply: the dot is the command
            return await self.session.read_reply(stage, timeout_s=timeout_s)
        queued_stage, line = self._queued.popleft()
        assert queued_stage is stage, f"read {stage} for a {queued_stage} command"
        return self._checked(stage, await self.session.command(stage, line, timeout_s=timeout_s))

    def leave_unclaimed(self, stages: Sequence[Stage]) -> None:
        self._queued.clear()  # never sent: nothing to read
        self.reset_pending = True

    def withhold_recipients(self) -> int:
        self._queued, withheld = _without_recipients(self._queued)
        return withheld


class Pipeline(Dialogue):
    """Several commands on the wire before their replies (RFC 2920)."""

    pipelining = True

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._unclaimed: list[Stage] = []
        self._unsent: deque[Command] = deque()  # of the current group, beyond GROUP_COMMANDS
        self._outstanding = 0  # commands written whose replies were not read yet

    def send_envelope(self, commands: Sequence[Command]) -> bool:
        reset = self.reset_pending
        self.reset_pending = False
        group = [(Stage.RSET, "RSET"), *commands] if reset else list(commands)
        self._unsent = deque(group[GROUP_COMMANDS:])
        self._write(group[:GROUP_COMMANDS])
        return reset

    def for_the_dot(self, commands: Sequence[Command]) -> list[Command]:
        first = list(commands[:GROUP_COMMANDS])
        self._unsent = deque(commands[GROUP_COMMANDS:])
        self._outstanding += 1 + len(first)  # the end-of-data reply, then the group's
        return first

    async def read(self, stage: Stage, *, timeout_s: float | None = None) -> Reply:
        if self._outstanding == 0 and self._unsent:
            # Everything written is answered: the next slice of the group.
            count = min(GROUP_COMMANDS, len(self._unsent))
            self._write([self._unsent.popleft() for _ in range(count)])
        reply = await self.session.read_reply(stage, timeout_s=timeout_s)
        self._outstanding = max(0, self._outstanding - 1)
        return self._checked(stage, reply)

    def leave_unclaimed(self, stages: Sequence[Stage]) -> None:
        # The tail of the group still unsent never goes: only what was written is owed.
        written = len(stages) - len(self._unsent)
        self._unsent.clear()
        self._unclaimed.extend(stages[:written])
        if not self._unclaimed:
            self.reset_pending = True

    def withhold_recipients(self) -> int:
        self._unsent, withheld = _without_recipients(self._unsent)
        return withheld

    @property
    def unsettled(self) -> bool:
        return bool(self._unclaimed)

    async def settle(self) -> None:
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

    def _write(self, commands: Sequence[Command]) -> None:
        if commands:
            self.session.send_commands(commands)
            self._outstanding += len(commands)


def _without_recipients(commands: deque[Command]) -> tuple[deque[Command], int]:
    """``commands`` without their ``RCPT`` commands, and how many there were."""
    kept = deque(command for command in commands if command[0] is not Stage.RCPT)
    return kept, len(commands) - len(kept)


def _out_of_step(stage: Stage, reply: Reply) -> bool:
    if stage is Stage.DATA:
        return reply.positive and reply.code != 354
    if stage in (Stage.MAIL, Stage.RCPT, Stage.RSET):
        return reply.code == 354
    return False
