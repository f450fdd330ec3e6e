"""A real X server for a test: Xvfb on a display it picks itself, stopped on the way out.

``running_xvfb()`` starts ``Xvfb -displayfd`` (the server chooses a free
display and writes its number to a pipe once it accepts connections, so
there is neither a guessed display nor a sleep), yields ``":N"``, and
terminates the server afterwards, whatever happened. TCP listening is off:
only local clients.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
from collections.abc import Iterator

PROGRAM = "Xvfb"


def missing() -> bool:
    return shutil.which(PROGRAM) is None


@contextlib.contextmanager
def running_xvfb(*, timeout_s: float = 30.0) -> Iterator[str]:
    read_end, write_end = os.pipe()
    try:
        server = subprocess.Popen(
            [PROGRAM, "-displayfd", str(write_end), "-screen", "0", "1280x800x24",
             "-nolisten", "tcp"],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(write_end)
    try:
        number = b""
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_end], [], [], timeout_s)
            chunk = os.read(read_end, 16) if ready else b""
            if not chunk:
                server.kill()
                _, err = server.communicate(timeout=10)
                raise RuntimeError(f"Xvfb did not start: {err.decode(errors='replace')[-500:]}")
            number += chunk
        yield f":{int(number)}"
    finally:
        os.close(read_end)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
