"""A real Postfix ``smtpd`` on loopback, from a private configuration directory.

Never the system's Postfix: ``postfix -c DIR start`` runs a master of its own
whose queue, data directory, log file and listening port (127.0.0.1, a free
port) all live in a temporary folder, and ``postfix -c DIR stop`` ends it,
waited for, when the block ends. Every recipient in ``example.net`` is
delivered by the ``virtual`` agent into one Maildir, one file per recipient
with its ``Delivered-To`` line, so a test can count who got the message.
``main_cf`` adds settings (``smtpd_recipient_limit = 100`` …);
``smtpd_forbid_unauth_pipelining`` is on, so a client that sends ahead
wrongly shows up in ``log()``.

Without Postfix the test is skipped with the reason, except under
``CI=true``, where ``.ci/run`` installs it and its absence is a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTFIX = Path("/usr/sbin/postfix")
HOST = "127.0.0.1"

_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass(frozen=True)
class PostfixServer:
    port: int
    folder: Path

    @property
    def maildir(self) -> Path:
        return self.folder / "mail" / "box" / "new"

    def delivered_to(self) -> list[str]:
        """The ``Delivered-To`` address of every message delivered so far."""
        addresses = []
        for path in sorted(self.maildir.glob("*")) if self.maildir.exists() else []:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("Delivered-To: "):
                    addresses.append(line.removeprefix("Delivered-To: ").strip())
                    break
        return addresses

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_until(self, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Until ``done()``: Postfix delivers on its own time (bounded; polled)."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix did not get there in {timeout_s:g} s:\n{self.log()}")
            time.sleep(0.1)  # another process's queue: nothing to wait on but its files


def require_postfix() -> None:
    if POSTFIX.exists() and os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("Postfix (Debian's postfix package, run as root) is needed here")
    pytest.skip("a private Postfix needs /usr/sbin/postfix and root")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _postfix(config: Path, command: str) -> subprocess.CompletedProcess[bytes]:
    # Postfix writes its own errors to syslog (absent here) and to a terminal:
    # ``script`` gives it one, so a failure says why.
    return subprocess.run(
        ["script", "-qc", f"{POSTFIX} -c {config} {command}", "/dev/null"],
        capture_output=True,
        timeout=60,
    )


@contextmanager
def postfix_server(**main_cf: str) -> Iterator[PostfixServer]:
    require_postfix()
    folder = Path(tempfile.mkdtemp(prefix="outbox-postfix-"))
    try:
        folder.chmod(0o755)
        config, data, mail = folder / "conf", folder / "data", folder / "mail"
        for directory in (config, folder / "queue", data, mail):
            directory.mkdir()
        mail.chmod(0o777)  # the virtual agent delivers as nobody
        postfix_user = pwd.getpwnam("postfix")
        os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
        port = _free_port()
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(folder / "queue"),
            "data_directory": str(data),
            "inet_interfaces": HOST,
            "inet_protocols": "ipv4",
            "myhostname": "outbox-test.localdomain",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": "example.net",
            "virtual_mailbox_base": str(mail),
            "virtual_mailbox_maps": "static:box/",
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "smtpd_forbid_unauth_pipelining": "yes",
            "maillog_file": str(folder / "maillog"),
            "maillog_file_prefixes": str(folder),
            "alias_maps": "",
            "alias_database": "",
            **main_cf,
        }
        (config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (config / "master.cf").write_text(_MASTER_CF.format(listen=f"{HOST}:{port}"))
        started = _postfix(config, "start")
        if started.returncode != 0:
            raise RuntimeError(f"Postfix did not start: {started.stdout.decode()}")
        server = PostfixServer(port, folder)
        try:
            deadline = time.monotonic() + 10.0
            while True:  # bounded: until smtpd's port takes connections
                try:
                    socket.create_connection((HOST, port), timeout=1.0).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield server
        finally:
            _postfix(config, "stop")
            _wait_for_master_to_end(data / "master.lock", folder / "queue" / "pid" / "master.pid")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_master_to_end(*pid_files: Path) -> None:
    for pid_file in pid_files:
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)  # another process's exit: polled, bounded
        os.kill(pid, 9)  # ours, started above: never left running
        return
