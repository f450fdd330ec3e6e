"""The session transcript: readable, per transaction, and bounded whatever the server sends."""

from __future__ import annotations

from relay.smtp.transcript import Transcript


def test_replies_render_as_smtp_lines_with_continuations() -> None:
    transcript = Transcript()
    transcript.client("EHLO [127.0.0.1]")
    transcript.server(250, ["mail.example", "SIZE 100", "8BITMIME"])
    assert transcript.render() == (
        "C: EHLO [127.0.0.1]\nS: 250-mail.example\nS: 250-SIZE 100\nS: 250 8BITMIME"
    )


def test_a_transaction_renders_with_the_preamble_but_not_earlier_transactions() -> None:
    transcript = Transcript()
    transcript.server(220, ["hello"])
    transcript.pin()
    transcript.client("MAIL FROM:<first@example.org>")
    mark = transcript.mark()
    transcript.client("MAIL FROM:<second@example.org>")
    text = transcript.render(since=mark)
    assert "S: 220 hello" in text
    assert "second@" in text and "first@" not in text


def test_an_endless_server_keeps_the_transcript_bounded_and_the_preamble_whole() -> None:
    transcript = Transcript(max_chars=10_000, max_line_chars=200)
    transcript.note("connected to mail.example:587")
    transcript.pin()
    for _ in range(100_000):
        transcript.server(250, ["x" * 5_000])
    text = transcript.render()
    assert len(text) < 12_000
    assert text.startswith("*: connected to mail.example:587")
    assert "lines not kept" in text
    assert "more characters" in text


def test_line_breaks_inside_a_recorded_line_cannot_forge_new_lines() -> None:
    transcript = Transcript()
    transcript.server(250, ["ok\r\nC: AUTH PLAIN c2VjcmV0"])
    assert transcript.render().count("\n") == 0


def test_interleaved_transactions_render_apart_by_owner() -> None:
    # Pipelining: the second message's group goes out with the first one's final
    # dot, before the first one's verdict arrives.
    transcript = Transcript()
    transcript.server(220, ["hello"])
    transcript.pin()
    mark = transcript.mark()
    transcript.owner = 1
    transcript.clients(["MAIL FROM:<a@example.org>", "RCPT TO:<one@example.net>", "DATA"])
    transcript.server(354, ["go on"])
    transcript.client(".")
    transcript.clients(["MAIL FROM:<a@example.org>", "RCPT TO:<two@example.net>"], owner=2)
    transcript.server(250, ["queued 1"])
    transcript.owner = 2
    transcript.server(250, ["sender ok"])
    first = transcript.render(since=mark, owner=1)
    second = transcript.render(since=mark, owner=2)
    assert "S: 220 hello" in first and "S: 220 hello" in second
    assert "one@" in first and "two@" not in first and "queued 1" in first
    assert "two@" in second and "one@" not in second and "queued 1" not in second
