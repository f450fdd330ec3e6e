"""Retention: old sent bodies pruned at each flush, `outbox purge --sent`, nothing unsent."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.message import parse_message
from relay.policy import Verdict
from relay.states import MessageState, RecipientState
from relay.store.database import DB_NAME
from relay.store.outbox import Outbox
from tests.support.cli import listed, outbox
from tests.support.smtp_servers import threaded_smtp_server

NULL_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def message(n: int) -> bytes:
    return b"From: ann@example.org\r\nTo: bob@example.org\r\nSubject: m%d\r\n\r\nHi.\r\n" % n


def settle(store: Outbox, message_id: int, state: RecipientState, when: datetime) -> None:
    """Give a message one finished attempt at ``when`` whose verdict is ``state``."""
    store.claim([message_id])
    attempt = store.start_attempt(message_id, account="a", server="s", now=when)
    store.finish_attempt(
        message_id, attempt, {"bob@example.org": Verdict(state, "250 ok")},
        outcome=state.value, error=None, next_attempt_at=None, now=when,
    )  # fmt: skip


def test_pruning_takes_only_bodies_of_messages_sent_before_the_cutoff(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "home") as store:
        ids = {name: store.add_message(parse_message(message(n)), now=NOW - timedelta(days=90)).id
               for n, name in enumerate(["old_sent", "new_sent", "old_failed", "old_deferred",
                                          "old_uncertain", "old_queued", "old_held",
                                          "old_sending"])}  # fmt: skip
        old, new = NOW - timedelta(days=40), NOW - timedelta(days=1)
        settle(store, ids["old_sent"], RecipientState.SENT, old)
        settle(store, ids["new_sent"], RecipientState.SENT, new)
        settle(store, ids["old_failed"], RecipientState.FAILED, old)
        settle(store, ids["old_deferred"], RecipientState.DEFERRED, old)
        settle(store, ids["old_uncertain"], RecipientState.UNCERTAIN, old)
        store.hold([ids["old_held"]])
        store.claim([ids["old_sending"]])

        assert store.prune_sent_bodies(NOW - timedelta(days=30)) == [ids["old_sent"]]
        assert store.pruned() == {ids["old_sent"]}
        kept = store.get(ids["old_sent"])  # the history stays
        assert kept.state is MessageState.SENT and kept.recipients[0].reply == "250 ok"
        assert len(store.attempts(ids["old_sent"])) == 1
        for name, message_id in ids.items():
            if name != "old_sent":
                assert store.raw(message_id)  # every other body is whole
        assert store.purge_sent(NOW - timedelta(days=30)) == [ids["old_sent"]]
        assert store.purge_sent() == [ids["new_sent"]]
        assert sorted(store.ids()) == sorted(i for n, i in ids.items() if "sent" not in n
                                             or n == "old_sending")  # fmt: skip


def age_attempts(home: Path, days: float) -> None:
    """Make every finished attempt (and message) ``days`` older, as time would."""
    conn = sqlite3.connect(home / DB_NAME)
    try:
        moment = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        conn.execute("UPDATE attempts SET ended_at = ?, started_at = ?", (moment, moment))
        conn.execute("UPDATE messages SET created_at = ?", (moment,))
        conn.commit()
    finally:
        conn.close()


def add_account(home: Path, port: int) -> None:
    done = outbox(
        home, "account", "add", "test", "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", env=NULL_KEYRING,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("setting", [None, 0])
def test_a_flush_prunes_bodies_sent_longer_ago_than_the_setting(
    tmp_path: Path, setting: int | None
) -> None:
    home = tmp_path / "home"
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        if setting is not None:
            with (home / "config.toml").open("a") as config:
                config.write(f"\n[retention]\nsent_body_days = {setting}\n")
        assert outbox(home, "enqueue", "-", input=message(1)).returncode == 0
        assert outbox(home, "flush", env=NULL_KEYRING).returncode == 0
        age_attempts(home, 31)
        assert outbox(home, "enqueue", "-", input=message(2)).returncode == 0
        done = outbox(home, "flush", env=NULL_KEYRING)
        assert done.returncode == 0, done.stderr.decode()
    items = {m["id"]: m for m in listed(home)}
    assert items["1"]["state"] == "sent" and items["2"]["state"] == "sent"
    assert items["2"]["body_pruned"] is False
    raw = outbox(home, "show", "1", "--raw")
    if setting == 0:  # kept forever
        assert items["1"]["body_pruned"] is False and raw.returncode == 0
        return
    assert items["1"]["body_pruned"] is True
    assert raw.returncode == 1 and b"pruned" in raw.stderr and b"Traceback" not in raw.stderr
    shown = outbox(home, "show", "1")
    assert shown.returncode == 0 and b"body: pruned" in shown.stdout
    assert b"bob@example.org  sent" in shown.stdout  # recipients and replies stay
    assert b"pruned" in outbox(home, "list").stdout


def test_purge_sent_removes_sent_messages_only_and_honours_older_than(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with threaded_smtp_server() as server:
        add_account(home, server.port)
        assert outbox(home, "enqueue", "-", input=message(1)).returncode == 0
        assert outbox(home, "flush", env=NULL_KEYRING).returncode == 0
        age_attempts(home, 10)
        assert outbox(home, "enqueue", "-", input=message(2)).returncode == 0
        assert outbox(home, "flush", env=NULL_KEYRING).returncode == 0
    assert outbox(home, "enqueue", "-", input=message(3)).returncode == 0  # queued

    done = outbox(home, "purge", "--sent", "--older-than", "5")
    assert done.returncode == 0 and b"removed 1 sent message" in done.stdout
    assert [(m["id"], m["state"]) for m in listed(home)] == [("2", "sent"), ("3", "queued")]
    done = outbox(home, "purge", "--sent")
    assert done.returncode == 0
    assert [(m["id"], m["state"]) for m in listed(home)] == [("3", "queued")]
    bad = outbox(home, "purge", "--sent", "--older-than", "nan")
    assert bad.returncode == 64 and b"Traceback" not in bad.stderr


def test_a_bad_retention_setting_is_a_config_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with threaded_smtp_server() as server:
        add_account(home, server.port)
    with (home / "config.toml").open("a") as config:
        config.write("\n[retention]\nsent_body_days = -1\n")
    assert outbox(home, "enqueue", "-", input=message(1)).returncode == 0
    done = outbox(home, "flush", env=NULL_KEYRING)
    assert done.returncode == 78 and b"sent_body_days" in done.stderr
