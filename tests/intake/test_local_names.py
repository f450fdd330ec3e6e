"""Local names at intake: a missing or local sender becomes an account's address, a local
recipient its alias (``relay.localnames``, ``parse_message(local=…)``), with a real config."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.accounts import Account, save_accounts
from relay.aliases import set_alias
from relay.errors import ConfigError, InvalidMessage
from relay.localnames import LocalNames
from relay.message import ParsedMessage, parse_message


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    save_accounts(
        home,
        [
            Account(name="main", host="smtp.example.org", port=587, default=True,
                    address="me@example.org"),
            Account(name="work", host="smtp.work.example", port=587, address="me@work.example"),
        ],
    )  # fmt: skip
    set_alias(home, "root", ["admin@example.net"])
    set_alias(home, "ops", ["a@example.net", "b@example.net"])
    return home


def parse(home: Path, data: bytes, **kwargs: object) -> ParsedMessage:
    account = kwargs.pop("account", None)
    assert account is None or isinstance(account, str)
    return parse_message(data, local=LocalNames(home, account=account), **kwargs)  # type: ignore[arg-type]


def header(parsed: ParsedMessage) -> list[bytes]:
    return parsed.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


@pytest.mark.parametrize(
    ("from_line", "full_name", "expected"),
    [
        (b"From: root (Cron Daemon)", "CronDaemon", b"From: Cron Daemon <me@example.org>"),
        (b"From: (Cron Daemon) root", None, b"From: Cron Daemon <me@example.org>"),
        (b"From: Logwatch", None, b"From: Logwatch <me@example.org>"),
        (b"From: root", "Backup Job", b"From: Backup Job <me@example.org>"),
        (b'From: "Nightly, Job" <root>', None, b'From: "Nightly, Job" <me@example.org>'),
        (b"From: Daemon <daemon>", None, b"From: Daemon <me@example.org>"),
        (b"From: ", "Job", b"From: Job <me@example.org>"),
    ],
)
def test_a_local_from_becomes_the_account_address_keeping_the_name(
    home: Path, from_line: bytes, full_name: str | None, expected: bytes
) -> None:
    data = from_line + b"\nTo: root\nSubject: s\n\nbody\n"
    parsed = parse(home, data, from_headers=True, full_name=full_name)
    assert parsed.sender == "me@example.org"
    assert parsed.recipients == ("admin@example.net",)
    assert header(parsed)[0] == expected
    assert b"To: root" in header(parsed)
    assert parsed.raw.endswith(b"\r\n\r\nbody\r\n")


def test_no_from_at_all_gets_one_with_the_account_address(home: Path) -> None:
    parsed = parse(home, b"Subject: at job\n\nout\n", recipients=["root"], from_headers=False)
    assert parsed.sender == "me@example.org"
    assert b"From: me@example.org" in header(parsed)
    assert b"@example.org>" in next(h for h in header(parsed) if h.startswith(b"Message-ID"))


def test_a_local_dash_f_is_the_account_address(home: Path) -> None:
    parsed = parse(home, b"Subject: s\n\nx\n", sender="root", recipients=["b@example.net"],
                   from_headers=False)  # fmt: skip
    assert parsed.sender == "me@example.org"


def test_the_account_asked_for_gives_its_address(home: Path) -> None:
    parsed = parse(home, b"Subject: s\n\nx\n", recipients=["b@example.net"],
                   from_headers=False, account="work")  # fmt: skip
    assert parsed.sender == "me@work.example"


def test_a_full_from_is_left_alone(home: Path) -> None:
    data = b"From: Ann <ann@example.org>\nTo: ops, x@example.net\n\nx\n"
    parsed = parse(home, data, from_headers=True)
    assert parsed.sender == "ann@example.org"
    assert parsed.recipients == ("a@example.net", "b@example.net", "x@example.net")
    assert header(parsed)[:2] == [b"From: Ann <ann@example.org>", b"To: ops, x@example.net"]


def test_the_null_sender_keeps_from_and_fills_a_missing_one(home: Path) -> None:
    data = b"From: Vacation <ann@example.org>\n\naway\n"
    parsed = parse(home, data, sender="", recipients=["b@example.net"], from_headers=False)
    assert parsed.sender == ""
    assert header(parsed)[0] == b"From: Vacation <ann@example.org>"
    assert b"@example.org>" in next(h for h in header(parsed) if h.startswith(b"Message-ID"))
    parsed = parse(home, b"Subject: bounce\n\nx\n", sender="", recipients=["b@example.net"],
                   from_headers=False)  # fmt: skip
    assert (parsed.sender, header(parsed)[1]) == ("", b"From: me@example.org")


def test_a_local_recipient_without_alias_or_default_is_refused(home: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(home, b"Subject: s\n\nx\n", recipients=["nobody"], from_headers=False)
    assert str(caught.value) == (
        "no alias for the local name 'nobody' and no 'default' alias: set one with"
        " 'outbox alias set nobody ADDR' (or 'outbox alias set default ADDR' for every local name)"
    )
    set_alias(home, "default", ["catchall@example.net"])
    parsed = parse(home, b"Subject: s\n\nx\n", recipients=["nobody", "Root"], from_headers=False)
    assert parsed.recipients == ("catchall@example.net", "admin@example.net")


def test_without_any_address_the_error_names_the_setting(tmp_path: Path) -> None:
    home = tmp_path / "bare"
    home.mkdir()
    save_accounts(home, [Account(name="main", host="smtp.example.org", port=587, default=True)])
    with pytest.raises(ConfigError) as caught:
        parse(home, b"From: root (Cron Daemon)\n\nx\n", recipients=["b@example.net"],
              from_headers=False)  # fmt: skip
    assert str(caught.value).endswith("set one with 'outbox account set main --address ADDR'")


def test_without_local_names_a_local_address_is_still_refused() -> None:
    with pytest.raises(InvalidMessage):
        parse_message(b"From: root (Cron Daemon)\nTo: b@example.net\n\nx\n")
    with pytest.raises(InvalidMessage):
        parse_message(b"From: a@example.org\n\nx\n", recipients=["root"])


def test_a_malformed_from_with_an_explicit_sender_is_left_as_written(home: Path) -> None:
    data = b"From: <<broken\n\nx\n"
    parsed = parse(home, data, sender="a@example.org", recipients=["b@example.net"],
                   from_headers=False)  # fmt: skip
    assert header(parsed)[0] == b"From: <<broken"


def test_an_empty_from_without_a_name_gets_the_bare_address(home: Path) -> None:
    parsed = parse(home, b"From:\nSubject: s\n\nx\n", recipients=["root"], from_headers=False)
    assert header(parsed)[0] == b"From: me@example.org"
