"""Hostile servers through ``outbox flush``: it ends within its timeouts, in bounded
memory, defers what the hostile server held with an error naming the problem,
and delivers everything else.

One flush, many accounts: each hostile server gets an account of its own (chosen
by the sender's domain), and a healthy aiosmtpd gets one more. They all run
in the same flush process, so "other messages are unaffected" is checked
where it matters: next to the hostile sessions. Endless replies are truly
endless here (``hostile_server`` streams until the client hangs up).

Already covered at the relayer level, and not repeated: a bounded 10 MB EHLO
reply and a 1 MB reply in a transaction (tests/relayer/test_session.py,
test_transactions.py), a non-SMTP line quoted, a stray reply, drops in and
after the data, a slow reply timing out.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.reliability.conftest import add_account, note, record_figures
from tests.reliability.hostile_server import (
    Behaviour,
    endless_line,
    endless_multiline,
    garbage,
    one_byte_at_a_time,
    threaded_hostile_server,
)
from tests.support.cli import listed, outbox
from tests.support.fault_server import SILENCE, threaded_fault_server
from tests.support.smtp_servers import threaded_smtp_server

TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Case:
    name: str
    server: Any  # a context manager yielding something with .port
    expected: tuple[str, ...]  # words the deferral's error must hold (any one of them)


def cases() -> list[Case]:
    slow = 0.25  # one byte every quarter second: a whole reply takes many timeouts
    h = threaded_hostile_server
    return [
        Case(
            "endless line as greeting",
            h(Behaviour("greeting", endless_line)),
            ("too long", "longer than"),
        ),
        Case(
            "endless line after EHLO",
            h(Behaviour("ehlo", endless_line)),
            ("too long", "longer than"),
        ),
        Case(
            "endless line after MAIL",
            h(Behaviour("mail", endless_line)),
            ("too long", "longer than"),
        ),
        Case(
            "endless multi-line greeting",
            h(Behaviour("greeting", endless_multiline)),
            ("too long", "longer than"),
        ),
        Case(
            "endless multi-line after EHLO",
            h(Behaviour("ehlo", endless_multiline)),
            ("too long", "longer than"),
        ),
        Case(
            "endless multi-line after MAIL",
            h(Behaviour("mail", endless_multiline)),
            ("too long", "longer than"),
        ),
        Case("garbage as greeting", h(Behaviour("greeting", garbage)), ("not SMTP", "not an SMTP")),
        Case("garbage after MAIL", h(Behaviour("mail", garbage)), ("not SMTP", "not an SMTP")),
        Case(
            "one byte at a time as greeting",
            h(Behaviour("greeting", one_byte_at_a_time(b"220 slow.test\r\n"), slow)),
            ("did not greet within",),
        ),
        Case(
            "one byte at a time after EHLO",
            h(Behaviour("ehlo", one_byte_at_a_time(b"250 slow.test\r\n"), slow)),
            ("did not reply to EHLO within",),
        ),
        Case(
            "one byte at a time after MAIL",
            h(Behaviour("mail", one_byte_at_a_time(b"250 2.1.0 OK\r\n"), slow)),
            ("did not reply to MAIL",),
        ),
        Case("never greets", threaded_fault_server(greeting=SILENCE), ("did not greet within",)),
        Case(
            "250 to DATA before the data",
            threaded_fault_server(data="250 2.0.0 thanks, I have it"),
            ("answered DATA with 250 2.0.0 thanks, I have it",),
        ),
        Case(
            "250 to DATA before the data, pipelining",
            threaded_fault_server(
                data="250 2.0.0 thanks, I have it",
                extensions=("PIPELINING", "8BITMIME", "SIZE 1000000"),
            ),
            ("answered DATA with 250 2.0.0 thanks, I have it",),
        ),
    ]


def domain(index: int) -> str:
    return f"case{index}.example"


def run_flush(home: Path) -> tuple[int, float, int, str]:
    """``outbox flush`` as a process: exit code, seconds, peak RSS (KiB), stderr.

    The peak is the process's own high-water mark (``VmHWM``), read while it
    runs: ``wait4``'s ``ru_maxrss`` would also count what the forked child
    shared with this (large) test process before its exec.
    """
    started = time.monotonic()
    err_path = home.parent / "flush.stderr"
    peak_kib = 0
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "--home", str(home), "flush"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        status = Path(f"/proc/{proc.pid}/status")
        while True:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kib = max(peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=0.02)
                break
            except subprocess.TimeoutExpired:
                continue
    return (proc.returncode, time.monotonic() - started, peak_kib, err_path.read_text("utf-8"))


def test_hostile_servers_are_cut_off_in_time_and_the_healthy_account_still_delivers(
    home: Path, tmp_path: Path
) -> None:
    all_cases = cases()
    with ExitStack() as stack:
        healthy = stack.enter_context(threaded_smtp_server())
        add_account(
            home, healthy.port, "--from", "*@healthy.example", name="healthy", timeout=TIMEOUT_S
        )
        servers = []
        for index, case in enumerate(all_cases):
            server = stack.enter_context(case.server)
            servers.append(server)
            add_account(
                home,
                server.port,
                "--from",
                f"*@{domain(index)}",
                name=f"hostile{index}",
                timeout=TIMEOUT_S,
            )
        files = []
        for index in range(len(all_cases)):
            path = tmp_path / f"h{index}.eml"
            path.write_bytes(note(index, tag="hostile", sender=f"ann@{domain(index)}"))
            files.append(str(path))
        for n in range(3):
            path = tmp_path / f"ok{n}.eml"
            path.write_bytes(note(n, tag="healthy", sender="ann@healthy.example"))
            files.append(str(path))
        done = outbox(home, "enqueue", *files)
        assert done.returncode == 0, done.stderr.decode()

        code, seconds, peak_kib, stderr = run_flush(home)
        pushed = {
            case.name: getattr(s, "sent_bytes", 0)
            for case, s in zip(all_cases, servers, strict=True)
        }

    assert code == 75, stderr
    # Every hostile session ends on a timeout or a limit: all run at once, so the flush
    # as a whole takes a few timeouts, not one per hostile server and not forever.
    assert seconds < 8 * TIMEOUT_S + 4, seconds
    assert 0 < peak_kib < 150 * 1024, f"peak RSS {peak_kib} KiB"
    items = {m["subject"]: m for m in listed(home)}
    assert [items[f"healthy {n}"]["state"] for n in range(3)] == ["sent"] * 3
    assert len(healthy.received) == 3
    problems = []
    for index, case in enumerate(all_cases):
        item = items[f"hostile {index}"]
        error = item["last_error"] or ""
        named = any(w in error for w in case.expected)
        # ... and garbage reaches a terminal only escaped.
        if item["state"] != "deferred" or not named or not error.isprintable():
            problems.append(f"{case.name}: {item['state']}: {error}")
    assert problems == []
    record_figures(
        "test_hostile_servers",
        cases=len(all_cases),
        flush_seconds=round(seconds, 1),
        peak_rss_mib=round(peak_kib / 1024),
        bytes_pushed=pushed,
    )


def test_a_reply_full_of_escape_sequences_reaches_no_terminal_unescaped(home: Path) -> None:
    nasty = "550 5.7.1 \x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m \u202egnp.exe\x00 go away"
    with threaded_fault_server(greeting="220 \x1b[5mblink\x1b[0m ready", mail=nasty) as server:
        add_account(home, server.port)
        assert outbox(home, "enqueue", "-", input=note(1, tag="esc")).returncode == 0
        flushed = outbox(home, "flush")
    assert flushed.returncode == 1
    shown = outbox(home, "show", "1")
    as_json = outbox(home, "show", "1", "--json")
    listing = outbox(home, "list")
    for output in (flushed.stderr, shown.stdout, as_json.stdout, listing.stdout):
        text = output.decode()
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\x00" not in text
    assert "\\x1b]0;pwned\\x07" in flushed.stderr.decode()  # still there to read, escaped
    assert "\\x1b[5mblink" in as_json.stdout.decode()  # the transcript too
