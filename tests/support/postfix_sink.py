"""Postfix's ``smtp-sink`` as a real PIPELINING server for tests (Debian package ``postfix``).

``smtp-sink`` offers PIPELINING, takes any number of recipients and, with
``-d``, writes every transaction it received to a file of its own whose
``X-Mail-Args``/``X-Rcpt-Args`` lines give the envelope. ``postfix_sink()``
starts one on a free loopback port (dropping privileges to ``nobody`` when run
as root, as it requires) and stops it, waiting for the process, when the
block ends. ``received()`` reads back what it took.

Without the program the test is skipped with the reason, except under
``CI=true``, where ``.ci/run`` installs it and its absence is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.accounts import Account, Security

SMTP_SINK = Path("/usr/sbin/smtp-sink")
HOST = "127.0.0.1"


@dataclass(frozen=True)
class SinkMessage:
    """One transaction as smtp-sink wrote it down."""

    mail_from: str
    rcpt_tos: list[str]
    text: str

    def arguments(self) -> dict[str, list[str]]:
        """Its ``X-*`` lines by name, each value whole: the address with the ESMTP
        parameters that came with it (``X-Mail-Args: <a@b> RET=HDRS``)."""
        found: dict[str, list[str]] = {}
        for line in self.text.split("\n\n", 1)[0].splitlines():
            if not line.startswith("X-"):
                break
            name, _, value = line.partition(": ")
            found.setdefault(name, []).append(value.strip())
        return found


@dataclass(frozen=True)
class PostfixSink:
    port: int
    folder: Path

    def account(self, **changes: object) -> Account:
        from dataclasses import replace

        base = Account(
            name="sink",
            host=HOST,
            port=self.port,
            security=Security.NONE,
            connect_timeout_s=10.0,
            command_timeout_s=10.0,
            data_timeout_s=10.0,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def received(self) -> list[SinkMessage]:
        """What smtp-sink took, in no particular order (its file names are random)."""
        messages = []
        for path in sorted(self.folder.glob("m.*")):
            text = path.read_text(errors="replace")
            head = text.split("\n\n", 1)[0].splitlines()
            mail = next(line for line in head if line.startswith("X-Mail-Args: "))
            rcpts = [line for line in head if line.startswith("X-Rcpt-Args: ")]
            messages.append(
                SinkMessage(
                    mail.removeprefix("X-Mail-Args: ").split(" ")[0].strip("<>"),
                    [
                        line.removeprefix("X-Rcpt-Args: ").split(" ")[0].strip("<>")
                        for line in rcpts
                    ],
                    text,
                )
            )
        return messages


def require_smtp_sink() -> None:
    if SMTP_SINK.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{SMTP_SINK} is missing; .ci/run installs Debian's postfix package")
    pytest.skip(f"{SMTP_SINK} (Debian package postfix) is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def postfix_sink(*options: str) -> Iterator[PostfixSink]:
    """smtp-sink on 127.0.0.1, writing each transaction to a folder of its own; stopped,
    and the folder removed, at the end."""
    require_smtp_sink()
    # Written by the user smtp-sink runs as: a folder that user can reach (not pytest's).
    with tempfile.TemporaryDirectory(prefix="outbox-sink-") as name:
        folder = Path(name)
        folder.chmod(0o777)
        with _running(folder, options) as sink:
            yield sink


@contextmanager
def _running(folder: Path, options: Sequence[str]) -> Iterator[PostfixSink]:
    port = _free_port()
    privileges = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [str(SMTP_SINK), *privileges, "-d", f"{folder}/m.", *options, f"{HOST}:{port}", "64"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10.0
        while True:  # bounded: until it listens, it exits, or 10 s pass
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"smtp-sink did not start: {error}")
            try:
                socket.create_connection((HOST, port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling a process we do not control: no event to wait on
        yield PostfixSink(port, folder)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
