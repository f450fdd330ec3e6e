"""``outbox flush`` end to end: a real process, a real store, real SMTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relay.flushlock import FlushLock
from tests.support.cli import listed, outbox
from tests.support.fault_server import DROP, threaded_fault_server
from tests.support.keyrings import FILE_ENV, MemoryKeyring, stored_key
from tests.support.smtp_servers import USER, RecordingHandler, threaded_smtp_server


def message(n: int, to: str = "bob@example.org", cc: str | None = None) -> bytes:
    lines = [
        "From: Ann <ann@example.org>",
        f"To: {to}",
        *([f"Cc: {cc}"] if cc else []),
        f"Subject: note {n}",
        f"Message-ID: <note-{n}@example.org>",
        "Date: Tue, 24 Nov 2026 12:00:00 +0000",
        "",
        f"Hello number {n}.",
        ".a line that needs stuffing",
        "",
    ]
    return "\r\n".join(lines).encode()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def add_account(
    home: Path, port: int, *extra: str, env: dict[str, str] | None = None, password: str = ""
) -> None:
    done = outbox(
        home,
        "account",
        "add",
        "test",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--security",
        "none",
        "--command-timeout",
        "3",
        "--data-timeout",
        "3",
        "--connect-timeout",
        "3",
        *extra,
        env=env,
        input=password.encode() or None,
    )
    assert done.returncode == 0, done.stderr.decode()


def enqueue(home: Path, raw: bytes) -> str:
    done = outbox(home, "enqueue", "-", input=raw)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


def states(home: Path) -> dict[str, str]:
    return {m["id"]: m["state"] for m in listed(home)}


def test_flush_sends_every_due_message_once_byte_exact_and_exits_0(home: Path) -> None:
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        ids = [enqueue(home, message(n)) for n in range(3)]
        stored = [outbox(home, "show", i, "--raw").stdout for i in ids]
        done = outbox(home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        # Over both of the account's connections: in any order, each exactly once.
        assert sorted(r.body for r in server.received) == sorted(stored)
        assert all(r.rcpt_tos == ("bob@example.org",) for r in server.received)
        assert all(r.mail_from == "ann@example.org" for r in server.received)
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 3 and all(": sent" in line for line in lines)
        assert set(states(home).values()) == {"sent"}
        # Nothing is due any more: a second flush sends nothing.
        again = outbox(home, "flush")
        assert again.returncode == 0 and len(server.received) == 3


def test_a_refused_recipient_fails_with_the_reply_and_retry_reaches_only_them(
    home: Path,
) -> None:
    handler = RecordingHandler(refuse={"cy@example.org": "550 5.1.1 no such user"})
    with threaded_smtp_server(handler=handler) as server:
        add_account(home, server.port)
        mid = enqueue(home, message(1, cc="cy@example.org"))
        done = outbox(home, "flush")
        assert done.returncode == 1
        assert "550 5.1.1 no such user" in done.stderr.decode()
        (item,) = listed(home)
        assert item["state"] == "failed"
        assert {r["address"]: r["state"] for r in item["recipients"]} == {
            "bob@example.org": "sent",
            "cy@example.org": "failed",
        }
        handler.refuse.clear()  # the server is healed
        assert outbox(home, "retry", mid).returncode == 0
        assert outbox(home, "flush").returncode == 0
        assert [r.rcpt_tos for r in server.received] == [("bob@example.org",), ("cy@example.org",)]
        assert states(home) == {mid: "sent"}


def test_450_at_mail_defers_with_a_back_off_and_exits_75(home: Path) -> None:
    with threaded_fault_server(mail="450 4.7.1 try later") as server:
        add_account(home, server.port)
        enqueue(home, message(1))
        done = outbox(home, "flush")
        assert done.returncode == 75
        (item,) = listed(home)
        assert item["state"] == "deferred" and item["next_attempt"] is not None
        assert item["last_error"] == "450 4.7.1 try later"
        assert item["attempts"] == 1
        # Not due again yet: the next flush sends nothing and leaves it deferred.
        assert outbox(home, "flush").returncode == 0
        assert listed(home)[0]["attempts"] == 1


def test_a_refused_connection_defers_everything_and_exits_75(home: Path) -> None:
    import socket

    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    add_account(home, port)
    enqueue(home, message(1))
    enqueue(home, message(2))
    done = outbox(home, "flush")
    assert done.returncode == 75
    assert set(states(home).values()) == {"deferred"}
    assert "refused" in listed(home)[0]["last_error"]


def test_a_host_whose_first_address_swallows_the_connection_is_reached_at_its_next(
    home: Path, tmp_path: Path
) -> None:
    """A name with an AAAA record over a broken route and a working A record.

    The name resolves, in a private mount namespace's ``/etc/hosts``, to ::1
    first -- a listener whose backlog is full, so a connection to it hangs as
    a blackholed one does -- and then to 127.0.0.1, where the server is. Each
    address has the connect timeout of its own, so the mail goes.
    """
    import socket

    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs root and mount namespaces (unshare -m) for a private /etc/hosts")
    with threaded_fault_server() as server:
        try:
            hole = socket.socket(socket.AF_INET6)
            hole.bind(("::1", server.port))
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback here: {exc}")
        with hole, socket.socket(socket.AF_INET6) as filler:
            hole.listen(0)
            filler.connect(("::1", server.port))  # fills the backlog: the next SYN waits
            hosts = tmp_path / "hosts"
            hosts.write_text("::1 mail.outbox-test.invalid\n127.0.0.1 mail.outbox-test.invalid\n")
            done = outbox(home, "account", "add", "test", "--host", "mail.outbox-test.invalid",
                          "--port", str(server.port), "--security", "none",
                          "--connect-timeout", "2")  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            mid = enqueue(home, message(1))
            flushed = subprocess.run(
                ["unshare", "-m", "sh", "-c", f'mount --bind "{hosts}" /etc/hosts && exec "$@"',
                 "sh", sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        assert flushed.returncode == 0, flushed.stderr.decode()
        assert len(server.messages) == 1
    assert states(home) == {mid: "sent"}


def test_a_server_taking_one_connection_gets_every_message_over_it_in_one_flush(
    home: Path,
) -> None:
    with threaded_fault_server(max_clients=1) as server:
        add_account(home, server.port, "--max-connections", "2")
        ids = [enqueue(home, message(n)) for n in range(6)]
        done = outbox(home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        assert server.turned_away >= 1  # the second connection was refused at its greeting
        assert len(server.messages) == 6
    assert states(home) == dict.fromkeys(ids, "sent")
    assert [item["attempts"] for item in listed(home)] == [1] * 6


def test_a_lost_reply_after_the_final_dot_is_uncertain_and_never_resent_unasked(
    home: Path,
) -> None:
    with threaded_fault_server(end_of_data=DROP) as server:
        add_account(home, server.port)
        mid = enqueue(home, message(1))
        assert outbox(home, "flush").returncode == 75
        assert states(home) == {mid: "uncertain"}
        assert outbox(home, "flush", mid).returncode == 0  # names it, but it owes nobody
        assert len(server.messages) == 1
    with threaded_smtp_server() as healthy:
        outbox(home, "account", "set", "test", "--port", str(healthy.port))
        done = outbox(home, "retry", mid)
        assert b"twice" in done.stderr
        assert outbox(home, "flush").returncode == 0
        assert len(healthy.received) == 1
        assert states(home) == {mid: "sent"}


def test_a_second_flush_while_one_runs_says_so_and_exits_75(home: Path) -> None:
    home.mkdir(mode=0o700)
    lock = FlushLock(home)
    assert lock.try_acquire()
    try:
        done = outbox(home, "flush")
    finally:
        lock.release()
    assert done.returncode == 75
    assert b"already running" in done.stderr


def test_refused_credentials_stop_the_flush_and_leave_messages_queued(
    home: Path, tmp_path: Path
) -> None:
    env = {
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),
    }
    with threaded_smtp_server(password="right-password") as server:
        add_account(
            home,
            server.port,
            "--user",
            USER,
            "--password-stdin",
            env=env,
            password="wrong-password",
        )
        assert MemoryKeyring(tmp_path / "keyring.json").passwords()
        enqueue(home, message(1))
        done = outbox(home, "flush", env=env)
        assert done.returncode == 1
        assert b"credentials" in done.stderr
        assert b"wrong-password" not in done.stderr
        assert states(home) == {"1": "queued"}
        assert server.received == []


@pytest.mark.parametrize("mechanisms", [(), ("CRAM-MD5",)])
def test_a_server_that_never_asks_for_the_password_is_not_said_to_refuse_it(
    home: Path, mechanisms: tuple[str, ...]
) -> None:
    with threaded_fault_server(auth_mechanisms=mechanisms) as server:
        add_account(home, server.port, "--user", USER, "--password-command", "echo s3cret")
        enqueue(home, message(1))
        done = outbox(home, "flush")
    assert done.returncode == 1
    (line,) = done.stderr.decode().splitlines()
    assert "password" not in line.split(";")[-1], line  # the hint names no password to fix
    assert "`outbox account test test` shows what the server offers" in line
    assert states(home) == {"1": "queued"}


def test_flush_without_an_account_is_a_clear_error(home: Path) -> None:
    enqueue(home, message(1))
    done = outbox(home, "flush")
    assert done.returncode != 0
    assert b"no account configured" in done.stderr and b"Traceback" not in done.stderr
    assert states(home) == {"1": "queued"}


def test_ctrl_c_finishes_the_message_in_flight_and_leaves_the_rest_queued(
    home: Path,
) -> None:
    # The server stalls inside the first message's data; Ctrl-C arrives then.
    with threaded_fault_server(stall_data=(10, 1.5)) as server:
        add_account(
            home, server.port, "--max-messages-per-connection", "1", "--max-connections", "1"
        )
        for n in range(4):
            enqueue(home, message(n))
        with subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        ) as proc:
            # Wait (bounded) for the server to see the first DATA begin, then interrupt.
            for _ in range(200):
                if any(c.startswith("DATA") for c in server.commands):
                    break
                try:
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
            proc.send_signal(signal.SIGINT)
            _, err_bytes = proc.communicate(timeout=30)
        err = err_bytes.decode()
    assert "stopping" in err
    final = states(home)
    assert "sending" not in final.values()
    assert list(final.values()).count("sent") == 1
    assert list(final.values()).count("queued") == 3


def test_a_missing_password_is_a_problem_to_fix_not_a_deferral(home: Path, tmp_path: Path) -> None:
    env = {
        "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),
    }
    with threaded_smtp_server(password="right-password") as server:
        add_account(
            home,
            server.port,
            "--user",
            USER,
            "--password-stdin",
            env=env,
            password="right-password",
        )
        MemoryKeyring(tmp_path / "keyring.json").delete_password(*stored_key(home, "test"))
        enqueue(home, message(1))
        done = outbox(home, "flush", env=env)
        assert done.returncode == 1
        assert b"no password stored for account test" in done.stderr
        assert states(home) == {"1": "queued"}
        assert server.received == []


@pytest.mark.parametrize("setting", ["on", "off"])
def test_an_account_can_turn_pipelining_off_from_the_command_line(home: Path, setting: str) -> None:
    with threaded_fault_server(extensions=("PIPELINING", "8BITMIME", "SIZE 10000000")) as server:
        add_account(home, server.port, "--pipelining", "off")
        if setting == "on":
            changed = outbox(home, "account", "set", "test", "--pipelining", "on")
            assert changed.returncode == 0, changed.stderr.decode()
        for n in range(3):
            enqueue(home, message(n))
        done = outbox(home, "flush")
        assert done.returncode == 0, done.stderr.decode()
        assert len(server.messages) == 3
        assert (server.pipelined > 0) == (setting == "on"), server.pipelined
    (account,) = json.loads(outbox(home, "account", "list", "--json").stdout)
    assert account["pipelining"] == (setting == "on")
