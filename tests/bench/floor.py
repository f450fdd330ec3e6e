"""The floor under figures 1 and 3a: the least a client keeping our promises can do.

RELIABILITY.md promises that a kill during a flush duplicates at most the message in
flight on each connection. So before a message's final dot leaves, the
verdict of the message before it on that connection must be on disk (else a
restart could not tell it was delivered), and so must the record that this
dot is leaving (else it could not tell this one might have been). With
PIPELINING a connection reaches one final dot per turn, so a flush needs at
least one durable commit per message per connection; commits can only be
shared *across* connections.

This script does exactly that and nothing else, so its cost per message is a
floor under (and its speed a ceiling over) any Python client keeping the
promise on this machine: the pipelined wire over asyncio (each connection
writes a message's data, its final dot and the next envelope in one write),
and one row per message in a one-table SQLite journal (WAL,
``synchronous=FULL``), committed once per loop turn in which no connection
joined (the rule of ``relay.attempts.CommitGroup``). With ``--file-journal``
the rows go to a preallocated file synced with ``fdatasync`` instead, the
cheapest durable write there is; with ``--wire-only`` nowhere (the wire
alone). It leaves out everything else a real outbox does: reading bodies from
a store (they are built here, already dot-stuffed), per-recipient state,
attempt rows, transcripts, events, progress, any report to a person.

Standard library only, run as a script (``python tests/bench/floor.py``), so
its start-up is a bare interpreter's. It exits 1 unless the server accepted
every command and every message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Sequence

SENDER = "bench@example.org"
RECIPIENT = "sink@example.net"
ENVELOPE = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()
#: A whole flush on loopback takes seconds; a server that stops answering ends it.
TIMEOUT_S = 120.0

#: Journal states: the final dot is leaving (uncertain if we die), the server said 250.
LEAVING, SENT = 1, 2


def message_bytes(index: int, size: int) -> bytes:
    """Message ``index`` of the bench, ``size`` bytes, CRLF: what every client sends."""
    head = (
        f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: bench {index}\r\n"
        f"Message-ID: <bench-{index}@example.org>\r\nDate: Tue, 24 Nov 2026 12:00:00 +0000\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    body = bytearray(head)
    while len(body) + len(line) <= size:
        body += line
    body += b"y" * max(0, size - len(body) - 2) + b"\r\n"
    return bytes(body)


def message_data(index: int, size: int) -> bytes:
    """``message_bytes`` as it goes on the wire: dot-stuffed, with its final dot."""
    return message_bytes(index, size).replace(b"\r\n.", b"\r\n..") + b".\r\n"


class Journal:
    """One durable row per message; the connections' rows share a commit."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, int]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._seen = 0
        self.commits = 0

    def record(self, leaving: int, sent: int | None) -> asyncio.Future[None]:
        """Done once ``leaving``'s dot record and ``sent``'s verdict are on disk."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._commit)
        future = loop.create_future()
        self._waiting.append(future)
        self._rows.append((leaving, LEAVING))
        if sent is not None:
            self._rows.append((sent, SENT))
        return future

    def settle(self, sent: int) -> None:
        """The last message of a connection: its verdict, on disk before we exit."""
        self.write([(sent, SENT)])

    def write(self, rows: list[tuple[int, int]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the journal's file or connection (every row written is already durable)."""
        raise NotImplementedError

    def _commit(self) -> None:
        if len(self._waiting) != self._seen:  # somebody joined last turn: one more turn
            self._seen = len(self._waiting)
            asyncio.get_running_loop().call_soon(self._commit)
            return
        self._seen = 0
        rows, self._rows = self._rows, []
        waiting, self._waiting = self._waiting, []
        self.write(rows)
        self.commits += 1
        for future in waiting:
            future.set_result(None)


class SQLiteJournal(Journal):
    """A one-table SQLite journal, WAL and ``synchronous=FULL`` as the outbox's store."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS journal (message INTEGER PRIMARY KEY, state INTEGER)"
        )

    def write(self, rows: list[tuple[int, int]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT OR REPLACE INTO journal VALUES (?, ?)", rows)
        self._db.execute("COMMIT")

    def close(self) -> None:
        # sqlite3.Connection's own ``with`` only ends a transaction; closing is explicit,
        # so the write-ahead log is checkpointed and removed here, not by a finaliser.
        self._db.close()


class FileJournal(Journal):
    """No database: 16 bytes a row written into a preallocated file, then ``fdatasync``.

    The cheapest durable record this machine offers (nothing to checksum, no
    file size or metadata to sync), so the closest a client can come to the
    wire-only speed while keeping the promise.
    """

    SIZE = 1 << 20

    def __init__(self, path: str) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self._fd, self.SIZE)
        os.fsync(self._fd)
        self._offset = 0

    def write(self, rows: list[tuple[int, int]]) -> None:
        data = b"".join(b"%014d%d\n" % row for row in rows)
        if self._offset + len(data) > self.SIZE:
            self._offset = 0  # a real journal would checkpoint here; the cost is the same
        os.pwrite(self._fd, data, self._offset)
        self._offset += len(data)
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class Connection(asyncio.Protocol):
    """One pipelined session; ``replies(n)`` waits for the next ``n`` reply codes."""

    def __init__(self) -> None:
        self._buffer = b""
        self._codes: list[int] = []
        self._wanted = 0
        self._waiter: asyncio.Future[None] | None = None
        self._lost: Exception | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\r\n")
        for line in lines:
            if line[3:4] != b"-":  # the last line of a reply
                self._codes.append(int(line[:3]))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("the server closed the connection")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        ready = len(self._codes) >= self._wanted or self._lost is not None
        if waiter is not None and not waiter.done() and ready:
            waiter.set_result(None)

    async def replies(self, count: int) -> list[int]:
        if len(self._codes) < count:
            if self._lost is not None:
                raise self._lost
            self._wanted = count
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            if len(self._codes) < count:
                raise self._lost or ConnectionError("lost")
        codes = self._codes[:count]
        del self._codes[:count]
        return codes

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def expect(codes: list[int], wanted: Sequence[int]) -> None:
    if codes != list(wanted):
        raise SystemExit(f"floor: the server replied {codes}, expected {list(wanted)}")


async def session(
    port: int, messages: Sequence[tuple[int, bytes]], journal: Journal | None
) -> None:
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(Connection, "127.0.0.1", port)
    expect(await connection.replies(1), [220])
    connection.write(b"EHLO floor.example.org\r\n")
    expect(await connection.replies(1), [250])
    connection.write(ENVELOPE)
    previous: int | None = None
    for position, (number, data) in enumerate(messages):
        # The last dot's 250 (none before the first message), then MAIL, RCPT, DATA.
        codes = await connection.replies(3 if previous is None else 4)
        expect(codes, [250, 250, 354] if previous is None else [250, 250, 250, 354])
        if journal is not None:
            await journal.record(number, previous)
        last = position == len(messages) - 1
        connection.write(data if last else data + ENVELOPE)
        previous = number
    expect(await connection.replies(1), [250])
    if journal is not None and previous is not None:
        journal.settle(previous)
    connection.write(b"QUIT\r\n")
    expect(await connection.replies(1), [221])
    assert connection.transport is not None
    connection.transport.close()


async def flush(port: int, count: int, connections: int, journal: Journal | None) -> None:
    messages = [(number, message_data(number, 2048)) for number in range(count)]
    dealt = [messages[index::connections] for index in range(connections)]
    await asyncio.wait_for(
        asyncio.gather(*(session(port, part, journal) for part in dealt if part)), TIMEOUT_S
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("connections", type=int)
    parser.add_argument("journal", help="the journal file to create (unused with --wire-only)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--wire-only", action="store_true", help="no journal at all")
    kind.add_argument("--file-journal", action="store_true", help="a synced file, not SQLite")
    args = parser.parse_args(argv)
    journal: Journal | None = None
    if args.file_journal:
        journal = FileJournal(args.journal)
    elif not args.wire_only:
        journal = SQLiteJournal(args.journal)
    try:
        asyncio.run(flush(args.port, args.count, args.connections, journal))
    finally:
        if journal is not None:
            journal.close()
    if journal is not None:
        print(f"floor: {args.count} messages, {journal.commits} commits", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
