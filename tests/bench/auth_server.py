"""Figure 8's server: aiosmtpd on 127.0.0.1 with STARTTLS, AUTH PLAIN/LOGIN and PIPELINING.

Run by ``tests/bench/network.py`` as a process of its own (``python -m
tests.bench.auth_server DIR``), pinned to the server's core, so that its
CPU and its event loop are not the measured clients' nor the proxy's. It is
``tests.support.smtp_servers``'s threaded server (trustme certificates for
127.0.0.1, the test user and password) with two changes for a benchmark:

- its EHLO offers PIPELINING (RFC 2920). aiosmtpd reads commands one after
  the other from its stream, so a pipelined group is answered in order; it
  only never says so, and a real provider's server does;
- it keeps no message, only their number and size (a run sends 600 of 20 KB).

It writes its CA certificate to ``DIR/ca.pem``, then prints its port on a
line. On a line ``count`` from standard input it prints how many messages it
accepted so far and their bytes. It stops when its standard input ends (the
bench closed it, or died) or after ``LIFETIME_S``, whichever comes first.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay.accounts import Security
from tests.support.smtp_servers import RecordingHandler, TestCertificates, threaded_smtp_server

#: The test user's password (``tests.support.smtp_servers.USER`` signs in with it).
PASSWORD = "bench-password"
#: The longest a bench run may keep it: well over figure 8's three clients at 200 messages.
LIFETIME_S = 900.0


@dataclass
class CountingHandler(RecordingHandler):
    """Counts what it accepts instead of keeping it; offers PIPELINING after EHLO."""

    messages: int = 0
    message_bytes: int = 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        *head, last = responses
        return [*head, "250-PIPELINING", last]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        self.messages += 1
        self.message_bytes += len(content)
        return self.reply


def serve(directory: Path) -> None:
    certificates = TestCertificates.create(directory)
    (directory / "ca.pem").write_bytes(certificates.ca_file.read_bytes())
    handler = CountingHandler()
    with threaded_smtp_server(
        security=Security.STARTTLS,
        tls=certificates,
        password=PASSWORD,
        mechanisms=("PLAIN", "LOGIN"),
        handler=handler,
    ) as server:
        print(server.port, flush=True)
        for line in _lines(sys.stdin.fileno(), LIFETIME_S):
            if line.strip() == b"count":
                print(handler.messages, handler.message_bytes, flush=True)


def _lines(fd: int, lifetime_s: float) -> Iterator[bytes]:
    """Lines read from ``fd`` until it ends or ``lifetime_s`` has passed."""
    deadline = time.monotonic() + lifetime_s
    pending = b""
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return
        data = os.read(fd, 4096)
        if not data:
            return
        pending += data
        *complete, pending = pending.split(b"\n")
        yield from complete


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
