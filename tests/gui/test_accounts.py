"""Accounts from the window: the dialog, the keyring, Test Connection, a refused password."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QDialogButtonBox, QLabel, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from gui.accounts_dialog import AccountsDialog
from gui.app import create_main_window
from gui.main_window import MainWindow
from relay.accounts import Security, load_accounts, save_accounts
from relay.message import parse_message
from relay.states import MessageState
from tests.gui.driving import click_action, click_button, modal, shown_state
from tests.gui.messages import enqueue, message_bytes
from tests.support.fault_server import threaded_fault_server
from tests.support.gated_servers import GatedHandler, gated_server
from tests.support.keyrings import MemoryKeyring, stored_key
from tests.support.smtp_servers import USER, RunningServer

PASSWORD = "correct horse battery staple"


@pytest.fixture
def auth_server() -> Iterator[RunningServer]:
    with gated_server(GatedHandler(), password=PASSWORD) as running:
        yield running


@pytest.fixture
def dialog(qtbot: QtBot, loop: asyncio.AbstractEventLoop, home: Path) -> AccountsDialog:
    widget = AccountsDialog(home)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def fill(qtbot: QtBot, dialog: AccountsDialog, **values: str) -> None:
    for name, text in values.items():
        field = getattr(dialog, name)
        field.clear()
        qtbot.keyClicks(field, text)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_a_new_account_goes_to_the_config_and_its_password_only_to_the_keyring(
    dialog: AccountsDialog, qtbot: QtBot, home: Path, memory_keyring: MemoryKeyring
) -> None:
    fill(
        qtbot,
        dialog,
        name="work",
        host="smtp.example.org",
        user="me@example.org",
        password=PASSWORD,
        patterns="*@example.org",
    )
    assert dialog.port.value() == 587
    dialog.security.setCurrentIndex(dialog.security.findData(Security.TLS.value))
    assert dialog.port.value() == 465  # the port follows the security
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    assert not dialog.error.isVisible(), dialog.error.text()
    (account,) = load_accounts(home)
    assert (account.name, account.host, account.port, account.security) == (
        "work",
        "smtp.example.org",
        465,
        Security.TLS,
    )
    assert account.user == "me@example.org" and account.from_patterns == ("*@example.org",)
    assert account.default
    assert memory_keyring.passwords() == {stored_key(home, "work"): PASSWORD}
    assert PASSWORD.encode() not in (home / "config.toml").read_bytes()
    assert dialog.password.text() == ""
    assert "stored in your keyring" in dialog.password.placeholderText()


def test_the_own_address_is_saved_shown_again_and_cleared(
    dialog: AccountsDialog, qtbot: QtBot, home: Path
) -> None:
    fill(qtbot, dialog, name="work", host="smtp.example.org", address="me@example.org")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.error.isVisible(), dialog.error.text()
    assert load_accounts(home)[0].address == "me@example.org"
    dialog.reload("work")
    assert dialog.address.text() == "me@example.org"
    fill(qtbot, dialog, address="root")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "bad address 'root': no @domain" in dialog.error.text()
    assert load_accounts(home)[0].address == "me@example.org"
    dialog.address.clear()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert load_accounts(home)[0].address is None


def test_a_bad_setting_is_refused_with_the_reason_and_nothing_is_written(
    dialog: AccountsDialog, qtbot: QtBot, home: Path
) -> None:
    fill(qtbot, dialog, name="open", host="smtp.example.org", user="me", password="secret")
    dialog.security.setCurrentIndex(dialog.security.findData(Security.NONE.value))
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.error.isVisible()
    assert "refusing to send the password" in dialog.error.text()
    assert load_accounts(home) == []


def test_changing_an_account_keeps_its_stored_password(
    dialog: AccountsDialog, qtbot: QtBot, home: Path, memory_keyring: MemoryKeyring
) -> None:
    fill(qtbot, dialog, name="work", host="smtp.example.org", user="me", password=PASSWORD)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    fill(qtbot, dialog, host="mail.example.org")
    dialog.max_connections.setValue(4)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    (account,) = load_accounts(home)
    assert account.host == "mail.example.org" and account.max_connections == 4
    assert memory_keyring.passwords() == {stored_key(home, "work"): PASSWORD}


def test_pipelining_is_on_for_a_new_account_and_a_click_turns_it_off(
    dialog: AccountsDialog, qtbot: QtBot, home: Path
) -> None:
    fill(qtbot, dialog, name="work", host="smtp.example.org")
    assert dialog.pipelining.isChecked()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert load_accounts(home)[0].pipelining is True
    dialog.pipelining.click()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert load_accounts(home)[0].pipelining is False
    assert not dialog.pipelining.isChecked()  # the form shows what was saved


def test_test_connection_shows_what_the_server_offers_without_sending(
    dialog: AccountsDialog, qtbot: QtBot, auth_server: RunningServer
) -> None:
    fill(qtbot, dialog, name="test", host=auth_server.host, user=USER, password=PASSWORD)
    dialog.security.setCurrentIndex(dialog.security.findData(Security.NONE.value))
    dialog.port.setValue(auth_server.port)
    with qtbot.waitSignal(dialog.test_finished, timeout=10_000) as finished:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert dialog.test_button.text() == "Stop Test"  # running, and the dialog still answers
    text = finished.args[0]
    assert text.startswith("The server is ready")
    assert f"server: {auth_server.host}:{auth_server.port}" in text
    assert f"authentication: {USER}" in text
    assert dialog.test_output.toPlainText() == text
    assert dialog.test_button.text() == "Test Connection"
    assert auth_server.received == []


def test_test_connection_says_exactly_why_it_failed(
    dialog: AccountsDialog, qtbot: QtBot, auth_server: RunningServer
) -> None:
    fill(qtbot, dialog, name="test", host=auth_server.host, user=USER, password="wrong")
    dialog.security.setCurrentIndex(dialog.security.findData(Security.NONE.value))
    dialog.port.setValue(auth_server.port)
    with qtbot.waitSignal(dialog.test_finished, timeout=10_000) as finished:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].startswith("The test failed:")
    assert "535" in finished.args[0]

    dialog.port.setValue(free_port())
    with qtbot.waitSignal(dialog.test_finished, timeout=10_000) as finished:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].startswith("The test failed:")
    assert "refused" in finished.args[0]


def test_a_test_against_a_server_that_never_answers_can_be_stopped_and_run_again(
    dialog: AccountsDialog, qtbot: QtBot, auth_server: RunningServer
) -> None:
    silent = socket.socket()  # the kernel accepts the connection; no greeting ever comes
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    with silent:
        fill(qtbot, dialog, name="test", host="127.0.0.1")
        dialog.security.setCurrentIndex(dialog.security.findData(Security.NONE.value))
        dialog.port.setValue(silent.getsockname()[1])
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert dialog.testing and dialog.test_button.text() == "Stop Test"
        with qtbot.waitSignal(dialog.test_finished, timeout=1000) as stopped:
            qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert stopped.args[0] == "The test was stopped. Nothing was sent."
        assert not dialog.testing

    dialog.port.setValue(auth_server.port)  # the right port, tested at once
    with qtbot.waitSignal(dialog.test_finished, timeout=10_000) as finished:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].startswith("The server is ready")
    assert dialog.test_button.text() == "Test Connection" and not dialog.testing


def test_removing_an_account_asks_first_and_forgets_its_password(
    dialog: AccountsDialog, qtbot: QtBot, home: Path, memory_keyring: MemoryKeyring
) -> None:
    fill(qtbot, dialog, name="old", host="smtp.example.org", user="me", password=PASSWORD)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert memory_keyring.passwords()
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    click_button(qtbot, modal(qtbot, "confirm_remove_account"), "cancel")
    assert [a.name for a in load_accounts(home)] == ["old"]
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    click_button(qtbot, modal(qtbot, "confirm_remove_account"), "accept")
    assert load_accounts(home) == []
    assert memory_keyring.passwords() == {}


def test_a_refused_password_during_a_flush_opens_a_prompt_and_the_right_one_sends(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    auth_server: RunningServer,
    memory_keyring: MemoryKeyring,
) -> None:
    save_accounts(home, [auth_server.account(name="test", default=True)])
    memory_keyring.set_password(*stored_key(home, "test"), "an old password")
    window: MainWindow = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    message = enqueue(window.outbox, "hal@example.net", "Needs the right password")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

    click_action(qtbot, window, window.action_flush)
    prompt = modal(qtbot, "password_prompt")
    explanation = prompt.findChild(QLabel, "password_prompt_text")
    assert explanation is not None and "535" in explanation.text()
    assert window.outbox.get(message).state is MessageState.QUEUED  # untouched, not failed
    assert auth_server.received == []

    qtbot.waitUntil(lambda: not window.runner.running)
    assert window.findChild(QMessageBox, "flush_problems") is None  # the prompt says it all
    with qtbot.waitSignal(window.runner.finished, timeout=30_000):
        qtbot.keyClicks(prompt.password, PASSWORD)  # type: ignore[attr-defined]
        click_button(qtbot, prompt, "password_prompt_save")
    qtbot.waitUntil(lambda: shown_state(window, message) == "sent")
    assert memory_keyring.passwords() == {stored_key(home, "test"): PASSWORD}
    assert [r.rcpt_tos for r in auth_server.received] == [("hal@example.net",)]


def test_the_window_sends_with_a_password_command_on_its_loop_and_stores_nothing(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    tmp_path: Path,
    auth_server: RunningServer,
    memory_keyring: MemoryKeyring,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(PASSWORD + "\n")
    save_accounts(home, [auth_server.account(
        name="test", default=True, password_command=f"cat '{secret}'")])  # fmt: skip
    window: MainWindow = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    message = enqueue(window.outbox, "hal@example.net", "Password from a command")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

    with qtbot.waitSignal(window.runner.finished, timeout=30_000):
        click_action(qtbot, window, window.action_flush)

    qtbot.waitUntil(lambda: shown_state(window, message) == "sent")
    assert [r.rcpt_tos for r in auth_server.received] == [("hal@example.net",)]
    assert memory_keyring.passwords() == {}


def test_a_failing_password_command_defers_the_windows_mail(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    auth_server: RunningServer,
    memory_keyring: MemoryKeyring,
) -> None:
    save_accounts(home, [auth_server.account(
        name="test", default=True, password_command="echo locked >&2; exit 2")])  # fmt: skip
    window: MainWindow = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    message = enqueue(window.outbox, "hal@example.net", "Waits for the command")
    qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

    with qtbot.waitSignal(window.runner.finished, timeout=30_000):
        click_action(qtbot, window, window.action_flush)

    qtbot.waitUntil(lambda: shown_state(window, message) == "deferred")
    snapshot = window.outbox.get(message)
    assert snapshot.last_error is not None and "password command exited" in snapshot.last_error
    assert auth_server.received == []


def close_button(dialog: AccountsDialog) -> QAbstractButton:
    box = dialog.findChild(QDialogButtonBox)
    button = box.button(QDialogButtonBox.StandardButton.Close)
    assert button is not None
    return button


def test_closing_with_an_unsaved_change_asks_and_discard_keeps_the_config(
    dialog: AccountsDialog, qtbot: QtBot, home: Path
) -> None:
    fill(qtbot, dialog, name="work", host="smtp.example.org")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    fill(qtbot, dialog, host="smtp.example.net")
    qtbot.mouseClick(close_button(dialog), Qt.MouseButton.LeftButton)
    box = modal(qtbot, "confirm_unsaved_account")
    assert box.text() == "Save the changes to “work”?"  # type: ignore[attr-defined]
    click_button(qtbot, box, "cancel")
    assert dialog.isVisible() and dialog.host.text() == "smtp.example.net"

    qtbot.mouseClick(close_button(dialog), Qt.MouseButton.LeftButton)
    click_button(qtbot, modal(qtbot, "confirm_unsaved_account"), "discard")
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert load_accounts(home)[0].host == "smtp.example.org"


def test_closing_with_an_unsaved_change_can_save_it(
    dialog: AccountsDialog, qtbot: QtBot, home: Path
) -> None:
    fill(qtbot, dialog, name="work", host="smtp.example.org")
    dialog.close()  # the title bar's close button
    click_button(qtbot, modal(qtbot, "confirm_unsaved_account"), "save")
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert load_accounts(home)[0].host == "smtp.example.org"


def test_closing_an_untouched_form_asks_nothing(dialog: AccountsDialog, qtbot: QtBot) -> None:
    qtbot.mouseClick(close_button(dialog), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_an_account_without_a_user_saves_quietly_without_a_keyring(
    dialog: AccountsDialog, qtbot: QtBot, home: Path
) -> None:
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())  # the memory_keyring fixture restores the previous one
    fill(qtbot, dialog, name="relay", host="smtp.example.org")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.error.isVisible(), dialog.error.text()
    assert load_accounts(home)[0].user is None
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)  # saving it again, too
    assert not dialog.error.isVisible(), dialog.error.text()


def test_labels_read_as_words(dialog: AccountsDialog) -> None:
    (ca_label,) = [label for label in dialog.findChildren(QLabel) if label.text() == "&CA file:"]
    assert ca_label.buddy() is dialog.ca_file  # so "&" is a shortcut, not a character shown
    assert dialog.default.text() == "Default account (for senders no account's pattern matches)"
    security = [dialog.security.itemText(i) for i in range(dialog.security.count())]
    assert "None, unencrypted (port 25; a password only to this computer)" in security


def test_a_refused_password_is_left_to_its_prompt_and_the_other_problems_are_told(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    auth_server: RunningServer,
    memory_keyring: MemoryKeyring,
) -> None:
    """The window tells the flush's problems apart by kind and account, not by their words."""
    save_accounts(home, [auth_server.account(name="test", default=True)])
    memory_keyring.set_password(*stored_key(home, "test"), "an old password")
    window: MainWindow = create_main_window(home)
    qtbot.addWidget(window)
    window.show()
    message = enqueue(window.outbox, "hal@example.net", "Needs the right password")
    data = message_bytes("ivy@example.net", "For an account removed since")
    stray = window.engine.enqueue(parse_message(data), account="gone").id
    qtbot.waitUntil(lambda: shown_state(window, stray) == "queued")

    with qtbot.waitSignal(window.runner.finished, timeout=30_000):
        click_action(qtbot, window, window.action_flush)

    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "flush_problems") is not None)
    problems = window.findChild(QMessageBox, "flush_problems")
    assert problems is not None
    told = problems.informativeText()
    assert told.startswith(f"{stray}: ") and "gone" in told
    assert "account test" not in told  # its password prompt says that one
    assert window.findChild(QWidget, "password_prompt") is not None
    assert window.outbox.get(message).state is MessageState.QUEUED


@pytest.mark.parametrize("mechanisms", [(), ("CRAM-MD5",)])
def test_a_server_that_never_asks_for_the_password_gets_no_password_prompt(
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    home: Path,
    memory_keyring: MemoryKeyring,
    mechanisms: tuple[str, ...],
) -> None:
    """No AUTH the window speaks: a new password would not help; Test Connection shows why."""
    with threaded_fault_server(auth_mechanisms=mechanisms) as server:
        save_accounts(home, [server.account(name="test", user=USER, default=True)])
        memory_keyring.set_password(*stored_key(home, "test"), PASSWORD)
        window: MainWindow = create_main_window(home)
        qtbot.addWidget(window)
        window.show()
        message = enqueue(window.outbox, "hal@example.net", "Never asked for")
        qtbot.waitUntil(lambda: shown_state(window, message) == "queued")

        with qtbot.waitSignal(window.runner.finished, timeout=30_000):
            click_action(qtbot, window, window.action_flush)

        problems = modal(qtbot, "flush_problems")
        assert isinstance(problems, QMessageBox)
        assert "Test Connection in File → Accounts… shows what the server offers" in (
            problems.informativeText()
        )
        assert window.findChild(QWidget, "password_prompt") is None
        assert window.outbox.get(message).state is MessageState.QUEUED
        assert server.messages == []
        assert "AUTH" not in server.verbs()
