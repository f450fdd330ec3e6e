"""``list``, ``show``, ``hold``, ``release``, ``delete``, ``retry`` as a person runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.message import ParsedMessage
from relay.policy import Verdict
from relay.states import RecipientState
from relay.store.outbox import Outbox
from tests.support.cli import listed, outbox

RAW = b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Hello\r\n\r\nHi Bob\r\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def add(home: Path, *recipients: str) -> int:
    with Outbox.open(home) as store:
        parsed = ParsedMessage("ann@example.org", recipients or ("bob@example.org",), RAW, "Hello")
        return store.add_message(parsed).id


def settle(home: Path, message_id: int, verdicts: dict[str, Verdict]) -> None:
    """What an attempt manager would write after an attempt."""
    with Outbox.open(home) as store:
        store.claim([message_id])
        attempt = store.start_attempt(message_id, account="work", server="127.0.0.1:25")
        problems = [v.reply for v in verdicts.values() if v.state is not RecipientState.SENT]
        store.finish_attempt(
            message_id,
            attempt,
            verdicts,
            outcome="partial",
            error=problems[0] if problems else None,
            next_attempt_at=None,
        )


def test_list_json_carries_every_contract_field(home: Path) -> None:
    mid = add(home, "bob@example.org", "cy@example.org")
    (item,) = listed(home)
    assert item["id"] == str(mid)
    assert item["state"] == "queued"
    assert item["from"] == "ann@example.org"
    assert item["subject"] == "Hello"
    assert item["size"] == len(RAW)
    assert item["attempts"] == 0
    assert item["next_attempt"] is None
    assert item["last_error"] is None
    assert item["recipients"] == [
        {"address": "bob@example.org", "state": "pending", "reply": None},
        {"address": "cy@example.org", "state": "pending", "reply": None},
    ]


def test_list_on_an_empty_outbox_prints_an_empty_array_and_says_so_for_people(home: Path) -> None:
    assert listed(home) == []
    done = outbox(home, "list")
    assert done.returncode == 0 and b"empty" in done.stdout


def test_list_filters_by_state_and_refuses_an_unknown_one(home: Path) -> None:
    first, second = add(home), add(home)
    outbox(home, "hold", str(second))
    assert [m["id"] for m in listed(home, "--state", "held")] == [str(second)]
    assert [m["id"] for m in listed(home, "--state", "queued")] == [str(first)]
    done = outbox(home, "list", "--state", "bogus")
    assert done.returncode != 0 and b"bogus" in done.stderr


def test_human_list_is_a_table_with_the_subject(home: Path) -> None:
    add(home)
    done = outbox(home, "list")
    lines = done.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["ID", "STATE"]
    assert "Hello" in lines[1] and "queued" in lines[1]


def test_show_prints_recipients_and_raw_prints_the_exact_bytes(home: Path) -> None:
    mid = add(home)
    done = outbox(home, "show", str(mid))
    assert done.returncode == 0 and b"bob@example.org" in done.stdout
    raw = outbox(home, "show", str(mid), "--raw")
    assert raw.stdout == RAW
    as_json = outbox(home, "show", str(mid), "--json")
    assert b'"attempt_history": []' in as_json.stdout


@pytest.mark.parametrize("command", ["show", "hold", "release", "delete", "retry"])
@pytest.mark.parametrize("bad_id", ["42", "abc", "-3", str(2**63)])
def test_an_unknown_id_is_a_clear_error_with_exit_1(home: Path, command: str, bad_id: str) -> None:
    add(home)
    done = (
        outbox(home, command, "--", bad_id)
        if bad_id.startswith("-")
        else outbox(home, command, bad_id)
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode().startswith("outbox: no message")
    assert b"Traceback" not in done.stderr


def test_hold_then_release_then_delete(home: Path) -> None:
    mid = add(home)
    assert outbox(home, "hold", str(mid)).returncode == 0
    assert listed(home)[0]["state"] == "held"
    assert outbox(home, "release", str(mid)).returncode == 0
    assert listed(home)[0]["state"] == "queued"
    assert outbox(home, "delete", str(mid)).returncode == 0
    assert listed(home) == []


def test_retry_owes_the_message_again_only_to_recipients_not_sent(home: Path) -> None:
    mid = add(home, "bob@example.org", "cy@example.org")
    settle(
        home,
        mid,
        {
            "bob@example.org": Verdict(RecipientState.SENT, "250 ok"),
            "cy@example.org": Verdict(RecipientState.FAILED, "550 no such user"),
        },
    )
    assert listed(home)[0]["state"] == "failed"
    assert listed(home)[0]["last_error"] == "550 no such user"
    assert outbox(home, "retry", "--failed").returncode == 0
    states = {r["address"]: r["state"] for r in listed(home)[0]["recipients"]}
    assert states == {"bob@example.org": "sent", "cy@example.org": "pending"}


def test_retry_of_an_uncertain_message_warns_about_a_second_copy(home: Path) -> None:
    mid = add(home)
    settle(home, mid, {"bob@example.org": Verdict(RecipientState.UNCERTAIN, "no reply")})
    assert listed(home)[0]["state"] == "uncertain"
    assert outbox(home, "retry", "--failed").stdout == b"no failed messages\n"
    assert listed(home)[0]["state"] == "uncertain"  # --failed never covers uncertain
    done = outbox(home, "retry", str(mid))
    assert b"may receive it twice" in done.stderr
    assert listed(home)[0]["state"] == "queued"


def test_retry_needs_ids_or_failed(home: Path) -> None:
    done = outbox(home, "retry")
    assert done.returncode == 64
    assert done.stderr.decode() == (
        "outbox: retry needs the ids of the messages to send again (see outbox list),"
        " or --failed for every failed message\n"
    )
    both = outbox(home, "retry", "1", "--failed")
    assert both.returncode == 64 and b"not both" in both.stderr


def test_release_of_a_sent_message_fails_as_hold_does(home: Path) -> None:
    mid = add(home)
    settle(home, mid, {"bob@example.org": Verdict(RecipientState.SENT, "250 ok")})
    hold = outbox(home, "hold", str(mid))
    release = outbox(home, "release", str(mid))
    assert hold.returncode == release.returncode != 0
    assert hold.stderr == release.stderr == f"outbox: message {mid} is already sent\n".encode()
    assert listed(home)[0]["state"] == "sent"


def test_every_option_and_argument_has_a_help_text() -> None:
    import argparse

    from relay.cli import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    walk(subparser, f"{name} {sub}")
            elif not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "outbox")
    assert missing == []


def test_help_names_the_real_default_home(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "OUTBOX_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "--help"],
        capture_output=True,
        text=True,
        env={**env, "XDG_DATA_HOME": str(data), "COLUMNS": "200"},
        check=True,
    )
    assert f"$OUTBOX_HOME if set, else {data / 'outbox'})" in done.stdout


def test_home_comes_from_outbox_home_when_not_given(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    home = tmp_path / "env-home"
    add(home)
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "list", "--json"],
        capture_output=True,
        env={**os.environ, "OUTBOX_HOME": str(home)},
        timeout=60,
    )
    assert b"ann@example.org" in done.stdout
    assert (home.stat().st_mode & 0o777) == 0o700
    assert ((home / "outbox.sqlite3").stat().st_mode & 0o777) == 0o600


def test_list_words_a_size_as_the_window_does(home: Path) -> None:
    body = b"x" * 76 + b"\r\n"
    raw = RAW + body * (8_610_061 // len(body))
    with Outbox.open(home) as store:
        store.add_message(ParsedMessage("ann@example.org", ("bob@example.org",), raw, "Big"))
    (item,) = listed(home)
    lines = outbox(home, "list").stdout.decode().splitlines()
    assert f"{item['size'] / 1e6:.1f} MB" in lines[1]
