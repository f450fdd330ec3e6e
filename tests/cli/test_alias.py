"""``outbox alias set|list|remove`` and ``account --address``: a real process, the real config."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.support.cli import outbox


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def aliases(home: Path) -> list[dict[str, object]]:
    done = outbox(home, "alias", "list", "--json")
    assert done.returncode == 0, done.stderr.decode()
    items: list[dict[str, object]] = json.loads(done.stdout)
    return items


def test_set_list_and_remove_aliases(home: Path) -> None:
    assert aliases(home) == []
    done = outbox(home, "alias", "set", "Root", "a@example.org,b@example.org", "c@example.org")
    assert done.returncode == 0
    assert done.stdout == b"root: a@example.org, b@example.org, c@example.org\n"
    assert outbox(home, "alias", "set", "default", "me@example.org").returncode == 0
    assert aliases(home) == [
        {"name": "default", "addresses": ["me@example.org"]},
        {"name": "root", "addresses": ["a@example.org", "b@example.org", "c@example.org"]},
    ]
    # Setting again replaces; the name is the same whatever its case.
    assert outbox(home, "alias", "set", "ROOT", "z@example.org").returncode == 0
    assert {"name": "root", "addresses": ["z@example.org"]} in aliases(home)
    text = outbox(home, "alias", "list").stdout.decode()
    assert text == "default  me@example.org\nroot     z@example.org\n"

    assert outbox(home, "alias", "remove", "root").returncode == 0
    assert aliases(home) == [{"name": "default", "addresses": ["me@example.org"]}]
    document = tomllib.loads((home / "config.toml").read_text())
    assert document["aliases"] == {"default": ["me@example.org"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "root", "admin"], "bad alias target 'admin': no @domain"
         " (an alias points to full addresses)"),
        (["set", "root", "a b@example.org"],
         "bad alias target 'a b@example.org': contains a space"),
        (["set", "root", ","], "an alias needs at least one address"),
        (["set", "ro ot", "a@example.org"], "bad alias name 'ro ot': not a plain local name"),
        (["set", "root@example.org", "a@example.org"],
         "bad alias name 'root@example.org': a local name has no @domain"),
        (["remove", "nobody"], "no alias 'nobody' (there are no aliases)"),
    ],
)  # fmt: skip
def test_bad_aliases_are_refused_with_one_line_and_change_nothing(
    home: Path, args: list[str], message: str
) -> None:
    done = outbox(home, "alias", *args)
    assert done.returncode == 78
    assert done.stderr.decode().startswith(f"outbox: {message}")
    assert done.stderr.count(b"\n") == 1
    assert aliases(home) == []


def test_one_name_written_twice_by_hand_in_two_cases_is_refused_not_half_kept(
    home: Path,
) -> None:
    assert outbox(home, "alias", "set", "ops", "ops@example.org").returncode == 0
    config = home / "config.toml"
    config.write_text(config.read_text() + '\nRoot = ["a@example.org"]\nroot = ["b@example.org"]\n')
    cron = b"From: root (Cron Daemon)\nTo: root\nSubject: cron\n\nout\n"
    done = outbox(home, "sendmail", "-t", "-i", "-f", "x@example.org", input=cron)
    assert done.returncode == 78, done.stdout.decode()
    assert "alias 'root': the same name as another alias" in done.stderr.decode()
    assert outbox(home, "alias", "list").returncode == 78
    assert outbox(home, "list").stdout.count(b"\n") <= 1  # nothing stored


def test_aliases_and_accounts_share_the_config_without_losing_each_other(home: Path) -> None:
    assert outbox(home, "alias", "set", "root", "a@example.org").returncode == 0
    done = outbox(home, "account", "add", "main", "--host", "smtp.example.org",
                  "--address", "me@example.org")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert outbox(home, "alias", "set", "ops", "b@example.org").returncode == 0
    assert outbox(home, "account", "set", "main", "--port", "2525").returncode == 0
    assert [a["name"] for a in aliases(home)] == ["ops", "root"]
    (account,) = json.loads(outbox(home, "account", "list", "--json").stdout)
    assert (account["address"], account["port"]) == ("me@example.org", 2525)


def test_account_address_is_checked_and_can_be_forgotten(home: Path) -> None:
    done = outbox(home, "account", "add", "main", "--host", "smtp.example.org",
                  "--address", "root")  # fmt: skip
    assert done.returncode == 78
    assert b"bad address 'root': no @domain" in done.stderr
    done = outbox(home, "account", "add", "main", "--host", "smtp.example.org",
                  "--address", "me@example.org")  # fmt: skip
    assert done.returncode == 0
    assert outbox(home, "account", "set", "main", "--no-address").returncode == 0
    (account,) = json.loads(outbox(home, "account", "list", "--json").stdout)
    assert account["address"] is None


def test_outbox_enqueue_resolves_local_names_too(home: Path) -> None:
    message = b"From: root (Cron Daemon)\nTo: root\nSubject: s\n\nx\n"
    done = outbox(home, "enqueue", "-", input=message)
    assert done.returncode == 65
    assert b"no account" in done.stderr
    outbox(home, "account", "add", "main", "--host", "smtp.example.org",
           "--address", "me@example.org")  # fmt: skip
    outbox(home, "alias", "set", "root", "admin@example.net")
    done = outbox(home, "enqueue", "-", input=message)
    assert done.returncode == 0, done.stderr.decode()
    (item,) = json.loads(outbox(home, "list", "--json").stdout)
    assert item["from"] == "me@example.org"
    assert [r["address"] for r in item["recipients"]] == ["admin@example.net"]
