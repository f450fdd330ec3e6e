"""DSN (RFC 3461): ``sendmail -N/-R/-V`` reach a server that offers DSN, and only such a one.

Postfix's ``smtp-sink`` offers DSN and writes each message it takes to a file
with the MAIL and RCPT arguments it was given (``X-Mail-Args``,
``X-Rcpt-Args``); aiosmtpd offers no DSN.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relay.dsn import DsnRequest, check_envid, parse_notify, parse_ret, xtext
from relay.errors import UsageError
from relay.store.outbox import Outbox
from tests.support.cli import outbox
from tests.support.postfix_sink import PostfixSink, postfix_sink
from tests.support.smtp_servers import threaded_smtp_server

MESSAGE = b"From: Ann <ann@example.org>\nTo: bob@example.net\nSubject: dsn\n\nbody\n"


def sink_files(sink: PostfixSink) -> list[dict[str, list[str]]]:
    """Each message smtp-sink wrote: its X-* argument lines, by name."""
    return [message.arguments() for message in sink.received()]


def add_account(home: Path, port: int, *extra: str) -> None:
    done = outbox(home, "account", "add", "sink", "--host", "127.0.0.1", "--port", str(port),
                  "--security", "none", *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("pipelining", ["on", "off"])
def test_notify_ret_and_envid_reach_a_server_that_offers_dsn(
    tmp_path: Path, pipelining: str
) -> None:
    home = tmp_path / "home"
    with postfix_sink() as sink:
        add_account(home, sink.port, "--pipelining", pipelining)
        done = outbox(
            home,
            "sendmail",
            "-oi",
            "-N",
            "success,failure",
            "-R",
            "hdrs",
            "-V",
            "id+1 x",
            "--",
            "bob@example.net",
            "cy@example.net",
            input=MESSAGE,
        )
        assert done.returncode == 0, done.stderr.decode()
        done = outbox(home, "sendmail", "-oi", "plain@example.net", input=MESSAGE)
        assert done.returncode == 0, done.stderr.decode()
        flushed = outbox(home, "flush")
        assert flushed.returncode == 0, flushed.stderr.decode()
        received = sink_files(sink)
    args = sorted((f["X-Mail-Args"], f["X-Rcpt-Args"]) for f in received)
    assert args == [
        (["<ann@example.org>"], ["<plain@example.net>"]),
        (["<ann@example.org> RET=HDRS ENVID=id+2B1+20x"],
         ["<bob@example.net> NOTIFY=SUCCESS,FAILURE", "<cy@example.net> NOTIFY=SUCCESS,FAILURE"]),
    ]  # fmt: skip


def test_a_drop_file_with_a_hostile_dsn_request_is_rejected_and_the_flush_goes_on(
    tmp_path: Path,
) -> None:
    import json

    home = tmp_path / "home"
    hostile = {
        "1.notify": {"notify": "SUCCESS\r\nRCPT TO:<evil@example.net>"},
        "2.ret": {"ret": "HDRS\r\nRSET"},
        "3.good": {"notify": "failure,success"},
    }
    with postfix_sink() as sink:
        add_account(home, sink.port)
        new = home / "drop" / "new"
        new.mkdir(parents=True)
        for name, dsn in hostile.items():
            envelope = {"sender": "ann@example.org", "recipients": ["bob@example.net"],
                        "account": None, "dsn": dsn}  # fmt: skip
            (new / name).write_bytes(b"X-Outbox-Envelope: " + json.dumps(envelope).encode()
                                     + b"\r\n" + MESSAGE)  # fmt: skip
        flushed = outbox(home, "flush")
        assert flushed.returncode == 0, flushed.stderr.decode()
        assert "Traceback" not in flushed.stderr.decode()
        received = sink_files(sink)
    assert [f["X-Rcpt-Args"] for f in received] == [["<bob@example.net> NOTIFY=SUCCESS,FAILURE"]]
    rejected = home / "drop" / "rejected"
    assert sorted(os.listdir(rejected)) == ["1.notify", "1.notify.error", "2.ret", "2.ret.error"]
    assert "bad DSN notify" in (rejected / "1.notify.error").read_text()
    assert "bad DSN return" in (rejected / "2.ret.error").read_text()


def test_a_server_without_dsn_gets_the_message_without_and_the_attempt_says_so(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        done = outbox(home, "sendmail", "-oi", "-N", "never", "-R", "full", "bob@example.net",
                      input=MESSAGE)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert outbox(home, "flush").returncode == 0
    (received,) = server.received
    assert received.rcpt_options == ()
    assert [o for o in received.mail_options if not o.startswith("SIZE=")] == []
    with Outbox.open(home) as store:
        (attempt,) = store.attempts(1)
        assert store.dsn_request(1) == DsnRequest("NEVER", "FULL", None)
    assert (
        "message 1: 127.0.0.1 does not offer DSN; sent without the delivery status"
        " notifications it asked for (NOTIFY=NEVER RET=FULL)"
    ) in attempt.transcript


def test_the_null_sender_goes_out_as_mail_from_empty_brackets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with postfix_sink() as sink:
        add_account(home, sink.port)
        done = outbox(home, "sendmail", "-f", "<>", "-oi", "bob@example.net", input=MESSAGE)
        assert done.returncode == 0, done.stderr.decode()
        assert outbox(home, "flush").returncode == 0
        (received,) = sink_files(sink)
    assert received["X-Mail-Args"] == ["<>"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("never", "NEVER"), ("Delay,success", "SUCCESS,DELAY"), ("failure", "FAILURE")],
)
def test_notify_words_are_read_in_any_case_and_order(value: str, expected: str) -> None:
    assert parse_notify(value) == expected


@pytest.mark.parametrize("value", ["", "never,success", "always", "success;failure"])
def test_bad_notify_words_are_usage_errors(value: str) -> None:
    with pytest.raises(UsageError):
        parse_notify(value)


def test_ret_and_envid_are_checked_and_envid_goes_out_as_xtext() -> None:
    assert parse_ret("Hdrs") == "HDRS"
    with pytest.raises(UsageError):
        parse_ret("body")
    with pytest.raises(UsageError):
        check_envid("caf\u00e9")
    assert xtext("a+b=c d\x7e") == "a+2Bb+3Dc+20d~"
