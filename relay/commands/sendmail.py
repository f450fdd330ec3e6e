"""``outbox sendmail`` (or the program run as ``sendmail``): a drop-in for mail clients.

Mail clients, ``git send-email``, cron and friends call ``sendmail`` with the
message on standard input. We parse the command line by hand, as sendmail and
msmtp do (getopt style: clustered flags, ``-fADDR`` or ``-f ADDR``, options
anywhere before ``--``), because argparse would choke on ``-oi`` and ``-oem``
and costs start-up time. What we understand:

``-t``
    recipients from To, Cc and Bcc (or Resent-*) as well as the command line.
``-i``, ``-oi``
    a line holding a single ``.`` is data, not the end of the message.
    Without them, it ends the message and the rest is ignored (sendmail).
``-f ADDR``, ``-r ADDR``
    the envelope sender; otherwise it comes from From (or Sender).
``-F NAME``
    the full name for a From field we add when the message has none.
``-a NAME``, ``--account NAME``
    send through this account (msmtp's ``-a``).
``--``
    the end of the options; every later word is a recipient.

Accepted and ignored, because callers pass them by habit: ``-odi``, ``-odb``,
``-oem``, ``-oee`` and every other ``-oX``; ``-OX=Y``; ``-B TYPE``;
``-N DSN``; ``-R RET``; ``-V ENVID``; ``-X FILE``; ``-h N``; ``-L TAG``;
``-A X``; ``-v``; ``-d…``; ``-G``; ``-m``; ``-n``; ``-U``; ``-bm``.
Anything else, other ``-b`` modes included (``-bs``, ``-bp``…), is a usage
error (exit 64): silently doing something else than asked loses mail.

Each explicit recipient is one bare address (``user@example.com``); a word
with a comma, a space or angle brackets is refused, not guessed at.

Silent on success, exit 0; otherwise one line on standard error and a
sysexits code (64 usage, 65 bad message). This path is started once per
message, so it imports only what it uses.
"""

from __future__ import annotations

import sys

from relay.errors import UsageError

USAGE = (
    "usage: outbox sendmail [-t] [-i] [-f ADDR] [-F NAME] [-a ACCOUNT] [--] [RECIPIENT…] < message"
)

# Flags that stand alone (and may be clustered: -ti), and the ones that take
# an argument, attached (-fADDR) or as the next word (-f ADDR).
_STANDALONE = frozenset("tiGmnvU")
_WITH_ARGUMENT = frozenset("frFaoOBNRVXhLAb")
_IGNORED_WITH_ARGUMENT = frozenset("BNRVXhLA")


class Invocation:
    """What the command line asked for.

    A plain class, not a dataclass: importing ``dataclasses`` (and with it
    ``inspect``) would cost this once-per-message path 6 ms.
    """

    __slots__ = ("account", "full_name", "ignore_dots", "read_recipients", "recipients",
                 "sender", "show_help")  # fmt: skip

    def __init__(
        self,
        *,
        read_recipients: bool = False,
        ignore_dots: bool = False,
        sender: str | None = None,
        full_name: str | None = None,
        account: str | None = None,
        recipients: list[str] | None = None,
        show_help: bool = False,
    ) -> None:
        self.read_recipients = read_recipients
        self.ignore_dots = ignore_dots
        self.sender = sender
        self.full_name = full_name
        self.account = account
        self.recipients: list[str] = [] if recipients is None else recipients
        self.show_help = show_help

    def _fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Invocation):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._fields().items())
        return f"Invocation({fields})"


def parse_arguments(argv: list[str]) -> Invocation:
    """The command line as sendmail reads it; raises UsageError."""
    invocation = Invocation()
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            invocation.recipients.extend(argv[i:])
            break
        if word == "--help":
            invocation.show_help = True
            continue
        if word == "--account" or word.startswith("--account="):
            if "=" in word:
                invocation.account = word.partition("=")[2]
            elif i < len(argv):
                invocation.account = argv[i]
                i += 1
            else:
                raise UsageError("option --account needs an argument")
            continue
        if word.startswith("--"):
            raise UsageError(f"unknown option {word} (see outbox sendmail --help)")
        if not word.startswith("-") or word == "-":
            invocation.recipients.append(word)
            continue
        j = 1
        while j < len(word):
            flag = word[j]
            j += 1
            if flag in _STANDALONE:
                if flag == "t":
                    invocation.read_recipients = True
                elif flag == "i":
                    invocation.ignore_dots = True
                continue
            if flag == "d":  # sendmail's debug flags (-d0.1): ignored with their value
                break
            if flag not in _WITH_ARGUMENT:
                raise UsageError(f"unknown option -{flag} (see outbox sendmail --help)")
            if j < len(word):
                value = word[j:]
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise UsageError(f"option -{flag} needs an argument")
            _apply(invocation, flag, value)
            break
    return invocation


def _apply(invocation: Invocation, flag: str, value: str) -> None:
    if flag in ("f", "r"):
        if value == "<>":
            raise UsageError("the null sender (-f '<>') is not supported")
        invocation.sender = value
    elif flag == "F":
        invocation.full_name = value
    elif flag == "a":
        invocation.account = value
    elif flag == "o":
        # -oi is -i; every other sendmail option (-oem, -odi, -oee…) is moot here.
        if value == "i":
            invocation.ignore_dots = True
    elif flag == "O":
        # -O IgnoreDots[=true] is the long spelling of -oi; other -O options are moot.
        name, _, setting = value.partition("=")
        if name.lower() == "ignoredots" and setting.lower() in ("", "true", "t", "yes", "y"):
            invocation.ignore_dots = True
    elif flag == "b":
        if value != "m":
            raise UsageError(f"unsupported mode -b{value}: only -bm (read a message) is")
    else:
        assert flag in _IGNORED_WITH_ARGUMENT


def truncate_at_dot(data: bytes) -> bytes:
    """The input up to a line holding a single ``.`` (sendmail without -i)."""
    import re

    match = re.search(rb"(?:\A|(\r\n|\r|\n))\.(?:\r\n|\r|\n|\Z)", data)
    if match is None:
        return data
    return data[: match.end(1)] if match.group(1) else b""


def run(argv: list[str], home: str | None) -> int:
    """Read one message from standard input and store it; 0 on success."""
    invocation = parse_arguments(argv)
    if invocation.show_help:
        print(USAGE)
        if __doc__:
            print("\n" + __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0])
        return 0
    if not invocation.read_recipients and not invocation.recipients:
        raise UsageError("no recipient given (name them, or use -t to read them from the header)")

    from relay.home import resolve_home
    from relay.message import MAX_MESSAGE_OCTETS, parse_message

    data = sys.stdin.buffer.read(MAX_MESSAGE_OCTETS + 1)
    if not invocation.ignore_dots:
        data = truncate_at_dot(data)
    parsed = parse_message(
        data,
        sender=invocation.sender,
        recipients=invocation.recipients,
        from_headers=invocation.read_recipients,
        full_name=invocation.full_name,
    )
    resolved = resolve_home(home)
    if invocation.account is not None:
        from relay.accounts import find_account, load_accounts

        find_account(load_accounts(resolved), invocation.account)

    from relay.storefile import enqueue  # not relay.outbox: its events cost start-up time

    enqueue(resolved, parsed, account=invocation.account)
    return 0
