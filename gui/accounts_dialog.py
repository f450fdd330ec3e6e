"""The Accounts dialog: add, change and remove the accounts mail goes out through.

Settings go to ``config.toml`` through ``relay.accounts`` (validated there, with
the same one-line errors the command line prints); a password goes only to the
keyring through ``relay.credentials``, never to a file, and is never shown
again: the field stays empty and says whether one is stored.

"How it logs in" is a password or "Sign in with …" (OAuth2: Google,
Microsoft, or another provider's endpoints, with the client ID the person
registered). For the latter, "Sign in…" runs the browser sign-in
(``gui.sign_in``) and the form says whether the account is signed in; the
refresh token goes to the keyring only.

"Find settings" takes an e-mail address and fills in the server, the user
name and the way to log in from what ``relay.discovery.discover`` finds (and says
where from); nothing is saved until Save.

"Test connection" opens a session exactly as a flush would
(``relay.smtp.opening.open_session``) with what the form holds now, saved or
not, as an asyncio task on the Qt loop; the dialog stays responsive and shows
what the server offered, or exactly why it failed. Nothing is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.command_hints import for_window
from gui.confirm import ask, ask_to_save
from gui.sign_in import BrowserSignIn
from relay import credentials
from relay.accounts import (
    DEFAULT_PORTS,
    Account,
    Security,
    add_account,
    editing_accounts,
    find_account,
    load_accounts,
    make_account,
    remove_account,
    update_account,
    validate_account,
)
from relay.errors import ConfigError, OutboxError
from relay.oauth import store as oauth_store
from relay.oauth.providers import PRESETS, OAuth2Settings, Provider

_SECURITY_LABELS = {
    Security.STARTTLS: "STARTTLS (port 587)",
    Security.TLS: "TLS from the start (port 465)",
    Security.NONE: "None, unencrypted (port 25; a password only to this computer)",
}


#: The "Log in with" choices: None is a password.
_AUTH_CHOICES: tuple[tuple[str, Provider | None], ...] = (
    ("Password", None),
    ("Sign in with Google", Provider.GOOGLE),
    ("Sign in with Microsoft (work, school or Outlook.com)", Provider.MICROSOFT),
    ("Sign in with another provider (OAuth2)", Provider.CUSTOM),
)


class AccountsDialog(QDialog):
    """The Accounts dialog: a list of accounts and a form to add, change, test or remove one."""

    #: config.toml changed (an account added, changed or removed).
    accounts_changed = Signal()
    #: A connection test ended: its text (what the server offered, or why it failed).
    test_finished = Signal(str)

    def __init__(self, home: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.setObjectName("accounts_dialog")
        self.setWindowTitle("Accounts")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.resize(820, 560)
        self._editing: str | None = None  # the account in the form; None: a new one
        self._test: asyncio.Task[None] | None = None
        self._filled: tuple[object, ...] = ()  # the form as last filled in (see unsaved)
        #: Keywords for ``relay.discovery.discover.discover`` (tests point it at loopback servers).
        self.discovery_options: dict[str, Any] = {}

        self.list = QListWidget()
        self.list.setObjectName("accounts_list")
        self.list.setAccessibleName("Accounts")
        self.add_button = QPushButton("Add")
        self.add_button.setObjectName("accounts_add")
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setObjectName("accounts_remove")
        list_buttons = QHBoxLayout()
        list_buttons.addWidget(self.add_button)
        list_buttons.addWidget(self.remove_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.list)
        left_layout.addLayout(list_buttons)

        # The account's own address: Find Settings starts from it, and it is the
        # sender of mail whose caller names none (cron, at).
        self.address = self._line("account_address", "Own e-mail address")
        self.address.setPlaceholderText("me@example.org (Find Settings fills in the rest)")
        self.address.setToolTip(
            "The account's own address: Find Settings looks up its server, and mail whose"
            " program names no sender (cron, at) goes out from it."
        )
        self.discover_button = QPushButton("Find Settings")
        self.discover_button.setObjectName("account_discover")
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.discover_button)
        self.discovered = QLabel()
        self.discovered.setObjectName("account_discovered")
        self.discovered.setWordWrap(True)
        self.discovered.setTextFormat(Qt.TextFormat.PlainText)
        self._discovering: asyncio.Task[None] | None = None
        self.name = self._line("account_name", "Account name")
        self.host = self._line("account_host", "Server host name")
        self.port = QSpinBox()
        self.port.setObjectName("account_port")
        self.port.setAccessibleName("Server port")
        self.port.setRange(1, 65535)
        self.security = QComboBox()
        self.security.setObjectName("account_security")
        self.security.setAccessibleName("Encryption")
        for security, label in _SECURITY_LABELS.items():
            self.security.addItem(label, security.value)
        self.user = self._line("account_user", "User name")
        self.user.setPlaceholderText("empty: no authentication")
        self.password = self._line("account_password", "Password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.auth = QComboBox()
        self.auth.setObjectName("account_auth")
        self.auth.setAccessibleName("How the account logs in")
        for label, provider in _AUTH_CHOICES:
            self.auth.addItem(label, provider.value if provider else "")
        self.oauth_client_id = self._line("account_oauth_client_id", "OAuth2 client ID")
        self.oauth_client_id.setPlaceholderText("the client ID you registered (see the README)")
        self.oauth_authorize_url = self._line(
            "account_oauth_authorize_url", "OAuth2 authorization URL"
        )
        self.oauth_token_url = self._line("account_oauth_token_url", "OAuth2 token URL")
        self.oauth_scope = self._line("account_oauth_scope", "OAuth2 scope")
        self.sign_in_state = QLabel()
        self.sign_in_state.setObjectName("account_sign_in_state")
        self.sign_in_state.setWordWrap(True)
        self.sign_in_state.setTextFormat(Qt.TextFormat.PlainText)
        self.sign_in_button = QPushButton("Sign in…")
        self.sign_in_button.setObjectName("account_sign_in")
        sign_in_row = QHBoxLayout()
        sign_in_row.addWidget(self.sign_in_state, 1)
        sign_in_row.addWidget(self.sign_in_button)
        self.sign_in = BrowserSignIn(self)
        self.sign_in.finished.connect(self._on_signed_in)
        self.ca_file = self._line("account_ca_file", "CA certificate file")
        self.ca_file.setPlaceholderText("empty: the system's trusted certificates")
        browse = QPushButton("Browse…")
        browse.setObjectName("account_ca_browse")
        browse.clicked.connect(self._choose_ca_file)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file, 1)
        ca_row.addWidget(browse)
        self.patterns = self._line("account_from", "Sender patterns")
        self.patterns.setPlaceholderText("e.g. *@example.org, me@example.com")
        self.max_connections = QSpinBox()
        self.max_connections.setObjectName("account_max_connections")
        self.max_connections.setAccessibleName("Connections at once")
        self.max_connections.setRange(1, 64)
        self.max_messages = QSpinBox()
        self.max_messages.setObjectName("account_max_messages")
        self.max_messages.setAccessibleName("Messages per connection")
        self.max_messages.setRange(1, 100_000)
        self.pipelining = QCheckBox("Send each message's commands together (PIPELINING)")
        self.pipelining.setObjectName("account_pipelining")
        self.pipelining.setToolTip(
            "RFC 2920: when the server offers it, one round trip per message instead of four."
            " Turn off only for a server that mishandles it."
        )
        self.default = QCheckBox("Default account (for senders no account's pattern matches)")
        self.default.setObjectName("account_default")

        form = QFormLayout()
        form.addRow("Own &address:", address_row)
        form.addRow("", self.discovered)
        form.addRow("&Name:", self.name)
        form.addRow("&Host:", self.host)
        form.addRow("&Port:", self.port)
        form.addRow("&Encryption:", self.security)
        form.addRow("&User:", self.user)
        form.addRow("&Log in with:", self.auth)
        form.addRow("Pass&word:", self.password)
        form.addRow("Client &ID:", self.oauth_client_id)
        form.addRow("Authori&zation URL:", self.oauth_authorize_url)
        form.addRow("&Token URL:", self.oauth_token_url)
        form.addRow("Sco&pe:", self.oauth_scope)
        form.addRow("Sign-in:", sign_in_row)
        self._form = form
        self._sign_in_row = sign_in_row
        ca_label = QLabel("&CA file:")  # a row of a layout gets no buddy from addRow
        ca_label.setBuddy(self.ca_file)
        form.addRow(ca_label, ca_row)
        form.addRow("&Senders:", self.patterns)
        form.addRow("Connections at &once:", self.max_connections)
        form.addRow("&Messages per connection:", self.max_messages)
        form.addRow("", self.pipelining)
        form.addRow("", self.default)

        self.error = QLabel()
        self.error.setObjectName("accounts_error")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setStyleSheet("color: #dc2626")
        self.error.hide()

        self.test_button = QPushButton("Test Connection")
        self.test_button.setObjectName("accounts_test")
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("accounts_save")
        self.save_button.setDefault(True)
        form_buttons = QHBoxLayout()
        form_buttons.addWidget(self.test_button)
        form_buttons.addStretch(1)
        form_buttons.addWidget(self.save_button)

        self.test_output = QPlainTextEdit()
        self.test_output.setObjectName("accounts_test_output")
        self.test_output.setAccessibleName("Connection test result")
        self.test_output.setReadOnly(True)
        self.test_output.setPlaceholderText(
            "Test Connection connects as a flush would and shows what the server offers."
            " Nothing is sent."
        )

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(form)
        right_layout.addWidget(self.error)
        right_layout.addLayout(form_buttons)
        right_layout.addWidget(self.test_output, 1)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([200, 600])
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(close)

        self.list.currentItemChanged.connect(self._on_current_changed)
        self.add_button.clicked.connect(self.new_account)
        self.remove_button.clicked.connect(self.remove_current)
        self.save_button.clicked.connect(self.save)
        self.test_button.clicked.connect(self.test_connection)
        self.security.currentIndexChanged.connect(self._on_security_changed)
        self.auth.currentIndexChanged.connect(self._on_auth_changed)
        self.sign_in_button.clicked.connect(self.start_sign_in)
        self.discover_button.clicked.connect(self.discover)
        self.address.returnPressed.connect(self.discover)

        self.reload()

    def _line(self, name: str, accessible: str) -> QLineEdit:
        line = QLineEdit()
        line.setObjectName(name)
        line.setAccessibleName(accessible)
        return line

    # -- the list ---------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        try:
            accounts = load_accounts(self.home)
        except ConfigError as exc:
            accounts = []
            self._show_error(str(exc))
        self.list.blockSignals(True)
        self.list.clear()
        for account in accounts:
            item = QListWidgetItem(f"{account.name} (default)" if account.default else account.name)
            item.setData(Qt.ItemDataRole.UserRole, account.name)
            self.list.addItem(item)
        self.list.blockSignals(False)
        names = [a.name for a in accounts]
        if select in names:
            self.list.setCurrentRow(names.index(select))
        elif accounts:
            self.list.setCurrentRow(0)
        else:
            self.new_account()
        self.remove_button.setEnabled(bool(accounts))

    def _on_current_changed(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        try:
            account = find_account(load_accounts(self.home), name)
        except ConfigError as exc:
            self._show_error(str(exc))
            return
        self._fill(account)

    def new_account(self) -> None:
        self.list.blockSignals(True)
        self.list.clearSelection()
        self.list.setCurrentRow(-1)
        self.list.blockSignals(False)
        self._fill(None)
        self.name.setFocus()

    def _fill(self, account: Account | None) -> None:
        self._editing = account.name if account else None
        self._show_error("")
        self.discovered.clear()
        self.test_output.clear()
        account = account or make_account("", "", security=Security.STARTTLS)
        self.name.setText(account.name)
        self.name.setReadOnly(self._editing is not None)
        self.host.setText(account.host)
        self.security.blockSignals(True)
        self.security.setCurrentIndex(self.security.findData(account.security.value))
        self.security.blockSignals(False)
        self.port.setValue(account.port)
        self.user.setText(account.user or "")
        self.password.clear()
        self.password.setPlaceholderText(self._password_hint(self._editing))
        oauth2 = account.oauth2
        self.auth.blockSignals(True)
        self.auth.setCurrentIndex(self.auth.findData(oauth2.provider.value if oauth2 else ""))
        self.auth.blockSignals(False)
        self.oauth_client_id.setText(oauth2.client_id if oauth2 else "")
        self.oauth_authorize_url.setText((oauth2.authorize_url or "") if oauth2 else "")
        self.oauth_token_url.setText((oauth2.token_url or "") if oauth2 else "")
        self.oauth_scope.setText((oauth2.scope or "") if oauth2 else "")
        self._show_sign_in_state(account if self._editing is not None else None)
        self._on_auth_changed(-1)
        self.ca_file.setText(str(account.ca_file) if account.ca_file else "")
        self.patterns.setText(", ".join(account.from_patterns))
        self.address.setText(account.address or "")
        self.max_connections.setValue(account.max_connections)
        self.max_messages.setValue(account.max_messages_per_connection)
        self.pipelining.setChecked(account.pipelining)
        self.default.setChecked(account.default)
        self.default.setEnabled(not account.default)
        self._filled = self._form_state()

    def _form_state(self) -> tuple[object, ...]:
        """What the form holds, to tell an unsaved change from what was filled in."""
        return (self.name.text().strip(), self.password.text(), self.default.isChecked(),
                self._fields())  # fmt: skip

    @property
    def unsaved(self) -> bool:
        return self._form_state() != self._filled

    def _password_hint(self, name: str | None) -> str:
        if name is None:
            return "kept in your keyring, never in a file"
        try:
            if find_account(load_accounts(self.home), name).password_command is not None:
                return "printed by the account's password command (nothing stored)"
        except OutboxError:
            pass
        try:
            stored = credentials.get_password(self.home, name) is not None
        except OutboxError:
            return "the keyring cannot be read"
        return "stored in your keyring (type to replace)" if stored else "none stored"

    def _provider(self) -> Provider | None:
        value = self.auth.currentData()
        return Provider(value) if value else None

    def _on_auth_changed(self, _index: int) -> None:
        """Show the password or the OAuth2 fields; a preset fills in the host."""
        provider = self._provider()
        oauth = provider is not None
        custom = provider is Provider.CUSTOM
        self._form.setRowVisible(self.password, not oauth)
        self._form.setRowVisible(self.oauth_client_id, oauth)
        self._form.setRowVisible(self.oauth_authorize_url, custom)
        self._form.setRowVisible(self.oauth_token_url, custom)
        self._form.setRowVisible(self.oauth_scope, custom)
        self._form.setRowVisible(self._sign_in_row, oauth)
        preset = PRESETS.get(provider) if provider is not None else None
        if preset is not None and _index >= 0 and not self.host.text().strip():
            self.host.setText(preset.smtp_host)
        self._sign_in_button_text()

    def _sign_in_button_text(self) -> None:
        provider = self._provider()
        if self.sign_in.running:
            self.sign_in_button.setText("Cancel Sign-in")
        elif provider is not None:
            self.sign_in_button.setText(f"Sign in with {self._provider_label(provider)}…")

    def _provider_label(self, provider: Provider) -> str:
        preset = PRESETS.get(provider)
        return preset.label if preset is not None else "your provider"

    def _show_sign_in_state(self, account: Account | None) -> None:
        if account is None or account.oauth2 is None:
            self.sign_in_state.setText("Not signed in yet (save, then sign in)")
            return
        try:
            stored = oauth_store.get_refresh_token(self.home, account.name) is not None
        except OutboxError:
            self.sign_in_state.setText("The keyring cannot be read")
            return
        self.sign_in_state.setText(f"Signed in as {account.user}" if stored else "Not signed in")

    def discover(self) -> None:
        """Find the settings for the address typed, on the running loop; fill the form."""
        if self._discovering is not None:
            return
        address = self.address.text().strip()
        if not address:
            self._show_error("type the account's e-mail address first")
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._show_error("cannot search: the window's event loop is not running")
            return
        self._show_error("")
        self.discover_button.setEnabled(False)
        self.discovered.setText(f"Looking for the settings of {address}…")
        self._discovering = loop.create_task(self._discover(address))

    async def _discover(self, address: str) -> None:
        from relay.discovery.discover import discover

        try:
            found = await discover(address, **self.discovery_options)
        except OutboxError as exc:
            self.discovered.setText(str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say so, keep the dialog
            self.discovered.setText(f"The search stopped on an unexpected error: {exc!r}")
            return
        finally:
            self._discovering = None
            self.discover_button.setEnabled(True)
        if found is None:
            self.discovered.setText(f"Found no settings for {address}: fill in the server below.")
            return
        if not self.name.text().strip() and self._editing is None:
            self.name.setText(address.partition("@")[2].split(".")[0] or "mail")
        self.host.setText(found.host)
        self.security.blockSignals(True)
        self.security.setCurrentIndex(self.security.findData(found.security.value))
        self.security.blockSignals(False)
        self.port.setValue(found.port)
        self.user.setText(found.user)
        self.auth.setCurrentIndex(
            self.auth.findData(found.oauth2.value if found.oauth2 is not None else "")
        )
        self.discovered.setText(f"Found: {found.describe()}. Check it, then Save.")

    def start_sign_in(self) -> None:
        """Save the form if it changed, then run the browser sign-in for the account.

        While it waits for the browser the button cancels it: a browser tab
        closed without signing in would otherwise keep the account waiting
        (and the button dead) until the sign-in times out.
        """
        if self.sign_in.running:
            self.sign_in.cancel()
            self._sign_in_button_text()
            self.sign_in_state.setText("Not signed in (the sign-in was cancelled)")
            return
        if not self.save():
            return
        try:
            account = find_account(load_accounts(self.home), self.name.text().strip())
        except OutboxError as exc:
            self._show_error(str(exc))
            return
        if self.sign_in.start(self.home, account):
            self.sign_in_button.setText("Cancel Sign-in")
            self.sign_in_state.setText("Waiting for the browser… (finish signing in there)")

    def _on_signed_in(self, name: str, problem: str) -> None:
        self._sign_in_button_text()
        if problem:
            self._show_error(problem)
            self.sign_in_state.setText("Not signed in")
            return
        try:
            account = find_account(load_accounts(self.home), name)
        except OutboxError:
            return
        if self._editing == name:
            self._show_sign_in_state(account)
        self.accounts_changed.emit()

    def _on_security_changed(self, _index: int) -> None:
        # Follow the port along when it was the old security's default.
        if self.port.value() in DEFAULT_PORTS.values():
            self.port.setValue(DEFAULT_PORTS[self._security()])

    def _security(self) -> Security:
        return Security(self.security.currentData())

    def _choose_ca_file(self) -> None:
        dialog = QFileDialog(self, "CA certificate file", str(Path.home()))
        dialog.setObjectName("ca_file_dialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(["PEM certificates (*.pem *.crt)", "All files (*)"])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.ca_file.setText)
        dialog.open()

    # -- reading the form ---------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        patterns = tuple(p for p in self.patterns.text().replace(",", " ").split() if p)
        ca = self.ca_file.text().strip()
        return {
            "host": self.host.text().strip(),
            "port": self.port.value(),
            "security": self._security(),
            "user": self.user.text().strip() or None,
            "ca_file": Path(ca).expanduser() if ca else None,
            "from_patterns": patterns,
            "address": self.address.text().strip() or None,
            "max_connections": self.max_connections.value(),
            "max_messages_per_connection": self.max_messages.value(),
            "pipelining": self.pipelining.isChecked(),
            "oauth2": self._oauth2_settings(),
        }

    def _oauth2_settings(self) -> OAuth2Settings | None:
        provider = self._provider()
        if provider is None:
            return None
        custom = provider is Provider.CUSTOM

        def text(line: QLineEdit) -> str | None:
            return line.text().strip() or None if custom else None

        return OAuth2Settings(
            provider=provider,
            client_id=self.oauth_client_id.text().strip(),
            authorize_url=text(self.oauth_authorize_url),
            token_url=text(self.oauth_token_url),
            scope=text(self.oauth_scope),
        )

    def form_account(self) -> Account:
        """The account as the form holds it now (validated; raises ``ConfigError``)."""
        name = self.name.text().strip()
        if not name:
            raise ConfigError("give the account a name")
        if self._editing is not None:
            current = find_account(load_accounts(self.home), self._editing)
            fields = self._fields()
            return validate_account(
                make_account(
                    name,
                    fields.pop("host"),
                    port=fields.pop("port"),
                    security=fields.pop("security"),
                    default=current.default,
                    connect_timeout_s=current.connect_timeout_s,
                    command_timeout_s=current.command_timeout_s,
                    data_timeout_s=current.data_timeout_s,
                    password_command=current.password_command if fields.get("user") else None,
                    **fields,
                )
            )
        fields = self._fields()
        return validate_account(
            make_account(
                name,
                fields.pop("host"),
                port=fields.pop("port"),
                security=fields.pop("security"),
                **fields,
            )
        )

    # -- saving and removing --------------------------------------------------------------------

    def save(self) -> bool:
        """Write the form to config.toml and the password to the keyring; false on an error."""
        self._show_error("")
        before: Account | None = None
        try:
            account = self.form_account()
            if self._editing is not None:
                before = find_account(load_accounts(self.home), self._editing)
            with editing_accounts(self.home) as accounts:
                if self._editing is None:
                    accounts[:] = add_account(
                        accounts, _with_default(account, self.default.isChecked())
                    )
                else:
                    changes = self._fields()
                    if self.default.isChecked():
                        changes["default"] = True
                    accounts[:] = update_account(accounts, self._editing, **changes)
        except OutboxError as exc:
            self._show_error(str(exc))
            return False
        self._editing = account.name
        self.accounts_changed.emit()
        saved = self._save_password(account, before)
        self.reload(select=account.name)
        if saved is not None:
            self._show_error(saved)
            return False
        return True

    def _save_password(self, account: Account, before: Account | None) -> str | None:
        """Store (or forget) the password; the error text if the keyring failed.

        An account that had no user (and no password) before is not touched in
        the keyring when it still needs none, so a machine without a keyring
        saves it without a word.
        """
        password = self.password.text()
        if account.password_command is not None:
            return None  # its password command gives it; nothing is stored
        try:
            if account.user is None or account.oauth2 is not None:
                if before is not None and before.user is not None:
                    credentials.delete_password(self.home, account.name)
            elif password:
                credentials.store_password(self.home, account.name, password)
            if before is not None and oauth_store.sign_in_invalidated(before, account):
                oauth_store.forget_sign_in(self.home, account.name)
        except OutboxError as exc:
            return f"The account is saved, but its password is not: {exc}"
        self.password.clear()
        return None

    def remove_current(self) -> None:
        name = self._editing
        if name is None:
            return
        ask(
            self,
            name="confirm_remove_account",
            title="Remove account?",
            text=f"Remove the account “{name}”?",
            detail="Its settings and its password in the keyring are removed."
            " Messages already in the outbox stay there.",
            accept_text="Remove",
            on_accept=lambda: self._remove(name),
            warning=True,
        )

    def _remove(self, name: str) -> None:
        try:
            with editing_accounts(self.home) as accounts:
                accounts[:] = remove_account(accounts, name)
        except OutboxError as exc:
            self._show_error(str(exc))
            return
        self.accounts_changed.emit()
        problem = None
        try:
            credentials.delete_password(self.home, name)
            oauth_store.forget_sign_in(self.home, name)
        except OutboxError as exc:
            problem = f"The account is removed, but its password may still be in the keyring: {exc}"
        self.reload()
        if problem:
            self._show_error(problem)

    # -- testing -------------------------------------------------------------------------------

    @property
    def testing(self) -> bool:
        return self._test is not None

    def test_connection(self) -> None:
        """Open a session with what the form holds now, on the running loop; report it.

        While it runs the button reads Stop Test: a server that accepts the
        connection and never answers would otherwise keep the test (and the
        button) busy until the account's timeouts run out.
        """
        if self._test is not None:
            self._stop_test()
            return
        self._show_error("")
        try:
            account = self.form_account()
            password: Any = self.password.text() or None
            command = account.password_command if password is None else None
            if account.oauth2 is not None:
                from relay.oauth.tokens import token_source_for

                password = token_source_for(self.home, account)
            elif (
                command is None
                and account.user is not None
                and password is None
                and (self._editing is not None)
            ):
                password = credentials.get_password(self.home, self._editing)
            if account.user is not None and password is None and command is None:
                raise ConfigError("enter the password to test with (it is not stored yet)")
            loop = asyncio.get_running_loop()
        except OutboxError as exc:
            self._show_error(str(exc))
            return
        except RuntimeError:
            self._show_error("cannot test: the window's event loop is not running")
            return
        self.test_button.setText("Stop Test")
        self.test_output.setPlainText(f"Connecting to {account.host}:{account.port}…")
        self._test = loop.create_task(self._probe(account, password, command))

    async def _probe(self, account: Account, password: Any, command: str | None) -> None:
        from relay.password_command import run_password_command
        from relay.report import SessionFailure
        from relay.smtp.opening import open_session

        text = ""
        try:
            if command is not None:
                password = await run_password_command(account.name, command)
            opened = await open_session(account, password)
            if isinstance(opened, SessionFailure):
                text = f"The test failed: {opened.text}"
            else:
                try:
                    text = f"The server is ready to send through.\n\n{opened.offer}"
                finally:
                    await opened.quit()
                text += "\n\nNothing was sent."
        except asyncio.CancelledError:
            raise
        except OutboxError as exc:  # the password command gave no password
            text = f"The test failed: {exc}"
        except Exception as exc:  # a bug in the engine: say so, keep the dialog alive
            text = f"The test stopped on an unexpected error: {exc!r}"
        finally:
            if self._test is asyncio.current_task():
                self._test = None
        self._test_ended(text)

    def _stop_test(self) -> None:
        if self._test is not None:
            self._test.cancel()  # its connection is closed as the task unwinds
            self._test = None
        self._test_ended("The test was stopped. Nothing was sent.")

    def _test_ended(self, text: str) -> None:
        self.test_output.setPlainText(text)
        self.test_button.setText("Test Connection")
        self.test_finished.emit(text)

    # -- closing ---------------------------------------------------------------------------------

    def reject(self) -> None:
        """Close (the Close button, Escape, the title bar); ask first about an unsaved change."""
        if not self.isVisible() or not self.unsaved:
            super().reject()
            return
        asking = self.findChildren(QMessageBox, "confirm_unsaved_account")
        if any(box.isVisible() for box in asking):
            return  # already asking

        def save_and_close() -> None:
            if self.save():
                super(AccountsDialog, self).reject()

        name = self.name.text().strip()
        ask_to_save(
            self,
            name="confirm_unsaved_account",
            text=f"Save the changes to “{name}”?" if name else "Save the new account?",
            detail="Closing without saving discards them.",
            on_save=save_and_close,
            on_discard=lambda: super(AccountsDialog, self).reject(),
        )

    def done(self, result: int) -> None:
        self.sign_in.cancel()
        if self._discovering is not None:
            self._discovering.cancel()
            self._discovering = None
        if self._test is not None:
            self._test.cancel()
            self._test = None
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._test is not None:
            self._test.cancel()
            self._test = None
        super().closeEvent(event)

    def _show_error(self, text: str) -> None:
        self.error.setText(for_window(text))
        self.error.setVisible(bool(text))


def _with_default(account: Account, default: bool) -> Account:
    return dataclasses.replace(account, default=default)
