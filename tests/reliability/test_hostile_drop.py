"""Hostile drop-folder entries through ``outbox flush`` (which imports the folder first).

tests/intake/test_dropfolder.py covers each kind on its own, in process
(symbolic link, FIFO, directory, oversized file, a store that cannot commit,
importers racing). Here they arrive together with a good message, through the
command line, plus what that file does not try: a link to a FIFO, a link to
a directory, a socket, a link to an endless device, and names made of
terminal escape sequences. The flush must finish promptly, import the good
message, refuse each of the others (moved to ``rejected/`` with a reason),
leave every link target untouched, and print nothing a terminal would obey.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from relay.dropfolder import MAX_DROP_FILE_OCTETS
from tests.reliability.conftest import note, record_figures
from tests.support.cli import listed, outbox


@pytest.mark.timeout(30)
def test_links_pipes_sockets_giants_and_escape_names_are_refused_without_blocking(
    home: Path, tmp_path: Path
) -> None:
    assert outbox(home, "list").returncode == 0
    new = home / "drop" / "new"
    for sub in ("tmp", "new"):
        (home / "drop" / sub).mkdir(parents=True, mode=0o700, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    target_file = outside / "private.eml"
    target_file.write_bytes(note(1, tag="private"))
    os.mkfifo(outside / "fifo")
    os.mkfifo(new / "a-fifo")
    (new / "b-link-to-file").symlink_to(target_file)
    (new / "c-link-to-fifo").symlink_to(outside / "fifo")
    (new / "d-link-to-dir").symlink_to(outside)
    (new / "e-link-to-zero").symlink_to("/dev/zero")
    (new / "f-dangling").symlink_to(outside / "nothing-here")
    (new / "g-directory").mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(new / "h-socket"))
    with (new / "i-giant").open("wb") as stream:  # sparse: costs nothing unless read
        stream.truncate(MAX_DROP_FILE_OCTETS + 1)
    escape_name = "j-\x1b]0;pwned\x07\x1b[2J-name"
    (new / escape_name).write_bytes(b"\x1b[31m not a message \x00\n")
    (new / "k-empty").write_bytes(b"")
    (new / "z-good.msg").write_bytes(note(2, tag="good"))
    hostile = sorted(name for name in os.listdir(new) if name != "z-good.msg")

    try:
        done = outbox(home, "flush", timeout=25)
    finally:
        listener.close()
    err = done.stderr.decode()
    assert "no account configured" in err  # it got past the import
    assert "\x1b" not in err and "\x07" not in err and "\x00" not in err
    assert [m["subject"] for m in listed(home)] == ["good 2"]
    assert os.listdir(new) == []
    rejected = home / "drop" / "rejected"
    for name in hostile:
        assert os.path.lexists(rejected / name), name
        reason = (rejected / f"{name}.error").read_text("utf-8").strip()
        assert reason, name
    assert "symbolic link" in (rejected / "c-link-to-fifo.error").read_text("utf-8")
    assert "not a regular file" in (rejected / "a-fifo.error").read_text("utf-8")
    assert "larger than" in (rejected / "i-giant.error").read_text("utf-8")
    # Links were moved, never followed: the targets are as they were.
    assert target_file.read_bytes() == note(1, tag="private")
    assert stat.S_ISFIFO(os.lstat(outside / "fifo").st_mode)
    assert os.readlink(rejected / "b-link-to-file") == str(target_file)
    record_figures("test_hostile_drop", hostile_entries=len(hostile))
