"""Times in the window follow the user's locale (relative within the hour, the time alone
today, the date when not today); the command line keeps its own stable form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QLocale
from PySide6.QtWidgets import QDateTimeEdit
from pytestqt.qtbot import QtBot

from gui.detail_pane import DetailPane
from gui.local_time import exact_text, moment_text
from gui.main_window import MainWindow
from gui.outbox_model import Column, OutboxModel
from relay.events import MessageSnapshot, RecipientSnapshot
from relay.message import parse_message
from relay.policy import Verdict
from relay.states import MessageState, RecipientState
from relay.store.outbox import Outbox
from relay.throttle import AccountPause, pause_text
from tests.gui.driving import click_button, click_rows, modal, shown, shown_state
from tests.gui.messages import enqueue, message_bytes

# Noon, local time: three hours either side stay on the same day in every time zone.
NOON = datetime(2026, 12, 5, 12, 0).astimezone()
EN_US = QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)
DE_DE = QLocale(QLocale.Language.German, QLocale.Country.Germany)


@pytest.fixture
def locale_after() -> Iterator[None]:
    """The test sets the default locale; the default goes back to what it was afterwards."""
    previous = QLocale()
    yield
    QLocale.setDefault(previous)


def message(
    state: MessageState, created: datetime, next_at: datetime | None, message_id: int = 1
) -> MessageSnapshot:
    return MessageSnapshot(
        message_id, state, "alice@example.org", "Hi", 100, created, 1, next_at, None,
        (RecipientSnapshot("bob@example.net", RecipientState.DEFERRED, None),), None,
    )  # fmt: skip


def cells(locale: QLocale) -> tuple[str, str, str, str]:
    """The Queued and Next try cells of two messages, in a model made under ``locale``."""
    QLocale.setDefault(locale)
    model = OutboxModel()
    model.clock = lambda: NOON
    earlier_today, tomorrow = NOON - timedelta(hours=3), NOON + timedelta(days=1, minutes=30)
    recent, soon = NOON - timedelta(minutes=12), NOON + timedelta(minutes=5)
    model.load(
        [
            message(MessageState.DEFERRED, earlier_today, tomorrow),
            message(MessageState.DEFERRED, recent, soon, 2),
        ]
    )
    return (
        model.index(0, Column.QUEUED).data(),
        model.index(0, Column.NEXT_TRY).data(),
        model.index(1, Column.QUEUED).data(),
        model.index(1, Column.NEXT_TRY).data(),
    )


def test_the_time_columns_read_as_the_users_locale_writes_times_and_dates(
    qtbot: QtBot, locale_after: None
) -> None:
    queued, next_try, recent, soon = cells(EN_US)
    assert re.fullmatch(r"9:00\s?AM", queued)  # today: the time alone, 12-hour clock
    assert re.fullmatch(r"12/6/26,? 12:30\s?PM", next_try)  # tomorrow: with its date
    assert (recent, soon) == ("12 min ago", "in 5 min")  # within the hour: relative

    queued, next_try, recent, soon = cells(DE_DE)
    assert queued == "09:00"
    assert next_try == "06.12.26 12:30"
    assert (recent, soon) == ("12 min ago", "in 5 min")


def test_the_c_locale_keeps_the_iso_like_form_the_command_line_prints(qtbot: QtBot) -> None:
    queued, next_try, _, _ = cells(QLocale.c())  # the fixture restores the C default
    assert (queued, next_try) == ("09:00", "2026-12-06 12:30")


def test_a_time_cells_tooltip_gives_the_exact_moment_in_the_locale(
    qtbot: QtBot, locale_after: None
) -> None:
    QLocale.setDefault(DE_DE)
    model = OutboxModel()
    model.clock = lambda: NOON
    model.load([message(MessageState.DEFERRED, NOON - timedelta(minutes=2), NOON)])
    assert model.index(0, Column.QUEUED).data() == "2 min ago"
    tooltip = model.index(0, Column.QUEUED).data(0x3)  # Qt.ToolTipRole
    assert tooltip.startswith("Samstag, 5. Dezember 2026 11:58:00")
    assert model.index(0, Column.NEXT_TRY).data(0x3) == exact_text(NOON, DE_DE)


def test_an_attempt_time_is_never_relative_and_has_its_date_on_another_day() -> None:
    just_now = NOON - timedelta(minutes=1)
    assert moment_text(just_now, NOON, DE_DE, relative=False) == "11:59"
    assert moment_text(NOON - timedelta(days=2), NOON, DE_DE, relative=False) == "03.12.26 12:00"
    assert moment_text(just_now, NOON, DE_DE) == "1 min ago"


def test_a_pause_reads_in_the_locale_in_the_window_and_stays_stable_on_the_command_line() -> None:
    pause = AccountPause("work", NOON + timedelta(days=1), "daily sending limit", "", 1)

    def in_german(until: datetime, now: datetime) -> str:
        return moment_text(until, now, DE_DE, relative=False)

    assert pause_text(pause, NOON, when=in_german) == (
        "work: paused until 06.12.26 12:00 (daily sending limit)"
    )
    assert pause_text(pause, NOON) == "work: paused until 2026-12-06 12:00 (daily sending limit)"


def test_send_later_picks_and_shows_the_time_in_the_locale(
    window: MainWindow, qtbot: QtBot, locale_after: None
) -> None:
    QLocale.setDefault(DE_DE)
    later = enqueue(window.outbox, "bob@example.net", "Tomorrow")
    qtbot.waitUntil(lambda: shown_state(window, later) == "queued")
    click_rows(qtbot, window, later)
    window.action_send_later.trigger()
    dialog = modal(qtbot, "send_later_dialog")
    picker = dialog.findChild(QDateTimeEdit, "send_later_when")
    assert picker is not None
    assert picker.displayFormat() == "dd.MM.yy HH:mm"
    picker.setDateTime(picker.dateTime().addDays(2))
    chosen = picker.dateTime()
    click_button(qtbot, dialog, "send_later_accept")
    expected = DE_DE.toString(chosen, QLocale.FormatType.ShortFormat)
    qtbot.waitUntil(lambda: shown(window, later, Column.NEXT_TRY) == expected)
    assert window.statusBar().currentMessage() == f"1 message will be sent at {expected}."


def test_a_cell_read_again_after_the_locale_changed_has_the_new_locales_words(
    qtbot: QtBot,
) -> None:
    # The cache behind the cells is keyed by the locale too.
    model = OutboxModel()
    model.clock = lambda: NOON
    snapshot = message(MessageState.DEFERRED, NOON - timedelta(hours=3), None)
    model.load([snapshot])
    assert model.index(0, Column.QUEUED).data() == "09:00"
    QLocale.setDefault(EN_US)
    try:
        assert re.fullmatch(r"9:00\s?AM", model.index(0, Column.QUEUED).data())
    finally:
        QLocale.setDefault(QLocale.c())


def test_the_attempts_list_shows_times_as_the_locale_writes_them(
    qtbot: QtBot, tmp_path: Path, locale_after: None
) -> None:
    QLocale.setDefault(DE_DE)
    with Outbox.open(tmp_path / "home") as outbox:
        snapshot = outbox.add_message(parse_message(message_bytes("ann@example.net", "Hi")))
        for started in (NOON - timedelta(days=2), NOON - timedelta(minutes=2)):
            outbox.claim([snapshot.id])
            attempt = outbox.start_attempt(
                snapshot.id, account="work", server="smtp.example.org:587", now=started
            )
            outbox.finish_attempt(
                snapshot.id, attempt,
                {"ann@example.net": Verdict(RecipientState.DEFERRED, "451 4.7.1 later")},
                outcome="deferred", error="451 4.7.1 later", next_attempt_at=None,
                now=started + timedelta(seconds=3),
            )  # fmt: skip
        pane = DetailPane(outbox)
        qtbot.addWidget(pane)
        pane.clock = lambda: NOON
        pane.show_message(snapshot.id)
        rows = [
            (pane.attempts.topLevelItem(i).text(0), pane.attempts.topLevelItem(i).text(1))
            for i in range(pane.attempts.topLevelItemCount())
        ]
        assert rows == [("03.12.26 12:00", "03.12.26 12:00"), ("11:58", "11:58")]
        assert (
            pane.attempts.topLevelItem(1)
            .toolTip(0)
            .startswith("Samstag, 5. Dezember 2026 11:58:00")
        )
