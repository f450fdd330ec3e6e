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


def test_an_output_that_is_not_utf_8_gets_escapes_not_a_traceback(tmp_path: Path) -> None:
    """A locale that is not UTF-8 (here ``PYTHONIOENCODING=ascii``, like ISO-8859-1 for Chinese)."""
    home = tmp_path / "home"
    subject = "café 中文"
    raw = f"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\r\nhi\r\n"
    assert outbox(home, "enqueue", "-", input=raw.encode()).returncode == 0
    assert outbox(home, "alias", "set", "root", "bob@example.org").returncode == 0
    ascii_only = {"PYTHONIOENCODING": "ascii"}
    for command in (("list",), ("show", "1"), ("list", "--json"), ("alias", "list", "--json")):
        done = outbox(home, *command, env=ascii_only)
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()
        done.stdout.decode("ascii")
    listing = outbox(home, "list", env=ascii_only).stdout.decode()
    assert "caf\\xe9 \\u4e2d\\u6587" in listing
    (item,) = json.loads(outbox(home, "list", "--json", env=ascii_only).stdout)
    assert item["subject"] == subject  # JSON's own escapes: the text is whole
