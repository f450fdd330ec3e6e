"""``sendmail -bs``: the SMTP dialogue, by table (no I/O) and as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from relay.errors import ConfigError, InvalidMessage
from relay.stdio_smtp import MAX_ERRORS, SmtpDialogue
from tests.intake.conftest import stored_messages
from tests.support.cli import outbox
from tests.support.smtp_servers import threaded_smtp_server


class Names:
    """Local names as a test sets them: ``root`` has an alias, nothing else does."""

    def __init__(self, sender: str | None = "me@example.org") -> None:
        self._sender = sender

    def sender(self) -> str:
        if self._sender is None:
            raise ConfigError("no account has an address: set one with --address")
        return self._sender

    def expand(self, name: str) -> tuple[str, ...]:
        if name.lower() == "root":
            return ("admin@example.net",)
        raise ConfigError(f"no alias for {name!r}: set one with 'outbox alias set {name} ADDR'")


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.stored: list[tuple[str, list[str], bytes]] = []
        self.fail = fail

    def __call__(self, sender: str, recipients: list[str], data: bytes) -> int:
        if self.fail is not None:
            raise self.fail
        self.stored.append((sender, list(recipients), data))
        return len(self.stored)


def talk(lines: list[str], *, store: Recorder | None = None, names: Names | None = None
         ) -> list[str]:  # fmt: skip
    """Each reply's first line, for each line fed (data lines answer nothing)."""
    dialogue = SmtpDialogue(store or Recorder(), names or Names())
    replies = []
    for line in lines:
        reply = dialogue.feed_line(line.encode())
        if reply:
            replies.append(reply.decode().split("\r\n")[0])
    return replies


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["MAIL FROM:<a@x.org>"], ["503 5.5.1 send HELO or EHLO first"]),
        (["EHLO"], ["501 5.5.4 syntax: EHLO hostname"]),
        (["HELO c", "RCPT TO:<b@y.org>"], ["250 localhost", "503 5.5.1 need MAIL before RCPT"]),
        (["HELO c", "DATA"], ["250 localhost", "503 5.5.1 need MAIL before DATA"]),
        (["HELO c", "MAIL FROM:<a@x.org>", "DATA"],
         ["250 localhost", "250 2.1.0 Ok", "554 5.5.1 no valid recipients"]),
        (["HELO c", "MAIL FROM:<a@x.org>", "MAIL FROM:<a@x.org>"],
         ["250 localhost", "250 2.1.0 Ok", "503 5.5.1 nested MAIL command"]),
        (["HELO c", "MAIL FROM:a@x.org"],
         ["250 localhost", "501 5.5.4 syntax: MAIL FROM:<address>"]),
        (["HELO c", "MAIL FROM:<a@x.org> AUTH=<>"],
         ["250 localhost", "555 5.5.4 unsupported parameter AUTH=<>"]),
        (["HELO c", "MAIL FROM:<a@x.org> SIZE=99999999999"],
         ["250 localhost", "552 5.3.4 message size exceeds fixed limit"]),
        (["HELO c", "MAIL FROM:<a b@x.org>"],
         ["250 localhost", "553 5.1.7 bad address <a b@x.org>: contains a space"]),
        (["HELO c", "MAIL FROM:<ä@x.org>"],
         ["250 localhost", "553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter"]),
        (["HELO c", "MAIL FROM:<ä@x.org> SMTPUTF8", "RCPT TO:<ü@y.org>"],
         ["250 localhost", "250 2.1.0 Ok", "250 2.1.5 Ok"]),
        (["HELO c", "MAIL FROM:<>", "RCPT TO:<nobody>"],
         ["250 localhost", "250 2.1.0 Ok",
          "550 5.1.1 <nobody>: no alias for 'nobody':"
          " set one with 'outbox alias set nobody ADDR'"]),
        (["HELO c", "MAIL FROM:<>", "RCPT TO:<b@y.org> NOTIFY=NEVER"],
         ["250 localhost", "250 2.1.0 Ok", "555 5.5.4 unsupported parameter NOTIFY=NEVER"]),
        (["HELO c", "MAIL FROM:<>", "RCPT TO:<>"],
         ["250 localhost", "250 2.1.0 Ok", "501 5.1.3 an empty recipient is not an address"]),
        (["HELO c", "MAIL FROM:<>", "RSET", "RCPT TO:<b@y.org>"],
         ["250 localhost", "250 2.1.0 Ok", "250 2.0.0 Ok", "503 5.5.1 need MAIL before RCPT"]),
        (["NOOP", "VRFY root", "EXPN staff", "STARTTLS", "AUTH PLAIN x", "BDAT 10 LAST", "FOO", ""],
         ["250 2.0.0 Ok", "252 2.0.0 cannot VRFY, but will take a message and try",
          "502 5.5.1 EXPN is not implemented", "502 5.5.1 STARTTLS is not implemented",
          "502 5.5.1 AUTH is not implemented", "502 5.5.1 BDAT is not implemented",
          "500 5.5.2 command not recognized", "500 5.5.2 command not recognized"]),
        (["HELO c", "DATA x"], ["250 localhost", "501 5.5.4 syntax: DATA (no parameters)"]),
        (["quit", "NOOP"], ["221 2.0.0 Bye"]),
    ],
)  # fmt: skip
def test_each_command_gets_the_reply_rfc_5321_gives_it(
    lines: list[str], expected: list[str]
) -> None:
    assert talk(lines) == expected


def test_ehlo_offers_what_the_store_keeps() -> None:
    dialogue = SmtpDialogue(Recorder(), Names())
    reply = dialogue.feed_line(b"EHLO client.example").decode()
    assert reply.split("\r\n")[:-1] == [
        "250-localhost greets client.example", "250-PIPELINING", "250-8BITMIME",
        "250-SMTPUTF8", "250-SIZE 67108864", "250 ENHANCEDSTATUSCODES",
    ]  # fmt: skip


def test_a_message_is_stored_with_its_envelope_and_unstuffed_data() -> None:
    store = Recorder()
    replies = talk(
        ["EHLO c", "MAIL FROM:<@relay.example:a@x.org> BODY=8BITMIME", "RCPT TO:<b@y.org>",
         "RCPT TO:<Root>", "DATA", "Subject: s", "", "..leading dot", "body", ".", "QUIT"],
        store=store,
    )  # fmt: skip
    assert replies[-3:] == ["354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Ok: queued as 1",
                            "221 2.0.0 Bye"]  # fmt: skip
    assert store.stored == [
        ("a@x.org", ["b@y.org", "admin@example.net"], b"Subject: s\r\n\r\n.leading dot\r\nbody\r\n")
    ]


@pytest.mark.parametrize(
    ("failure", "reply"),
    [
        (InvalidMessage("not an e-mail message"),
         "554 5.6.0 message refused: not an e-mail message"),
        (ConfigError("no account"), "451 4.3.5 no account"),
        (OSError(28, "No space left on device"),
         "451 4.3.0 could not store the message: [Errno 28] No space left on device"),
        (RuntimeError("surprise"), "451 4.3.0 could not store the message (RuntimeError)"),
    ],
)  # fmt: skip
def test_a_message_that_cannot_be_stored_gets_a_reply_not_a_traceback(
    failure: Exception, reply: str
) -> None:
    replies = talk(["HELO c", "MAIL FROM:<>", "RCPT TO:<b@y.org>", "DATA", "x", ".", "NOOP"],
                   store=Recorder(failure))  # fmt: skip
    assert replies[-2:] == [reply, "250 2.0.0 Ok"]


def test_what_the_client_sent_is_echoed_on_one_line_without_control_characters() -> None:
    dialogue = SmtpDialogue(Recorder(), Names())
    greeting = dialogue.feed_line(b"EHLO a\rb\x1b[2J")
    assert greeting.startswith(b"250-localhost greets a?b?[2J\r\n")
    reply = dialogue.feed_line(b"MAIL FROM:<a\rRCPT@x.org>")
    assert reply == b"553 5.1.7 bad address <a?RCPT@x.org>: contains a line break\r\n"
    reply = dialogue.feed_line(b"MAIL FROM:<a@x.org> X=\xff\x07")
    assert reply == b"555 5.5.4 unsupported parameter X=??\r\n"


def test_a_local_sender_without_an_address_is_a_temporary_refusal() -> None:
    replies = talk(["HELO c", "MAIL FROM:<root>"], names=Names(sender=None))
    assert replies[-1] == "451 4.3.5 no account has an address: set one with --address"


def test_a_caller_that_keeps_erring_is_disconnected() -> None:
    dialogue = SmtpDialogue(Recorder(), Names())
    replies = [dialogue.feed_line(b"BOGUS") for _ in range(MAX_ERRORS + 1)]
    assert replies[-1] == b"421 4.7.0 too many errors, closing the dialogue\r\n"
    assert dialogue.closed


# -- as a process -------------------------------------------------------------------------


def add_account(home: Path, *extra: str) -> None:
    done = outbox(home, "account", "add", "main", "--host", "127.0.0.1", "--port", "25",
                  "--security", "none", "--address", "me@example.org", *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def bs_process(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-bs"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_pipelined_dialogue_with_two_messages_is_answered_in_order(home: Path) -> None:
    add_account(home)
    script = (
        b"EHLO php\r\n"
        b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<bad address>\r\nDATA\r\n"
        b"Subject: one\r\n\r\n.\r\n"  # an empty body: the lone dot ends it
        b"MAIL FROM:<>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n"
        b"From: Daemon <me@example.org>\r\nSubject: two\r\n\r\n..\r\nbye\r\n.\r\n"
        b"QUIT\r\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-bs"],
        input=script, capture_output=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    codes = [line[:3] for line in done.stdout.split(b"\r\n") if line and line[3:4] == b" "]
    assert codes == [b"220", b"250", b"250", b"250", b"553", b"354", b"250", b"250", b"250",
                     b"354", b"250", b"221"]  # fmt: skip
    one, two = stored_messages(home)
    assert (one.sender, one.recipients, one.subject) == ("a@x.org", ("b@y.org",), "one")
    assert (two.sender, two.recipients) == ("", ("c@y.org",))
    assert two.raw.endswith(b"\r\n\r\n.\r\nbye\r\n")


def test_local_names_in_the_dialogue_become_the_account_address_and_the_alias(
    home: Path,
) -> None:
    add_account(home)
    assert outbox(home, "alias", "set", "root", "admin@example.net").returncode == 0
    script = (
        "HELO cron\r\nMAIL FROM:<root> BODY=8BITMIME\r\nRCPT TO:<root>\r\nDATA\r\n"
        "From: root (Cron Daemon)\r\nTo: root\r\nSubject: job\r\n\r\ndéjà vu\r\n.\r\nQUIT\r\n"
    ).encode()
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-bs"],
        input=script, capture_output=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    (message,) = stored_messages(home)
    assert (message.sender, message.recipients) == ("me@example.org", ("admin@example.net",))
    assert message.raw.startswith(b"From: Cron Daemon <me@example.org>\r\nTo: root\r\n")
    assert message.raw.endswith("\r\n\r\ndéjà vu\r\n".encode())


def test_data_without_a_header_is_the_body_as_sendmail_takes_it(home: Path) -> None:
    add_account(home)
    script = b"HELO x\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nhello\r\n.\r\n"
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-bs"],
        input=script, capture_output=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    assert b"\r\n250 2.0.0 Ok: queued as 1\r\n" in done.stdout
    (message,) = stored_messages(home)
    assert message.raw.startswith(b"From: a@x.org\r\nDate: ")
    assert message.raw.endswith(b"\r\n\r\nhello\r\n")


def test_a_message_is_stored_before_its_250_is_written(home: Path) -> None:
    add_account(home)
    process = bs_process(home)
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline().startswith(b"220 ")
        process.stdin.write(b"HELO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<root@y.org>\r\nDATA\r\n"
                            b"Subject: durable\r\n\r\nx\r\n.\r\n")  # fmt: skip
        process.stdin.flush()
        replies = [process.stdout.readline() for _ in range(5)]
        assert replies[-1].startswith(b"250 2.0.0 Ok: queued as ")
        # The process is still talking (no QUIT yet): the message is in the store already.
        assert [m.subject for m in stored_messages(home)] == ["durable"]
        # The input ends in the middle of a second message: it is not stored.
        process.stdin.write(b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n"
                            b"Subject: cut short\r\n\r\nhalf")  # fmt: skip
        process.stdin.close()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        assert process.stderr is not None
        assert process.stderr.read() == b""
        process.stderr.close()
    assert [m.subject for m in stored_messages(home)] == ["durable"]


def test_a_client_that_stops_reading_ends_the_dialogue_quietly(home: Path) -> None:
    add_account(home)
    process = bs_process(home)
    assert process.stdin is not None and process.stdout is not None
    assert process.stdout.readline().startswith(b"220 ")
    process.stdout.close()  # the replies now have nowhere to go
    process.stdin.write(b"NOOP\r\n" * 1000)
    process.stdin.close()
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    assert process.stderr.read() == b""
    process.stderr.close()


def test_garbage_on_standard_input_gets_replies_and_never_a_traceback(home: Path) -> None:
    add_account(home)
    garbage = (
        b"\xff\xfe\x00\r\n" + b"A" * 5000 + b"\r\nMAIL FROM:<\x00@x>\r\nHELO \xff\r\n"
        b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org\r\nRCPT TO:<\xc3\xa4@y.org>\r\n"
        b"RCPT TO:<b@y.org>\r\nDATA\r\nSubject: a NUL\x00\r\n.\r\nQUIT"
    )
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-bs"],
        input=garbage, capture_output=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    codes = [line[:3] for line in done.stdout.split(b"\r\n") if line and line[3:4] == b" "]
    assert codes == [b"220", b"500", b"500", b"503", b"250", b"250", b"501", b"553", b"250",
                     b"354", b"554", b"221"]  # fmt: skip
    assert stored_messages(home) == []


PHP_SCRIPT = r"""<?php
require '/usr/share/php/Symfony/Component/Mailer/autoload.php';
use Symfony\Component\Mailer\Mailer;
use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Email;

$mailer = new Mailer(new SendmailTransport($argv[1] . ' -bs'));
foreach ([1, 2] as $n) {
    $mailer->send((new Email())
        ->from('App <app@example.org>')
        ->to('user@example.net')
        ->bcc('audit@example.net')
        ->subject("Order $n")
        ->text("Thank you.\n.\nn=$n d\u{e9}j\u{e0}\n"));
}
echo "sent\n";
"""


def test_php_symfony_mailer_sendmail_bs_transport_delivers(home: Path, tmp_path: Path) -> None:
    php = shutil.which("php")
    if php is None or not Path("/usr/share/php/Symfony/Component/Mailer/autoload.php").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("php-cli and php-symfony-mailer are not installed (.ci/run installs them)")
        pytest.skip("php-cli or php-symfony-mailer is not installed here")
    script = tmp_path / "send.php"
    script.write_text(PHP_SCRIPT)
    outbox_command = f"{sys.executable} -m relay.cli --home {home} sendmail"
    with threaded_smtp_server() as server:
        add_account(home)
        done = outbox(home, "account", "set", "main", "--port", str(server.port))
        assert done.returncode == 0, done.stderr.decode()
        ran = subprocess.run([php, str(script), outbox_command], capture_output=True,
                             timeout=120, cwd=Path(__file__).parents[2])  # fmt: skip
        assert (ran.returncode, ran.stdout) == (0, b"sent\n"), ran.stderr
        flushed = outbox(home, "flush")
        assert flushed.returncode == 0, flushed.stderr.decode()
    # The two messages may go over two connections at once: take them by subject.
    first, second = sorted(server.received, key=lambda m: b"Subject: Order 2" in m.body)
    assert first.mail_from == "app@example.org"
    assert first.rcpt_tos == ("user@example.net", "audit@example.net")
    assert b"audit" not in first.body
    assert b"Subject: Order 1\r\n" in first.body and b"Subject: Order 2\r\n" in second.body
    assert b"\r\n\r\nThank you.\r\n.\r\nn=3D1 d=C3=A9j=C3=A0\r\n" in first.body
