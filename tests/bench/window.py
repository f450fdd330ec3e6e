"""Figure 6 of the benchmarks: the window over a large outbox, and its event loop during a flush.

Run by ``tests/bench/run.py`` (row 6); each measurement runs the window in a
fresh process (``python -m tests.bench.window open|flush HOME RESULT``) on the
``offscreen`` platform, pinned to the client core, with its own settings and
configuration directories, and writes its figures as JSON to ``RESULT``.

6a. **First rows.** An outbox of 100,000 queued 2 KB messages (each with its
    own recipient and subject). The clock starts when the bench starts the
    process (before Python, Qt and the app are imported: what a person waits
    for after starting ``outbox gui``) and stops when the table's viewport has
    finished its first paint while the view's model reports rows (``rowCount()
    > 0``): an event filter on the viewport sees that paint event, and the
    time is taken by a zero timer queued from it, which runs once the paint
    has been dispatched. The process sets itself up exactly as
    ``gui.app.main`` does (``make_application``, ``open_window``). The window
    shows its first page of rows and reads the rest a page per turn of its
    loop: the time until every row is in the model (``all_rows_s``) is
    reported beside the figure.
6b. **Memory.** ``VmHWM`` (peak resident) from /proc/self/status once every
    row is in the model and the loop has been idle for a moment (``VmRSS`` at
    that point is reported too). The target is on the peak.
6c. **Stalls.** An outbox of 10,000 queued 2 KB messages, the window open and
    painted, ``action_flush`` triggered (Send all: the window's own
    ``FlushRunner``, on the qasync loop) to the bench's ``smtp-sink`` over the
    account's default 2 connections of 100 messages each. A ``QTimer``
    (``PreciseTimer``, 10 ms) records
    ``time.perf_counter()`` at each tick from the trigger until the runner's
    ``finished``; each gap between ticks less 10 ms is a stall. Reported: the
    worst and the 99th percentile, and how many collections the garbage
    collector ran with their longest pause (``gc.callbacks``), to say where
    a stall came from. The run fails unless every message ends ``sent``.

The outboxes are filled straight through ``relay.store.database.insert_message``
in one transaction with ``synchronous = OFF`` (filling is not measured).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the window's process imports none of the bench's modules
    from tests.bench.run import Processes, Row

TICK_MS = 10
SETTLE_S = 0.5


# -- the bench's side ------------------------------------------------------------------------


def fill_outbox(home: Path, port: int, count: int, size: int) -> Path:
    """``home`` with one account on ``port`` and ``count`` queued messages of ``size`` bytes.

    The account keeps the defaults a person gets from ``outbox account add``
    (connections, messages per connection): the window is measured as used.
    """
    from relay.accounts import Account, Security, save_accounts
    from relay.home import ensure_home
    from relay.message import ParsedMessage
    from relay.store.database import DB_NAME, connect, insert_message
    from tests.bench.floor import SENDER, message_bytes

    ensure_home(home)
    save_accounts(
        home,
        [
            Account(
                name="sink",
                host="127.0.0.1",
                port=port,
                security=Security.NONE,
                default=True,
            )
        ],
    )
    template = message_bytes(0, size)
    head_end = template.index(b"\r\n\r\n") + 4
    body = template[head_end:]
    conn = connect(home / DB_NAME)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        now = datetime.now(UTC)
        for index in range(count):
            recipient = f"rcpt{index}@example.net"
            subject = f"Bench message {index}"
            head = (
                f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
                f"Message-ID: <bench-{index}@example.org>\r\n"
                "Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n\r\n"
            ).encode()
            raw = head + body[: max(0, size - len(head))]
            insert_message(
                conn,
                ParsedMessage(SENDER, (recipient,), raw, subject),
                account=None,
                now=now,
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return home


def run_child(processes: Processes, mode: str, home: Path, work: Path, core: str) -> dict[str, Any]:
    """Run the window process in ``mode``; its figures (times from the bench's start of it)."""
    from tests.bench.run import PYTHON, pinned

    result = work / f"window-{mode}.json"
    result.unlink(missing_ok=True)
    config = work / f"config-{mode}"
    config.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(config),
        "XDG_RUNTIME_DIR": str(config),
    }
    started = time.time()
    process = processes.start(
        pinned(
            core, PYTHON, "-m", "tests.bench.window", mode, str(home), str(result), str(started)
        ),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise SystemExit(f"window {mode}: no result within 600 s") from None
    figures: dict[str, Any] = json.loads(result.read_text()) if result.exists() else {}
    if process.returncode != 0 or not figures or "error" in figures:
        raise SystemExit(
            f"window {mode}: exit {process.returncode}, {figures.get('error', 'no result')}\n"
            + err.decode("utf-8", "replace")[-3000:]
        )
    return figures


def bench_window(
    processes: Processes, work: Path, port: int, *, big: int = 100_000, flushed: int = 10_000
) -> list[Row]:
    """Row 6 of the table: 6a first rows, 6b memory, 6c stalls during a flush."""
    from tests.bench.run import CLIENT_CORE, Row

    large = fill_outbox(work / f"home-window-{big}", port, big, 2048)
    opened = run_child(processes, "open", large, work, CLIENT_CORE)
    small = fill_outbox(work / f"home-window-flush-{flushed}", port, flushed, 2048)
    flush = run_child(processes, "flush", small, work, CLIENT_CORE)
    first_s = opened["first_rows_s"]
    peak_mb = opened["hwm_kb"] / 1024
    worst, p99 = flush["worst_stall_ms"], flush["p99_stall_ms"]
    print(f"window, open {big:,}: {json.dumps(opened)}", flush=True)
    print(f"window, flush {flushed:,}: {json.dumps(flush)}", flush=True)
    return [
        Row(
            "6a",
            f"window: first rows of {big:,} messages, from process start",
            f"{first_s:.2f} s (all {opened['rows']:,} rows {opened['all_rows_s']:.2f} s)",
            "<= 1.5 s",
            "",
            first_s <= 1.5,
        ),
        Row(
            "6b",
            f"window: peak resident memory, {big:,} messages",
            f"{peak_mb:.0f} MB (RSS {opened['rss_kb'] / 1024:.0f} MB)",
            "< 300 MB",
            "",
            peak_mb < 300,
        ),
        Row(
            "6c",
            f"window: event-loop stall, flush of {flushed:,} (10 ms timer)",
            f"worst {worst:.1f} ms, p99 {p99:.1f} ms"
            f" ({flush['gc_runs']:.0f} gc, longest {flush['gc_longest_ms']:.1f} ms)",
            "worst < 16 ms, p99 < 5 ms",
            "",
            worst < 16 and p99 < 5,
        ),
    ]


# -- the window's side -----------------------------------------------------------------------


def _memory_kb() -> tuple[int, int]:
    rss = hwm = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def child(mode: str, home: Path, result: Path, started: float) -> int:
    import asyncio
    import gc

    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtCore import Qt as _Qt

    from gui.app import make_application, open_window

    imported = time.time()
    figures: dict[str, Any] = {"imports_s": imported - started}
    QSettings.setPath(
        QSettings.Format.IniFormat,
        QSettings.Scope.UserScope,
        os.environ["XDG_CONFIG_HOME"],
    )
    app = make_application()
    opened = open_window(app, home)
    loop, window = opened.loop, opened.window
    figures["window_made_s"] = time.time() - started
    view = window.view

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and view.model().rowCount() > 0:
                watched.removeEventFilter(self)
                QTimer.singleShot(0, painted)
            return False

    def painted() -> None:
        figures["first_rows_s"] = time.time() - started
        figures["rows_at_first_paint"] = view.model().rowCount()
        if window.resync.loading:
            window.resync.loaded.connect(all_loaded)
        else:
            all_loaded()

    def all_loaded() -> None:
        figures["all_rows_s"] = time.time() - started
        figures["rows"] = view.model().rowCount()
        QTimer.singleShot(int(SETTLE_S * 1000), settled)

    def settled() -> None:
        rss, hwm = _memory_kb()
        figures["rss_kb"], figures["hwm_kb"] = rss, hwm
        if mode == "open":
            loop.stop()
        else:
            start_flush()

    ticks: list[float] = []
    pauses: list[float] = []
    gc_began = [0.0]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - gc_began[0])

    timer = QTimer()
    timer.setTimerType(_Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def start_flush() -> None:
        window.runner.finished.connect(flushed)
        gc.callbacks.append(on_gc)
        ticks.append(time.perf_counter())
        timer.start()
        window.action_flush.trigger()
        if not window.runner.running:
            figures["error"] = "the flush did not start"
            loop.stop()

    def flushed(_result: object) -> None:
        timer.stop()
        gc.callbacks.remove(on_gc)
        ticks.append(time.perf_counter())
        stalls = sorted(
            (max(0.0, (b - a) * 1000 - TICK_MS), a - ticks[0]) for a, b in pairwise(ticks)
        )
        figures["flush_s"] = ticks[-1] - ticks[0]
        figures["ticks"] = len(ticks)
        figures["worst_stall_ms"] = stalls[-1][0]
        figures["p99_stall_ms"] = stalls[min(len(stalls) - 1, int(len(stalls) * 0.99))][0]
        # Where the worst ones were (seconds after the trigger), to find their cause.
        figures["worst_at"] = [[round(at, 3), round(ms, 1)] for ms, at in stalls[:-6:-1]]
        figures["ticks_origin"] = ticks[0]  # perf_counter, for a profiler in the same process
        figures["gc_runs"] = len(pauses)
        figures["gc_longest_ms"] = max(pauses, default=0.0) * 1000
        figures["cpu_s"] = time.process_time()
        rss, hwm = _memory_kb()
        figures["flush_rss_kb"], figures["flush_hwm_kb"] = rss, hwm
        counts = window.outbox.counts()  # the store's, not the model's next redraw
        figures["sent"] = sum(v for k, v in counts.items() if k.value == "sent")
        figures["total"] = sum(counts.values())
        loop.stop()

    first_paint = FirstPaint()
    view.viewport().installEventFilter(first_paint)
    window.show()
    with loop:
        loop.run_forever()
        window.close()
    asyncio.set_event_loop(None)
    if mode == "flush" and figures.get("sent") != figures.get("total"):
        figures["error"] = f"{figures.get('sent')} of {figures.get('total')} sent"
    result.write_text(json.dumps(figures))
    return 0 if "error" not in figures else 1


if __name__ == "__main__":
    sys.exit(child(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])))
