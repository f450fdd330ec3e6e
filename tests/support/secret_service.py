"""A real Secret Service for a test: gnome-keyring on a private D-Bus session.

``running_secret_service()`` starts, under its own control and nobody
else's:

1. ``dbus-daemon`` in the foreground on a socket in a fresh directory, with a
   bus configuration of our own that has no service directories, so nothing
   can be D-Bus-activated behind our back (the system's session config would
   start a second gnome-keyring on the first request for
   ``org.freedesktop.secrets``, one that outlives the test);
2. ``gnome-keyring-daemon --unlock --components=secrets --foreground`` with
   fresh ``HOME``, ``XDG_DATA_HOME`` and ``XDG_RUNTIME_DIR``, the login
   keyring's password fed on standard input (without ``--unlock`` every
   write ends in "Prompt dismissed");

then waits, without sleeping, until ``org.freedesktop.secrets`` has an owner
on that bus (a D-Bus ``NameOwnerChanged`` signal), and on the way out stops
both processes and removes the directory. The user's own keyring and session
bus are never touched.

``missing_programs()`` names what is not installed; ``.ci/run``
installs it on Debian.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = ("dbus-daemon", "gnome-keyring-daemon")
SECRETS_NAME = "org.freedesktop.secrets"
BACKEND = "keyring.backends.SecretService.Keyring"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass(frozen=True)
class SecretService:
    """A running private Secret Service and the environment that reaches it."""

    bus_address: str
    env: dict[str, str]  # add to a subprocess's environment (or monkeypatch.setenv)


def missing_programs() -> list[str]:
    return [program for program in PROGRAMS if shutil.which(program) is None]


@contextlib.contextmanager
def running_secret_service(*, timeout_s: float = 30.0) -> Iterator[SecretService]:
    # A short path of its own: a unix socket's path must fit in 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="outbox-ss-"))
    started: list[subprocess.Popen[bytes]] = []
    try:
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        (base / "data").mkdir()
        config = base / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=base / "bus"), "utf-8")

        with (base / "dbus.log").open("wb") as log:
            bus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        started.append(bus)
        assert bus.stdout is not None
        # The daemon prints its address once it listens (or exits on failure).
        address = bus.stdout.readline().decode().strip()
        if not address:
            raise RuntimeError(f"dbus-daemon did not start: {_log(base / 'dbus.log')}")

        env = {
            "DBUS_SESSION_BUS_ADDRESS": address,
            "XDG_RUNTIME_DIR": str(runtime),
        }
        daemon_env = {
            **os.environ,
            **env,
            "HOME": str(base),
            "XDG_DATA_HOME": str(base / "data"),
            "XDG_CONFIG_HOME": str(base / "config"),
        }
        with (base / "keyring.log").open("wb") as log:
            daemon = subprocess.Popen(
                ["gnome-keyring-daemon", "--unlock", "--components=secrets", "--foreground"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=daemon_env,
            )
        started.append(daemon)
        assert daemon.stdin is not None
        daemon.stdin.write(b"login keyring password for a test")
        daemon.stdin.close()
        try:
            _wait_for_owner(address, SECRETS_NAME, timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"gnome-keyring-daemon did not take {SECRETS_NAME} within {timeout_s} s:"
                f" {_log(base / 'keyring.log')}"
            ) from None
        yield SecretService(bus_address=address, env={**env, "PYTHON_KEYRING_BACKEND": BACKEND})
    finally:
        for process in reversed(started):
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_owner(address: str, name: str, timeout_s: float) -> None:
    """Return once ``name`` has an owner on the bus at ``address``: a signal, not a poll."""
    from jeepney.bus_messages import MatchRule, message_bus
    from jeepney.io.blocking import open_dbus_connection

    rule = MatchRule(
        type="signal",
        sender="org.freedesktop.DBus",
        interface="org.freedesktop.DBus",
        member="NameOwnerChanged",
        path="/org/freedesktop/DBus",
    )
    rule.add_arg_condition(0, name)
    with open_dbus_connection(bus=address) as connection, connection.filter(rule) as queue:
        connection.send_and_get_reply(message_bus.AddMatch(rule), timeout=timeout_s)
        # Subscribed first, asked second: an owner arriving in between is not missed.
        reply = connection.send_and_get_reply(message_bus.NameHasOwner(name), timeout=timeout_s)
        has_owner = bool(reply.body[0])
        while not has_owner:
            signal = connection.recv_until_filtered(queue, timeout=timeout_s)
            _name, _old_owner, new_owner = signal.body
            has_owner = bool(new_owner)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _log(path: Path) -> str:
    try:
        return " ".join(path.read_text("utf-8", "replace").split())[-500:] or "(no output)"
    except OSError:
        return "(no log)"
