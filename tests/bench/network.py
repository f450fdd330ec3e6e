"""Figure 8 of the benchmarks: what users feel -- a flush over a network's round trips.

A person's outbox sends to a provider far away, over STARTTLS and AUTH:
there, round trips, not CPU, make the time. Run by ``tests/bench/run.py``
(row 8):

- the server: an aiosmtpd on 127.0.0.1 with trustme certificates, STARTTLS
  and AUTH PLAIN/LOGIN, offering PIPELINING as providers do
  (``auth_server.py``), in a process of its own pinned to the server's core;
- between each client and it, a ``DelayProxy`` (``proxy.py``) adding 25 ms
  each way (a 50 ms round trip), run by the bench on the server's core, a
  fresh one per client so that its count of client turns is that client's;
- 200 messages of 20 KB, each client started as a process pinned to the
  client core, timed from its start to its exit:

  8.  ``outbox flush`` on an account with its defaults (2 connections, up to
      100 messages each), its password from a ``password_command`` (no
      keyring runs headless here), against the turn bound (``turn_bound_s``):
      the target is to stay within 10% of it;
  8t. where that flush's time went, from the proxy's counter for each
      connection: process start to the first byte, to the last session's
      first byte, the span on the network, the exit after the last reply,
      and per turn the client's and the server's time to answer (the
      client's includes how late the proxy passed the reply on, shown apart);
  8f. a floor from the same run: the bound plus the server's own time to
      answer each turn (the bound counts an instant server; the proxy measures
      this one's during the flush), how late the proxy's timer (on the
      server's core) passed each reply on to the client (measured likewise),
      one synced SQLite commit per message per connection (the kill promise
      puts one between each reply and the next final dot; its median time on
      this disk, measured here) and a bare interpreter's start;
  8m. msmtp as ``msmtpq`` runs it when it flushes its queue: one ``msmtp``
      process per message, one after the other, each with its own session
      (Debian package ``msmtp``, installed like Postfix if absent), its
      password from ``passwordeval`` as Outbox's from its command;
  8a. aiosmtplib's ``send_message`` in a loop over one connection
      (``send_loop.py``), as its documentation shows.

The server counts what it accepted; a client that did not deliver every
message fails the run. Everything started here ends when the figure does:
the clients are waited for (with a time limit), the server stops when its
standard input closes (and after 15 minutes whatever happens).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from relay.accounts import Account, Security, save_accounts
from relay.message import parse_message
from relay.store.outbox import Outbox
from tests.bench.auth_server import PASSWORD
from tests.bench.floor import RECIPIENT, SENDER, message_bytes
from tests.bench.proxy import DelayProxy
from tests.bench.run import (
    CLIENT_CORE,
    PYTHON,
    SINK_CORE,
    Processes,
    Row,
    pinned,
    sent_count,
)
from tests.support.smtp_servers import USER

MSMTP = Path("/usr/bin/msmtp")
DELAY_S = 0.025  # each way
RTT_S = 2 * DELAY_S
SIZE = 20_000
CONNECTIONS = 2
#: The target: the flush takes at most this much more than the turn bound.
WITHIN = 0.10
#: A client not finished by then has hung (msmtp at 200 messages takes ~2 minutes here).
CLIENT_TIMEOUT_S = 600.0

#: Round trips a client must wait out before a session's first message data can
#: leave, as this proxy lays them out (it delays bytes, not TCP's handshake,
#: so connecting is free and the greeting costs half a round trip):
SETUP_TURNS = (
    0.5  # the server's greeting, on its way to the client
    + 1  # EHLO
    + 1  # STARTTLS
    + 1  # the TLS 1.3 handshake (the client's Finished goes with the next EHLO)
    + 1  # EHLO again, now encrypted
    + 1  # AUTH PLAIN with its initial response (RFC 4616): one round trip
    + 1  # the first MAIL, RCPT, DATA, sent as one group (PIPELINING, RFC 2920)
)
#: After the last message's reply: QUIT, whose reply a polite client waits for.
CLOSING_TURNS = 1


def turn_bound_s(messages: int, connections: int, rtt_s: float = RTT_S) -> float:
    """The least time ``messages`` can take over ``connections`` sessions at ``rtt_s``.

    With PIPELINING each message costs one round trip on its connection: its
    data and final dot go in one write with the next message's MAIL, RCPT and
    DATA, and the client waits once for the replies to all of them. The
    sessions run side by side, so the busiest one (``ceil(messages /
    connections)`` messages) sets the time:

        (SETUP_TURNS + ceil(messages / connections) + CLOSING_TURNS) x rtt_s

    This counts the network only: no process start-up, no CPU, no disk
    sync, and no time to move 20 KB on a link (loopback is not the limit);
    whatever a client spends on those shows as the distance to the bound.
    """
    busiest = -(-messages // connections)
    return (SETUP_TURNS + busiest + CLOSING_TURNS) * rtt_s


# -- the server and msmtp ----------------------------------------------------------------


@dataclass
class AuthServer:
    """``auth_server.py`` running: its port, its CA file, and what it accepted so far."""

    process: subprocess.Popen[bytes]
    port: int
    ca_file: Path

    def accepted(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"count\n")
        self.process.stdin.flush()
        messages, _ = self.process.stdout.readline().split()
        return int(messages)


@contextlib.contextmanager
def auth_server(processes: Processes, directory: Path) -> Iterator[AuthServer]:
    directory.mkdir()
    with (directory / "server.log").open("wb") as log:
        process = processes.start(
            pinned(SINK_CORE, PYTHON, "-m", "tests.bench.auth_server", str(directory)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise SystemExit(f"figure 8's server did not start: {_tail(directory / 'server.log')}")
        yield AuthServer(process, int(line), directory / "ca.pem")
    finally:
        process.stdin.close()  # the server's signal to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


def ensure_msmtp(attempts: int = 10, wait_s: float = 15.0) -> None:
    """Install Debian's ``msmtp`` if absent; apt is retried while another holds dpkg's lock."""
    if MSMTP.exists():
        return
    print("installing msmtp …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    command = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "msmtp"]
    updated = False
    for attempt in range(attempts):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 0 and MSMTP.exists():
            return
        if attempt == attempts - 1:
            break
        if "Unable to locate package" in done.stderr and not updated:
            subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=False)
            updated = True  # a fresh machine has no package lists yet
        elif "lock" in done.stderr:
            time.sleep(wait_s)  # another apt or dpkg holds the lock: wait for it
        else:
            break
    raise SystemExit(f"installing msmtp failed: {done.stderr[-2000:]}")


def msmtp_config(directory: Path, port: int, ca_file: Path) -> Path:
    """An msmtp account for the server behind the proxy, password by ``passwordeval``."""
    path = directory / "msmtprc"
    path.write_text(
        "account bench\n"
        "host 127.0.0.1\n"
        f"port {port}\n"
        "tls on\n"
        "tls_starttls on\n"
        f"tls_trust_file {ca_file}\n"
        "auth on\n"
        f"user {USER}\n"
        f"passwordeval printf %s {PASSWORD}\n"
        f"from {SENDER}\n"
        "syslog off\n"
        "account default : bench\n"
    )
    path.chmod(0o600)  # msmtp refuses a configuration others can read
    return path


# -- the clients ---------------------------------------------------------------------------


def fill_home(directory: Path, messages: int) -> Path:
    home = directory / "home-network"
    home.mkdir()
    with Outbox.open(home) as outbox:
        outbox._conn.execute("PRAGMA synchronous = OFF")  # filling is not measured
        for index in range(messages):
            outbox.add_message(parse_message(message_bytes(index, SIZE)))
        outbox._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return home


@dataclass
class Felt:
    """One client's run through the proxy, in seconds from the client's start."""

    wall_s: float
    turns: int  # client turns, summed over its sessions
    sessions: int
    first_byte_s: float  # the first byte of its first session (the server's greeting)
    last_opened_s: float  # the first byte of the session that opened last
    last_byte_s: float  # the last byte of its last session, as it reached the proxy
    answer_ms: float  # per turn, the client's time from a reply reaching it to its next bytes
    server_answer_ms: float  # per turn, likewise the server's (and the proxy's lateness)
    proxy_late_ms: float  # per turn, how late the proxy passed the reply on (in ``answer_ms``)

    @classmethod
    def of(cls, proxy: DelayProxy, began: float, ended: float) -> Felt:
        firsts = [s.first_at for s in proxy.sessions if s.first_at is not None]
        lasts = [s.last_at for s in proxy.sessions if s.last_at is not None]
        turns = sum(s.turns for s in proxy.sessions)
        answers = sum(s.server_answers for s in proxy.sessions)
        return cls(
            ended - began,
            turns,
            len(proxy.sessions),
            min(firsts, default=ended) - began,
            max(firsts, default=ended) - began,
            max(lasts, default=ended) - began,
            # The proxy sees a reply come in and the answer come back: the delay on the
            # way to the client apart, plus the client's own time; likewise the server.
            1000 * (sum(s.client_waited_s for s in proxy.sessions) / max(1, turns) - DELAY_S),
            1000 * (sum(s.server_waited_s for s in proxy.sessions) / max(1, answers) - DELAY_S),
            1000 * sum(s.client_late_s for s in proxy.sessions) / max(1, turns),
        )


async def _run(args: Sequence[str], stdin: bytes | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(stdin), CLIENT_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise SystemExit(f"{args[3]} failed ({process.returncode}): {err.decode()[-2000:]}")


async def outbox_flush(server: AuthServer, home: Path) -> Felt:
    async with DelayProxy("127.0.0.1", server.port, DELAY_S) as proxy:
        account = Account(  # the defaults: 2 connections, up to 100 messages each
            name="provider",
            host="127.0.0.1",
            port=proxy.port,
            security=Security.STARTTLS,
            user=USER,
            password_command=f"printf %s {PASSWORD}",
            ca_file=server.ca_file,
            default=True,
        )
        save_accounts(home, [account])
        began = _now()
        await _run(pinned(CLIENT_CORE, PYTHON, "-m", "relay.cli", "--home", str(home), "flush"))
        return Felt.of(proxy, began, _now())


async def msmtp_each(server: AuthServer, directory: Path, messages: int) -> Felt:
    async with DelayProxy("127.0.0.1", server.port, DELAY_S) as proxy:
        config = msmtp_config(directory, proxy.port, server.ca_file)
        command = pinned(CLIENT_CORE, str(MSMTP), "-C", str(config), "--", RECIPIENT)
        bodies = [message_bytes(index, SIZE) for index in range(messages)]
        began = _now()
        for body in bodies:  # msmtpq's flush: one msmtp after the other
            await _run(command, stdin=body)
        return Felt.of(proxy, began, _now())


async def aiosmtplib_loop(server: AuthServer, messages: int) -> Felt:
    async with DelayProxy("127.0.0.1", server.port, DELAY_S) as proxy:
        args = [str(proxy.port), str(server.ca_file), USER, PASSWORD, str(messages), str(SIZE)]
        began = _now()
        await _run(pinned(CLIENT_CORE, PYTHON, "-m", "tests.bench.send_loop", *args))
        return Felt.of(proxy, began, _now())


def _now() -> float:
    """The loop's clock, which the proxy's time stamps use too."""
    return asyncio.get_running_loop().time()


# -- the figure ----------------------------------------------------------------------------


@contextlib.contextmanager
def on_core(core: str) -> Iterator[None]:
    """This thread (the proxies' loop) on ``core`` while the figure runs, then back."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(core)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def synced_commit_s(directory: Path, commits: int = 50) -> float:
    """The median time of a one-row SQLite commit (WAL, ``synchronous = FULL``) on this disk.

    A flush that keeps the kill promise makes one such commit per message per
    connection between a reply and the next final dot, so each turn costs
    a round trip plus at least this.
    """
    path = directory / "commit-probe.sqlite3"
    times = []
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("CREATE TABLE probe (n INTEGER PRIMARY KEY, state INTEGER)")
        for n in range(commits):
            began = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO probe VALUES (?, 1)", (n,))
            db.execute("COMMIT")
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench_network(processes: Processes, work: Path, messages: int) -> list[Row]:
    ensure_msmtp()
    directory = work / "network"
    home = fill_home(work, messages)
    with on_core(SINK_CORE), auth_server(processes, directory) as server:

        def delivered(run: Felt, before: int, what: str) -> Felt:
            got = server.accepted() - before
            if got != messages:
                raise SystemExit(f"figure 8, {what}: the server accepted {got} of {messages}")
            return run

        ours = delivered(asyncio.run(outbox_flush(server, home)), 0, "outbox flush")
        if sent_count(home) != messages:
            raise SystemExit(f"figure 8: outbox flush did not mark all {messages} sent")
        msmtp = delivered(asyncio.run(msmtp_each(server, directory, messages)), messages, "msmtp")
        loop = delivered(asyncio.run(aiosmtplib_loop(server, messages)), 2 * messages, "aiosmtplib")
        commit_s = synced_commit_s(directory)
    start_s = statistics.median(
        processes.run(pinned(CLIENT_CORE, PYTHON, "-c", "pass")).wall_s for _ in range(5)
    )
    bound_s = turn_bound_s(messages, CONNECTIONS)
    busiest = -(-messages // CONNECTIONS)
    # The bound counts an instant server; the one here (Python, on the other core,
    # serving both connections) takes a few ms to answer each turn, measured by
    # the proxy during this very flush. No client can answer faster than that.
    turns_each = SETUP_TURNS + busiest + CLOSING_TURNS
    server_s = turns_each * max(0.0, ours.server_answer_ms) / 1000
    # The proxy's timer, on the server's core, passes replies on a little late; a
    # client answering at once would still wait for that.
    late_s = turns_each * ours.proxy_late_ms / 1000
    floor_s = bound_s + busiest * commit_s + start_s + server_s + late_s

    def versus(run: Felt) -> str:
        return f"{run.wall_s:.2f} s ({run.wall_s / bound_s:.2f}x the bound)"

    def turns(run: Felt) -> str:
        return (
            f"{run.turns / messages:.2f} client turns/msg over {run.sessions} sessions;"
            f" per turn, the client took {run.answer_ms:.1f} ms (the proxy passing the"
            f" reply on late {run.proxy_late_ms:.1f} ms of it), the server"
            f" {run.server_answer_ms:.1f} ms"
        )

    network_s = ours.last_byte_s + DELAY_S - ours.first_byte_s  # the last reply's way back
    exit_s = ours.wall_s - ours.first_byte_s - network_s
    return [
        Row(
            "8",
            f"flush {messages} x 20 KB, STARTTLS + AUTH, {CONNECTIONS} connections,"
            f" {DELAY_S * 1000:g} ms each way",
            f"{ours.wall_s:.2f} s ({ours.wall_s / bound_s - 1:+.1%} of the bound)",
            f"<= bound + {WITHIN:.0%}",
            f"bound {bound_s:.2f} s = ({SETUP_TURNS:g} + {busiest} + {CLOSING_TURNS}) turns"
            f" x {RTT_S * 1000:g} ms; msmtp {msmtp.wall_s:.1f} s; aiosmtplib {loop.wall_s:.1f} s",
            ours.wall_s <= bound_s * (1 + WITHIN),
        ),
        Row(
            "8t",
            "that flush, where its time went",
            f"start to first byte {ours.first_byte_s:.2f} s; to the last session's"
            f" {ours.last_opened_s:.2f} s; first byte to last reply {network_s:.2f} s"
            f" ({network_s / bound_s - 1:+.1%} of the bound); then exit {exit_s:.2f} s",
            "(no target)",
            turns(ours),
            None,
        ),
        Row(
            "8f",
            "floor: the bound + the server's answers and the proxy's lateness"
            " + 1 synced commit/msg/connection + an interpreter's start",
            f"{floor_s:.2f} s (that flush: {ours.wall_s / floor_s:.2f}x)",
            "(no target)",
            f"server {ours.server_answer_ms:.1f} ms/turn ({server_s:.2f} s, as measured in that"
            f" flush); proxy late {ours.proxy_late_ms:.1f} ms/turn ({late_s:.2f} s); commit"
            f" {commit_s * 1000:.1f} ms (SQLite WAL FULL, median of 50, this disk);"
            f" python -c pass {start_s:.2f} s",
            None,
        ),
        Row(
            "8m",
            "peer: msmtp, one process per message (as msmtpq flushes its queue)",
            versus(msmtp),
            "(peer)",
            turns(msmtp),
            None,
        ),
        Row(
            "8a",
            "peer: aiosmtplib send_message in a loop, 1 connection",
            versus(loop),
            "(peer)",
            turns(loop),
            None,
        ),
    ]
