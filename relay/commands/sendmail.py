"""``outbox sendmail`` (or the program run as ``sendmail``): a drop-in for every caller.

Mail clients, ``git send-email``, cron, atd, ``mail(1)`` and PHP frameworks
call ``sendmail`` with the message on standard input (or, with ``-bs``, an
SMTP dialogue on it). We parse the command line by hand, as sendmail and
msmtp do (getopt style: clustered flags, ``-fADDR`` or ``-f ADDR``, options
anywhere before ``--``), because argparse would choke on ``-oi`` and ``-oem``
and costs start-up time. What we understand:

``-t``, ``--read-recipients``
    recipients from To, Cc and Bcc (or Resent-*) as well as the command line.
``-i``, ``-oi``
    a line holding a single ``.`` is data, not the end of the message.
    Without them, it ends the message and the rest is ignored (sendmail).
``-f ADDR``, ``-r ADDR``, ``--from=ADDR``
    the envelope sender; otherwise it comes from From (or Sender).
    ``-f '<>'`` or ``-f ''`` is the null reverse-path (bounces, auto-replies).
``--read-envelope-from``
    the envelope sender from From (what happens anyway without ``-f``).
``-F NAME``
    the full name for a From field we add or rewrite.
``-a NAME``, ``--account NAME``
    send through this account (msmtp's ``-a``).
``-N NOTIFY``, ``-R RET``, ``-V ENVID``, ``--dsn-notify=``, ``--dsn-return=``
    delivery status notifications (RFC 3461), passed on to a server offering DSN.
``-P``, ``--pretend``; ``-S``, ``--serverinfo``
    msmtp's: show the envelope without storing anything; ``outbox account test``.
``-bm``
    read a message (the default). ``-bs``: an SMTP dialogue on standard input
    and output, each message stored before its 250. ``-bp``: list the outbox
    (``mailq``). ``-bi``, ``-I``: nothing to do (``newaliases``: aliases are
    read at each message). ``-bv``: show what each recipient resolves to.
    ``-q``: send what is due now (``outbox flush``), whatever interval follows.
``--``
    the end of the options; every later word is a recipient.

Accepted and ignored, because callers pass them by habit or they configure
what Outbox configures elsewhere: ``-odi``, ``-odb``, ``-oem``, ``-oee`` and
every other ``-oX``; ``-OX=Y``; ``-B TYPE``; ``-C FILE``; ``-X FILE``;
``-h N``; ``-L TAG``; ``-A X``; ``-p PROTO``; ``-M…``; ``-D FILE``; ``-e…``;
``-v``; ``-d…``; ``-c``; ``-G``; ``-m``; ``-n``; ``-s``; ``-U``; ``-bh``;
``-bH``; ``-SMTPUTF8``; msmtp's long options that set up its own connection
(``--host=``, ``--tls=`` …).

A missing or local sender (``root``, ``From: root (Cron Daemon)``) becomes an
account's ``--address``; a local recipient (``root``) is resolved through the
aliases (``outbox alias``): see ``relay.localnames``. Each recipient word is an
address list (``'Ann <a@x.org>, b@y.org'``), as sendmail reads it.

Silent on success, exit 0 (when the store stays busy for more than two
seconds, the message goes into the drop folder instead and one line says
where); otherwise one line on standard error and a sysexits code (64 usage,
65 bad message, 78 configuration). This path is started once per message, so
it imports only what it uses.
"""

from __future__ import annotations

import sys

from relay.errors import OutboxError, UsageError

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    from relay.dsn import DsnRequest

USAGE = (
    "usage: outbox sendmail [-t] [-i] [-f ADDR] [-F NAME] [-a ACCOUNT] [-N NOTIFY] [-R RET]"
    " [-V ENVID] [--] [RECIPIENT…] < message\n"
    "       outbox sendmail -bs | -bp | -bi | -bv RECIPIENT… | -q"
)

#: ``outbox sendmail --help``: for a person at a terminal (the module docstring is for developers).
HELP = """\
Store a message from standard input in the outbox, as sendmail does; Outbox
sends it through your accounts (see 'outbox account') at the next flush.

The message:
  -t, --read-recipients  also send to the To, Cc and Bcc recipients
  --read-envelope-from   the sender from From (what happens anyway without -f)
  -i, -oi                a line holding only "." does not end the message
  -f ADDR, -r ADDR, --from=ADDR
                         the envelope sender (default: the From address);
                         -f '<>' sends with an empty sender (bounces)
  -F NAME                the full name to put in a From line Outbox adds
  -a NAME, --account=NAME
                         send through this account
  -N NOTIFY, -R RET, -V ENVID
                         delivery status notifications, if the server offers them

Other modes:
  -bs     speak SMTP on standard input and output (as PHP frameworks do)
  -bp     list the outbox (as mailq does)
  -bv RECIPIENT...  show what each recipient resolves to
  -bi     nothing to do (aliases are read for each message; see 'outbox alias')
  -q      send what is due now (as 'outbox flush' does)
  -P      show the envelope without storing anything
  -S      connect to the account's server and report what it offers
  -bV     print the version
  -bC     check the configuration (accounts and aliases)
  -bd, -bD, -bl, -bt, -ba, -bS
          refused (exit 64), saying what to use instead

Options that other sendmail programs take (-oem, -odi, -B8BITMIME, ...) are
accepted and ignored. A local recipient such as 'root' is sent to the
address 'outbox alias' names for it.

Silent when the message is stored (exit status 0). Otherwise one line on
standard error says why, with sendmail's exit codes: 64 bad usage, 65 a
malformed message, 78 a problem with the configuration, 75 try again later
(a full disk: keep the message), 73, 74 or 77 another problem of the machine.
"""

# Flags that stand alone (and may be clustered: -ti), and the ones that take
# an argument, attached (-fADDR) or as the next word (-f ADDR).
_STANDALONE = frozenset("tiGmnvUcsIPS")
_WITH_ARGUMENT = frozenset("frFaoOBNRVXhLAbCpMDe")
_IGNORED_WITH_ARGUMENT = frozenset("BXhLACpMDe")
# Flags whose argument, if any, is attached (-q, -q30m, -qf): never the next word.
_OPTIONAL_ATTACHED = frozenset("qQ")

MODES = {
    "m": "deliver",
    "s": "smtp",
    "p": "list",
    "i": "aliases",
    "v": "verify",
    "h": "nothing",  # purge persistent host status: there is none
    "H": "nothing",
    "P": "count",
    "V": "version",  # Exim's
    "C": "check",  # sendmail 8.16: check the configuration
}
_REFUSED_MODES = {
    "d": "Outbox does not run as a daemon (-bd); run 'outbox gui' or 'outbox flush' instead",
    "D": "Outbox does not run as a daemon (-bD); run 'outbox gui' or 'outbox flush' instead",
    "t": "address test mode (-bt) is not supported; -bv shows what recipients resolve to",
    "a": "ARPANET mode (-ba) is not supported",
    "l": "Outbox does not run as a daemon (-bl); run 'outbox gui' or 'outbox flush' instead",
    "S": "batched SMTP (-bS) is not supported; -bs speaks SMTP with replies",
}

# msmtp's long options. Those with a meaning here are handled in _long_option;
# these set up msmtp's own connection, log or defaults, which Outbox keeps in
# its accounts: accepted (with or without a value) and ignored.
_IGNORED_LONG = frozenset(
    {
        "host", "port", "source-ip", "proxy-host", "proxy-port", "socket", "timeout",
        "protocol", "domain", "auth", "user", "passwordeval", "tls", "tls-starttls",
        "tls-trust-file", "tls-crl-file", "tls-fingerprint", "tls-key-file", "tls-cert-file",
        "tls-certcheck", "tls-min-dh-prime-bits", "tls-priorities", "tls-host-override",
        "auto-from", "maildomain", "set-from-header", "set-date-header", "remove-bcc-headers",
        "undisclosed-recipients", "logfile", "logfile-time-format", "syslog", "aliases",
        "file", "debug", "ntlmdomain", "allow-from-override",
    }
)  # fmt: skip


class Invocation:
    """What the command line asked for.

    A plain class, not a dataclass: importing ``dataclasses`` (and with it
    ``inspect``) would cost this once-per-message path 6 ms. ``sender`` is
    ``""`` for the null reverse-path.
    """

    __slots__ = ("account", "dsn_envid", "dsn_notify", "dsn_ret", "full_name", "ignore_dots",
                 "mode", "read_recipients", "recipients", "sender", "show_help")  # fmt: skip

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
        mode: str = "deliver",
        dsn_notify: str | None = None,
        dsn_ret: str | None = None,
        dsn_envid: str | None = None,
    ) -> None:
        self.read_recipients = read_recipients
        self.ignore_dots = ignore_dots
        self.sender = sender
        self.full_name = full_name
        self.account = account
        self.recipients: list[str] = [] if recipients is None else recipients
        self.show_help = show_help
        self.mode = mode
        self.dsn_notify = dsn_notify
        self.dsn_ret = dsn_ret
        self.dsn_envid = dsn_envid

    def dsn(self) -> DsnRequest | None:
        """The delivery status notifications asked for, or None."""
        if self.dsn_notify is None and self.dsn_ret is None and self.dsn_envid is None:
            return None
        from relay.dsn import DsnRequest

        return DsnRequest(self.dsn_notify, self.dsn_ret, self.dsn_envid)

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
        if word.startswith("--") or word == "-SMTPUTF8":
            i = _long_option(invocation, word, argv, i)
            continue
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
                elif flag == "I":
                    invocation.mode = "aliases"
                elif flag == "P":  # msmtp: show what would be done, send nothing
                    invocation.mode = "pretend"
                elif flag == "S":  # msmtp: ask the server what it offers
                    invocation.mode = "serverinfo"
                continue
            if flag == "d":  # sendmail's debug flags (-d0.1): ignored with their value
                break
            if flag in _OPTIONAL_ATTACHED:
                if flag == "Q":
                    raise UsageError("quarantining queued mail (-Q) is not supported")
                invocation.mode = "flush"  # -q, -q30m, -qf, -qR…: send what is due, once
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


def _long_option(invocation: Invocation, word: str, argv: list[str], i: int) -> int:
    """One ``--name[=value]`` word (msmtp's long options); the index after what it used."""
    if word == "-SMTPUTF8":  # Postfix: the store decides SMTPUTF8 from the addresses
        return i
    name, has_value, value = word[2:].partition("=")
    if name == "help":
        invocation.show_help = True
    elif name in ("read-recipients", "read-envelope-from"):
        if has_value:
            raise UsageError(f"option --{name} takes no value")
        if name == "read-recipients":
            invocation.read_recipients = True
        else:
            invocation.sender = None
    elif name in ("account", "from", "dsn-notify", "dsn-return"):
        if not has_value:
            if i >= len(argv):
                raise UsageError(f"option --{name} needs an argument")
            value = argv[i]
            i += 1
        flag = {"account": "a", "from": "f", "dsn-notify": "N", "dsn-return": "R"}[name]
        _apply(invocation, flag, value)
    elif name in _IGNORED_LONG:
        pass
    elif name in ("pretend", "serverinfo", "rmqs"):
        invocation.mode = {"pretend": "pretend", "serverinfo": "serverinfo", "rmqs": "flush"}[name]
    elif name == "configure":
        raise UsageError("--configure is msmtp's: add an account with 'outbox account add'")
    elif name == "version":
        invocation.mode = "version"
    else:
        raise UsageError(f"unknown option --{name} (see outbox sendmail --help)")
    return i


def _apply(invocation: Invocation, flag: str, value: str) -> None:
    if flag in ("f", "r"):
        invocation.sender = _envelope_sender(value)
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
        if value[:1] == "p":  # -bp, and Exim's -bpc, -bpr, -bpu… list the queue too
            invocation.mode = "list"
        elif value in MODES:
            invocation.mode = MODES[value]
        elif value in _REFUSED_MODES:
            raise UsageError(_REFUSED_MODES[value])
        else:
            raise UsageError(f"unknown mode -b{value} (see outbox sendmail --help)")
    elif flag == "N":
        from relay.dsn import parse_notify

        invocation.dsn_notify = parse_notify(value)
    elif flag == "R":
        from relay.dsn import parse_ret

        invocation.dsn_ret = parse_ret(value)
    elif flag == "V":
        from relay.dsn import check_envid

        invocation.dsn_envid = check_envid(value)
    else:
        assert flag in _IGNORED_WITH_ARGUMENT


def _envelope_sender(value: str) -> str:
    """``-f`` as written: ``<>`` and the empty word are the null sender; ``<a@x>`` and
    ``Ann <a@x>`` are ``a@x`` (what is inside the brackets is checked at intake)."""
    stripped = value.strip()
    if stripped.endswith(">") and "<" in stripped:
        stripped = stripped[stripped.rindex("<") + 1 : -1].strip()
    return stripped


def truncate_at_dot(data: bytes) -> bytes:
    """The input up to a line holding a single ``.`` (sendmail without -i)."""
    import re

    match = re.search(rb"(?:\A|(\r\n|\r|\n))\.(?:\r\n|\r|\n|\Z)", data)
    if match is None:
        return data
    return data[: match.end(1)] if match.group(1) else b""


def run(argv: list[str], home: str | None) -> int:
    """Do what the command line asks; 0 on success."""
    invocation = parse_arguments(argv)
    if invocation.show_help:
        print(USAGE + "\n\n" + HELP, end="")
        return 0
    mode = invocation.mode
    if mode == "deliver":
        return deliver(invocation, home)
    if mode in ("aliases", "nothing"):
        return 0
    if mode == "check":
        from relay.accounts import load_accounts
        from relay.aliases import load_aliases
        from relay.home import resolve_home

        resolved = resolve_home(home)
        load_accounts(resolved)  # each raises ConfigError, naming what is wrong
        load_aliases(resolved)
        return 0
    if mode == "version":
        from relay import __version__

        print(f"outbox {__version__} (sendmail-compatible)")
        return 0
    if mode == "smtp":
        from relay.home import resolve_home
        from relay.stdio_smtp import serve_stdio

        return serve_stdio(resolve_home(home), account=invocation.account)
    if mode == "verify":
        return verify(invocation, home)
    if mode == "pretend":
        return deliver(invocation, home, store=False)
    if mode == "serverinfo":
        named = [invocation.account] if invocation.account else []
        return _outbox_command(["account", "test", *named], home)
    return _outbox_command({"list": ["list"], "flush": ["flush"], "count": ["list"]}[mode], home)


def deliver(invocation: Invocation, home: str | None, *, store: bool = True) -> int:
    """Read one message from standard input and store it (the intake entry point).

    ``store=False`` (msmtp's ``-P``) prints the envelope it would store instead.
    """
    if not invocation.read_recipients and not invocation.recipients:
        raise UsageError("no recipient given (name them, or use -t to read them from the header)")

    from relay.home import resolve_home
    from relay.localnames import LocalNames
    from relay.message import MAX_MESSAGE_OCTETS, parse_message

    data = read_standard_input(MAX_MESSAGE_OCTETS + 1, until_dot=not invocation.ignore_dots)
    if not invocation.ignore_dots:
        data = truncate_at_dot(data)
    resolved = resolve_home(home)
    if invocation.account is not None:
        from relay.accounts import find_account, load_accounts

        find_account(load_accounts(resolved), invocation.account)
    parsed = parse_message(
        data,
        sender=invocation.sender,
        recipients=invocation.recipients,
        from_headers=invocation.read_recipients,
        full_name=invocation.full_name,
        local=LocalNames(resolved, account=invocation.account),
        text_ends_header=True,
        fold_long_lines=True,
    )

    if not store:
        print(f"from: <{parsed.sender}>")
        print(f"to: {', '.join(f'<{r}>' for r in parsed.recipients)}")
        print(f"size: {len(parsed.raw)} octets; nothing was stored")
        return 0

    # Not relay.store.outbox: its events cost start-up time. A busy store: the drop folder.
    from relay.commands.storeordrop import store_or_drop

    store_or_drop(resolved, parsed, account=invocation.account, dsn=invocation.dsn())
    return 0


def read_standard_input(limit: int, *, until_dot: bool = False) -> bytes:
    """Up to ``limit`` bytes of standard input, the message.

    ``until_dot`` (no ``-i``): reading stops at a line holding a single ``.``,
    as sendmail's does, so that a person typing the message at a terminal, or
    a program that keeps the pipe open until sendmail exits, is not left
    waiting for an end of input that never comes. (``truncate_at_dot`` then
    finds that line's other spellings, ending in a bare CR or the input.)

    A daemon may start us with descriptor 0 closed (Python then has no
    ``sys.stdin``) or opened for writing only: that is one line naming standard
    input and exit 74, not a traceback or a line blaming "a file of the outbox".
    """
    try:
        if sys.stdin is None:
            raise OSError(9, "it is closed")  # EBADF
        if not until_dot:
            return sys.stdin.buffer.read(limit)
        lines: list[bytes] = []
        size = 0
        while size < limit:
            line = sys.stdin.buffer.readline(limit - size)
            if not line or line in (b".\n", b".\r\n"):
                break
            lines.append(line)
            size += len(line)
        return b"".join(lines)
    except OSError as exc:
        raise standard_stream_problem("read the message from standard input", exc) from None


def standard_stream_problem(what: str, exc: OSError) -> OutboxError:
    """``exc``, raised on standard input or output, as one line (EX_IOERR)."""
    from relay.machineproblems import MachineProblem

    return MachineProblem(f"cannot {what}: {exc.strerror or exc}")


def verify(invocation: Invocation, home: str | None) -> int:
    """``-bv``: each recipient and the addresses it goes to; nothing is stored or sent."""
    from relay.home import resolve_home
    from relay.localnames import LocalNames
    from relay.message import recipient_addresses

    if not invocation.recipients:
        raise UsageError("-bv needs the recipients to verify")
    local = LocalNames(resolve_home(home), account=invocation.account)
    for word in invocation.recipients:
        addresses = recipient_addresses(word, local)
        print(f"{word}... deliverable: {', '.join(addresses)}")
    return 0


def _outbox_command(words: list[str], home: str | None) -> int:
    """Run ``outbox WORDS…`` (``list`` for mailq, ``flush`` for -q) as the command line would."""
    from relay.cli import parser_for

    args = parser_for(words).parse_args(words)
    args.home = home
    code: int = args.func(args)
    return code


def program_arguments(program: str, argv: list[str]) -> list[str] | None:
    """The sendmail arguments that ``mailq`` / ``newaliases`` stand for, or None."""
    if program == "sendmail":
        return argv
    if program == "mailq":
        return ["-bp", *argv]
    if program == "newaliases":
        return ["-bi", *argv]
    return None
