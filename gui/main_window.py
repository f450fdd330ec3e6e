"""The main window: the outbox table, its actions, the detail pane and the status bar.

The window is wiring. The engine does the work (``relay.engine.Engine``: its
commands, and its flushes run by ``FlushRunner``); the window hands it what a person
chose, and shows what the engine's events say through ``EngineBridge`` and
``OutboxModel``. It never talks SMTP and never writes the store but through
engine calls.

Actions (toolbar, menus, the table's context menu, keyboard) are enabled only
when they make sense for the selection and for the flush state: Send all needs
something due and no flush anywhere; Stop needs this window's flush; Retry
needs a deferred, failed or uncertain message, and reads "Send Again…" (with a
warning that the recipient may get it twice) when a selected message has an
uncertain recipient; Delete asks first.

Dialogs are opened with ``open()``: a nested ``exec()`` loop under qasync,
started from an engine callback, misbehaves (seen with qasync here).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    QSettings,
    Qt,
    QTimer,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from gui.about import show_about
from gui.auto_send import AutoSender
from gui.bridge import EngineBridge
from gui.comeback import ComebackWatch
from gui.command_hints import for_window
from gui.confirm import ask, send_again_text, tell
from gui.detail_pane import DetailPane
from gui.display_text import STATE_LABELS
from gui.empty_hint import EmptyHint
from gui.file_intake import add_files, dropped_files
from gui.flush_runner import FlushRunner
from gui.icons import action_icon, app_icon
from gui.local_time import moment_text
from gui.message_editor import EDITABLE, MessageEditor
from gui.message_export import choose_target, save_eml
from gui.notifications import DesktopNotifier
from gui.outbox_model import Column, OutboxFilter, OutboxModel, RowMessage
from gui.outbox_view import OutboxView
from gui.password_prompt import PasswordPrompt
from gui.progress_delegate import ProgressDelegate
from gui.sign_in_prompt import SignInPrompt
from gui.status import StatusPanel
from gui.store_resync import StoreResync
from gui.store_watcher import StoreWatcher
from gui.tray import OutboxTray
from relay.accounts import Account
from relay.engine import Engine
from relay.errors import OutboxError
from relay.events import (
    AttemptStarted,
    AuthenticationRefused,
    FlushFinished,
    MessageChanged,
    MessageDeleted,
    MessageQueued,
    PhaseChanged,
    ProgressMade,
)
from relay.flush import FlushErrorKind, FlushResult
from relay.machineproblems import MachineProblem, explain
from relay.states import MessageState, Phase, RecipientState
from relay.store.outbox import utc_now

NOTIFY_SETTING = "notifications/enabled"
STOP_TIP = "Finish the messages in flight and send nothing more"
STOP_NOW_TIP = "Drop the connections now; a message whose data all went out is marked uncertain"
RETRYABLE = frozenset({MessageState.DEFERRED, MessageState.FAILED, MessageState.UNCERTAIN})
SENDABLE = frozenset({MessageState.QUEUED, MessageState.DEFERRED})
SCHEDULABLE = frozenset({MessageState.QUEUED, MessageState.DEFERRED, MessageState.HELD})
HOLDABLE = frozenset(
    {MessageState.QUEUED, MessageState.DEFERRED, MessageState.FAILED, MessageState.UNCERTAIN}
)

#: Together narrower than the table at the window's first size: no horizontal scrollbar.
_DEFAULT_WIDTHS = {
    Column.STATE: 90,
    Column.RECIPIENTS: 190,
    Column.SUBJECT: 210,
    Column.SIZE: 70,
    Column.ATTEMPTS: 70,
    Column.LAST_RESULT: 210,
    Column.QUEUED: 110,
    Column.NEXT_TRY: 110,
    Column.PROGRESS: 80,
}


class MainWindow(QMainWindow):
    """The main window: the outbox table, the toolbar and menus, the detail pane, the status bar."""

    def __init__(
        self,
        engine: Engine,
        settings: QSettings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.home = home = engine.home
        #: The store, read by the panes; changes go through ``engine``.
        self.outbox = outbox = engine.outbox
        self.settings = settings
        self._closing = False
        self._quitting = False
        self._close_when_stopped = False
        self._send_again_after_flush = False
        #: Messages a person asked to send again while a flush ran (a notification's Retry).
        self._retry_after_flush: list[int] = []
        self._prompts: dict[str, PasswordPrompt | SignInPrompt] = {}
        self._refused_accounts: set[str] = set()
        self._selected: list[int] = []
        # What update_actions needs of the selection, kept up to date message by message
        # (a selection of 100,000 rows must not be walked 30 times a second in a flush).
        self._selected_states: Counter[MessageState] = Counter()
        self._selected_shown: dict[int, MessageState | None] = {}
        self._selected_uncertain: set[int] = set()
        #: Selected rows a flush claimed whose turn has not come: they can still be held.
        self._selected_waiting: set[int] = set()
        self._icons: dict[QAction, str] = {}  # redrawn in the new colours when the theme changes

        self.setObjectName("main_window")
        self.setWindowTitle("Outbox")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)

        self.bridge = EngineBridge(engine, self)
        self.runner = FlushRunner(engine, self)
        self.model = OutboxModel(self)
        self.resync = StoreResync(engine, self.model, self)
        self.resync.load()
        self.proxy = OutboxFilter(self.model, self)
        self.watcher = StoreWatcher(outbox, self)

        self._build_actions()
        self._build_view()
        self._build_filter_bar()
        self.detail = DetailPane(outbox)
        self._build_layout()
        self._build_menus_and_toolbar()
        self.status = StatusPanel(self.statusBar())
        self.tray = OutboxTray(self.action_show, self.action_flush, self.action_quit, self)
        self.auto_send = AutoSender(
            home, outbox, self.runner, self.action_auto_send, settings, parent=self
        )
        self.comeback = ComebackWatch(self)
        self.notifier = DesktopNotifier(self)
        self.editor = MessageEditor(engine, self)
        # Once the loop runs, and only with notifications on: even asking the service
        # its capabilities may start a notification daemon (D-Bus activation).
        QTimer.singleShot(
            0, lambda: self._notifications_toggled(self.action_notifications.isChecked())
        )

        self._connect()
        self._restore_settings()
        self._on_counts_changed(self.model.counts())
        self.status.show_lock_busy(self.runner.lock_busy)
        self.update_actions()
        self.auto_send.reschedule()

    # -- building -----------------------------------------------------------------------

    def _action(
        self,
        name: str,
        text: str,
        icon: str | None,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
        tip: str,
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if icon is not None:
            action.setIcon(action_icon(icon))
            self._icons[action] = icon
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.action_flush = self._action(
            "action_flush",
            "Send All",
            "send-all",
            "Ctrl+Shift+Return",
            "Send every message that is due now",
        )
        self.action_flush_selected = self._action(
            "action_flush_selected",
            "Send Selected",
            "send-selected",
            "Ctrl+Return",
            "Send the selected messages now, whatever their back-off",
        )
        self.action_stop = self._action(
            "action_stop",
            "Stop",
            "stop",
            "Ctrl+.",
            STOP_TIP,
        )
        self.action_retry = self._action(
            "action_retry",
            "Retry",
            "retry",
            "Ctrl+R",
            "Send the selected deferred or failed messages again now",
        )
        self.action_retry_failed = self._action(
            "action_retry_failed",
            "Retry All Failed",
            None,
            "Ctrl+Shift+R",
            "Send every failed message again now",
        )
        self.action_hold = self._action(
            "action_hold",
            "Hold",
            "hold",
            "Ctrl+H",
            "Keep the selected messages out of every flush",
        )
        self.action_release = self._action(
            "action_release",
            "Release",
            "release",
            "Ctrl+Shift+H",
            "Let the selected held messages go with the next flush",
        )
        self.action_delete = self._action(
            "action_delete",
            "Delete…",
            "delete",
            QKeySequence.StandardKey.Delete,
            "Remove the selected messages from the outbox",
        )
        self.action_clear_sent = self._action(
            "action_clear_sent",
            "Clear Sent…",
            None,
            None,
            "Remove every sent message (and its record of delivery) from the outbox",
        )
        self.action_add = self._action(
            "action_add",
            "Add Messages…",
            "add",
            QKeySequence.StandardKey.Open,
            "Add .eml files to the outbox (or drop them on the window)",
        )
        self.action_accounts = self._action(
            "action_accounts",
            "Accounts…",
            "accounts",
            "Ctrl+,",
            "Add, change or remove the accounts mail goes out through",
        )
        self.action_aliases = self._action(
            "action_aliases",
            "Aliases…",
            None,
            None,
            "Where mail to a local name (root, a cron job's user) goes",
        )
        self.action_find = self._action(
            "action_find",
            "Find",
            None,
            QKeySequence.StandardKey.Find,
            "Search recipients and subjects",
        )
        self.action_quit = self._action(
            "action_quit", "Quit", None, QKeySequence.StandardKey.Quit, "Close Outbox"
        )
        self.action_show = self._action(
            "action_show", "Show Outbox", None, None, "Bring the Outbox window to the front"
        )
        self.action_send_later = self._action(
            "action_send_later",
            "Send Later…",
            None,
            None,
            "Send the selected messages no earlier than a time you choose",
        )
        self.action_notifications = self._action(
            "action_notifications",
            "Notify When Mail Is Not Sent",
            None,
            None,
            "A desktop notification (Retry, Show) when a message fails or may not have"
            " arrived; it never shows a message's text",
        )
        self.action_notifications.setCheckable(True)
        self.action_auto_send = self._action(
            "action_auto_send",
            "Send deferred messages when they are due",
            None,
            None,
            "While the window runs, send each deferred or scheduled message when its next"
            " try falls due (new mail still waits for Send)",
        )
        self.action_save_eml = self._action(
            "action_save_eml",
            "Save as .eml…",
            None,
            QKeySequence.StandardKey.Save,
            "Save the selected message to a file, exactly as it will be sent",
        )
        self.action_open_editor = self._action(
            "action_open_editor",
            "Open in Editor",
            None,
            "Ctrl+E",
            "Edit the selected held or queued message in your editor; it is used if it"
            " is still a message Outbox can send",
        )
        self.action_about = self._action(
            "action_about",
            "About Outbox",
            None,
            None,
            "The version, the data folder and the documentation",
        )

    def _build_view(self) -> None:
        view = OutboxView()
        view.setObjectName("outbox_view")
        view.setAccessibleName("Messages in the outbox")
        view.setModel(self.proxy)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setSortingEnabled(True)
        view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        view.setAlternatingRowColors(True)
        view.setShowGrid(False)
        view.setWordWrap(False)
        view.setTextElideMode(Qt.TextElideMode.ElideRight)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setAcceptDrops(False)
        view.setTabKeyNavigation(False)  # Tab goes to the next control, not the next cell
        view.viewport().setAcceptDrops(False)
        vertical = view.verticalHeader()
        vertical.hide()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(view.fontMetrics().height() + 10)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        header.setSortIndicatorClearable(True)
        for column, width in _DEFAULT_WIDTHS.items():
            header.resizeSection(column, width)
        self.progress_delegate = ProgressDelegate(view)
        view.setItemDelegateForColumn(Column.PROGRESS, self.progress_delegate)
        self.view = view
        # "in 5 min" must read "in 4 min" a minute later: once a minute, the Queued and
        # Next try cells on screen are repainted (no model signal, whatever the row count).
        self.time_columns_timer = QTimer(self)
        self.time_columns_timer.setObjectName("time_columns_timer")
        self.time_columns_timer.setSingleShot(True)
        self.time_columns_timer.timeout.connect(self._repaint_time_columns)
        self.time_columns_timer.start(_ms_to_next_minute())
        self.empty_hint = EmptyHint(view.viewport())
        hint_layout = QVBoxLayout(view.viewport())
        hint_layout.addWidget(self.empty_hint)

    def _build_filter_bar(self) -> None:
        self.state_filter = QComboBox()
        self.state_filter.setObjectName("state_filter")
        self.state_filter.setAccessibleName("Show messages in state")
        self.state_filter.addItem("All", "")
        for state, label in STATE_LABELS.items():
            self.state_filter.addItem(label, state.value)
        self.state_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setAccessibleName("Search recipients and subject")
        self.search.setPlaceholderText("Search recipients and subject")
        self.search.setClearButtonEnabled(True)
        search_icon = self.search.addAction(
            action_icon("search"), QLineEdit.ActionPosition.LeadingPosition
        )
        self._icons[search_icon] = "search"

    def _build_layout(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        show = QLabel("&Show:")
        show.setBuddy(self.state_filter)
        bar.addWidget(show)
        bar.addWidget(self.state_filter)
        bar.addSpacing(12)
        bar.addWidget(self.search, 1)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.view)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(top)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.splitter)
        self.setCentralWidget(central)

    def _build_menus_and_toolbar(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.action_add)
        file_menu.addAction(self.action_accounts)
        file_menu.addAction(self.action_aliases)
        file_menu.addSeparator()
        file_menu.addAction(self.action_quit)
        messages = menus.addMenu("&Messages")
        for action in (
            self.action_flush,
            self.action_flush_selected,
            self.action_send_later,
            self.action_stop,
        ):
            messages.addAction(action)
        messages.addSeparator()
        for action in (
            self.action_retry,
            self.action_retry_failed,
            self.action_hold,
            self.action_release,
        ):
            messages.addAction(action)
        messages.addSeparator()
        messages.addAction(self.action_open_editor)
        messages.addAction(self.action_save_eml)
        messages.addAction(self.action_delete)
        messages.addSeparator()
        messages.addAction(self.action_auto_send)
        messages.addAction(self.action_notifications)
        messages.addAction(self.action_clear_sent)
        edit = menus.addMenu("&View")
        edit.addAction(self.action_find)
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self.action_about)

        toolbar = QToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        toolbar.setAccessibleName("Actions")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.action_flush, self.action_flush_selected, self.action_stop):
            toolbar.addAction(action)
        toolbar.addSeparator()
        for action in (
            self.action_retry,
            self.action_hold,
            self.action_release,
            self.action_delete,
        ):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.action_add)
        toolbar.addAction(self.action_accounts)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

        self.context_menu = QMenu(self)
        for action in (self.action_flush_selected, self.action_send_later, self.action_retry):
            self.context_menu.addAction(action)
        self.context_menu.addSeparator()
        for action in (self.action_hold, self.action_release):
            self.context_menu.addAction(action)
        self.context_menu.addSeparator()
        self.context_menu.addAction(self.action_open_editor)
        self.context_menu.addAction(self.action_save_eml)
        self.context_menu.addAction(self.action_delete)

    def _connect(self) -> None:
        bridge, model = self.bridge, self.model
        bridge.message_queued.connect(self._on_message_queued)
        bridge.message_changed.connect(self._on_message_changed)
        bridge.message_deleted.connect(self._on_message_deleted)
        bridge.attempt_started.connect(self._on_attempt_started)
        bridge.phase_changed.connect(self._on_phase_changed)
        bridge.progress_made.connect(self._on_progress_made)
        bridge.flush_started.connect(self.status.on_flush_started)
        bridge.flush_finished.connect(self._on_flush_finished)
        bridge.authentication_refused.connect(self._on_authentication_refused)
        bridge.session_failed.connect(self.status.on_session_failed)

        model.counts_changed.connect(self._on_counts_changed)
        model.messages_refreshed.connect(self._on_messages_refreshed)
        self.watcher.changed.connect(self._on_store_changed_elsewhere)

        self.runner.running_changed.connect(self._on_running_changed)
        self.runner.lock_busy_changed.connect(self._on_lock_busy_changed)
        self.runner.finished.connect(self._on_runner_finished)
        self.runner.problem.connect(self._on_runner_problem)
        self.auto_send.started.connect(
            lambda: self.status.notice("Sending deferred messages that are due…")
        )
        self.auto_send.pauses_changed.connect(self.status.show_pauses)
        self.comeback.came_back.connect(self.auto_send.came_back)
        self.notifier.retry_requested.connect(self.retry_messages)
        self.notifier.show_requested.connect(self.show_messages)
        self.action_notifications.toggled.connect(
            lambda on: self.settings.setValue(NOTIFY_SETTING, on)
        )
        self.action_notifications.toggled.connect(self._notifications_toggled)
        model.counts_changed.connect(self.auto_send.reschedule_soon)
        model.messages_refreshed.connect(self.auto_send.reschedule_soon)

        selection = self.view.selectionModel()
        selection.selectionChanged.connect(self._on_selection_changed)
        selection.currentRowChanged.connect(self._on_current_row_changed)
        self.view.customContextMenuRequested.connect(self._show_context_menu)
        self.state_filter.currentIndexChanged.connect(self._on_state_filter_changed)
        self.search.textChanged.connect(self.proxy.set_search_text)
        self.proxy.rowsInserted.connect(self._select_first_if_none)

        self.action_flush.triggered.connect(self.flush_all)
        self.action_flush_selected.triggered.connect(self.flush_selected)
        self.action_stop.triggered.connect(self.stop_flush)
        self.action_retry.triggered.connect(self.retry_selected)
        self.action_send_later.triggered.connect(self.send_later_selected)
        self.action_retry_failed.triggered.connect(self.retry_failed)
        self.action_hold.triggered.connect(self.hold_selected)
        self.action_release.triggered.connect(self.release_selected)
        self.action_delete.triggered.connect(self.delete_selected)
        self.action_clear_sent.triggered.connect(self.clear_sent)
        self.action_add.triggered.connect(self.choose_files)
        self.action_accounts.triggered.connect(self.open_accounts)
        self.action_aliases.triggered.connect(self.open_aliases)
        self.empty_hint.add_account_requested.connect(self.open_accounts)
        self.action_find.triggered.connect(self._focus_search)
        self.action_save_eml.triggered.connect(self.save_selected_eml)
        self.action_open_editor.triggered.connect(self.edit_selected)
        self.editor.notice.connect(self.status.notice)
        self.action_about.triggered.connect(lambda: show_about(self, self.home))
        self.action_quit.triggered.connect(self.quit_app)
        self.action_show.triggered.connect(self._bring_to_front)

    # -- what a person does -------------------------------------------------------------------

    def selected_ids(self) -> list[int]:
        return list(self._selected)

    def selected_messages(self) -> list[RowMessage]:
        messages = []
        for message_id in self._selected:
            row = self.model.row_of(message_id)
            if row is not None:
                messages.append(self.model.message_at(row))
        return messages

    def flush_all(self) -> None:
        # A person's click: an account a provider paused is tried all the same.
        if self.runner.start(None, ignore_pauses=True):
            self.status.notice("Sending what is due…")

    def flush_selected(self) -> None:
        ids = [m.id for m in self.selected_messages() if m.state in SENDABLE]
        if ids and self.runner.start(ids):
            self.status.notice(f"Sending {_messages(len(ids))}…")

    def stop_flush(self) -> None:
        """Stop: finish what is in flight. Again while it stops (a server that does not
        answer can keep it for minutes): drop the connections now, as a second Ctrl-C
        does on the command line; a message whose data had all gone out is uncertain."""
        if self.runner.stopping:
            self.runner.abort()
            self.status.notice("Dropping the connections…")
            return
        self.runner.stop()
        self.status.on_stopping()

    def retry_selected(self) -> None:
        self._retry_rows(self.selected_messages())

    def retry_messages(self, ids: list[int]) -> None:
        """Send these messages again (asking first for any that may have arrived).

        Read from the store, not the table: a notification's Retry can come
        before the table has redrawn the end of the flush it is about.
        """
        self._retry_rows(
            [
                RowMessage(m.id, m.state, tuple((r.address, r.state) for r in m.recipients))
                for m in self.outbox.snapshots(ids)
            ]
        )

    def _retry_rows(self, messages: list[RowMessage]) -> None:
        chosen = [m for m in messages if m.state in RETRYABLE]
        if not chosen:
            return
        again = [
            (m, address)
            for m in chosen
            for address, state in m.recipients
            if state is RecipientState.UNCERTAIN
        ]
        ids = [m.id for m in chosen]
        if not again:
            self._retry(ids)
            return
        who = "\n".join(f"• {address} (message {m.id})" for m, address in again[:10])
        if len(again) > 10:
            who += f"\n… and {len(again) - 10} more"
        ask(
            self,
            name="confirm_send_again",
            title="Send again?",
            text=send_again_text(len({m.id for m, _ in again})),
            detail=(
                "The connection was lost after the message was sent and before the server"
                " answered, so it may have arrived. Sending again may deliver a second copy"
                f" to:\n{who}"
            ),
            accept_text="Send Again",
            # The question may stay open a while: a message deleted, held or sent
            # meanwhile (from the command line) must not make the others fail.
            on_accept=lambda: self._retry(self._still_retryable(ids)),
            warning=True,
        )

    def retry_failed(self) -> None:
        ids = self.outbox.failed_ids()
        if ids:
            self._retry(ids)

    def _still_retryable(self, ids: list[int]) -> list[int]:
        return [m.id for m in self.outbox.snapshots(ids) if m.state in RETRYABLE]

    def _retry(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            self.engine.retry(ids)
        except OutboxError as exc:
            self.status.notice(str(exc))
            return
        if self.runner.running:
            # The flush under way chose its messages when it began: these go after it,
            # or they would wait, queued, for a click nobody knows is needed.
            waiting = set(self._retry_after_flush)  # Retry Failed may name thousands
            self._retry_after_flush += [i for i in dict.fromkeys(ids) if i not in waiting]
            self.status.notice(f"Sending {_messages(len(ids))} again after this flush…")
            return
        if self.runner.start(ids):
            self.status.notice(f"Sending {_messages(len(ids))} again…")

    def send_later_selected(self) -> None:
        from gui.send_later import SendLaterDialog

        ids = [m.id for m in self.selected_messages() if m.state in SCHEDULABLE]
        if not ids:
            return
        dialog = SendLaterDialog(len(ids), utc_now(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.chosen.connect(lambda moment: self._send_later(ids, moment))
        dialog.open()

    def _send_later(self, ids: list[int], moment: datetime) -> None:
        when = moment_text(moment, utc_now(), relative=False)
        self._command(
            lambda: self.engine.schedule(ids, moment),
            f"{_messages(len(ids)).capitalize()} will be sent at {when}.",
        )

    def show_messages(self, ids: list[int]) -> None:
        """Bring the window up with these messages selected (a notification's "Show")."""
        self._bring_to_front()
        self.state_filter.setCurrentIndex(0)
        self.search.clear()
        selection = self.view.selectionModel()
        selection.clearSelection()
        first = True
        for message_id in ids:
            row = self.model.row_of(message_id)
            if row is None:
                continue
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            if not index.isValid():
                continue
            flags = QItemSelectionModel.SelectionFlag.Select | (
                QItemSelectionModel.SelectionFlag.Rows
            )
            selection.select(index, flags)
            if first:
                self.view.scrollTo(index)
                first = False

    def hold_selected(self) -> None:
        # A waiting message is held before its turn comes: the flush hands it back.
        ids = [
            m.id
            for m in self.selected_messages()
            if m.state in HOLDABLE or self.model.is_waiting(m.id)
        ]
        self._command(lambda: self.engine.hold(ids), f"Held {_messages(len(ids))}.")

    def release_selected(self) -> None:
        ids = [m.id for m in self.selected_messages() if m.state is MessageState.HELD]
        self._command(lambda: self.engine.release(ids), f"Released {_messages(len(ids))}.")

    def delete_selected(self) -> None:
        ids = [m.id for m in self.selected_messages() if m.state is not MessageState.SENDING]
        if not ids:
            return
        unsent = sum(
            1 for m in self.selected_messages() if m.id in ids and m.state is not MessageState.SENT
        )
        detail = (
            f"{_messages(unsent).capitalize()} not sent yet will never be sent."
            if unsent
            else "Their record of delivery goes with them."
        )
        ask(
            self,
            name="confirm_delete",
            title="Delete messages?",
            text=f"Delete {_messages(len(ids))} from the outbox?",
            detail=detail + " This cannot be undone.",
            accept_text="Delete",
            on_accept=lambda: self._command(
                lambda: self.engine.delete(ids), f"Deleted {_messages(len(ids))}."
            ),
            warning=True,
        )

    def save_selected_eml(self) -> None:
        chosen = self.selected_messages()
        if len(chosen) != 1:
            return
        message_id = chosen[0].id

        def save(path: Path) -> None:
            try:
                save_eml(self.outbox, message_id, path)
            except (OSError, OutboxError) as exc:
                tell(self, name="save_eml_failed", title="Not saved", text=str(exc))
                return
            self.status.notice(f"Saved message {message_id} as {path}.")

        try:
            subject = self.outbox.get(message_id).subject
        except OutboxError:
            subject = ""
        choose_target(self, message_id, subject, save)

    def edit_selected(self) -> None:
        chosen = self.selected_messages()
        if len(chosen) == 1 and chosen[0].state in EDITABLE:
            self.editor.open(chosen[0].id)

    def clear_sent(self) -> None:
        """Remove every sent message, after asking (``Outbox.purge_sent``)."""
        count = self.model.counts()[MessageState.SENT]
        if not count:
            return

        def purge() -> None:
            removed: list[int] = []
            self._command(lambda: removed.extend(self.engine.purge_sent()), "")
            self.status.notice(f"Cleared {_messages(len(removed))}.")

        ask(
            self,
            name="confirm_clear_sent",
            title="Clear sent messages?",
            text=f"Remove {_messages(count)} already sent from the outbox?",
            detail="Their record of delivery goes with them. Messages not sent yet stay."
            " This cannot be undone.",
            accept_text="Clear Sent",
            on_accept=purge,
            warning=True,
        )

    def choose_files(self) -> None:
        dialog = QFileDialog(self, "Add messages to the outbox", str(Path.home()))
        dialog.setObjectName("add_dialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setNameFilters(["E-mail messages (*.eml)", "All files (*)"])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.filesSelected.connect(lambda names: self.add_files([Path(n) for n in names]))
        dialog.open()

    def add_files(self, paths: list[Path]) -> list[int]:
        """Store the messages in ``paths``; say which were refused and why. The new ids."""
        result = add_files(self.engine, paths)
        if result.added:
            self.status.notice(f"Added {_messages(len(result.added))} to the outbox.")
        if result.refused:
            lines = "\n".join(f"{path.name}: {reason}" for path, reason in result.refused[:20])
            tell(
                self,
                name="add_refused",
                title="Some files were not added",
                text=f"{len(result.refused)} of {len(paths)} files are not messages Outbox"
                " can send:",
                detail=lines,
            )
        return result.added

    def open_accounts(self) -> None:
        from gui.accounts_dialog import AccountsDialog

        existing = self.findChild(AccountsDialog, "accounts_dialog")
        if existing is not None:
            existing.raise_()
            existing.activateWindow()
            return
        dialog = AccountsDialog(self.home, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accounts_changed.connect(lambda: self._on_counts_changed(self.model.counts()))
        dialog.open()

    def open_aliases(self) -> None:
        from gui.aliases_dialog import AliasesDialog

        existing = self.findChild(AliasesDialog, "aliases_dialog")
        if existing is not None:
            existing.raise_()
            existing.activateWindow()
            return
        dialog = AliasesDialog(self.home, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _command(self, run: Callable[[], object], done: str) -> None:
        try:
            run()
        except Exception as exc:
            if isinstance(exc, OutboxError) and not isinstance(exc, MachineProblem):
                self.status.notice(str(exc))
                return
            problem = explain(exc, store=self.outbox.path, home=self.home)
            if problem is None:
                raise
            self.show_problem(str(problem))
            return
        if done:
            self.status.notice(done)

    def show_problem(self, text: str) -> None:
        """A problem of the machine (full disk, busy or damaged store): in a dialog, in words."""
        self.status.notice(text)
        tell(self, name="machine_problem", title="Outbox cannot do that now", text=text)

    # -- keeping actions honest --------------------------------------------------------------

    def update_actions(self) -> None:
        states = {state for state, count in self._selected_states.items() if count}
        uncertain = bool(self._selected_uncertain)
        running = self.runner.running
        free = not running and not self.runner.lock_busy
        counts = self.model.counts()
        due = counts[MessageState.QUEUED] + counts[MessageState.DEFERRED] > 0
        # Rows still "sending" when no flush runs anywhere were left by one that
        # failed: the next flush recovers them first, so they count as due.
        due = due or (free and counts[MessageState.SENDING] > 0)
        self.action_flush.setEnabled(free and due)
        self.action_flush_selected.setEnabled(free and bool(states & SENDABLE))
        self.action_stop.setEnabled(running)
        stopping = self.runner.stopping
        self.action_stop.setText("Stop Now" if stopping else "Stop")
        tip = STOP_NOW_TIP if stopping else STOP_TIP
        self.action_stop.setToolTip(tip)
        self.action_stop.setStatusTip(tip)
        self.action_retry.setEnabled(free and bool(states & RETRYABLE))
        self.action_retry.setText("Send Again…" if uncertain else "Retry")
        self.action_retry_failed.setEnabled(free and counts[MessageState.FAILED] > 0)
        self.action_hold.setEnabled(bool(states & HOLDABLE or self._selected_waiting))
        self.action_send_later.setEnabled(bool(states & SCHEDULABLE))
        self.action_release.setEnabled(MessageState.HELD in states)
        self.action_delete.setEnabled(bool(states - {MessageState.SENDING}))
        one = len(self.selected_messages()) == 1
        self.action_save_eml.setEnabled(one)
        self.action_open_editor.setEnabled(one and bool(states & EDITABLE))
        self.action_clear_sent.setEnabled(counts[MessageState.SENT] > 0)

    # -- engine events -----------------------------------------------------------------------

    def _on_message_queued(self, event: MessageQueued) -> None:
        self.model.message_arrived(event.message)

    def _on_message_changed(self, event: MessageChanged) -> None:
        self.model.message_arrived(event.message)
        self.status.on_message_changed(event)

    def _on_message_deleted(self, event: MessageDeleted) -> None:
        self.model.message_gone(event.message_id)

    def _on_attempt_started(self, event: AttemptStarted) -> None:
        self.model.phase_reached(event.message_id, "starting")

    def _on_phase_changed(self, event: PhaseChanged) -> None:
        if event.message_id is not None:
            self.model.phase_reached(event.message_id, str(event.phase))
        elif event.phase is not Phase.DONE:
            self.status.session_phase(f"{event.account}: {event.phase}…")

    def _on_progress_made(self, event: ProgressMade) -> None:
        self.model.bytes_sent(event.message_id, event.sent_bytes, event.total_bytes)
        self.status.on_progress_made(event)

    def _on_flush_finished(self, event: FlushFinished) -> None:
        self.status.on_flush_finished(event)
        if self.action_notifications.isChecked() and not self.notifier.available:
            self.tray.on_flush_finished(event)  # else the result's ids go to the notifier

    def _notifications_toggled(self, on: bool) -> None:
        if self._closing:
            return
        if on:
            self.notifier.start()  # nothing before the loop runs (the first turn starts it)
        else:
            self.notifier.close()

    def _notify(self, result: FlushResult) -> None:
        """A desktop notification for what failed or may not have arrived (never a text)."""
        if not (self.action_notifications.isChecked() and self.notifier.available):
            return
        failed = [s.message.id for s in result.settled if s.message.state is MessageState.FAILED]
        uncertain = [
            s.message.id for s in result.settled if s.message.state is MessageState.UNCERTAIN
        ]
        if not failed and not uncertain:
            return
        parts = []
        if failed:
            parts.append(f"{_messages(len(failed))} failed")
        if uncertain:
            parts.append(f"{_messages(len(uncertain))} may or may not have arrived")
        self.notifier.notify(
            "Outbox: mail not sent",
            "; ".join(parts) + ". Retry, or Show to see the server's replies.",
            [*failed, *uncertain],
        )

    def _on_authentication_refused(self, event: AuthenticationRefused) -> None:
        if not event.judged:
            return  # no password was tried: the flush's problems say what the server offers
        self._refused_accounts.add(event.account)
        # Called inside the engine's task: open the prompt from the Qt loop instead.
        QTimer.singleShot(0, lambda: self._ask_password(event.account, event.reply))

    def _ask_password(self, account: str, reply: str) -> None:
        if self._closing:
            return
        showing = self._prompts.get(account)
        if showing is not None:
            showing.raise_()
            return
        if _uses_password_command(self.home, account):
            # A password typed here would never be used: the command gives it.
            self.status.notice(
                f"The server refused the password of {account} ({reply}); fix what its"
                " password command prints, then send again."
            )
            return
        oauth_account = self._oauth_account(account)
        prompt: PasswordPrompt | SignInPrompt
        if oauth_account is not None:
            prompt = SignInPrompt(self.home, oauth_account, reply, self)
            prompt.signed_in.connect(self._on_password_saved)
        else:
            prompt = PasswordPrompt(self.home, account, reply, self)
            prompt.password_saved.connect(self._on_password_saved)
        self._prompts[account] = prompt
        prompt.finished.connect(lambda _result: self._forget_prompt(account))
        prompt.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        prompt.open()

    def _has_accounts(self) -> bool:
        from relay.accounts import load_accounts

        try:
            return bool(load_accounts(self.home))
        except OutboxError:
            return True  # a broken config is not "no account": the dialog would say why

    def _oauth_account(self, name: str) -> Account | None:
        """The account ``name`` if it signs in with OAuth2 (its prompt is "Sign in again")."""
        from relay.accounts import find_account, load_accounts

        try:
            account = find_account(load_accounts(self.home), name)
        except OutboxError:
            return None
        return account if account.oauth2 is not None else None

    def _forget_prompt(self, account: str) -> None:
        self._prompts.pop(account, None)

    def _on_password_saved(self, account: str) -> None:
        self.auto_send.account_fixed(account)
        if self.runner.running:
            self._send_again_after_flush = True
            self.status.notice(f"{account} can log in again; sending again after this flush.")
        else:
            self.status.notice(f"{account} can log in again.")
            self.flush_all()

    # -- the runner ------------------------------------------------------------------------------

    def _on_running_changed(self, _running: bool) -> None:
        self.update_actions()

    def _on_lock_busy_changed(self, busy: bool) -> None:
        self.status.show_lock_busy(busy)
        self.update_actions()

    def _on_runner_finished(self, result: FlushResult) -> None:
        self.update_actions()
        self._notify(result)
        if self._close_when_stopped:
            self.close()
            return
        again, self._retry_after_flush = self._retry_after_flush, []
        if self._send_again_after_flush:
            self._refused_accounts.clear()
            self._send_again_after_flush = False
            self.flush_all()  # what was retried meanwhile is queued: it goes too
            return
        # A refused password has its own prompt; the rest is worth a word.
        refused, self._refused_accounts = self._refused_accounts, set()
        problems = [
            str(e)
            for e in result.errors
            if not (e.kind is FlushErrorKind.AUTH_REFUSED and e.account in refused)
        ]
        if problems and self.auto_send.last_flush_was_auto:
            # Nobody clicked: no dialog out of nowhere; the status bar says it.
            self.status.notice(f"Some due messages could not be sent: {problems[0]}")
        elif problems:
            tell(
                self,
                name="flush_problems",
                title="Some messages were not sent",
                text="Some messages could not be sent:",
                detail="\n".join(problems[:20]),
            )
        # Unless a person pressed Stop: then they stay queued, as Stop leaves the rest.
        if again and not result.stopped and self.runner.start(again):
            self.status.notice(f"Sending {_messages(len(again))} again…")

    def _on_runner_problem(self, text: str) -> None:
        text = for_window(text)
        self.status.notice(f"Cannot send: {text}")
        if self.auto_send.starting_or_running:
            return  # nobody clicked: the status bar says it, no dialog out of nowhere
        tell(self, name="flush_problem", title="Cannot send", text=text)

    # -- the model and the view -------------------------------------------------------------------

    def _on_counts_changed(self, counts: dict[MessageState, int]) -> None:
        self.status.show_counts(counts)
        self.tray.show_counts(counts)
        total = sum(counts.values())
        if total == 0 or self.empty_hint.isVisibleTo(self.view.viewport()):
            self.empty_hint.show_for(total, self._has_accounts())
        self.state_filter.setItemText(0, f"All ({total})")
        for index, (state, label) in enumerate(STATE_LABELS.items(), start=1):
            self.state_filter.setItemText(index, f"{label} ({counts[state]})")
        self.update_actions()

    def _on_messages_refreshed(self, ids: set[int]) -> None:
        self.detail.refresh(ids)
        changed = [message_id for message_id in ids if message_id in self._selected_shown]
        if changed:
            self._note_selected(changed)
            self.update_actions()

    def _on_store_changed_elsewhere(self) -> None:
        self.resync.start()

    def _on_selection_changed(self) -> None:
        # From the selection's row ranges, not one index per cell (selectedRows): a
        # select-all of 100,000 rows is one range.
        rows: set[int] = set()
        selection = self.view.selectionModel().selection()
        for index in range(selection.count()):
            selected = selection.at(index)
            rows.update(self.proxy.source_rows(selected.top(), selected.bottom()))
        self._selected = self.model.ids_at(sorted(rows))
        self._selected_states = Counter()
        self._selected_shown = {}
        self._selected_uncertain = set()
        self._selected_waiting = set()
        self._note_selected(self._selected)
        self.update_actions()

    def _note_selected(self, ids: Iterable[int]) -> None:
        """Bring the selection's summary up to date for ``ids`` (selected, maybe changed)."""
        model, counts, shown = self.model, self._selected_states, self._selected_shown
        for message_id in ids:
            before = shown.get(message_id)
            if before is not None:
                counts[before] -= 1
            state = model.state_of(message_id)
            shown[message_id] = state
            if state is None:
                self._selected_uncertain.discard(message_id)
                self._selected_waiting.discard(message_id)
                continue
            counts[state] += 1
            if model.is_waiting(message_id):
                self._selected_waiting.add(message_id)
            else:
                self._selected_waiting.discard(message_id)
            if state in RETRYABLE and model.has_uncertain_recipient(message_id):
                self._selected_uncertain.add(message_id)
            else:
                self._selected_uncertain.discard(message_id)

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        message_id = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        if message_id != self.detail.message_id:
            self.detail.show_message(message_id)

    def _repaint_time_columns(self) -> None:
        viewport = self.view.viewport()
        header = self.view.horizontalHeader()
        for column in (Column.QUEUED, Column.NEXT_TRY):
            if not header.isSectionHidden(column):
                left = header.sectionViewportPosition(column)
                viewport.update(left, 0, header.sectionSize(column), viewport.height())
        self.time_columns_timer.start(_ms_to_next_minute())

    def _select_first_if_none(self) -> None:
        if not self.view.selectionModel().hasSelection() and self.proxy.rowCount() == 1:
            self.view.selectRow(0)

    def _on_state_filter_changed(self, _index: int) -> None:
        value = self.state_filter.currentData()
        self.proxy.set_state(MessageState(value) if value else None)

    def _show_context_menu(self, position: QPoint) -> None:
        self.context_menu.popup(self.view.viewport().mapToGlobal(position))

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    # -- drag and drop ----------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_files(paths)

    # -- remembering ------------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1180, 760)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        header = s.value("table/header")
        if isinstance(header, QByteArray) and not header.isEmpty():
            self.view.horizontalHeader().restoreState(header)
        splitter = s.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)
        else:
            self.splitter.setSizes([400, 300])  # the detail pane: five recipients or attempts
        self.action_notifications.setChecked(
            str(s.value(NOTIFY_SETTING, True)).lower() not in ("false", "0")
        )
        chosen = s.value("filter/state", "")
        index = self.state_filter.findData(chosen if isinstance(chosen, str) else "")
        self.state_filter.setCurrentIndex(max(0, index))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/splitter", self.splitter.saveState())
        s.setValue("table/header", self.view.horizontalHeader().saveState())
        s.setValue("filter/state", self.state_filter.currentData() or "")
        s.sync()

    # -- the theme --------------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            # Light to dark or back: line icons are drawn in the palette's text colour.
            for action, name in self._icons.items():
                action.setIcon(action_icon(name))
        super().changeEvent(event)

    # -- closing ----------------------------------------------------------------------------------

    def quit_app(self) -> None:
        """Quit (the Quit action, Ctrl-C, SIGTERM): not just into the tray."""
        self._quitting = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not (self._quitting or self._closing) and self.tray.available():
            # Closing the window keeps Outbox in the tray, sending due mail; Quit quits.
            self.save_settings()
            self.hide()
            event.ignore()
            return
        if self.runner.running:
            # Never drop a flush on the floor: stop it, and close once it has stopped.
            # Closing again while it stops drops the connection (like a second Ctrl-C).
            if self._close_when_stopped:
                self.runner.abort()
            else:
                self._close_when_stopped = True
                self.runner.stop()
                self.status.notice("Stopping after the messages in flight, then closing…")
            event.ignore()
            return
        if not self._closing:
            self._closing = True
            self.auto_send.stop()
            self.comeback.stop()
            self.editor.close()
            self.notifier.close()
            self.save_settings()
            self.runner.shutdown()
            self.watcher.stop()
            self.resync.close()
            self.bridge.close()
            self.tray.close()
        event.accept()


def _ms_to_next_minute() -> int:
    """Milliseconds until the clock's next whole minute (at least one)."""
    return max(1, 60_000 - int(time.time() * 1000) % 60_000)


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"


def _uses_password_command(home: Path, account_name: str) -> bool:
    from relay.accounts import find_account, load_accounts

    try:
        return find_account(load_accounts(home), account_name).password_command is not None
    except OutboxError:
        return False
