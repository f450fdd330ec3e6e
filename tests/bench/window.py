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
6d. **Another process flushes.** The outbox of 6a, the window open and every
    row loaded; then ``outbox flush`` of the first 1,000 messages runs as a
    separate process (pinned to the sink's core) to the bench's ``smtp-sink``.
    From its start until the window shows all 1,000 ``sent``, the window's CPU
    (``time.process_time``) against the flushing process's (its rusage), and
    the window's stalls as in 6c. The window reads only the rows that changed
    (``relay.store.listing.changes_since``); re-reading the outbox on every
    outside commit cost ~0.45 s of CPU a pass.
6e. **Large claims.** 5,000 queued 2 KB messages, the account set to 2
    connections of 2,500 messages each (``max_messages_per_connection``);
    Send all as in 6c. Each ``Outbox.claim`` is timed, and the figure is the
    worst stall of a timer tick that overlaps a claim (the worst of the whole
    flush beside it).

Floors, measured in the same run beside the figures they explain (rows with no
target): what this machine allows a loop, without the window's own work.

6cf. The flush of 6c (a fresh outbox of the same size, the same account, the
    same sink) as ``outbox flush`` pinned to the window's core, and beside it
    a bare qasync loop (a ``QApplication``, no window) with the same 10 ms
    timer on that core: its stalls are the scheduler's share alone.
6cg, 6g. One collection of the window's heap, timed in 6c's process once
    its flush has finished and in 6a's once every row is loaded: the youngest
    generation and a full one as the window runs them (``gui.garbage`` keeps
    what survives frozen), and a full one of every object, unfrozen (what the
    window does once, when idle, after a flush).
6p. One repaint of the table's rows on screen, timed in 6a's process once
    every row is loaded (the loop thread's CPU, median of 20): what a pass of
    6d that changes rows on screen costs beside reading the changes. A change
    of rows off screen repaints nothing (``gui.outbox_view``).
6df. The next 1,000 messages of 6d's outbox flushed the same way (another
    process, the sink's core) while the bare loop ticks on the window's core:
    its CPU against the flush's (what the 10 ms timer costs by itself), and
    its stalls.
6ef. The flush of 6e (5,000 messages, 2,500 per connection) as ``outbox
    flush`` on the window's core, the bare loop ticking beside it.

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
#: 6d: how many messages the other process flushes.
OUTSIDE_FLUSHED = 1000
#: 6e: messages per connection, and messages in all (two connections' worth).
CLAIM_PER_CONNECTION = 2500
CLAIMED_IN_ALL = 2 * CLAIM_PER_CONNECTION
#: The environment variable naming the core the other process of 6d runs on.
OTHER_CORE = "OUTBOX_BENCH_OTHER_CORE"
#: The environment variable holding a floor's load: the command line, as JSON.
FLOOR_LOAD = "OUTBOX_BENCH_FLOOR_LOAD"


# -- the bench's side ------------------------------------------------------------------------


def fill_outbox(
    home: Path, port: int, count: int, size: int, *, per_connection: int | None = None
) -> Path:
    """``home`` with one account on ``port`` and ``count`` queued messages of ``size`` bytes.

    The account keeps the defaults a person gets from ``outbox account add``
    (connections, messages per connection): the window is measured as used.
    ``per_connection`` sets ``max_messages_per_connection`` instead.
    """
    from dataclasses import replace

    from relay.accounts import Account, Security, load_accounts, save_accounts
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
    if per_connection is not None:
        (account,) = load_accounts(home)
        save_accounts(home, [replace(account, max_messages_per_connection=per_connection)])
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


def run_child(
    processes: Processes,
    mode: str,
    home: Path,
    work: Path,
    core: str,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the window process in ``mode``; its figures (times from the bench's start of it)."""
    from tests.bench.run import PYTHON, SINK_CORE, pinned

    result = work / f"window-{mode}.json"
    result.unlink(missing_ok=True)
    config = work / f"config-{mode}"
    config.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(config),
        "XDG_RUNTIME_DIR": str(config),
        OTHER_CORE: SINK_CORE,
        **(extra_env or {}),
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


def run_floor(
    processes: Processes, work: Path, name: str, load: list[str], core: str
) -> dict[str, Any]:
    """A floor's figures: the 10 ms timer on a bare qasync loop (no window) pinned to
    ``core`` while ``load`` (a flush, already pinned) runs in a process of its own."""
    figures = run_child(processes, "bare", work, work, core, {FLOOR_LOAD: json.dumps(load)})
    print(f"floor, {name}: {json.dumps(figures)}", flush=True)
    return figures


def _flush_command(core: str, home: Path, *ids: str) -> list[str]:
    from tests.bench.run import PYTHON, pinned

    return pinned(core, PYTHON, "-m", "relay.cli", "--home", str(home), "flush", *ids)


def _floor_row(number: str, load: str, floor: dict[str, Any]) -> Row:
    from tests.bench.run import Row

    return Row(
        number,
        f"floor: 10 ms timer on a bare qasync loop while {load}",
        f"worst {floor['worst_stall_ms']:.1f} ms, p99 {floor['p99_stall_ms']:.1f} ms"
        f" (the loop busy at most {floor['worst_busy_ms']:.1f} ms between ticks;"
        f" flush {floor['load_s']:.1f} s)",
        "(no target)",
        "",
        None,
    )


def bench_window(
    processes: Processes, work: Path, port: int, *, big: int = 100_000, flushed: int = 10_000
) -> list[Row]:
    """Row 6 of the table: 6a first rows, 6b memory, 6c stalls during a flush."""
    from tests.bench.run import CLIENT_CORE, Row

    large = fill_outbox(work / f"home-window-{big}", port, big, 2048)
    opened = run_child(processes, "open", large, work, CLIENT_CORE)
    small = fill_outbox(work / f"home-window-flush-{flushed}", port, flushed, 2048)
    flush = run_child(processes, "flush", small, work, CLIENT_CORE)
    worst, p99 = flush["worst_stall_ms"], flush["p99_stall_ms"]
    print(f"window, open {big:,}: {json.dumps(opened)}", flush=True)
    print(f"window, flush {flushed:,}: {json.dumps(flush)}", flush=True)
    # 6c's floor: the same flush (same outbox, same account, to the same sink) as
    # `outbox flush` on the window's core, and a bare loop's timer there: what the
    # scheduler alone takes from a loop that does nothing while this load runs.
    again = fill_outbox(work / f"home-window-floor-{flushed}", port, flushed, 2048)
    flush_floor = run_floor(
        processes, work, "flush", _flush_command(CLIENT_CORE, again), CLIENT_CORE
    )
    return [
        *_opening_rows(opened, big),
        Row(
            "6c",
            f"window: event-loop stall, flush of {flushed:,} (10 ms timer)",
            f"worst {worst:.1f} ms, p99 {p99:.1f} ms"
            f" ({flush['gc_runs']:.0f} gc, longest {flush['gc_longest_ms']:.1f} ms)",
            "worst < 16 ms, p99 < 5 ms",
            "",
            worst < 16 and p99 < 5,
        ),
        _floor_row("6cf", f"`outbox flush` of {flushed:,} runs on its core", flush_floor),
        # What one collection of the heap the flush left costs: the longest pause the
        # collector could take in 6c without our code doing anything else.
        _gc_row("6cg", flush, f"{flushed:,} rows, after that flush"),
        # The same of 6a's 100,000 rows, loaded and idle: the heap 6d's window holds.
        _gc_row("6g", opened, f"{big:,} rows, loaded"),
        # What repainting the rows on screen costs, once: a pass of 6d whose rows are on
        # screen (the first of them are the ones flushed) repaints them.
        Row(
            "6p",
            f"floor: one repaint of the table's rows on screen, {big:,} rows loaded",
            f"{opened['repaint_ms']:.1f} ms of CPU ({opened['repaint_rows']} rows of 9 columns;"
            " median of 20)",
            "(no target)",
            "",
            None,
        ),
        *bench_outside(processes, work, large),
        *bench_claims(processes, work, port),
    ]


def bench_outside(processes: Processes, work: Path, large: Path) -> list[Row]:
    """6d: the window over ``large`` (every message queued) while another process flushes."""
    from tests.bench.run import CLIENT_CORE, SINK_CORE, Row

    figures = run_child(processes, "outside", large, work, CLIENT_CORE)
    print(f"window, another process flushes {OUTSIDE_FLUSHED:,}: {json.dumps(figures)}", flush=True)
    # 6d's floor: the next 1,000 of the same outbox flushed the same way (on the sink's
    # core), and a bare loop's timer on the window's core: the CPU a 10 ms timer costs
    # by itself beside that flush's, and the stalls the machine gives a loop that waits.
    ids = [str(i) for i in range(OUTSIDE_FLUSHED + 1, 2 * OUTSIDE_FLUSHED + 1)]
    floor = run_floor(
        processes, work, "outside", _flush_command(SINK_CORE, large, *ids), CLIENT_CORE
    )
    floor_share = floor["cpu_s"] / floor["load_cpu_s"]
    share = figures["window_cpu_s"] / figures["flush_cpu_s"]
    worst = figures["worst_stall_ms"]
    return [
        Row(
            "6d",
            f"window over {figures['rows']:,}: CPU while another process flushes"
            f" {OUTSIDE_FLUSHED:,}",
            f"{share:.1%} of the flush's ({figures['window_cpu_s']:.3f} s vs"
            f" {figures['flush_cpu_s']:.3f} s; {figures['passes']} passes)",
            "<= 10%",
            "",
            share <= 0.10,
        ),
        Row(
            "6d",
            "window: event-loop stall meanwhile (10 ms timer)",
            f"worst {worst:.1f} ms, p99 {figures['p99_stall_ms']:.1f} ms"
            f" (the loop busy at most {figures['worst_busy_ms']:.1f} ms between ticks;"
            f" {figures['gc_runs']} gc, longest {figures['gc_longest_ms']:.1f} ms)",
            "<= 16 ms",
            "",
            worst <= 16,
        ),
        Row(
            "6df",
            f"floor: bare qasync loop's CPU (10 ms timer) while another process flushes"
            f" {OUTSIDE_FLUSHED:,}",
            f"{floor_share:.1%} of the flush's ({floor['cpu_s']:.3f} s vs"
            f" {floor['load_cpu_s']:.3f} s)",
            "(no target)",
            "",
            None,
        ),
        _floor_row("6df", f"another process flushes {OUTSIDE_FLUSHED:,} of them", floor),
    ]


def bench_claims(processes: Processes, work: Path, port: int) -> list[Row]:
    """6e: Send all with 2,500 messages per connection: the stall while claiming."""
    from tests.bench.run import CLIENT_CORE, Row

    home = fill_outbox(
        work / f"home-window-claims-{CLAIMED_IN_ALL}",
        port,
        CLAIMED_IN_ALL,
        2048,
        per_connection=CLAIM_PER_CONNECTION,
    )
    figures = run_child(processes, "claim", home, work, CLIENT_CORE)
    print(f"window, claims of {CLAIM_PER_CONNECTION:,}: {json.dumps(figures)}", flush=True)
    # 6e's floor: the same claims (same outbox, 2,500 per connection) made by `outbox
    # flush` on the window's core, and a bare loop's timer there: the stall the
    # scheduler alone gives while those claims and their sends run.
    again = fill_outbox(
        work / f"home-window-claims-floor-{CLAIMED_IN_ALL}",
        port,
        CLAIMED_IN_ALL,
        2048,
        per_connection=CLAIM_PER_CONNECTION,
    )
    floor = run_floor(processes, work, "claim", _flush_command(CLIENT_CORE, again), CLIENT_CORE)
    worst = figures["claim_stall_ms"]
    return [
        Row(
            "6e",
            f"window: event-loop stall claiming {CLAIM_PER_CONNECTION:,} per connection",
            f"worst {worst:.1f} ms at a claim; the loop busiest in a gap with a claim"
            f" {figures['claim_busy_ms']:.1f} ms (claiming {figures['claim_busy_claims_ms']:.1f},"
            f" gc {figures['claim_busy_gc_ms']:.1f}) ({figures['claims']} claims, longest"
            f" {figures['longest_claim_ms']:.1f} ms, CPU {figures['longest_claim_cpu_ms']:.1f} ms;"
            " whole flush worst"
            f" {figures['worst_stall_ms']:.1f} ms)",
            "<= 16 ms",
            "",
            worst <= 16,
        ),
        _floor_row("6ef", f"`outbox flush` claims {CLAIM_PER_CONNECTION:,} per connection", floor),
    ]


def _gc_row(number: str, figures: dict[str, Any], heap: str) -> Row:
    """The garbage collector's floor: one collection of the window's heap (``heap`` says
    which), timed in the figure's own process once its measurement was over."""
    from tests.bench.run import Row

    return Row(
        number,
        f"floor: one gc collection of the window's heap, {heap}",
        f"every object (unfrozen, {figures['gc_objects']:,}) {figures['gc_full_ms']:.1f} ms;"
        " as the window runs it (start-up and survivors frozen):"
        f" full {figures['gc_frozen_ms']:.2f} ms, youngest {figures['gc_young_ms']:.2f} ms",
        "(no target)",
        "",
        None,
    )


def _opening_rows(opened: dict[str, Any], big: int) -> list[Row]:
    from tests.bench.run import Row

    first_s = opened["first_rows_s"]
    peak_mb = opened["hwm_kb"] / 1024
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
    import threading

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
            _time_repaints(figures, view.viewport())
            _time_collections(figures)
            loop.stop()
        elif mode == "outside":
            start_outside()
        else:
            start_flush()

    ticks: list[float] = []
    # The loop thread's CPU time at each tick: a gap's busy time, without the time this
    # process waited for a core (on a shared machine most of a long gap can be that).
    ticks_cpu: list[float] = []

    def tick() -> None:
        ticks.append(time.perf_counter())
        ticks_cpu.append(time.thread_time())

    pauses: list[float] = []
    gc_spans: list[tuple[float, float]] = []
    gc_began = [0.0]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            ended = time.perf_counter()
            pauses.append(ended - gc_began[0])
            gc_spans.append((gc_began[0], ended))

    timer = QTimer()
    timer.setTimerType(_Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)

    claims: list[tuple[float, float]] = []
    claims_cpu: list[float] = []
    if mode == "claim":
        claim = window.outbox.claim

        def timed_claim(*args: Any, **kwargs: Any) -> Any:
            began, cpu = time.perf_counter(), time.thread_time()
            try:
                return claim(*args, **kwargs)
            finally:
                claims.append((began, time.perf_counter()))
                claims_cpu.append(time.thread_time() - cpu)

        window.outbox.claim = timed_claim  # type: ignore[method-assign]

    def start_flush() -> None:
        window.runner.finished.connect(flushed)
        gc.callbacks.append(on_gc)
        tick()
        timer.start()
        window.action_flush.trigger()
        if not window.runner.running:
            figures["error"] = "the flush did not start"
            loop.stop()

    def flushed(_result: object) -> None:
        timer.stop()
        gc.callbacks.remove(on_gc)
        tick()
        stalls = _stalls(ticks)
        if mode == "claim":
            figures["claims"] = len(claims)
            figures["longest_claim_ms"] = max((b - a for a, b in claims), default=0.0) * 1000
            figures["longest_claim_cpu_ms"] = max(claims_cpu, default=0.0) * 1000
            at_claims = [
                index
                for index, (a, b) in enumerate(pairwise(ticks))
                if any(a < end and b > begin for begin, end in claims)
            ]
            figures["claim_stall_ms"] = max(
                (max(0.0, (ticks[i + 1] - ticks[i]) * 1000 - TICK_MS) for i in at_claims),
                default=0.0,
            )
            busiest = max(at_claims, key=lambda i: ticks_cpu[i + 1] - ticks_cpu[i], default=None)
            if busiest is not None:
                a, b = ticks[busiest], ticks[busiest + 1]
                figures["claim_busy_ms"] = (ticks_cpu[busiest + 1] - ticks_cpu[busiest]) * 1000
                # What of that gap was claiming, and what collecting garbage.
                figures["claim_busy_claims_ms"] = 1000 * sum(
                    cpu
                    for (begin, end), cpu in zip(claims, claims_cpu, strict=True)
                    if a < end and b > begin
                )
                figures["claim_busy_gc_ms"] = 1000 * sum(
                    min(b, end) - max(a, begin) for begin, end in gc_spans if a < end and b > begin
                )
        figures["worst_busy_ms"] = _worst_busy_ms(ticks_cpu)
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
        if mode == "flush":  # the figures are taken: the floor's collections change nothing
            _time_collections(figures)
        loop.stop()

    outside: dict[str, Any] = {}
    passes = [0]
    window.resync.finished.connect(lambda: passes.__setitem__(0, passes[0] + 1))

    def start_outside() -> None:
        from relay.states import MessageState

        ids = [str(i) for i in range(1, OUTSIDE_FLUSHED + 1)]
        command = [sys.executable, "-m", "relay.cli", "--home", str(home), "flush", *ids]
        core = os.environ.get(OTHER_CORE)
        if core:
            command = ["taskset", "-c", core, *command]
        errors = (result.parent / "outside-flush.err").open("wb")
        outside["cpu_before"] = time.process_time()
        outside["sent"] = MessageState.SENT
        passes[0] = 0
        gc.callbacks.append(on_gc)
        tick()
        timer.start()
        process = outside["process"] = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
        )
        errors.close()

        def wait() -> None:  # blocked in wait4, not polling: no CPU of the window's
            _, status, usage = os.wait4(process.pid, 0)
            loop.call_soon_threadsafe(exited, status, usage)

        threading.Thread(target=wait, daemon=True).start()
        window.resync.finished.connect(look_outside)

    def exited(status: int, usage: Any) -> None:
        process = outside["process"]
        process.returncode = os.waitstatus_to_exitcode(status)
        outside["flush_cpu_s"] = usage.ru_utime + usage.ru_stime
        if process.returncode != 0:
            figures["error"] = f"the other flush exited {process.returncode}"
            loop.stop()
            return
        look_outside()

    def look_outside() -> None:
        if "flush_cpu_s" not in outside or "window_cpu_s" in figures:
            return
        if window.model.counts()[outside["sent"]] < OUTSIDE_FLUSHED or window.resync.running:
            return  # the window has yet to show what the other process did (its next pass)
        timer.stop()
        tick()
        stalls = _stalls(ticks)
        figures["window_cpu_s"] = time.process_time() - outside["cpu_before"]
        figures["flush_cpu_s"] = outside["flush_cpu_s"]
        figures["passes"] = passes[0]
        figures["rows"] = window.model.rowCount()
        figures["caught_up_s"] = ticks[-1] - ticks[0]
        figures["worst_stall_ms"] = stalls[-1][0]
        figures["p99_stall_ms"] = stalls[min(len(stalls) - 1, int(len(stalls) * 0.99))][0]
        figures["worst_at"] = [[round(at, 3), round(ms, 1)] for ms, at in stalls[:-6:-1]]
        figures["worst_busy_ms"] = _worst_busy_ms(ticks_cpu)
        gc.callbacks.remove(on_gc)
        figures["gc_runs"] = len(pauses)
        figures["gc_longest_ms"] = max(pauses, default=0.0) * 1000
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


def _time_repaints(figures: dict[str, Any], viewport: Any) -> None:
    """What one repaint of the table's rows on screen costs the loop (CPU, median of 20):
    what a pass that changes rows on screen cannot do without."""
    import statistics

    times = []
    for _ in range(20):
        began = time.thread_time()
        viewport.repaint()
        times.append((time.thread_time() - began) * 1000)
    figures["repaint_ms"] = statistics.median(times)
    figures["repaint_rows"] = viewport.parent().rowAt(viewport.height() - 1) + 1


def _time_collections(figures: dict[str, Any]) -> None:
    """How long the garbage collector takes over this heap: the youngest generation and a
    full collection as the window runs them (what start-up and earlier full collections
    left is frozen, ``gui.garbage``), and a full one of every object, unfrozen."""
    import gc

    for name, collect in (
        ("gc_young_ms", lambda: gc.collect(0)),
        ("gc_frozen_ms", lambda: gc.collect(2)),
    ):
        began = time.perf_counter()
        collect()
        figures[name] = (time.perf_counter() - began) * 1000
    gc.unfreeze()
    began = time.perf_counter()
    gc.collect()
    figures["gc_full_ms"] = (time.perf_counter() - began) * 1000
    figures["gc_objects"] = len(gc.get_objects())
    gc.freeze()


def bare_child(result: Path) -> int:
    """A floor: the 10 ms timer on a bare qasync loop (no window, nothing else to do) while
    the command in ``FLOOR_LOAD`` runs in another process; stalls and CPU as in 6c/6d."""
    import asyncio
    import gc
    import threading

    import qasync
    from PySide6.QtCore import Qt as _Qt
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    load: list[str] = json.loads(os.environ[FLOOR_LOAD])
    app = QApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    gc.freeze()  # as the window does with what start-up made
    figures: dict[str, Any] = {}
    ticks: list[float] = []
    ticks_cpu: list[float] = []

    def tick() -> None:
        ticks.append(time.perf_counter())
        ticks_cpu.append(time.thread_time())

    timer = QTimer()
    timer.setTimerType(_Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    errors_path = result.parent / "floor-load.err"
    began: dict[str, float] = {}

    def start() -> None:
        began["cpu"], began["wall"] = time.process_time(), time.perf_counter()
        tick()
        timer.start()
        with errors_path.open("wb") as errors:
            process = subprocess.Popen(
                load, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
            )

        def wait() -> None:  # blocked in wait4, not polling: no CPU of the loop's
            _, status, usage = os.wait4(process.pid, 0)
            loop.call_soon_threadsafe(done, status, usage)

        threading.Thread(target=wait, daemon=True).start()

    def done(status: int, usage: Any) -> None:
        timer.stop()
        tick()
        stalls = _stalls(ticks)
        figures["cpu_s"] = time.process_time() - began["cpu"]
        figures["load_s"] = time.perf_counter() - began["wall"]
        figures["load_cpu_s"] = usage.ru_utime + usage.ru_stime
        figures["ticks"] = len(ticks)
        figures["worst_stall_ms"] = stalls[-1][0]
        figures["p99_stall_ms"] = stalls[min(len(stalls) - 1, int(len(stalls) * 0.99))][0]
        figures["worst_busy_ms"] = _worst_busy_ms(ticks_cpu)
        figures["worst_at"] = [[round(at, 3), round(ms, 1)] for ms, at in stalls[:-6:-1]]
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            tail = errors_path.read_bytes()[-2000:].decode("utf-8", "replace")
            figures["error"] = f"the load exited {code}: {tail}"
        loop.stop()

    QTimer.singleShot(int(SETTLE_S * 1000), start)
    with loop:
        loop.run_forever()
    asyncio.set_event_loop(None)
    result.write_text(json.dumps(figures))
    return 0 if "error" not in figures else 1


def _worst_busy_ms(ticks_cpu: list[float]) -> float:
    """The most CPU the loop's thread spent between two ticks (ms)."""
    return max(((b - a) * 1000 for a, b in pairwise(ticks_cpu)), default=0.0)


def _stalls(ticks: list[float]) -> list[tuple[float, float]]:
    """Each gap between ticks less the timer's interval (ms), with when it began; sorted."""
    return sorted((max(0.0, (b - a) * 1000 - TICK_MS), a - ticks[0]) for a, b in pairwise(ticks))


if __name__ == "__main__":
    if sys.argv[1] == "bare":
        sys.exit(bare_child(Path(sys.argv[3])))
    sys.exit(child(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])))
