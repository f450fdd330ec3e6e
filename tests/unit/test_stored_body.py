"""A large claimed message streams from the store: never held whole, never blocking the writer."""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path

from relay.message import parse_message
from relay.store.body import INLINE_BODY_BYTES, StoredBody
from relay.store.outbox import Outbox

PIECE = 64 * 1024


def raw_message(size: int, tag: str = "big") -> bytes:
    head = (
        "From: ann@example.org\r\nTo: bob@example.net\r\n"
        f"Subject: {tag}\r\nDate: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\n"
    ).encode()
    line = b".starts with a dot" + b"x" * 60 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def stored(tmp_path: Path, *sizes: int) -> tuple[Outbox, list[int]]:
    outbox = Outbox.open(tmp_path / "home")
    ids = [
        outbox.add_message(parse_message(raw_message(size, f"m{index}"))).id
        for index, size in enumerate(sizes)
    ]
    return outbox, ids


def test_a_large_claimed_message_streams_and_a_small_one_is_read_whole(tmp_path: Path) -> None:
    outbox, (big, small) = stored(tmp_path, 3 * 1024 * 1024, 2048)
    with outbox:
        claimed = {m.id: m for m in outbox.claim([big, small])}
        assert isinstance(claimed[small].body, bytes)
        assert claimed[small].body == outbox.raw(small)
        body = claimed[big].body
        assert isinstance(body, StoredBody)
        assert body.size == claimed[big].size == len(outbox.raw(big)) > INLINE_BODY_BYTES
        pieces = list(body.pieces(PIECE))
        assert max(len(p) for p in pieces) == PIECE
        assert b"".join(pieces) == outbox.raw(big)


def test_claiming_and_reading_a_large_body_never_holds_it_whole(tmp_path: Path) -> None:
    size = 16 * 1024 * 1024
    outbox, (big,) = stored(tmp_path, size)
    with outbox:
        tracemalloc.start()
        try:
            (message,) = outbox.claim([big])
            assert not isinstance(message.body, bytes)
            read = 0
            generator = message.body.pieces(PIECE)
            for piece in generator:
                read += len(piece)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert read == message.size >= size - 100
        assert peak < 1024 * 1024  # a few pieces, not the 16 MB body


def test_a_writer_is_not_blocked_while_a_body_is_being_read(tmp_path: Path) -> None:
    outbox, (big, other) = stored(tmp_path, 2 * 1024 * 1024, 2048)
    with outbox:
        (message,) = outbox.claim([big])
        assert isinstance(message.body, StoredBody)
        pieces = message.body.pieces(PIECE)
        first = next(pieces)
        # Another process's writer, not willing to wait at all: the reader must not stop it.
        writer = sqlite3.connect(outbox.path, timeout=0, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE messages SET held = 1 WHERE id = ?", (other,))
            writer.execute("COMMIT")
        finally:
            writer.close()
        outbox.hold([other])  # and the store's own connection writes too
        rest = b"".join(pieces)
        assert first + rest == outbox.raw(big)


def test_closing_the_pieces_early_releases_the_read(tmp_path: Path) -> None:
    outbox, (big,) = stored(tmp_path, 2 * 1024 * 1024)
    with outbox:
        (message,) = outbox.claim([big])
        assert isinstance(message.body, StoredBody)
        pieces = message.body.pieces(PIECE)
        next(pieces)
        pieces.close()
        # With no reader left, a full checkpoint can move every page out of the WAL.
        outbox.hold([big])
        checkpoint = sqlite3.connect(outbox.path, isolation_level=None)
        try:
            busy, _, _ = checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            checkpoint.close()
        assert busy == 0
