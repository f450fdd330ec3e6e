"""Putting a message into the drop folder, when the store cannot take it now.

``outbox sendmail`` and ``outbox enqueue`` store a message in one SQLite
transaction. If another process holds the store's write lock for longer than
``INTAKE_BUSY_S`` (a flush suspended with Ctrl-Z, a long command, another
program with the file open), the caller -- cron, a mail client -- must not
wait a minute and then lose the message: it goes into ``<home>/drop/new/``
instead, and the next flush or the window imports it exactly once
(``relay.dropfolder``).

The delivery is Maildir's: write ``drop/tmp/NAME``, ``fsync`` it, rename it
into ``drop/new/NAME`` (atomic: the importer never sees half a message) and
``fsync`` ``drop/new/``, so once this returns the file survives a crash and a
power loss as a committed transaction would.

A message that came through ``sendmail`` has an envelope that its header need
not show (recipients named on the command line, ``-f``, ``--account``), so the
file starts with one line the importer takes off again::

    X-Outbox-Envelope: {"sender": "...", "recipients": ["..."], "account": null}

(with ``"dsn": {"notify": ..., "ret": ..., "envid": ...}`` when the caller
asked for delivery status notifications, and ``"not_before": "<ISO 8601>"``
when ``enqueue --at`` scheduled it)

followed by the message exactly as it would have been stored (Bcc already
removed). A file without that first line is an ordinary drop file, its
envelope taken from its header.

Imported by ``outbox sendmail`` on every call: ``json`` only when a file is written.
"""

from __future__ import annotations

import os
import stat
import time
from contextlib import suppress
from pathlib import Path

TYPE_CHECKING = False  # not typing's: importing typing costs `outbox sendmail` start-up
if TYPE_CHECKING:
    from datetime import datetime

    from relay.dsn import DsnRequest
    from relay.message import ParsedMessage

DROP_DIR = "drop"
ENVELOPE_FIELD = b"X-Outbox-Envelope: "

#: How long intake waits for a busy store before it uses the drop folder.
INTAKE_BUSY_S = 2.0


def drop_paths(home: Path) -> tuple[Path, Path, Path, Path]:
    """``drop/``, ``drop/tmp/``, ``drop/new/``, ``drop/rejected/``, created 0700."""
    drop = home / DROP_DIR
    paths = (drop, drop / "tmp", drop / "new", drop / "rejected")
    for path in paths:
        with suppress(FileExistsError):
            os.mkdir(path, 0o700)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            from relay.machineproblems import HomeUnusable  # exit 73, as for the home

            raise HomeUnusable(
                f"{path}: the drop folder must be a directory, and this is not one; move it"
                f" away (Outbox makes the folder again) or choose another home with --home"
            )
    return paths


def deliver_to_drop(
    home: Path,
    parsed: ParsedMessage,
    *,
    account: str | None,
    dsn: DsnRequest | None = None,
    not_before: datetime | None = None,
) -> Path:
    """Write ``parsed`` with its envelope into ``<home>/drop/new/``, durably; its path."""
    import json

    _drop, tmp, new, _rejected = drop_paths(home)
    fields: dict[str, object] = {
        "sender": parsed.sender,
        "recipients": list(parsed.recipients),
        "account": account,
    }
    if dsn:
        fields["dsn"] = {"notify": dsn.notify, "ret": dsn.ret, "envid": dsn.envid}
    if not_before is not None:
        fields["not_before"] = not_before.isoformat()
    envelope = json.dumps(fields, ensure_ascii=True)
    data = ENVELOPE_FIELD + envelope.encode("ascii") + b"\r\n" + parsed.raw
    # Maildir's unique name: the time first, so the importer takes files in order.
    name = f"{time.time_ns()}.P{os.getpid()}R{os.urandom(6).hex()}.outbox"
    temporary = tmp / name
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = new / name
        os.rename(temporary, final)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(new, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


class Envelope:
    """The envelope line of a drop file (see the module's docstring)."""

    __slots__ = ("account", "dsn", "not_before", "recipients", "sender")

    def __init__(
        self,
        sender: str,
        recipients: list[str],
        account: str | None,
        dsn: DsnRequest | None = None,
        not_before: datetime | None = None,
    ) -> None:
        self.sender = sender
        self.recipients = recipients
        self.account = account
        self.dsn = dsn
        self.not_before = not_before


def split_envelope(data: bytes) -> tuple[Envelope | None, bytes]:
    """The envelope a drop file starts with (or None) and the message after it.

    Raises ``ValueError`` with a reason when the line is there but unreadable.
    """
    if not data.startswith(ENVELOPE_FIELD):
        return None, data
    import json

    line, _, rest = data.partition(b"\n")
    try:
        fields = json.loads(line[len(ENVELOPE_FIELD) :].decode("ascii").strip())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable {ENVELOPE_FIELD.decode().strip()} line") from exc
    sender = fields.get("sender") if isinstance(fields, dict) else None
    recipients = fields.get("recipients") if isinstance(fields, dict) else None
    account = fields.get("account") if isinstance(fields, dict) else None
    if (
        not isinstance(sender, str)
        or not isinstance(recipients, list)
        or not all(isinstance(r, str) for r in recipients)
        or not (account is None or isinstance(account, str))
    ):
        raise ValueError(f"malformed {ENVELOPE_FIELD.decode().strip()} line")
    envelope = Envelope(
        sender, recipients, account, _dsn(fields.get("dsn")), _moment(fields.get("not_before"))
    )
    return envelope, rest


def _moment(text: object) -> datetime | None:
    """The ``not_before`` of an envelope line: an ISO 8601 time with its offset."""
    if text is None:
        return None
    from datetime import datetime

    from relay.schedule import KEEPABLE

    field = ENVELOPE_FIELD.decode().strip()
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"malformed not_before in the {field} line")
    # As ``enqueue --at`` does: a time the store or a display cannot hold
    # (year 9999 at -23:59) would stop every import, and so every flush.
    if not KEEPABLE[0] <= moment <= KEEPABLE[1]:
        raise ValueError(f"not_before {text!r} in the {field} line is out of the range of dates")
    return moment


def _dsn(fields: object) -> DsnRequest | None:
    """The DSN request (RFC 3461) of an envelope line, as ``outbox sendmail -N/-R/-V`` took it."""
    if fields is None:
        return None
    if not isinstance(fields, dict) or not all(
        fields.get(key) is None or isinstance(fields.get(key), str)
        for key in ("notify", "ret", "envid")
    ):
        raise ValueError(f"malformed DSN in the {ENVELOPE_FIELD.decode().strip()} line")
    from relay.dsn import DsnRequest, check_envid, parse_notify, parse_ret
    from relay.errors import UsageError

    # Checked as ``sendmail -N/-R/-V`` checks them: any program may write a drop
    # file, and NOTIFY and RET go onto the wire as they are.
    notify, ret, envid = (fields.get(key) for key in ("notify", "ret", "envid"))
    try:
        return DsnRequest(
            None if notify is None else parse_notify(notify),
            None if ret is None else parse_ret(ret),
            None if envid is None else check_envid(envid),
        )
    except UsageError as exc:
        raise ValueError(f"{exc} in the {ENVELOPE_FIELD.decode().strip()} line") from None
