"""A password from a program: the account's ``password_command`` (msmtp's ``passwordeval``).

For a machine without a keyring (headless, a minimal desktop, cron over SSH)
or a person who keeps passwords elsewhere (``pass``, ``gopass``,
``keepassxc-cli``, ``secret-tool``, an OAuth helper), an account may name a
command instead of storing a password. It is run by ``sh -c`` each time a
flush (or ``account test``) needs the password, and what it prints on
standard output, less one trailing line ending, is the password. Nothing
is stored, and the password goes nowhere but the AUTH command (whose
transcript hides it as it hides every password).

The rules this module keeps:

- The command gets no standard input (``/dev/null``): a flush in the window or
  from cron has nobody to answer, and a program waiting for a line would hang
  the flush. Agents (gpg-agent's pinentry, KeePassXC) ask through their own
  windows.
- It must finish within ``timeout_s``; it runs in a session of its own so
  that, on a timeout or when the flush is cancelled, the whole process group
  (a shell pipeline) is killed and reaped before this returns: nothing it
  started outlives the flush.
- A failure -- it cannot start, exits non-zero, is killed, times out, prints
  nothing, prints more than one line or no UTF-8 -- is ``PasswordCommandFailed``,
  one line that names the account and what went wrong, with the last line of
  the command's standard error (escaped, bounded) when it said something.
  What it printed on standard output is never repeated: it may be the
  password. A flush defers that account's mail on this error (a locked
  password store is a passing state), and says why once per account.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from relay.errors import OutboxError

#: Long enough for a person to answer an agent's pinentry, short enough not to hang a flush.
TIMEOUT_S = 60.0
_MAX_OUTPUT_BYTES = 64 * 1024
_MAX_DETAIL_CHARS = 200
#: Of the command's standard error, enough for its last line.
_MAX_DETAIL_BYTES = 4096


class PasswordCommandFailed(OutboxError):
    """The account's password command gave no password; trying later may work."""

    exit_code = 75  # EX_TEMPFAIL


async def run_password_command(
    account_name: str, command: str, *, timeout_s: float = TIMEOUT_S
) -> str:
    """The password ``command`` prints; ``PasswordCommandFailed`` when it gives none."""
    where = f"account {account_name}: the password command"
    # The process exists as soon as creating it starts; a cancellation then must
    # still end it (and its group), so the creation is shielded and awaited.
    creating = asyncio.ensure_future(
        asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    )
    try:
        process = await asyncio.shield(creating)
    except asyncio.CancelledError:
        with contextlib.suppress(OSError):
            await _end(await creating)
        raise
    except OSError as exc:
        raise PasswordCommandFailed(f"{where} could not start: {exc.strerror}") from None
    try:
        stdout, stderr = await asyncio.wait_for(_output(process), timeout_s)
    except TimeoutError:
        await _end(process)
        raise PasswordCommandFailed(
            f"{where} did not finish within {timeout_s:g} s and was stopped"
        ) from None
    except BaseException:  # cancelled: end it, and all it started, before going
        await _end(process)
        raise
    if len(stdout) > _MAX_OUTPUT_BYTES:
        await _end(process)
        raise PasswordCommandFailed(f"{where} printed more than {_MAX_OUTPUT_BYTES} bytes")
    said = _last_line(stderr)
    if process.returncode != 0:
        how = (
            f"was killed by signal {-process.returncode}"
            if process.returncode is not None and process.returncode < 0
            else f"exited with status {process.returncode}"
        )
        raise PasswordCommandFailed(f"{where} {how}{said}")
    return _password_from(stdout, where, said)


async def _output(process: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """What the command printed, once it has exited; at most what is worth keeping.

    Standard output is read up to one byte past the most a password may be
    (``communicate()`` would keep all of it: ``yes`` as the command filled
    memory by a gigabyte every few seconds until the timeout); the caller
    then ends the command. Of standard error only the tail is kept.
    """
    assert process.stdout is not None and process.stderr is not None
    tail = asyncio.ensure_future(_tail(process.stderr, _MAX_DETAIL_BYTES))
    try:
        stdout = bytearray()
        while len(stdout) <= _MAX_OUTPUT_BYTES:
            chunk = await process.stdout.read(_MAX_OUTPUT_BYTES + 1 - len(stdout))
            if not chunk:
                break
            stdout += chunk
        if len(stdout) > _MAX_OUTPUT_BYTES:
            return bytes(stdout), b""
        stderr = await tail
        await process.wait()
    finally:
        tail.cancel()
    return bytes(stdout), stderr


async def _tail(stream: asyncio.StreamReader, keep: int) -> bytes:
    """The last ``keep`` bytes ``stream`` gives before its end."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-keep:]
    return kept


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill ``process`` and everything in its session, and reap it.

    The group is killed even when the shell itself has exited: a program it
    left in the background may still hold the output pipe. Its id cannot
    have been reused while any member lives.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    # asyncio's Process has no public close. Its pipes are closed here, before the
    # wait: a pipe nobody reads any more (a command stopped while it was printing)
    # stays paused with unread data, never reaches its end, and wait() would never
    # return. Nor may the garbage collector close them after the loop is gone.
    transport = getattr(process, "_transport", None)
    if transport is not None:
        for fd in (1, 2):
            pipe = transport.get_pipe_transport(fd)
            if pipe is not None:
                pipe.close()
    await asyncio.shield(process.wait())
    if transport is not None:
        transport.close()


def _password_from(stdout: bytes, where: str, said: str) -> str:
    try:
        text = stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordCommandFailed(f"{where} printed something that is not UTF-8") from None
    # One trailing line ending ends the line; it is not part of the password.
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise PasswordCommandFailed(f"{where} printed no password{said}")
    if "\n" in password or "\r" in password:
        raise PasswordCommandFailed(
            f"{where} printed more than one line; make it print only the password"
            " (for pass: 'pass show NAME | head -n 1')"
        )
    return password


def _last_line(stderr: bytes) -> str:
    """`` (<the last thing the command said on stderr>)``, escaped and bounded; or ""."""
    from relay.visible import visible

    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    line = visible(lines[-1])
    if len(line) > _MAX_DETAIL_CHARS:
        line = line[: _MAX_DETAIL_CHARS - 1] + "…"
    return f" ({line})"
