"""The detail pane: headers, a readable body, recipients, attempts and a redacted transcript."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.detail_pane import DetailPane, body_preview, redacted
from relay.message import parse_message
from relay.policy import Verdict
from relay.states import RecipientState
from relay.store.outbox import Outbox
from tests.gui.messages import message_bytes


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("C: AUTH PLAIN AGFsaWNlAHNlY3JldA==", "C: AUTH PLAIN ****"),
        ("C: AUTH PLAIN ****", "C: AUTH PLAIN ****"),
        ("C: auth login", "C: auth login"),
        ("C: MAIL FROM:<a@example.org>", "C: MAIL FROM:<a@example.org>"),
    ],
)
def test_auth_arguments_never_show(line: str, shown: str) -> None:
    assert redacted(line) == shown


def test_answers_to_a_334_challenge_never_show() -> None:
    transcript = "\n".join(
        [
            "C: AUTH LOGIN",
            "S: 334 VXNlcm5hbWU6",
            "C: YWxpY2U=",
            "S: 334 UGFzc3dvcmQ6",
            "C: c2VjcmV0",
            "S: 235 2.7.0 Authentication successful",
            "C: MAIL FROM:<alice@example.org>",
        ]
    )
    assert redacted(transcript).splitlines() == [
        "C: AUTH LOGIN",
        "S: 334 VXNlcm5hbWU6",
        "C: ****",
        "S: 334 UGFzc3dvcmQ6",
        "C: ****",
        "S: 235 2.7.0 Authentication successful",
        "C: MAIL FROM:<alice@example.org>",
    ]


def test_the_preview_prefers_plain_text_and_decodes_it() -> None:
    raw = (
        b"From: a@example.org\r\nTo: b@example.net\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hallo <b>Welt</b></p>\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nHallo Gr=C3=BC=C3=9Fe\r\n--XX--\r\n"
    )
    headers, body = body_preview(raw)
    assert headers.startswith("From: a@example.org\nTo: b@example.net\n")
    assert body.strip() == "Hallo Grüße"


def test_an_html_only_message_is_shown_as_text() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>Fish &amp; chips</p></body></html>\r\n"
    )
    assert body_preview(raw)[1].strip() == "Fish & chips"


def test_the_pane_shows_recipients_attempts_and_the_transcript_of_the_chosen_attempt(
    qtbot: QtBot, tmp_path: Path
) -> None:
    with Outbox.open(tmp_path / "home") as outbox:
        snapshot = outbox.add_message(
            parse_message(message_bytes(["ok@example.net", "no@example.net"], "Report"))
        )
        outbox.claim([snapshot.id])
        attempt = outbox.start_attempt(snapshot.id, account="work", server="smtp.example.org:587")
        outbox.finish_attempt(
            snapshot.id,
            attempt,
            {
                "ok@example.net": Verdict(RecipientState.SENT, "250 2.0.0 queued"),
                "no@example.net": Verdict(RecipientState.FAILED, "550 5.1.1 unknown user"),
            },
            outcome="partial",
            error="550 5.1.1 unknown user",
            next_attempt_at=None,
            transcript="S: 220 hi\nC: AUTH PLAIN c2VjcmV0\nS: 235 ok\nC: RCPT TO:<no@example.net>",
        )
        pane = DetailPane(outbox)
        qtbot.addWidget(pane)
        pane.show_message(snapshot.id)

        assert pane.title.text() == f"Message {snapshot.id} · failed · Report"
        assert "Subject: Report" in pane.headers.toPlainText()
        assert "quick brown fox" in pane.body.toPlainText()
        rows = [
            [pane.recipients.topLevelItem(i).text(c) for c in range(3)]
            for i in range(pane.recipients.topLevelItemCount())
        ]
        assert rows == [
            ["ok@example.net", "sent", "250 2.0.0 queued"],
            ["no@example.net", "failed", "550 5.1.1 unknown user"],
        ]
        assert pane.attempts.topLevelItemCount() == 1
        assert pane.attempts.topLevelItem(0).text(4) == "partial"
        assert pane.transcript.toPlainText().splitlines() == [
            "S: 220 hi",
            "C: AUTH PLAIN ****",
            "S: 235 ok",
            "C: RCPT TO:<no@example.net>",
        ]

        outbox.delete([snapshot.id])
        pane.refresh({snapshot.id})
        assert pane.title.text() == "No message selected"
        assert not pane.tabs.isEnabled()


def test_a_bidi_override_in_the_subject_shows_as_its_escape_in_the_pane_and_the_table(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from gui.outbox_model import Column, OutboxModel

    raw = (
        "From: ann@example.org\r\nTo: bob@example.net\r\n"
        "Subject: abc\u202egnp.exe\u200b\r\n\r\nhello\r\n"
    ).encode()
    with Outbox.open(tmp_path / "home") as outbox:
        snapshot = outbox.add_message(parse_message(raw))
        pane = DetailPane(outbox)
        qtbot.addWidget(pane)
        pane.show_message(snapshot.id)
        model = OutboxModel()
        model.load([snapshot])

        assert pane.title.text().endswith(" · abc\\u202egnp.exe\\u200b")
        assert "Subject: abc\\u202egnp.exe\\u200b" in pane.headers.toPlainText()
        shown = model.index(0, Column.SUBJECT).data()
        tooltip = model.index(0, Column.SUBJECT).data(Qt.ItemDataRole.ToolTipRole)
        assert shown == "abc\\u202egnp.exe\\u200b"
        assert "\u202e" not in tooltip and "\\u202e" in tooltip
        assert snapshot.subject == "abc\u202egnp.exe\u200b"  # stored as it came


def test_attachments_are_listed_with_name_type_and_size(qtbot: QtBot, tmp_path: Path) -> None:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"] = "ann@example.org"
    mail["To"] = "bob@example.org"
    mail["Subject"] = "Photos"
    mail.set_content("Two photos and a table.\n")
    mail.add_attachment(b"\xff\xd8" + b"x" * 2_400_000, maintype="image", subtype="jpeg",
                        filename="beach.jpg")  # fmt: skip
    mail.add_attachment("a,b\n1,2\n", subtype="csv", filename="numbers.csv")
    mail.add_attachment(b"MZ", maintype="application", subtype="octet-stream",
                        filename="invoice\u202efdp.exe")  # fmt: skip
    raw = mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))
    with Outbox.open(tmp_path / "home") as outbox:
        snapshot = outbox.add_message(parse_message(raw))
        pane = DetailPane(outbox)
        qtbot.addWidget(pane)
        pane.show()
        pane.show_message(snapshot.id)
        listed = [
            tuple(pane.attachments.topLevelItem(i).text(c) for c in range(3))
            for i in range(pane.attachments.topLevelItemCount())
        ]
        assert listed == [
            ("beach.jpg", "image/jpeg", "2.4 MB"),
            ("numbers.csv", "text/csv", "10 bytes"),  # its lines end in CRLF in mail
            ("invoice\\u202efdp.exe", "application/octet-stream", "2 bytes"),  # escaped
        ]
        assert pane.attachments.isVisible()
        assert pane.body.toPlainText() == "Two photos and a table.\n"
        plain = outbox.add_message(parse_message(message_bytes("bob@example.org")))
        pane.show_message(plain.id)
        assert not pane.attachments.isVisible()
