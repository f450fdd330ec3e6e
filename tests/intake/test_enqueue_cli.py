"""``outbox enqueue FILE…`` run as a person runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.intake.conftest import stored_messages
from tests.support.cli import outbox

GOOD = b"From: Ann <ann@example.org>\nTo: bob@example.org\nSubject: %d\n\nHello %d\n"


def good(number: int) -> bytes:
    return GOOD % (number, number)


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def ids(done: subprocess.CompletedProcess[bytes]) -> list[int]:
    return [int(line) for line in done.stdout.decode().splitlines()]


def test_enqueue_stores_each_file_and_prints_its_id(home: Path, tmp_path: Path) -> None:
    a = write(tmp_path, "a.eml", good(1))
    b = write(tmp_path, "b.eml", good(2))
    done = outbox(home, "enqueue", str(a), str(b))
    assert (done.returncode, done.stderr) == (0, b"")
    stored = stored_messages(home)
    assert ids(done) == [message.id for message in stored]
    assert [message.subject for message in stored] == ["1", "2"]
    assert stored[0].sender == "ann@example.org"
    assert stored[0].recipients == ("bob@example.org",)
    assert stored[0].raw.startswith(b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n")
    assert stored[0].raw.endswith(b"\r\n\r\nHello 1\r\n")


def test_show_raw_prints_exactly_the_normalised_message(home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "m.eml", b"From: a@example.org\rTo: b@example.org\r\n\nline\rend")
    done = outbox(home, "enqueue", str(path))
    shown = outbox(home, "show", str(ids(done)[0]), "--raw")
    assert shown.returncode == 0, shown.stderr
    (message,) = stored_messages(home)
    assert shown.stdout == message.raw
    assert shown.stdout.startswith(b"From: a@example.org\r\nTo: b@example.org\r\nDate: ")
    assert shown.stdout.endswith(b"\r\n\r\nline\r\nend\r\n")


def test_a_bad_file_in_a_batch_is_named_and_the_others_are_stored(
    home: Path, tmp_path: Path
) -> None:
    a = write(tmp_path, "a.eml", good(1))
    b = write(tmp_path, "b.eml", b"From: ann@example.org\nTo: bob@example.org, Eve <eve@>\n\nx\n")
    c = write(tmp_path, "c.eml", good(3))
    done = outbox(home, "enqueue", str(a), str(b), str(c))
    assert done.returncode == 65
    assert done.stderr.decode() == (
        f'outbox: {b}: bad address list "bob@example.org, Eve <eve@>" in To (line 2):'
        " invalid address in address-list\n"
    )
    assert done.stderr.count(b"\n") == 1
    stored = stored_messages(home)
    assert [message.subject for message in stored] == ["1", "3"]
    assert ids(done) == [message.id for message in stored]


def test_enqueue_dash_reads_standard_input(home: Path) -> None:
    done = outbox(home, "enqueue", "-", input=good(7))
    assert (done.returncode, done.stderr) == (0, b"")
    (message,) = stored_messages(home)
    assert ids(done) == [message.id]
    assert message.subject == "7"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty message"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "not an e-mail message: line 1 is not a header field",
        ),
        (
            b"To: bob@example.org\n\nx\n",
            "the message names no sender (or only a local name) and there is no account:"
            " add one with 'outbox account add NAME --host HOST --address ADDR'",
        ),
        (
            b"From: ann@example.org\n\nx\n",
            "no recipient: no address in To, Cc or Bcc and none given",
        ),
        (
            b"From: ann@example.org\nTo: bob@example.org\n\n" + b"x" * 1000 + b"\n",
            "line 4 is longer than 998 octets (1000)",
        ),
        (
            b'From: ann@example.org\nTo: "bob\\"\x01"@example.org\n\nx\n',
            'bad address list "\\"bob\\\\\\"\\x01\\"@example.org" in To (line 2):'
            " contains a control character",
        ),
    ],
)
def test_each_kind_of_bad_file_gets_one_clear_line_and_exit_65(
    home: Path, tmp_path: Path, data: bytes, reason: str
) -> None:
    path = write(tmp_path, "bad.eml", data)
    done = outbox(home, "enqueue", str(path))
    assert done.returncode == 65
    assert done.stderr.decode() == f"outbox: {path}: {reason}\n"
    assert done.stdout == b""
    assert stored_messages(home) == []


def test_unreadable_files_are_named_and_exit_65(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.eml"
    a = write(tmp_path, "a.eml", good(1))
    done = outbox(home, "enqueue", str(missing), str(tmp_path), str(a))
    assert done.returncode == 65
    assert done.stderr.decode().splitlines() == [
        f"outbox: {missing}: cannot read: No such file or directory",
        f"outbox: {tmp_path}: cannot read: Is a directory",
    ]
    assert [message.subject for message in stored_messages(home)] == ["1"]


def test_an_endless_stream_is_refused_without_eating_the_memory(home: Path) -> None:
    done = outbox(home, "enqueue", "/dev/zero")
    assert done.returncode == 65
    assert done.stderr.decode() == "outbox: /dev/zero: message larger than 64 MiB\n"
    assert stored_messages(home) == []


def test_an_unknown_account_is_refused_before_anything_is_stored(
    home: Path, tmp_path: Path
) -> None:
    a = write(tmp_path, "a.eml", good(1))
    done = outbox(home, "enqueue", "--account", "nosuch", str(a))
    assert done.returncode == 78
    assert b"no account 'nosuch'" in done.stderr
    assert stored_messages(home) == []


def test_a_known_account_is_recorded_with_the_message(home: Path, tmp_path: Path) -> None:
    added = outbox(home, "account", "add", "work", "--host", "127.0.0.1", "--security", "none")
    assert added.returncode == 0, added.stderr
    a = write(tmp_path, "a.eml", good(1))
    done = outbox(home, "enqueue", "--account", "work", str(a))
    assert (done.returncode, done.stderr) == (0, b"")
    (message,) = stored_messages(home)
    assert message.account == "work"
