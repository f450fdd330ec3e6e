"""The programs that call sendmail on a Linux machine, run for real against ``outbox``.

Each test puts a symlink named ``sendmail`` (``mailq``, ``newaliases``) to the
``outbox`` console script on a private PATH, runs the caller as Debian ships it
(or, for daemons that cannot run here -- cron, atd -- their exact argv and
message), flushes to a real SMTP server on 127.0.0.1 and checks the envelope
and the bytes that arrived.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import outbox
from tests.support.smtp_servers import Received, RunningServer, threaded_smtp_server

ADDRESS = "me@example.org"


def console_script() -> Path:
    script = Path(sys.executable).parent / "outbox"
    if not script.exists():
        found = shutil.which("outbox")
        assert found, "the outbox console script is not installed"
        script = Path(found)
    return script


def need(program: str) -> str:
    """The path of a Debian program the test runs; under CI its absence is a failure."""
    found = shutil.which(program)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{program} is not installed (.ci/run installs it)")
        pytest.skip(f"{program} is not installed here")
    return found


@dataclass
class Machine:
    """A home with an account (and its --address), a PATH with sendmail on it, a server."""

    home: Path
    bin: Path
    user_home: Path
    server: RunningServer

    @property
    def sendmail(self) -> str:
        return str(self.bin / "sendmail")

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "OUTBOX_HOME": str(self.home),
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HOME": str(self.user_home),
            "LC_ALL": "C.UTF-8",
            **extra,
        }

    def run(
        self, args: list[str], input: bytes = b"", **extra: str
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            args, input=input, capture_output=True, env=self.env(**extra), timeout=60,
            cwd=self.user_home,
        )  # fmt: skip

    def flushed(self) -> list[Received]:
        done = outbox(self.home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        return self.server.received


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    home = tmp_path / "outbox"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sendmail", "mailq", "newaliases"):
        (bin_dir / name).symlink_to(console_script())
    user_home = tmp_path / "user"
    user_home.mkdir()
    with threaded_smtp_server() as server:
        done = outbox(
            home, "account", "add", "main", "--host", server.host, "--port", str(server.port),
            "--security", "none", "--address", ADDRESS,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        done = outbox(home, "alias", "set", "root", "admin@example.net")
        assert done.returncode == 0, done.stderr.decode()
        yield Machine(home, bin_dir, user_home, server)


def header_lines(body: bytes) -> list[bytes]:
    return body.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


# -- daemons, by their exact argv and message -------------------------------------------


CRON_MESSAGE = (
    b"From: root (Cron Daemon)\n"
    b"To: root\n"
    b"Subject: Cron <root@host> /usr/local/bin/backup\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=UTF-8\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"X-Cron-Env: <SHELL=/bin/sh>\n"
    b"X-Cron-Env: <HOME=/root>\n"
    b"X-Cron-Env: <LOGNAME=root>\n"
    b"\n"
    b"backup: 3 files copied\n.\nd\xc3\xa9j\xc3\xa0 vu\n"
)


def test_cron_mail_reaches_the_server_from_the_account_with_its_display_name(
    machine: Machine,
) -> None:
    # Debian cron (do_command.c), literally: sendmail -FCronDaemon -i -B8BITMIME -oem USER
    done = machine.run(
        [machine.sendmail, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"], CRON_MESSAGE
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")

    (received,) = machine.flushed()
    assert received.mail_from == ADDRESS
    assert received.rcpt_tos == ("admin@example.net",)
    headers = header_lines(received.body)
    assert headers[0] == b"From: Cron Daemon <me@example.org>"
    assert b"To: root" in headers  # headers stay as written
    body = b"\r\n\r\nbackup: 3 files copied\r\n.\r\nd\xc3\xa9j\xc3\xa0 vu\r\n"
    assert received.body.endswith(body)
    assert "BODY=8BITMIME" in received.mail_options


def test_cron_output_with_lines_over_998_octets_is_folded_not_lost(machine: Machine) -> None:
    # cron never retries: a refused message is a job's output gone for good. sendmail and
    # Postfix break such lines; so does Outbox, within RFC 5322's 998 octets.
    command = " ".join(["/usr/bin/rsync --archive /srv/data/"] * 40)  # 1,479 octets
    output = "é" * 700 + "\n" + "x" * 2500 + "\n"  # 1,400 and 2,500 octets
    message = (
        f"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> {command}\n"
        "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"{output}"
    ).encode()
    done = machine.run(
        [machine.sendmail, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"], message
    )
    assert (done.returncode, done.stderr) == (0, b"")

    (received,) = machine.flushed()
    lines = received.body.split(b"\r\n")
    assert max(map(len, lines)) <= 998
    header, body = received.body.split(b"\r\n\r\n", 1)
    # The Subject is folded at spaces: unfolded, it is what cron wrote.
    assert f"Subject: Cron <root@host> {command}".encode() in header.replace(b"\r\n ", b" ")
    # The body's lines are cut, never inside a UTF-8 character: joined, they are the output.
    assert all(isinstance(line.decode("utf-8"), str) for line in body.split(b"\r\n"))
    assert body.replace(b"\r\n", b"") == output.replace("\n", "").encode()


def test_at_job_output_without_from_gets_the_account_address(machine: Machine) -> None:
    # atd: sendmail -i USER, a Subject and To, no From.
    message = b"Subject: Output from your job        7\nTo: root\n\nhello from at\n"
    done = machine.run([machine.sendmail, "-i", "root"], message)
    assert (done.returncode, done.stderr) == (0, b"")

    (received,) = machine.flushed()
    assert (received.mail_from, received.rcpt_tos) == (ADDRESS, ("admin@example.net",))
    assert b"From: me@example.org" in header_lines(received.body)
    assert received.body.endswith(b"\r\n\r\nhello from at\r\n")


def test_logwatch_style_from_keeps_its_name(machine: Machine) -> None:
    message = b"From: Logwatch\nTo: root\nSubject: Logwatch for host\n\nall quiet\n"
    done = machine.run([machine.sendmail, "-t"], message)
    assert (done.returncode, done.stderr) == (0, b"")
    (received,) = machine.flushed()
    assert received.mail_from == ADDRESS
    assert header_lines(received.body)[0] == b"From: Logwatch <me@example.org>"


def test_a_script_piping_plain_text_sends_it_as_the_body(machine: Machine) -> None:
    # The oldest sendmail idiom: no header at all, or a Subject and no empty line after it.
    # sendmail and Postfix take the first line that is not a header field as the body's.
    script = (
        'echo "disk full on /srv" | sendmail root'
        ' && printf "Subject: nightly\\nall 3 backups done\\n" | sendmail -i root'
    )
    done = machine.run(["sh", "-c", script])
    assert (done.returncode, done.stderr) == (0, b"")

    received = sorted(machine.flushed(), key=lambda r: b"nightly" in r.body)
    assert [(r.mail_from, r.rcpt_tos) for r in received] == [(ADDRESS, ("admin@example.net",))] * 2
    plain, subject = received
    assert header_lines(plain.body)[0] == b"From: me@example.org"
    assert plain.body.endswith(b"\r\n\r\ndisk full on /srv\r\n")
    assert header_lines(subject.body)[0] == b"Subject: nightly"
    assert subject.body.endswith(b"\r\n\r\nall 3 backups done\r\n")


def test_without_an_address_the_error_says_to_set_one_and_nothing_is_stored(
    machine: Machine,
) -> None:
    assert outbox(machine.home, "account", "set", "main", "--no-address").returncode == 0
    done = machine.run(
        [machine.sendmail, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"], CRON_MESSAGE
    )
    assert done.returncode == 78
    assert b"--address" in done.stderr and done.stderr.count(b"\n") == 1
    assert outbox(machine.home, "list").stdout == b"the outbox is empty\n"


def test_a_local_name_without_an_alias_is_refused_naming_outbox_alias_set(
    machine: Machine,
) -> None:
    done = machine.run([machine.sendmail, "-i", "ops"], b"Subject: x\n\nx\n")
    assert done.returncode == 78
    assert b"outbox alias set ops" in done.stderr
    assert outbox(machine.home, "list").stdout == b"the outbox is empty\n"
    assert outbox(machine.home, "alias", "set", "default", "all@example.net").returncode == 0
    done = machine.run([machine.sendmail, "-i", "ops"], b"Subject: x\n\nx\n")
    assert done.returncode == 0, done.stderr
    (received,) = machine.flushed()
    assert received.rcpt_tos == ("all@example.net",)


# -- mail(1) and mail clients ----------------------------------------------------------------


def test_bsd_mailx_without_r_sends_from_the_account(machine: Machine) -> None:
    program = need("bsd-mailx")
    rc = machine.user_home / "mailrc"
    rc.write_text(f"set sendmail={machine.sendmail}\n")
    done = machine.run([program, "-s", "disk almost full", "root"], b"93% used\n", MAILRC=str(rc))
    assert done.returncode == 0, done.stderr

    (received,) = machine.flushed()
    assert (received.mail_from, received.rcpt_tos) == (ADDRESS, ("admin@example.net",))
    headers = header_lines(received.body)
    assert b"From: me@example.org" in headers and b"To: root" in headers
    assert received.body.endswith(b"\r\n\r\n93% used\r\n")


def test_s_nail_without_from_sends_and_writes_no_dead_letter(machine: Machine) -> None:
    program = need("s-nail")
    done = machine.run(
        [program, "-:/", "-S", f"mta={machine.sendmail}", "-s", "smartd warning",
         "Some One <someone@example.net>"],
        b"SMART error\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (machine.user_home / "dead.letter").exists()

    (received,) = machine.flushed()
    assert received.mail_from == ADDRESS
    assert received.rcpt_tos == ("someone@example.net",)
    assert b"From: me@example.org" in header_lines(received.body)
    assert received.body.endswith(b"\r\n\r\nSMART error\r\n")


def test_mutt_with_dsn_settings_is_sent_unchanged(machine: Machine) -> None:
    program = need("mutt")
    done = machine.run(
        [program, "-n", "-F", "/dev/null",
         "-e", f'set sendmail="{machine.sendmail} -oem -oi"',
         "-e", 'set record="" copy=no from="Ann <ann@example.org>" use_from=yes',
         "-e", 'set dsn_notify="failure,delay" dsn_return=hdrs',
         "-s", "from mutt", "--", "bob@example.net"],
        b"mutt body\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    (received,) = machine.flushed()
    assert (received.mail_from, received.rcpt_tos) == ("ann@example.org", ("bob@example.net",))
    assert b"From: Ann <ann@example.org>" in header_lines(received.body)
    # aiosmtpd offers no DSN: sent without NOTIFY/RET, and the attempt says so.
    assert received.rcpt_options == () and not any("RET" in o for o in received.mail_options)
    shown = outbox(machine.home, "show", "1", "--json").stdout.decode()
    assert "does not offer DSN" in shown


def test_git_send_email_patch_arrives_byte_for_byte(machine: Machine, tmp_path: Path) -> None:
    need("git")
    usage = subprocess.run(["git", "send-email", "-h"], capture_output=True)
    if b"send-email" not in usage.stdout + usage.stderr or b"not a git command" in usage.stderr:
        need("git-send-email-is-missing")  # skips here, fails under CI
    repo = tmp_path / "repo"
    env = machine.env(GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.org",
                      GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.org")  # fmt: skip
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "file").write_text("one\n.\ntwo\n")
    subprocess.run(["git", "-C", str(repo), "add", "file"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "add file"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "format-patch", "-q", "--root", "-o", str(tmp_path)],
                   check=True, env=env)  # fmt: skip
    (patch,) = tmp_path.glob("0001-*.patch")
    done = subprocess.run(
        ["git", "send-email", f"--smtp-server={machine.sendmail}", "--to=list@example.net",
         "--cc=Maint <maint@example.net>", "--from=Dev <dev@example.org>", "--confirm=never",
         "--suppress-cc=all", "--quiet", str(patch)],
        capture_output=True, env=env, timeout=60, cwd=repo,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    (received,) = machine.flushed()
    assert received.mail_from == "dev@example.org"
    assert set(received.rcpt_tos) == {"list@example.net", "maint@example.net"}
    assert b"\r\n+one\r\n+.\r\n+two\r\n" in received.body


def test_php_mail_with_a_return_path_header_sends_it_as_the_envelope_only(
    machine: Machine, tmp_path: Path
) -> None:
    # PHP's mail() pipes to sendmail_path ("sendmail -t -i"); scripts often add a
    # Return-Path header and pass the bounce address as -f. A message-originating system
    # should not send a Return-Path (RFC 5321 §4.4): the delivering server writes it.
    php = need("php")
    script = tmp_path / "mail.php"
    script.write_text(
        "<?php\n"
        "$ok = mail('Bob <bob@example.net>, root', 'Invoice', \"Hello\\n.\\nBye\\n\",\n"
        "  ['From' => 'Shop <shop@example.org>', 'Return-Path' => '<bounce@example.org>',\n"
        "   'Bcc' => 'audit@example.net'], '-fbounce@example.org');\n"
        "exit($ok ? 0 : 1);\n"
    )
    done = machine.run([php, "-n", "-d", f"sendmail_path={machine.sendmail} -t -i", str(script)])
    assert (done.returncode, done.stderr) == (0, b""), done.stdout

    (received,) = machine.flushed()
    assert received.mail_from == "bounce@example.org"
    assert received.rcpt_tos == ("bob@example.net", "admin@example.net", "audit@example.net")
    headers = header_lines(received.body)
    assert b"From: Shop <shop@example.org>" in headers
    assert not [h for h in headers if h.lower().startswith((b"return-path:", b"bcc:"))]
    assert received.body.endswith(b"\r\n\r\nHello\r\n.\r\nBye\r\n\r\n")


# -- the other faces of sendmail ---------------------------------------------------------


def test_null_sender_goes_out_as_mail_from_empty(machine: Machine) -> None:
    message = b"From: Auto Reply <me@example.org>\nTo: x@example.net\nSubject: away\n\naway\n"
    for form in ("<>", ""):
        done = machine.run([machine.sendmail, "-f", form, "-i", "x@example.net"], message)
        assert (done.returncode, done.stderr) == (0, b"")
    received = machine.flushed()
    assert [r.mail_from for r in received] == ["<>", "<>"]
    assert all(header_lines(r.body)[0] == b"From: Auto Reply <me@example.org>" for r in received)


def test_recipient_words_are_address_lists(machine: Machine) -> None:
    done = machine.run(
        [machine.sendmail, "-i", "Some One <x@example.net>", "y@example.net, z@example.net"],
        b"Subject: s\n\nx\n",
    )
    assert (done.returncode, done.stderr) == (0, b"")
    (received,) = machine.flushed()
    assert received.rcpt_tos == ("x@example.net", "y@example.net", "z@example.net")


def test_dash_q_flushes_and_mailq_lists_and_newaliases_succeeds(machine: Machine) -> None:
    done = machine.run([machine.sendmail, "-i", "a@example.net"], b"Subject: queued one\n\nx\n")
    assert done.returncode == 0, done.stderr
    listing = machine.run([str(machine.bin / "mailq")])
    assert listing.returncode == 0 and b"queued one" in listing.stdout
    assert machine.run([machine.sendmail, "-bp"]).stdout == listing.stdout
    for args in ([str(machine.bin / "newaliases")], [machine.sendmail, "-bi"],
                 [machine.sendmail, "-I"]):  # fmt: skip
        done = machine.run(args)
        assert (done.returncode, done.stdout) == (0, b""), done.stderr
    assert machine.server.received == []
    done = machine.run([machine.sendmail, "-q"])
    assert done.returncode == 0, done.stderr
    assert [r.rcpt_tos for r in machine.server.received] == [("a@example.net",)]


def test_msmtp_pretend_shows_the_envelope_and_stores_nothing(machine: Machine) -> None:
    done = machine.run([machine.sendmail, "-P", "-t"], b"From: Logwatch\nTo: root\n\nx\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"from: <me@example.org>\nto: <admin@example.net>\n")
    assert outbox(machine.home, "list").stdout == b"the outbox is empty\n"


def test_dash_bv_shows_where_local_names_go(machine: Machine) -> None:
    done = machine.run([machine.sendmail, "-bv", "root", "b@example.net"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b"root... deliverable: admin@example.net\nb@example.net... deliverable: b@example.net\n"
    )
