"""The password never lands anywhere the program writes, and the home is private.

A distinctive password goes into the (test) keyring; flushes run with AUTH
PLAIN and LOGIN, right and wrong, against aiosmtpd and against scripted
servers that repeat the credentials back in their replies -- in a 535, in a
454, in a 235, in the reply to MAIL. Then every file under the home, every
stdout and stderr, ``list --json`` and every ``show --json`` (which carries the
transcripts) are searched for the password and its base64 forms (the AUTH
PLAIN token and the AUTH LOGIN line). The keyring file the test backend
keeps lives outside the home, where the system keyring would be.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import add_account, note, record_figures
from tests.support.cli import listed, outbox
from tests.support.fault_server import Raw, threaded_fault_server
from tests.support.keyrings import FILE_ENV
from tests.support.smtp_servers import USER, threaded_smtp_server

PASSWORD = "Qx7-vault-ZEBRA-horse-91"
WRONG = "Wr0ng-guess-OTTER-lamp-55"


def secret_forms(password: str) -> dict[str, bytes]:
    """The password as a program could leak it: itself, and as it travels in AUTH."""
    secret = password.encode()
    plain = base64.b64encode(b"\0" + USER.encode() + b"\0" + secret)
    login = base64.b64encode(secret)
    return {
        "password": secret,
        "AUTH PLAIN token": plain,
        "AUTH PLAIN token, unpadded": plain.rstrip(b"="),
        "AUTH LOGIN line": login,
        "AUTH LOGIN line, unpadded": login.rstrip(b"="),
    }


def files_under(home: Path) -> Iterator[Path]:
    for directory, _dirs, names in os.walk(home):
        for name in names:
            yield Path(directory) / name


@dataclass
class Written:
    """Everything the program wrote during one scenario, by where it went."""

    blobs: dict[str, bytes]

    def leaks(self, *passwords: str) -> list[str]:
        found = []
        for password in passwords:
            for form, needle in secret_forms(password).items():
                for where, blob in self.blobs.items():
                    if needle in blob:
                        found.append(f"{form} of {password!r} in {where}")
        return found


class Scenario:
    """Runs ``outbox`` against one server and keeps every byte it printed."""

    def __init__(self, home: Path, tmp_path: Path) -> None:
        self.home = home
        self.env = {
            "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.MemoryKeyring",
            FILE_ENV: str(tmp_path / "keyring.json"),
        }
        self.printed: dict[str, bytes] = {}

    def run(self, *args: str, input: bytes | None = None) -> int:
        done = outbox(self.home, *args, env=self.env, input=input)
        key = " ".join(args)
        self.printed[f"stdout of {key}"] = done.stdout
        self.printed[f"stderr of {key}"] = done.stderr
        return done.returncode

    def everything(self) -> Written:
        for item in listed(self.home):
            self.run("show", str(item["id"]), "--json")
        self.run("list", "--json")
        blobs = dict(self.printed)
        for path in files_under(self.home):
            blobs[str(path.relative_to(self.home))] = path.read_bytes()
        return Written(blobs)


def plain_echo(password: str) -> str:
    return secret_forms(password)["AUTH PLAIN token"].decode()


def login_echo(password: str) -> str:
    return secret_forms(password)["AUTH LOGIN line"].decode()


@dataclass(frozen=True)
class Case:
    """A server, the password the account holds, and how the flush must end."""

    factory: Any
    options: dict[str, Any]
    stored: str
    exit_code: int


def cases() -> dict[str, Case]:
    p = PASSWORD
    return {
        "aiosmtpd PLAIN, right password": Case(threaded_smtp_server, {"password": p}, p, 0),
        "aiosmtpd LOGIN, right password": Case(
            threaded_smtp_server, {"password": p, "mechanisms": ("LOGIN",)}, p, 0
        ),
        "aiosmtpd PLAIN, wrong password": Case(threaded_smtp_server, {"password": p}, WRONG, 1),
        "535 echoing the PLAIN token": Case(
            threaded_fault_server,
            {
                "auth_mechanisms": ("PLAIN",),
                "auth": f"535 5.7.8 bad: AUTH PLAIN {plain_echo(p)} ({p})",
            },
            p,
            1,
        ),
        "535 echoing the LOGIN line": Case(
            threaded_fault_server,
            {"auth_mechanisms": ("LOGIN",), "auth": f"535 5.7.8 {login_echo(p)} is not {p}"},
            p,
            1,
        ),
        "454 echoing, multi-line": Case(
            threaded_fault_server,
            {
                "auth_mechanisms": ("PLAIN",),
                "auth": f"454 4.7.0 cannot check {p} now\n454 4.7.0 {plain_echo(p)}",
            },
            p,
            75,
        ),
        "235 and MAIL replies echoing": Case(
            threaded_fault_server,
            {
                "auth_mechanisms": ("PLAIN", "LOGIN"),
                "auth": f"235 2.7.0 welcome {p} / {plain_echo(p)}",
                "mail": f"250 2.1.0 ok, sender {login_echo(p)} {p}",
                "end_of_data": f"250 2.0.0 queued for {p}",
            },
            p,
            0,
        ),
        "550 to MAIL echoing": Case(
            threaded_fault_server,
            {
                "auth_mechanisms": ("LOGIN",),
                "mail": f"550 5.7.1 {p} {login_echo(p)} {plain_echo(p)}",
            },
            p,
            1,
        ),
        "a non-SMTP line echoing after AUTH": Case(
            threaded_fault_server,
            {
                "auth_mechanisms": ("PLAIN",),
                "mail": Raw(f"you sent {plain_echo(p)} and {p}\r\n".encode()),
            },
            p,
            75,
        ),
    }


@pytest.mark.parametrize("scenario", sorted(cases()))
def test_the_password_appears_in_nothing_the_program_writes(
    home: Path, tmp_path: Path, scenario: str
) -> None:
    case = cases()[scenario]
    run = Scenario(home, tmp_path)
    server_cm: AbstractContextManager[Any] = case.factory(**case.options)
    with server_cm as server:
        add_account(
            home, server.port, "--user", USER, "--password-stdin", env=run.env, password=case.stored
        )
        assert run.run("enqueue", "-", input=note(1, tag="secret")) == 0
        run.run("account", "test", "--transcript")
        code = run.run("flush")
    assert code == case.exit_code, run.printed["stderr of flush"].decode()
    written = run.everything()
    assert written.leaks(PASSWORD, WRONG) == []
    assert any(name.startswith("outbox.sqlite3") for name in written.blobs)
    record_figures("test_secrets", scenario=scenario, places_searched=len(written.blobs))


def test_every_file_is_0600_and_every_directory_0700_even_under_a_lax_umask(
    home: Path, tmp_path: Path
) -> None:
    old = os.umask(0o000)  # inherited by the subprocesses: the program must not rely on it
    try:
        run = Scenario(home, tmp_path)
        with threaded_smtp_server(password=PASSWORD) as server:
            add_account(
                home,
                server.port,
                "--user",
                USER,
                "--password-stdin",
                env=run.env,
                password=PASSWORD,
            )
            assert run.run("enqueue", "-", input=note(1, tag="modes")) == 0
            drop_new = home / "drop" / "new"
            assert run.run("flush") == 0
            os.umask(0o077)
            (drop_new / "1.msg").write_bytes(note(2, tag="modes"))
            (drop_new / "2.msg").write_bytes(b"not a message\r\n")  # goes to rejected/
            os.umask(0o000)
            run.run("flush")
            assert b"drop/2.msg" in run.printed["stderr of flush"]  # refused, kept aside
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    seen = []
    for directory, dirs, names in os.walk(home):
        for name in dirs:
            path = Path(directory) / name
            assert stat.S_IMODE(path.lstat().st_mode) == 0o700, path
            seen.append(path)
        for name in names:
            path = Path(directory) / name
            assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path
            seen.append(path)
    kinds = {p.name for p in seen}
    assert {"outbox.sqlite3", "config.toml", "flush.lock", "drop", "rejected"} <= kinds
    assert any(n.endswith(".error") for n in kinds)
