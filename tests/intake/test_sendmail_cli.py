"""``outbox sendmail`` as mail clients, git and cron run it: a real process, stdin, exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.intake.conftest import stored_messages
from tests.support.cli import outbox

MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: Bob <bob@example.org>\n"
    b"Cc: cy@example.org\n"
    b"Bcc: secret@example.org\n"
    b"Subject: Hello\n"
    b"\n"
    b"Hi Bob\n"
)


def sendmail(home: Path, *args: str, input: bytes = MESSAGE) -> subprocess.CompletedProcess[bytes]:
    return outbox(home, "sendmail", *args, input=input)


def assert_silent_success(done: subprocess.CompletedProcess[bytes]) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def assert_refused(done: subprocess.CompletedProcess[bytes], code: int, text: str) -> None:
    stderr = done.stderr.decode()
    assert done.returncode == code, stderr
    assert stderr == f"outbox: {text}\n"
    assert done.stdout == b""


# -- what gets stored ----------------------------------------------------------------------


def test_dash_t_takes_recipients_from_to_cc_and_bcc_and_strips_bcc(home: Path) -> None:
    assert_silent_success(sendmail(home, "-t"))
    (message,) = stored_messages(home)
    assert message.sender == "ann@example.org"
    assert message.recipients == ("bob@example.org", "cy@example.org", "secret@example.org")
    assert message.subject == "Hello"
    assert b"secret" not in message.raw
    assert message.raw.startswith(
        b"From: Ann <ann@example.org>\r\nTo: Bob <bob@example.org>\r\nCc: cy@example.org\r\n"
        b"Subject: Hello\r\nDate: "
    )
    assert message.raw.endswith(b"\r\n\r\nHi Bob\r\n")
    assert b"\r\nMessage-ID: <" in message.raw


def test_dash_t_adds_the_command_line_recipients(home: Path) -> None:
    assert_silent_success(sendmail(home, "-t", "extra@example.org", "bob@EXAMPLE.org"))
    (message,) = stored_messages(home)
    assert message.recipients == (
        "bob@example.org",
        "cy@example.org",
        "secret@example.org",
        "extra@example.org",
    )


def test_without_dash_t_only_the_command_line_recipients_get_it(home: Path) -> None:
    assert_silent_success(sendmail(home, "-i", "--", "dee@example.org", "eve@example.org"))
    (message,) = stored_messages(home)
    assert message.recipients == ("dee@example.org", "eve@example.org")
    assert b"Bcc" not in message.raw and b"secret" not in message.raw
    assert b"To: Bob <bob@example.org>\r\n" in message.raw


def test_a_lone_dot_line_ends_the_message_unless_dash_i(home: Path) -> None:
    data = MESSAGE + b".\nthis is after the dot\n"
    assert_silent_success(sendmail(home, "-t", input=data))
    assert_silent_success(sendmail(home, "-t", "-i", input=data))
    assert_silent_success(sendmail(home, "-t", "-oi", input=data))
    cut, kept_i, kept_oi = stored_messages(home)
    assert cut.raw.endswith(b"\r\n\r\nHi Bob\r\n")
    assert kept_i.raw.endswith(b"\r\n\r\nHi Bob\r\n.\r\nthis is after the dot\r\n")
    assert kept_oi.raw.endswith(b"\r\n\r\nHi Bob\r\n.\r\nthis is after the dot\r\n")


def test_the_lone_dot_ends_the_input_while_the_caller_keeps_it_open(home: Path) -> None:
    # A person typing at a terminal, or a program that closes its end of the pipe only once
    # sendmail has exited: sendmail stops reading at the dot, and so must we.
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-t"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(MESSAGE + b".\r\n")
    process.stdin.flush()  # and not closed
    try:
        code = process.wait(timeout=30)  # not communicate(): it would close standard input
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("sendmail kept reading after the lone dot")
    assert process.stdout is not None and process.stderr is not None
    assert (code, process.stdout.read(), process.stderr.read()) == (0, b"", b"")
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()
    (message,) = stored_messages(home)
    assert message.raw.endswith(b"\r\n\r\nHi Bob\r\n")


def test_a_dot_inside_a_line_or_two_dots_do_not_end_the_message(home: Path) -> None:
    data = MESSAGE + b"..\n. \n.x\nend\n"
    assert_silent_success(sendmail(home, "-t", input=data))
    (message,) = stored_messages(home)
    assert message.raw.endswith(b"Hi Bob\r\n..\r\n. \r\n.x\r\nend\r\n")


@pytest.mark.parametrize(
    "args",
    [["-f", "bounce@example.org"], ["-fbounce@example.org"], ["-r", "bounce@example.org"]],
    ids=["-f ADDR", "-fADDR", "-r ADDR"],
)
def test_the_envelope_sender_comes_from_f_or_r(home: Path, args: list[str]) -> None:
    assert_silent_success(sendmail(home, *args, "-t"))
    (message,) = stored_messages(home)
    assert message.sender == "bounce@example.org"
    assert b"From: Ann <ann@example.org>\r\n" in message.raw


def test_dash_capital_f_names_the_sender_in_the_from_we_add(home: Path) -> None:
    body = b"Subject: nightly report\n\nall good\n"
    assert_silent_success(
        sendmail(home, "-FCron Daemon", "-f", "root@example.org", "ops@example.org", input=body)
    )
    (message,) = stored_messages(home)
    assert message.raw.startswith(
        b"Subject: nightly report\r\nFrom: Cron Daemon <root@example.org>"
    )


@pytest.mark.parametrize(
    "flags",
    [
        ["-odi"],
        ["-odb"],
        ["-oem"],
        ["-oee"],
        ["-om"],
        ["-v"],
        ["-OIgnoreDots=false", "-ODeliveryMode=b"],
        ["-B", "8BITMIME"],
        ["-B8BITMIME"],
        ["-N", "never"],
        ["-X", "/dev/null"],
        ["-bm"],
        ["-G", "-U", "-n", "-m"],
        ["-L", "tag", "-h", "5", "-A", "c", "-V", "envid", "-R", "hdrs"],
        ["-d0.1"],
        ["-oem", "-oi", "-odb", "-vt"],
    ],
    ids=lambda flags: " ".join(flags),
)
def test_habitual_no_op_flags_are_accepted_quietly(home: Path, flags: list[str]) -> None:
    assert_silent_success(sendmail(home, *flags, "-t"))
    (message,) = stored_messages(home)
    assert message.recipients[0] == "bob@example.org"


def test_options_may_follow_the_recipients_until_double_dash(home: Path) -> None:
    assert_silent_success(sendmail(home, "dee@example.org", "-f", "x@example.org", "-i"))
    (message,) = stored_messages(home)
    assert (message.sender, message.recipients) == ("x@example.org", ("dee@example.org",))


def test_the_way_cron_calls_it_works(home: Path) -> None:
    data = b"From: root (Cron Daemon)\nTo: ops@example.org\nSubject: job\n\noutput\n"
    done = sendmail(home, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "ops@example.org", input=data)
    assert_refused(
        done,
        78,
        "the message names no sender (or only a local name) and there is no account:"
        " add one with 'outbox account add NAME --host HOST --address ADDR'",
    )
    assert stored_messages(home) == []
    data = data.replace(b"From: root", b"From: root@host.example.org")
    done = sendmail(home, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "ops@example.org", input=data)
    assert_silent_success(done)
    (message,) = stored_messages(home)
    assert (message.sender, message.recipients) == ("root@host.example.org", ("ops@example.org",))


def test_the_way_git_send_email_calls_it_works(home: Path) -> None:
    patch = (
        b"From: Dev <dev@example.org>\nTo: list@example.org\nCc: maint@example.org\n"
        b"Subject: [PATCH] fix\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n"
        b"Message-ID: <20261124.1@example.org>\n\n---\n.\n file | 1 +\n"
    )
    done = sendmail(
        home, "-i", "-f", "dev@example.org", "list@example.org", "maint@example.org", input=patch
    )
    assert_silent_success(done)
    (message,) = stored_messages(home)
    assert message.recipients == ("list@example.org", "maint@example.org")
    assert message.raw.endswith(b"\r\n\r\n---\r\n.\r\n file | 1 +\r\n")
    assert message.raw.count(b"Message-ID") == 1 and message.raw.count(b"Date:") == 1


def test_a_program_named_sendmail_is_outbox_sendmail(home: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "outbox"
    if not script.exists():
        found = shutil.which("outbox")
        assert found, "the outbox console script is not installed"
        script = Path(found)
    link = tmp_path / "bin" / "sendmail"
    link.parent.mkdir()
    link.symlink_to(script)
    done = subprocess.run(
        [str(link), "-t", "-oi"],
        input=MESSAGE,
        capture_output=True,
        env={**os.environ, "OUTBOX_HOME": str(home)},
        timeout=60,
    )
    assert_silent_success(done)
    (message,) = stored_messages(home)
    assert message.recipients[0] == "bob@example.org"


def test_help_lists_the_options(home: Path) -> None:
    done = sendmail(home, "--help", input=b"")
    assert done.returncode == 0
    assert done.stdout.startswith(b"usage: outbox sendmail")
    assert b"-oem" in done.stdout
    assert b"``" not in done.stdout and b"relay." not in done.stdout  # for users, not developers
    assert stored_messages(home) == []


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["-t", "-x"], "unknown option -x (see outbox sendmail --help)"),
        (["-t", "--frobnicate"], "unknown option --frobnicate (see outbox sendmail --help)"),
        (["-t", "-bx"], "unknown mode -bx (see outbox sendmail --help)"),
        (
            ["-t", "-bt"],
            "address test mode (-bt) is not supported; -bv shows what recipients resolve to",
        ),
        (["-t", "-f"], "option -f needs an argument"),
        ([], "no recipient given (name them, or use -t to read them from the header)"),
        (["-i"], "no recipient given (name them, or use -t to read them from the header)"),
    ],
)
def test_usage_errors_exit_64_and_store_nothing(home: Path, args: list[str], text: str) -> None:
    assert_refused(sendmail(home, *args), 64, text)
    assert stored_messages(home) == []


@pytest.mark.parametrize(
    ("args", "data", "text"),
    [
        (["-t"], b"", "empty message"),
        (["b@example.org"], b"Subject: x\n\nsome \x00 text\n", "line 3 contains a NUL byte"),
        (
            ["-t"],
            b"From: a@example.org\n\nx\n",
            "no recipient: no address in To, Cc or Bcc and none given",
        ),
        (
            ["-t"],
            b"From: a@example.org\nTo: b@example.org>\r\nRCPT TO:<evil@example.org>\n\nx\n",
            'bad address list "b@example.org>" in To (line 2)',
        ),
        (
            ["b@example.org\r\nRCPT TO:<evil@example.org>"],
            MESSAGE,
            'bad address "b@example.org\\r\\nRCPT TO:<evil@example.org>" (recipient):'
            " contains a line break",
        ),
        (
            ["-f", "a@example.org>", "b@example.org"],
            MESSAGE,
            'bad address "a@example.org>" (envelope sender): contains an angle bracket',
        ),
        (
            ["-f", "a b@example.org", "b@example.org"],
            MESSAGE,
            'bad address "a b@example.org" (envelope sender): contains a space',
        ),
        (
            ["Bob <b@example.org"],
            MESSAGE,
            'bad address list "Bob <b@example.org" (recipient)',
        ),
        (
            ["-F", "Evil\nBcc: spy@example.org", "-f", "a@example.org", "b@example.org"],
            b"Subject: x\n\nx\n",
            'full name "Evil\\nBcc: spy@example.org" contains a control character',
        ),
    ],
)
def test_bad_input_exits_65_with_one_clear_line_and_stores_nothing(
    home: Path, args: list[str], data: bytes, text: str
) -> None:
    done = sendmail(home, *args, input=data)
    stderr = done.stderr.decode()
    assert done.returncode == 65, stderr
    assert stderr.startswith(f"outbox: {text}")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stored_messages(home) == []


@pytest.mark.parametrize(
    ("args", "redirect", "text"),
    [
        (["b@example.org"], "<&-", "cannot read the message from standard input: it is closed"),
        (
            ["b@example.org"],
            "0>/dev/null",
            "cannot read the message from standard input: Bad file descriptor",
        ),
        (
            ["-bs"],
            "<&-",
            "cannot speak SMTP on standard input and output: standard input is closed",
        ),
        (
            ["-bs"],
            ">&- </dev/null",
            "cannot speak SMTP on standard input and output: standard output is closed",
        ),
    ],
)
def test_a_closed_or_unreadable_standard_input_is_one_line_and_exit_74(
    home: Path, args: list[str], redirect: str, text: str
) -> None:
    # Daemons may start sendmail with descriptor 0 (or 1) closed; a real shell closes it.
    command = [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", *args]
    done = subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", *command], capture_output=True, timeout=60
    )
    assert (done.returncode, done.stderr.decode()) == (74, f"outbox: {text}\n")
    assert stored_messages(home) == []
