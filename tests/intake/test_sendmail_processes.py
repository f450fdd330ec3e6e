"""``outbox sendmail`` as a process among many: concurrency, and a light start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay.dropfolder import import_drop_folder
from relay.store.outbox import Outbox
from tests.intake.conftest import stored_messages

CONCURRENT = 40


def test_forty_sendmail_processes_started_at_once_all_land(home: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), "sendmail", "-t", "-i"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(CONCURRENT)
    ]
    # Every process is running before the first message is handed over.
    results = []
    for number, process in enumerate(processes):
        message = (
            f"From: a@example.org\nTo: b{number}@example.org\nSubject: message {number}\n\n"
            f"body {number}\n"
        ).encode()
        assert process.stdin is not None
        process.stdin.write(message)
        process.stdin.close()
    for process in processes:
        assert process.stdout is not None and process.stderr is not None
        out, err = process.stdout.read(), process.stderr.read()
        results.append((process.wait(timeout=120), out, err))
        process.stdout.close()
        process.stderr.close()
    # Each one either stored its message or, when the store stayed busy longer than
    # intake waits (a loaded machine), left it in the drop folder and said so: both
    # keep it, and the next flush takes the drop folder in.
    for code, out, err in results:
        assert (code, out) == (0, b"")
        assert err == b"" or err.startswith(b"outbox: the outbox store is busy"), err
    with Outbox.open(home) as outbox:
        import_drop_folder(outbox, home)
    stored = stored_messages(home)
    assert len(stored) == CONCURRENT
    assert len({message.id for message in stored}) == CONCURRENT
    assert sorted(message.subject for message in stored) == sorted(
        f"message {n}" for n in range(CONCURRENT)
    )
    for message in stored:
        number = message.subject.split()[1]
        assert message.recipients == (f"b{number}@example.org",)
        assert message.raw.endswith(f"body {number}\r\n".encode())


PROBE = """
import io, json, sys
from relay.cli import main
sys.stdin = io.TextIOWrapper(io.BytesIO(sys.argv[2].encode()))
code = main(["--home", sys.argv[1], "sendmail", *json.loads(sys.argv[3])])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

HEAVY = ("asyncio", "aiosmtplib", "PySide6", "qasync", "gui", "keyring", "ssl", "tomllib",
         # ~13 ms between them (typing with what it pulls in; dataclasses with inspect)
         "typing", "dataclasses", "inspect",
         # ~3 ms: only the keyring's home id needs a uuid (and uuid loads platform)
         "uuid", "platform")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "to", "email_needed"),
    [
        (["-f", "a@example.org", "b@example.org"], "b@example.org", False),
        (["-t"], "Bob Example <b@example.org>, c@example.org", False),
        (["-t"], '"Example, Bob" <b@example.org>', True),
    ],
    ids=["explicit envelope", "-t, everyday addresses", "-t, quoted display name"],
)
def test_sendmail_imports_nothing_heavy(
    home: Path, args: list[str], to: str, email_needed: bool
) -> None:
    message = f"From: Ann <a@example.org>\nTo: {to}\nSubject: s\n\nx\n"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(home), message, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["code"] == 0
    loaded = {name.split(".")[0] for name in report["modules"]}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    # The email package costs ~10 ms of start-up: only unusual address lists need it.
    assert ("email" in loaded) is email_needed
    assert len(stored_messages(home)) == 1


def test_cron_mail_with_local_names_stays_off_the_network_stack(home: Path) -> None:
    """A local sender or recipient reads config.toml (TOML, the accounts): that is all."""
    from tests.support.cli import outbox

    done = outbox(home, "account", "add", "main", "--host", "smtp.example.org",
                  "--address", "me@example.org")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert outbox(home, "alias", "set", "root", "admin@example.net").returncode == 0
    message = "From: root (Cron Daemon)\nTo: root\nSubject: s\n\nx\n"
    args = ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(home), message, json.dumps(args)],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["code"] == 0
    loaded = {name.split(".")[0] for name in report["modules"]}
    network = {"asyncio", "aiosmtplib", "PySide6", "qasync", "gui", "keyring", "ssl"}
    assert loaded.isdisjoint(network), sorted(loaded & network)
    (stored,) = stored_messages(home)
    assert stored.recipients == ("admin@example.net",)


DEFAULT_HOME_PROBE = """
import io, json, sys
from relay.cli import main
sys.stdin = io.TextIOWrapper(io.BytesIO(sys.argv[1].encode()))
code = main(["sendmail", "-t"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_sendmail_without_home_finds_the_default_home_without_platformdirs(
    tmp_path: Path,
) -> None:
    """What cron and mail clients run: no --home, no OUTBOX_HOME; ~10 ms of imports saved."""
    env = {k: v for k, v in os.environ.items() if k not in ("OUTBOX_HOME", "XDG_DATA_HOME")}
    env["HOME"] = str(tmp_path)
    message = "From: Ann <a@example.org>\nTo: b@example.org\nSubject: s\n\nx\n"
    done = subprocess.run(
        [sys.executable, "-c", DEFAULT_HOME_PROBE, message],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["code"] == 0
    assert "platformdirs" not in {name.split(".")[0] for name in report["modules"]}
    (stored,) = stored_messages(tmp_path / ".local" / "share" / "outbox")
    assert stored.recipients == ("b@example.org",)
