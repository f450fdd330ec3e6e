"""``list``, ``show`` and ``flush`` show a bidi override as ``\\u202e``; ``--json`` keeps it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import outbox
from tests.support.fault_server import threaded_fault_server

SUBJECT = "invoice abc\u202egnp.exe and a\u200bzero-width space"
SHOWN = "invoice abc\\u202egnp.exe and a\\u200bzero-width space"
REPLY = "550 5.1.1 no such user \u2067here\u2069"
REPLY_SHOWN = "550 5.1.1 no such user \\u2067here\\u2069"


def test_bidi_and_zero_width_characters_are_escaped_on_screen_and_real_in_json(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    raw = (
        f"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: {SUBJECT}\r\n\r\nhi\r\n"
    ).encode()
    assert outbox(home, "enqueue", "-", input=raw).returncode == 0
    with threaded_fault_server(rcpt_default=REPLY) as server:
        added = outbox(
            home, "account", "add", "test", "--host", "127.0.0.1", "--port", str(server.port),
            "--security", "none", "--connect-timeout", "3", "--command-timeout", "3",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        flushed = outbox(home, "flush")
    assert flushed.returncode == 1
    assert REPLY_SHOWN in flushed.stderr.decode()

    listing = outbox(home, "list").stdout.decode()
    shown = outbox(home, "show", "1").stdout.decode()
    as_json = json.loads(outbox(home, "list", "--json").stdout)
    show_json = json.loads(outbox(home, "show", "1", "--json").stdout)

    for text in (listing, shown, flushed.stderr.decode()):
        assert "\u202e" not in text and "\u200b" not in text and "\u2067" not in text
    assert SHOWN[:39] in listing  # the list clips the subject column
    assert f"subject:    {SHOWN}" in shown
    assert REPLY_SHOWN in shown
    assert as_json[0]["subject"] == SUBJECT
    # A server's reply is made printable as it is recorded (relay.smtp.transcript), JSON included.
    assert show_json["recipients"][0]["reply"] == REPLY_SHOWN
