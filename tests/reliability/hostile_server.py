"""A hostile SMTP server that never stops talking (or talks one byte at a time).

The scripted ``tests.support.fault_server`` answers with fixed texts, however
long; this one *streams*: at one stage of the conversation (the greeting, the
reply to EHLO, or the reply to MAIL) it sends what a generator yields, at a
pace, until the client hangs up or the server stops. Everything before that
stage is an ordinary, polite server. It counts the bytes it pushed, so a test
can see that the client stopped reading long before the server stopped
sending.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.loopback import LoopbackServer, on_own_thread

STAGES = ("greeting", "ehlo", "mail")


def endless_line() -> Iterator[bytes]:
    """One reply line that never ends: no line break, ever."""
    yield b"250 "
    while True:
        yield b"x" * 65536


def endless_multiline() -> Iterator[bytes]:
    """A multi-line reply whose last line never comes."""
    line = b"250-" + b"y" * 72 + b"\r\n"
    while True:
        yield line * 512


def garbage() -> Iterator[bytes]:
    """Random bytes (NULs, 0xFF, stray CR and LF among them), forever."""
    rng = random.Random(7)
    while True:
        yield bytes(rng.getrandbits(8) for _ in range(4096))


def one_byte_at_a_time(text: bytes) -> Callable[[], Iterator[bytes]]:
    """A proper reply, one byte per chunk (pair with ``pace_s``)."""
    return lambda: (bytes([b]) for b in itertools.cycle(text))


@dataclass(frozen=True)
class Behaviour:
    stage: str  # one of STAGES
    chunks: Callable[[], Iterator[bytes]]
    pace_s: float = 0.0  # pause between chunks


class HostileServer(LoopbackServer):
    def __init__(self, behaviour: Behaviour) -> None:
        assert behaviour.stage in STAGES
        super().__init__()
        self.behaviour = behaviour
        self.sent_bytes = 0  # pushed at the hostile stage, over all connections
        self.messages = 0  # data phases completed (should stay 0 when the stage comes first)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._converse(reader, writer)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        for chunk in self.behaviour.chunks():
            writer.write(chunk)
            await writer.drain()  # blocks while the client reads nothing: fine
            self.sent_bytes += len(chunk)
            if self.behaviour.pace_s:
                await asyncio.sleep(self.behaviour.pace_s)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stage = self.behaviour.stage
        if stage == "greeting":
            return await self._stream(writer)
        writer.write(b"220 hostile.test ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                if stage == "ehlo":
                    return await self._stream(writer)
                writer.write(b"250-hostile.test\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                if stage == "mail":
                    return await self._stream(writer)
                writer.write(b"250 OK\r\n")
            elif verb == b"RCPT":
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go on\r\n")
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                self.messages += 1
                writer.write(b"250 OK\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                return
            else:
                writer.write(b"250 OK\r\n")


@contextmanager
def threaded_hostile_server(behaviour: Behaviour) -> Iterator[HostileServer]:
    """A ``HostileServer`` on its own thread and loop; stops, connections and all."""
    with on_own_thread(HostileServer(behaviour), "hostile-server") as server:
        yield server
