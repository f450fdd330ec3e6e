"""``sendmail -bs``: an SMTP server dialogue on standard input and output.

PHP's Symfony Mailer and Laravel (and other frameworks) talk SMTP to
``sendmail -bs`` rather than piping a message to ``sendmail -t``. This module
is that server, for one caller and one process, in two parts:

- :class:`SmtpDialogue` holds the rules and no I/O (h11's shape): it is fed
  one line at a time and answers with the reply bytes. Tests run it line by
  line and table by table.
- :func:`serve_stdio` is the thin driver: read a line from standard input,
  write the reply to standard output, until QUIT or the end of the input.

The rules it keeps:

- A message is stored (``relay.store.database.enqueue``: committed, synced) before
  its ``250`` is written; a message whose data never ended (the input closed
  first) is not stored, and its sender was never told it was.
- Replies come one per command, in order, whatever arrives in one read, so
  a client may pipeline (RFC 2920): nothing read ahead is ever thrown away.
- HELO or EHLO comes first; MAIL, RCPT, DATA in that order; RSET and a new
  HELO/EHLO drop the transaction. Anything else is answered with the reply
  code RFC 5321 gives it (500/501/502/503/550/552/553/554/555, with
  RFC 3463 enhanced status codes), never a traceback: a failure while
  storing is ``451`` with the machine's problem in words (``452 4.3.1``, mail
  system full, for a full disk), and the client may try again.
- The envelope follows the command-line rules: ``MAIL FROM:<>`` is the null
  sender, a local name (``<root>``) becomes an account's address, a local
  recipient is resolved through the aliases at RCPT (and refused there if it
  has none); recipients come from RCPT only, never from the header.
- 8BITMIME and SMTPUTF8 are offered because the store keeps both; a
  non-ASCII address without the ``SMTPUTF8`` parameter is refused (RFC 6531
  §3.4). SIZE is the intake limit. DSN, AUTH, STARTTLS and CHUNKING are not
  offered (there is no network here to protect or to report on).
- After 20 refused commands the dialogue ends with ``421``: a caller that
  has lost its way is not kept talking forever.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, ClassVar, Protocol

from relay.errors import ConfigError, InvalidMessage, OutboxError
from relay.machineproblems import DiskFull, explain
from relay.message import MAX_MESSAGE_OCTETS

MAX_COMMAND_OCTETS = 2048  # RFC 5321 §4.5.3.1.4 says 512; SMTPUTF8 addresses need room
MAX_RECIPIENTS = 1000
MAX_ERRORS = 20
HOSTNAME = "localhost"

_MAIL = re.compile(r"FROM:[ \t]*<([^<>]*)>(.*)", re.IGNORECASE | re.DOTALL)
_RCPT = re.compile(r"TO:[ \t]*<([^<>]*)>(.*)", re.IGNORECASE | re.DOTALL)
_ROUTE = re.compile(r"@[^:,]+(?:,@[^:,]+)*:")  # RFC 5321 §4.1.2 source route: ignored
_NOT_OFFERED = frozenset({"STARTTLS", "AUTH", "BDAT", "ETRN", "TURN", "ATRN", "SEND", "SOML",
                          "SAML", "XCLIENT", "XFORWARD"})  # fmt: skip

#: ``store(sender, recipients, data)``: the stored message's id (or, when the store
#: stayed busy, the drop-folder file it waits in), or an exception.
Store = Callable[[str, list[str], bytes], int | str]


class Resolver(Protocol):
    """What local names mean (``relay.localnames.LocalNames``)."""

    def sender(self) -> str: ...

    def expand(self, name: str) -> tuple[str, ...]: ...


def _reply(code: int, status: str, text: str) -> bytes:
    return f"{code} {status} {_printable(text)}\r\n".encode("utf-8", "replace")


def _printable(text: str) -> str:
    """``text`` safe to echo on one reply line: control characters (a bare CR
    the client sent) and undecodable bytes become ``?``."""
    return re.sub("[\x00-\x1f\x7f\ud800-\udfff]", "?", text)


class SmtpDialogue:
    """One SMTP server session, fed line by line; see the module's rules."""

    def __init__(self, store: Store, local: Resolver) -> None:
        self._store = store
        self._local = local
        self.closed = False
        self.in_data = False
        self._greeted = False
        self._sender: str | None = None  # None: no transaction; "" the null sender
        self._recipients: list[str] = []
        self._utf8 = False
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._errors = 0

    def greeting(self) -> bytes:
        return f"220 {HOSTNAME} ESMTP Outbox (sendmail -bs)\r\n".encode()

    def feed_line(self, line: bytes, *, too_long: bool = False) -> bytes:
        """The reply to one input line (without its line ending); b"" inside the data."""
        if self.closed:
            return b""
        if self.in_data:
            if too_long:
                self._data_bytes = MAX_MESSAGE_OCTETS + 1  # refused at the final dot
                return b""
            return self._data_line(line)
        if too_long:
            return self._refuse(500, "5.5.2", "line too long")
        text = line.decode("utf-8", "surrogateescape")
        verb, _, rest = text.partition(" ")
        verb = verb.upper()
        handler = self._HANDLERS.get(verb)
        if handler is not None:
            return handler(self, rest.strip(" \t"))
        if verb in _NOT_OFFERED:
            return self._refuse(502, "5.5.1", f"{verb} is not implemented")
        return self._refuse(500, "5.5.2", "command not recognized")

    # -- commands ------------------------------------------------------------------------

    def _ehlo(self, argument: str) -> bytes:
        if not argument:
            return self._refuse(501, "5.5.4", "syntax: EHLO hostname")
        self._greeted = True
        self._reset()
        lines = [
            f"{HOSTNAME} greets {_printable(argument)}",
            "PIPELINING",
            "8BITMIME",
            "SMTPUTF8",
            f"SIZE {MAX_MESSAGE_OCTETS}",
            "ENHANCEDSTATUSCODES",
        ]
        out = [f"250-{line}\r\n" for line in lines[:-1]] + [f"250 {lines[-1]}\r\n"]
        return "".join(out).encode("utf-8", "replace")

    def _helo(self, argument: str) -> bytes:
        if not argument:
            return self._refuse(501, "5.5.4", "syntax: HELO hostname")
        self._greeted = True
        self._reset()
        return f"250 {HOSTNAME}\r\n".encode()

    def _mail(self, argument: str) -> bytes:
        if not self._greeted:
            return self._refuse(503, "5.5.1", "send HELO or EHLO first")
        if self._sender is not None:
            return self._refuse(503, "5.5.1", "nested MAIL command")
        match = _MAIL.fullmatch(argument)
        if match is None:
            return self._refuse(501, "5.5.4", "syntax: MAIL FROM:<address>")
        address = _ROUTE.sub("", match.group(1).strip(), count=1)
        utf8 = False
        for parameter in match.group(2).split():
            key, _, value = parameter.partition("=")
            key = key.upper()
            if key == "SIZE" and value.isdigit():
                if int(value) > MAX_MESSAGE_OCTETS:
                    return self._refuse(552, "5.3.4", "message size exceeds fixed limit")
            elif key == "BODY" and value.upper() in ("7BIT", "8BITMIME"):
                pass
            elif key == "SMTPUTF8" and not value:
                utf8 = True
            else:
                return self._refuse(555, "5.5.4", f"unsupported parameter {parameter}")
        if address:
            refused = self._check_address(address, utf8, "5.1.7")
            if refused is not None:
                return refused
            if "@" not in address:
                try:
                    self._local.sender()
                except ConfigError as exc:
                    return self._refuse(451, "4.3.5", str(exc))
        self._sender = address
        self._utf8 = utf8
        return _reply(250, "2.1.0", "Ok")

    def _rcpt(self, argument: str) -> bytes:
        if self._sender is None:
            return self._refuse(503, "5.5.1", "need MAIL before RCPT")
        match = _RCPT.fullmatch(argument)
        if match is None:
            return self._refuse(501, "5.5.4", "syntax: RCPT TO:<address>")
        address = _ROUTE.sub("", match.group(1).strip(), count=1)
        if match.group(2).strip():
            return self._refuse(555, "5.5.4", f"unsupported parameter {match.group(2).strip()}")
        if not address:
            return self._refuse(501, "5.1.3", "an empty recipient is not an address")
        refused = self._check_address(address, self._utf8, "5.1.3")
        if refused is not None:
            return refused
        if "@" in address:
            addresses: tuple[str, ...] = (address,)
        else:
            try:
                addresses = self._local.expand(address)
            except ConfigError as exc:
                return self._refuse(550, "5.1.1", f"<{address}>: {exc}")
        if len(self._recipients) + len(addresses) > MAX_RECIPIENTS:
            return _reply(452, "4.5.3", "too many recipients")
        self._recipients.extend(addresses)
        return _reply(250, "2.1.5", "Ok")

    def _check_address(self, address: str, utf8: bool, status: str) -> bytes | None:
        from relay.address import address_problem, local_name_problem

        problem = address_problem(address) if "@" in address else local_name_problem(address)
        if problem is not None:
            return self._refuse(553, status, f"bad address <{address}>: {problem}")
        if not address.isascii() and not utf8:
            return self._refuse(553, "5.6.7", "a non-ASCII address needs the SMTPUTF8 parameter")
        return None

    def _data_command(self, argument: str) -> bytes:
        if argument:
            return self._refuse(501, "5.5.4", "syntax: DATA (no parameters)")
        if self._sender is None:
            return self._refuse(503, "5.5.1", "need MAIL before DATA")
        if not self._recipients:
            return self._refuse(554, "5.5.1", "no valid recipients")
        self.in_data = True
        self._data = []
        self._data_bytes = 0
        return b"354 End data with <CR><LF>.<CR><LF>\r\n"

    def _rset(self, argument: str) -> bytes:
        self._reset()
        return _reply(250, "2.0.0", "Ok")

    def _noop(self, argument: str) -> bytes:
        return _reply(250, "2.0.0", "Ok")

    def _quit(self, argument: str) -> bytes:
        self.closed = True
        return _reply(221, "2.0.0", "Bye")

    def _vrfy(self, argument: str) -> bytes:
        if not argument:
            return self._refuse(501, "5.5.4", "syntax: VRFY address")
        return _reply(252, "2.0.0", "cannot VRFY, but will take a message and try")

    def _expn(self, argument: str) -> bytes:
        return self._refuse(502, "5.5.1", "EXPN is not implemented")

    def _help(self, argument: str) -> bytes:
        return _reply(214, "2.0.0", "EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")

    _HANDLERS: ClassVar[dict[str, Callable[[SmtpDialogue, str], bytes]]] = {
        "EHLO": _ehlo,
        "HELO": _helo,
        "MAIL": _mail,
        "RCPT": _rcpt,
        "DATA": _data_command,
        "RSET": _rset,
        "NOOP": _noop,
        "QUIT": _quit,
        "VRFY": _vrfy,
        "EXPN": _expn,
        "HELP": _help,
    }

    # -- the data ----------------------------------------------------------------------

    def _data_line(self, line: bytes) -> bytes:
        if line == b".":
            return self._end_of_data()
        if line.startswith(b"."):
            line = line[1:]  # RFC 5321 §4.5.2: the client doubled a leading dot
        self._data_bytes += len(line) + 2
        if self._data_bytes <= MAX_MESSAGE_OCTETS:
            self._data.append(line)
        return b""

    def _end_of_data(self) -> bytes:
        self.in_data = False
        sender, recipients = self._sender, self._recipients
        data, size = self._data, self._data_bytes
        self._reset()
        assert sender is not None
        if size > MAX_MESSAGE_OCTETS:
            return _reply(552, "5.3.4", "message size exceeds fixed limit")
        try:
            message_id = self._store(sender, recipients, b"".join(x + b"\r\n" for x in data))
        except InvalidMessage as exc:
            return _reply(554, "5.6.0", f"message refused: {exc}")
        except ConfigError as exc:
            return _reply(451, "4.3.5", str(exc))
        except DiskFull as exc:  # RFC 3463: 4.3.1, mail system full
            return _reply(452, "4.3.1", f"could not store the message: {exc}")
        except (OutboxError, OSError) as exc:
            return _reply(451, "4.3.0", f"could not store the message: {exc}")
        except Exception as exc:  # a reply, never a traceback on the wire
            return _reply(451, "4.3.0", f"could not store the message ({type(exc).__name__})")
        return _reply(250, "2.0.0", f"Ok: queued as {message_id}")

    def _reset(self) -> None:
        self._sender = None
        self._recipients = []
        self._utf8 = False
        self._data = []
        self._data_bytes = 0

    def _refuse(self, code: int, status: str, text: str) -> bytes:
        self._errors += 1
        if self._errors > MAX_ERRORS:
            self.closed = True
            return _reply(421, "4.7.0", "too many errors, closing the dialogue")
        return _reply(code, status, text)


def serve_stdio(home: Path, *, account: str | None = None) -> int:
    """Run one dialogue on standard input and output; 0 when it ended (QUIT or end of input)."""
    from relay.commands.storeordrop import store_or_drop
    from relay.localnames import LocalNames
    from relay.message import parse_message

    local = LocalNames(home, account=account)
    if account is not None:
        from relay.accounts import find_account, load_accounts

        find_account(load_accounts(home), account)

    def store(sender: str, recipients: list[str], data: bytes) -> int | str:
        parsed = parse_message(
            data,
            sender=sender,
            recipients=recipients,
            from_headers=False,
            local=local,
            text_ends_header=True,
        )
        try:
            stored = store_or_drop(home, parsed, account=account)  # durable either way
        except Exception as exc:  # the machine's problem in words (a full disk: 452)
            problem = explain(exc, home=home)
            if problem is None:
                raise
            raise problem from None
        return stored if isinstance(stored, int) else f"drop/new/{stored.name}"

    from relay.commands.sendmail import standard_stream_problem

    dialogue = SmtpDialogue(store, local)
    try:
        if sys.stdin is None or sys.stdout is None:  # descriptor 0 or 1 closed
            raise OSError(9, f"standard {'input' if sys.stdin is None else 'output'} is closed")
        reader = sys.stdin.buffer
        writer = sys.stdout.buffer
        writer.write(dialogue.greeting())
        writer.flush()
        _converse(dialogue, reader, writer)
    except BrokenPipeError:
        # The client went away; what it was told was stored is stored. Point standard
        # output at nothing so that the interpreter's last flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError as exc:
        # Only reading and writing the dialogue raise here: storing turns its own
        # failures into 451 replies. What was answered 250 is stored.
        raise standard_stream_problem("speak SMTP on standard input and output", exc) from None
    return 0


def _converse(dialogue: SmtpDialogue, reader: BinaryIO, writer: BinaryIO) -> None:
    while not dialogue.closed:
        limit = MAX_MESSAGE_OCTETS if dialogue.in_data else MAX_COMMAND_OCTETS
        line = reader.readline(limit + 2)
        if not line:
            break  # the end of the input: an unfinished message is not stored
        too_long = not line.endswith(b"\n")
        if too_long and len(line) < limit + 2:
            too_long = False  # the last line of the input, without its line ending
        elif too_long:
            while not line.endswith(b"\n"):  # skip the rest of the over-long line
                line = reader.readline(MAX_COMMAND_OCTETS)
                if not line:
                    break
            line = b""
        reply = dialogue.feed_line(line.rstrip(b"\n").removesuffix(b"\r"), too_long=too_long)
        if reply:
            writer.write(reply)
            writer.flush()
