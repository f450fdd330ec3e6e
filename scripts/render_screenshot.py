"""Render the window over a realistic outbox to a PNG (docs/screenshot.png by default).

    uv run python scripts/render_screenshot.py [--dark] [OUTPUT.png]

Everything happens in a temporary home, offscreen, with the window's settings
in a temporary directory: nothing of yours is read or written. The outbox is
filled through the engine's own calls (the same ones the attempt manager
makes), so every state, reply and transcript is one the real engine writes;
one message is shown mid-flight, its progress from the engine's events.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QLocale, QSettings  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.app import APPLICATION_NAME, create_main_window  # noqa: E402
from gui.outbox_model import ID_ROLE  # noqa: E402
from relay.accounts import Security, make_account, save_accounts  # noqa: E402
from relay.events import (  # noqa: E402
    FlushStarted,
    MessageChanged,
    MessageSnapshot,
    PhaseChanged,
    ProgressMade,
)
from relay.message import parse_message  # noqa: E402
from relay.policy import Verdict  # noqa: E402
from relay.report import Reply, Stage  # noqa: E402
from relay.states import Phase, RecipientState  # noqa: E402
from relay.store.outbox import AttemptReply, Outbox  # noqa: E402

SERVER = "smtp.example.org:587"
NOW = datetime.now(UTC).replace(microsecond=0)

MESSAGES = [
    # (recipients, subject, body size, what happens)
    (["maria.lopez@example.com"], "Q3 report - final numbers", 48_000, "sent"),
    (["dev-team@lists.example.org"], "[PATCH v2 3/7] relay: stream DATA in chunks", 9_200, "sent"),
    (["jonas@example.net", "ines@example.net"], "Dinner on Friday?", 1_400, "sent"),
    (["billing@example.com"], "Invoice 2026-1147", 182_000, "sending"),
    (["a.kowalski@example.pl"], "Photos from the trip", 4_600_000, "queued"),
    (["support@example.io"], "Re: ticket #88213 - still failing", 3_100, "deferred"),
    (["old.colleague@example.edu", "team@example.com"], "Farewell and thanks", 2_200, "failed"),
    (["press@example.org"], "Embargoed: launch announcement", 12_500, "held"),
    (["noreply@example.com"], "Unsubscribe", 900, "uncertain"),
    (["hr@example.com"], "Holiday request, 22-29 December", 1_800, "queued"),
]


def transcript(recipients: list[str], replies: dict[str, str], size: int, final: str) -> str:
    lines = [
        "*: connected to smtp.example.org (203.0.113.25) port 587",
        "S: 220 smtp.example.org ESMTP ready",
        "C: EHLO laptop.example.com",
        "S: 250-smtp.example.org",
        "S: 250-SIZE 52428800",
        "S: 250-8BITMIME",
        "S: 250-STARTTLS",
        "S: 250 PIPELINING",
        "C: STARTTLS",
        "S: 220 2.0.0 Ready to start TLS",
        "*: TLS 1.3, TLS_AES_256_GCM_SHA384, certificate verified for smtp.example.org",
        "C: EHLO laptop.example.com",
        "S: 250-smtp.example.org",
        "S: 250-AUTH PLAIN LOGIN",
        "S: 250 SIZE 52428800",
        "C: AUTH PLAIN ****",
        "S: 235 2.7.0 Authentication successful",
        f"C: MAIL FROM:<me@example.com> SIZE={size}",
        "S: 250 2.1.0 Ok",
    ]
    for address in recipients:
        lines += [f"C: RCPT TO:<{address}>", f"S: {replies[address]}"]
    if any(reply.startswith("250") for reply in replies.values()):
        lines += [
            "C: DATA",
            "S: 354 End data with <CR><LF>.<CR><LF>",
            f"C: [message data: {size} bytes]",
            "C: .",
            f"S: {final}",
        ]
    return "\n".join(lines)


def fill(outbox: Outbox) -> tuple[int, int]:
    """Store the messages and play their attempts; (the failed one's id, the sending one's)."""
    failed_id = sending_id = 0
    for number, (recipients, subject, size, fate) in enumerate(MESSAGES):
        created = NOW - timedelta(minutes=90 - number * 7)
        line = "Here is what we talked about, with the numbers attached below.\r\n"
        body = "Hello,\r\n\r\n" + line * (size // len(line)) + "\r\nMe\r\n"
        raw = (
            f"From: Me <me@example.com>\r\nTo: {', '.join(recipients)}\r\n"
            f"Subject: {subject}\r\n\r\n{body}"
        ).encode()
        message_id = outbox.add_message(parse_message(raw), now=created).id
        if fate in ("queued", "held"):
            if fate == "held":
                outbox.hold([message_id])
            continue
        if fate == "sending":
            sending_id = message_id  # claimed once the window is up: see render()
            continue
        outbox.claim([message_id])
        started = created + timedelta(minutes=3)
        attempt = outbox.start_attempt(message_id, account="work", server=SERVER, now=started)
        if fate == "uncertain":
            outbox.mark_data_completed(attempt, recipients)
            continue  # the process "died" here; recovery below makes it uncertain
        queue_id = f"4Xk{number}Tq0zLrz"
        replies = {address: "250 2.1.5 Ok" for address in recipients}
        final = f"250 2.0.0 Ok: queued as {queue_id}"
        verdicts = {a: Verdict(RecipientState.SENT, final) for a in recipients}
        error = None
        next_at = None
        if fate == "deferred":
            reply = "451 4.7.1 Greylisted, please try again in 5 minutes"
            replies = {address: reply for address in recipients}
            verdicts = {a: Verdict(RecipientState.DEFERRED, reply) for a in recipients}
            error, next_at = reply, NOW + timedelta(minutes=4)
        if fate == "failed":
            failed_id = message_id
            gone = recipients[0]
            reply = f"550 5.1.1 <{gone}>: Recipient address rejected: User unknown"
            replies[gone] = reply
            verdicts[gone] = Verdict(RecipientState.FAILED, reply)
            error = reply
        outbox.finish_attempt(
            message_id,
            attempt,
            verdicts,
            outcome="partial" if fate == "failed" else fate,
            error=error,
            next_attempt_at=next_at,
            replies=[
                AttemptReply(a, Reply(Stage.RCPT, int(r[:3]), r[4:])) for a, r in replies.items()
            ],
            sent_bytes=len(raw),
            transcript=transcript(recipients, replies, len(raw), final),
            now=started + timedelta(seconds=2),
        )
    return failed_id, sending_id


def dark_palette() -> QPalette:
    """A plain dark theme (Fusion's roles), to check the window reads on dark too."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#232427",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2b2c2f",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.Highlight: "#3b82f6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#2b2c2f",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Mid: "#3c4043",
        QPalette.ColorRole.Dark: "#111214",
        QPalette.ColorRole.Light: "#3c4043",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f7378"))
    return palette


def render(output: Path, *, dark: bool = False) -> Path:
    app = QApplication.instance() or QApplication([APPLICATION_NAME])
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    # Times as an English (US) desktop writes them, whatever the machine rendering it.
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
    if dark:
        app.setPalette(dark_palette())
    with tempfile.TemporaryDirectory() as scratch:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, scratch)
        home = Path(scratch) / "home"
        home.mkdir(mode=0o700)
        save_accounts(
            home,
            [
                make_account(
                    "work",
                    "smtp.example.org",
                    security=Security.STARTTLS,
                    user="me@example.com",
                    default=True,
                )
            ],
        )
        with Outbox.open(home) as outbox:
            failed_id, sending_id = fill(outbox)
        # Opening the window settles the "uncertain" one, as after a real crash
        # (``relay.attempts.recover_interrupted``), then one message is in flight.
        window = create_main_window(home)
        bus = window.engine.bus
        bus.publish(FlushStarted(2, window.outbox.get(sending_id).size + 4_600_000))
        changed: list[MessageSnapshot] = []
        (claimed,) = window.outbox.claim([sending_id], changed=changed)
        for snapshot in changed:  # what a flush's relaying manager announces
            bus.publish(MessageChanged(snapshot))
        bus.publish(PhaseChanged("work", Phase.SENDING, sending_id))
        bus.publish(ProgressMade(sending_id, int(claimed.size * 0.62), claimed.size))
        window.resize(1280, 780)
        window.show()
        window.model.apply_pending()
        proxy = window.view.model()
        for row in range(proxy.rowCount()):
            if proxy.index(row, 0).data(ID_ROLE) == failed_id:
                window.view.selectRow(row)
        window.detail.tabs.setCurrentIndex(1)  # recipients and their replies
        QTest.qWait(400)  # let the coalesced redraws and the status bar's timer run
        # No real flush runs here: show the actions as a running flush leaves them.
        for action, on in (
            (window.action_flush, False),
            (window.action_flush_selected, False),
            (window.action_stop, True),
            (window.action_retry, False),
            (window.action_retry_failed, False),
        ):
            action.setEnabled(on)
        image = window.grab()
        output.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(output)):
            raise SystemExit(f"could not write {output}")
        window.runner.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
    return output


def main() -> int:
    args = sys.argv[1:]
    dark = "--dark" in args
    names = [a for a in args if a != "--dark"]
    default = "screenshot-dark.png" if dark else "screenshot.png"
    output = Path(names[0]) if names else ROOT / "docs" / default
    print(render(output.resolve(), dark=dark))
    return 0


if __name__ == "__main__":
    sys.exit(main())
