"""The drop folder: Maildir-style import, rejection with a reason, and files that are not files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from relay.dropfolder import (
    MAX_DROP_FILE_OCTETS,
    DropImport,
    Rejection,
    drop_file_identity,
    import_drop_folder,
)
from relay.home import ensure_home
from relay.message import parse_message
from relay.store.outbox import Outbox
from tests.intake.conftest import stored_messages


def message(number: int) -> bytes:
    return f"From: a@example.org\nTo: b@example.org\nSubject: drop {number}\n\nbody\n".encode()


def deliver(home: Path, name: str, data: bytes) -> Path:
    """What a well-behaved writer does: write into tmp/, rename into new/."""
    drop = home / "drop"
    for sub in ("tmp", "new"):
        (drop / sub).mkdir(parents=True, exist_ok=True)
    temporary = drop / "tmp" / name
    temporary.write_bytes(data)
    final = drop / "new" / name
    os.rename(temporary, final)
    return final


def run_import(home: Path) -> DropImport:
    ensure_home(home)
    with Outbox.open(home) as outbox:
        return import_drop_folder(outbox, home)


def test_the_folders_are_created_private(home: Path) -> None:
    result = run_import(home)
    assert result == DropImport((), ())
    for sub in ("", "tmp", "new", "rejected"):
        mode = (home / "drop" / sub).stat().st_mode
        assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700


def test_each_new_file_is_imported_in_name_order_and_then_removed(home: Path) -> None:
    deliver(home, "1700000002.M1P2.host", message(2))
    deliver(home, "1700000001.M1P1.host", message(1))
    (home / "drop" / "tmp" / "1700000003.being-written").write_bytes(b"From: half")
    result = run_import(home)
    stored = stored_messages(home)
    assert result == DropImport(tuple(m.id for m in stored), ())
    assert [m.subject for m in stored] == ["drop 1", "drop 2"]
    assert stored[0].raw.startswith(b"From: a@example.org\r\nTo: b@example.org\r\n")
    assert os.listdir(home / "drop" / "new") == []
    assert os.listdir(home / "drop" / "tmp") == ["1700000003.being-written"]
    assert run_import(home) == DropImport((), ())  # nothing is imported twice


def test_dot_files_are_left_alone(home: Path) -> None:
    deliver(home, ".hidden", message(1))
    assert run_import(home) == DropImport((), ())
    assert os.listdir(home / "drop" / "new") == [".hidden"]


def test_a_bad_file_is_moved_to_rejected_with_its_reason_beside_it(home: Path) -> None:
    deliver(home, "1.good", message(1))
    deliver(home, "2.bad", b"From: a@example.org\nSubject: nobody to send to\n\nx\n")
    deliver(home, "3.good", message(3))
    result = run_import(home)
    reason = "no recipient: no address in To, Cc or Bcc and none given"
    assert result.rejected == (Rejection("2.bad", reason),)
    assert [m.subject for m in stored_messages(home)] == ["drop 1", "drop 3"]
    rejected = home / "drop" / "rejected"
    assert sorted(os.listdir(rejected)) == ["2.bad", "2.bad.error"]
    assert (rejected / "2.bad").read_bytes().startswith(b"From: a@example.org\nSubject: nobody")
    assert (rejected / "2.bad.error").read_text() == reason + "\n"
    assert stat.S_IMODE((rejected / "2.bad.error").stat().st_mode) == 0o600
    assert os.listdir(home / "drop" / "new") == []


def test_a_scheduled_time_out_of_range_is_rejected_and_the_next_file_still_imported(
    home: Path,
) -> None:
    envelope = {"sender": "a@example.org", "recipients": ["b@example.org"], "account": None,
                "not_before": "9999-12-31T23:59:59-23:59"}  # fmt: skip
    line = b"X-Outbox-Envelope: " + json.dumps(envelope).encode() + b"\r\n"
    deliver(home, "1.far", line + message(1))
    deliver(home, "2.good", message(2))
    result = run_import(home)
    (rejection,) = result.rejected
    assert rejection.name == "1.far" and "out of the range of dates" in rejection.reason
    assert [m.subject for m in stored_messages(home)] == ["drop 2"]
    assert os.listdir(home / "drop" / "new") == []


def test_a_file_whose_name_is_not_utf8_is_imported_once_like_any_other(home: Path) -> None:
    deliver(home, os.fsdecode(b"1.\xff.latin1-host"), message(1))
    deliver(home, "2.good", message(2))
    result = run_import(home)
    assert result.rejected == () and len(result.imported) == 2
    assert [m.subject for m in stored_messages(home)] == ["drop 1", "drop 2"]
    assert os.listdir(home / "drop" / "new") == []
    assert run_import(home) == DropImport((), ())


def test_local_names_are_resolved_and_an_unresolvable_one_is_rejected_with_the_fix(
    home: Path,
) -> None:
    from relay.accounts import Account, save_accounts
    from relay.aliases import set_alias

    ensure_home(home)
    save_accounts(home, [Account(name="main", host="smtp.example.org", port=587,
                                 default=True, address="me@example.org")])  # fmt: skip
    set_alias(home, "root", ["admin@example.net"])
    deliver(home, "1.cron", b"From: root (Cron Daemon)\nTo: root\nSubject: job\n\nx\n")
    deliver(home, "2.ops", b"From: root\nTo: ops\nSubject: ops\n\nx\n")
    result = run_import(home)
    (stored,) = stored_messages(home)
    assert (stored.sender, stored.recipients) == ("me@example.org", ("admin@example.net",))
    assert stored.raw.startswith(b"From: Cron Daemon <me@example.org>\r\nTo: root\r\n")
    (rejection,) = result.rejected
    assert rejection.name == "2.ops" and "outbox alias set ops ADDR" in rejection.reason


def test_a_rejected_name_never_overwrites_an_earlier_rejection(home: Path) -> None:
    deliver(home, "same", b"not a message\n")
    run_import(home)
    deliver(home, "same", b"\x00\x01\x02")
    result = run_import(home)
    assert result.rejected == (
        Rejection("same.1", "not an e-mail message: line 1 is not a header field"),
    )
    rejected = home / "drop" / "rejected"
    assert sorted(os.listdir(rejected)) == ["same", "same.1", "same.1.error", "same.error"]
    assert (rejected / "same").read_bytes() == b"not a message\n"
    assert (rejected / "same.1").read_bytes() == b"\x00\x01\x02"


def test_a_symbolic_link_is_rejected_and_never_followed(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.eml"
    secret.write_bytes(message(1))
    run_import(home)
    link = home / "drop" / "new" / "link"
    link.symlink_to(secret)
    result = run_import(home)
    assert result == DropImport((), (Rejection("link", "a symbolic link, not a message file"),))
    assert stored_messages(home) == []
    moved = home / "drop" / "rejected" / "link"
    assert moved.is_symlink() and os.readlink(moved) == str(secret)
    assert secret.read_bytes() == message(1)


@pytest.mark.timeout(20)
def test_a_fifo_is_rejected_without_blocking(home: Path) -> None:
    run_import(home)
    os.mkfifo(home / "drop" / "new" / "pipe")
    deliver(home, "z.good", message(1))
    result = run_import(home)  # opening the FIFO for reading would block forever
    assert result.rejected == (Rejection("pipe", "not a regular file"),)
    assert len(result.imported) == 1
    assert stat.S_ISFIFO(os.lstat(home / "drop" / "rejected" / "pipe").st_mode)


def test_a_directory_in_new_is_rejected(home: Path) -> None:
    run_import(home)
    (home / "drop" / "new" / "subdir").mkdir()
    assert run_import(home).rejected == (Rejection("subdir", "not a regular file"),)


@pytest.mark.timeout(20)
def test_an_oversized_file_is_rejected_unread(home: Path) -> None:
    run_import(home)
    big = home / "drop" / "new" / "big"
    with big.open("wb") as stream:  # sparse: costs no disk, and no time unless read
        stream.truncate(MAX_DROP_FILE_OCTETS + 1)
    exact = deliver(home, "exact", message(1))
    with exact.open("ab") as stream:
        stream.write(b"x" * 10 + b"\n")
    result = run_import(home)
    assert result.rejected == (Rejection("big", "larger than 64 MiB"),)
    assert len(result.imported) == 1


def test_a_file_stays_in_new_when_its_message_cannot_be_committed(home: Path) -> None:
    path = deliver(home, "keep-me", message(1))
    ensure_home(home)
    outbox = Outbox.open(home)
    outbox.close()  # the store fails every write from now on
    with pytest.raises(Exception):  # noqa: B017 - whatever sqlite3 raises for a closed store
        import_drop_folder(outbox, home)
    assert path.read_bytes() == message(1)
    assert stored_messages(home) == []


IMPORTER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from relay.dropfolder import import_drop_folder
    from relay.store.outbox import Outbox
    home = Path(sys.argv[1])
    sys.stdin.read()  # wait for the go
    with Outbox.open(home) as outbox:
        print(json.dumps(list(import_drop_folder(outbox, home).imported)))
    """
)


def test_importers_running_at_once_never_take_the_same_file_twice(home: Path) -> None:
    run_import(home)
    for number in range(60):
        deliver(home, f"{number:03d}", message(number))
    importers = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORTER, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for importer in importers:  # all started; now let them race
        assert importer.stdin is not None
        importer.stdin.close()
    imported: list[int] = []
    for importer in importers:
        assert importer.stdout is not None
        out = importer.stdout.read()
        importer.stdout.close()
        assert importer.wait(timeout=120) == 0
        imported.extend(json.loads(out))
    stored = stored_messages(home)
    assert sorted(imported) == [m.id for m in stored]
    assert sorted(m.subject for m in stored) == sorted(f"drop {n}" for n in range(60))
    assert os.listdir(home / "drop" / "new") == []


def test_a_file_committed_but_not_removed_before_a_crash_is_not_stored_twice(home: Path) -> None:
    """What a crash between the commit and the unlink leaves: the message and its record."""
    path = deliver(home, "1700000010.M1P1.host", message(10))
    later = deliver(home, "1700000011.M1P1.host", message(11))
    ensure_home(home)
    with Outbox.open(home) as outbox:
        outbox.add_message(parse_message(path.read_bytes()), drop_file=drop_file_identity(path))
    result = run_import(home)
    assert [m.subject for m in stored_messages(home)] == ["drop 10", "drop 11"]
    assert len(result.imported) == 1  # only the later file was new
    assert not path.exists() and not later.exists()
    with Outbox.open(home) as outbox:
        assert outbox.stored_drop_files() == set()  # nothing left to remember


def test_a_new_file_under_a_reused_name_is_imported(home: Path) -> None:
    """The record names the file (inode, size, time), not just its name."""
    path = deliver(home, "reused.msg", message(20))
    ensure_home(home)
    with Outbox.open(home) as outbox:
        outbox.add_message(parse_message(path.read_bytes()), drop_file=drop_file_identity(path))
    os.unlink(path)  # the crash's file went away by other means...
    deliver(home, "reused.msg", message(21) + b"a longer body\n")  # ...and a new one came
    run_import(home)
    assert [m.subject for m in stored_messages(home)] == ["drop 20", "drop 21"]
