"""Figure 8's aiosmtplib peer: ``send_message`` in a loop over one connection.

What a script using aiosmtplib the way its documentation shows does:
one ``SMTP`` with STARTTLS and a user name and password, then
``send_message`` once per message. aiosmtplib has no PIPELINING, so every
message costs MAIL, RCPT, DATA and its data, each a round trip. Run as
``python -m tests.bench.send_loop PORT CA_FILE USER PASSWORD COUNT SIZE``; it
exits 1 unless every message was accepted.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import sys
from collections.abc import Sequence

import aiosmtplib

from tests.bench.floor import RECIPIENT, SENDER, message_bytes

#: Far more than 200 messages at four round trips of 50 ms each need.
TIMEOUT_S = 300.0


async def send_all(port: int, ca_file: str, user: str, password: str, count: int, size: int) -> int:
    messages = [
        email.message_from_bytes(message_bytes(index, size), policy=email.policy.SMTP)
        for index in range(count)
    ]
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        start_tls=True,
        tls_context=ssl.create_default_context(cafile=ca_file),
        username=user,
        password=password,
        timeout=30,
    )
    refused = 0
    async with client:
        for message in messages:
            errors, _ = await client.send_message(message, sender=SENDER, recipients=[RECIPIENT])
            refused += len(errors)
    return refused


def main(argv: Sequence[str]) -> int:
    port, ca_file, user, password, count, size = argv
    refused = asyncio.run(
        asyncio.wait_for(
            send_all(int(port), ca_file, user, password, int(count), int(size)), TIMEOUT_S
        )
    )
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
