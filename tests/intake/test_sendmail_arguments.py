"""The sendmail command line and the lone-dot rule, as pure functions."""

from __future__ import annotations

import pytest

from relay.commands.sendmail import Invocation, parse_arguments, truncate_at_dot
from relay.errors import UsageError


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], Invocation()),
        (["-t"], Invocation(read_recipients=True)),
        (["-ti"], Invocation(read_recipients=True, ignore_dots=True)),
        (["-oi"], Invocation(ignore_dots=True)),
        (["-o", "i"], Invocation(ignore_dots=True)),
        (["-OIgnoreDots"], Invocation(ignore_dots=True)),
        (["-O", "IgnoreDots=True"], Invocation(ignore_dots=True)),
        (["-OIgnoreDots=false"], Invocation()),
        (["-oem", "-odi", "-oee", "-odb", "-om"], Invocation()),
        (["-f", "a@x"], Invocation(sender="a@x")),
        (["-fa@x"], Invocation(sender="a@x")),
        (["-r", "a@x"], Invocation(sender="a@x")),
        (["-tfa@x"], Invocation(read_recipients=True, sender="a@x")),
        (["-F", "Ann Example"], Invocation(full_name="Ann Example")),
        (["-FCronDaemon"], Invocation(full_name="CronDaemon")),
        (["-a", "work"], Invocation(account="work")),
        (["--account", "work"], Invocation(account="work")),
        (["--account=work"], Invocation(account="work")),
        (["b@x", "-i", "c@x"], Invocation(ignore_dots=True, recipients=["b@x", "c@x"])),
        (["--", "-t", "--x"], Invocation(recipients=["-t", "--x"])),
        (
            ["-B", "8BITMIME", "-N", "never", "-R", "hdrs", "-X", "log", "-V", "id"],
            Invocation(dsn_notify="NEVER", dsn_ret="HDRS", dsn_envid="id"),
        ),
        (["-N", "delay,Success"], Invocation(dsn_notify="SUCCESS,DELAY")),
        (
            ["--dsn-notify=failure", "--dsn-return", "full"],
            Invocation(dsn_notify="FAILURE", dsn_ret="FULL"),
        ),
        (["-f", "<>"], Invocation(sender="")),
        (["-f", ""], Invocation(sender="")),
        (["-f<a@x>"], Invocation(sender="a@x")),
        (["-f", "Ann <a@x>"], Invocation(sender="a@x")),
        (["--from=a@x", "--read-recipients"], Invocation(sender="a@x", read_recipients=True)),
        (["-f", "a@x", "--read-envelope-from"], Invocation()),
        (["-C", "/etc/mail/sendmail.cf", "-I"], Invocation(mode="aliases")),
        (["-bs"], Invocation(mode="smtp")),
        (["-b", "p"], Invocation(mode="list")),
        (["-bi"], Invocation(mode="aliases")),
        (["-bv", "root"], Invocation(mode="verify", recipients=["root"])),
        (["-q"], Invocation(mode="flush")),
        (["-q30m"], Invocation(mode="flush")),
        (["-qf", "-v"], Invocation(mode="flush")),
        (["-bh"], Invocation(mode="nothing")),
        (["-bpc"], Invocation(mode="list")),
        (["-bV"], Invocation(mode="version")),
        (["-bC"], Invocation(mode="check")),
        (["-XV", "-Am", "-o8"], Invocation()),
        (["-c", "-s", "-pESMTP", "-D", "log", "-eq", "-Mrm", "-SMTPUTF8"], Invocation()),
        (["--host=smtp.x", "--port", "--tls=on", "--auto-from=on", "--maildomain=x"], Invocation()),
        (["--version"], Invocation(mode="version")),
        (["-P", "-t"], Invocation(mode="pretend", read_recipients=True)),
        (["--pretend", "-t"], Invocation(mode="pretend", read_recipients=True)),
        (["-S"], Invocation(mode="serverinfo")),
        (["--rmqs=example.org"], Invocation(mode="flush")),
        (["-h", "5", "-L", "tag", "-A", "c", "-bm", "-v", "-G", "-U", "-n", "-m"], Invocation()),
        (["-d0.1", "-d"], Invocation()),
        (["--help"], Invocation(show_help=True)),
        (["-"], Invocation(recipients=["-"])),
    ],
)
def test_the_command_line_is_read_like_sendmail(argv: list[str], expected: Invocation) -> None:
    assert parse_arguments(argv) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x"], "unknown option -x (see outbox sendmail --help)"),
        (["-tk"], "unknown option -k (see outbox sendmail --help)"),
        (["--verbose"], "unknown option --verbose (see outbox sendmail --help)"),
        (["-f"], "option -f needs an argument"),
        (["-t", "-F"], "option -F needs an argument"),
        (["--account"], "option --account needs an argument"),
        (["-bx"], "unknown mode -bx (see outbox sendmail --help)"),
        (
            ["-bd"],
            "Outbox does not run as a daemon (-bd); run 'outbox gui' or 'outbox flush' instead",
        ),
        (
            ["-N", "sometimes"],
            "bad DSN notify 'sometimes': 'never', or one or more of success,failure,delay",
        ),
        (["-R", "body"], "bad DSN return 'body': 'full' or 'hdrs'"),
        (["-V", "x" * 101], "bad DSN envelope id: 1 to 100 characters"),
        (["--read-recipients=yes"], "option --read-recipients takes no value"),
        (["--from"], "option --from needs an argument"),
    ],
)
def test_unknown_or_incomplete_options_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_arguments(argv)
    assert str(caught.value) == message
    assert caught.value.exit_code == 64


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\n.\nb\n", b"a\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n"),
        (b"a\r.\rb\r", b"a\r"),
        (b"a\n.", b"a\n"),
        (b".\nb\n", b""),
        (b"a\n..\n.x\n. \nb\n", b"a\n..\n.x\n. \nb\n"),
        (b"a.\n.a\n", b"a.\n.a\n"),
        (b"a\n\n.\n\nb", b"a\n\n"),
        (b"no dot at all", b"no dot at all"),
    ],
)
def test_a_lone_dot_line_ends_the_input(data: bytes, expected: bytes) -> None:
    assert truncate_at_dot(data) == expected
