"""Accounts in config.toml: round trip, file mode, defaults and the rules of a book of accounts."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
import trustme

from relay.accounts import (
    Account,
    Security,
    account_for_sender,
    add_account,
    config_path,
    editing_accounts,
    is_loopback_host,
    load_accounts,
    make_account,
    queue_settings,
    remove_account,
    save_accounts,
    set_default,
    update_account,
    validate_account,
)
from relay.errors import ConfigError


def a(name: str, *patterns: str, default: bool = False) -> Account:
    return make_account(
        name, f"smtp.{name}.example", from_patterns=tuple(patterns), default=default
    )


def test_every_setting_survives_a_round_trip_through_config_toml(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    full = Account(
        name="work",
        host="smtp.example.org",
        port=2465,
        security=Security.TLS,
        user="alice@example.org",
        ca_file=ca,
        from_patterns=("*@example.org", "alice@*"),
        max_connections=5,
        max_messages_per_connection=7,
        connect_timeout_s=3.5,
        command_timeout_s=45.0,
        data_timeout_s=900.0,
        pipelining=False,
    )
    plain = make_account("home", "127.0.0.1", security=Security.NONE)
    accounts = add_account(add_account([], full), plain)

    save_accounts(tmp_path, accounts)
    loaded = load_accounts(tmp_path)

    assert loaded == accounts
    assert loaded[0].default and not loaded[1].default


def test_a_missing_config_file_means_no_accounts(tmp_path: Path) -> None:
    assert load_accounts(tmp_path / "nowhere") == []


def test_the_config_file_is_0600_even_when_it_was_readable_by_all(tmp_path: Path) -> None:
    path = config_path(tmp_path)
    path.write_text("[queue]\nlifetime_s = 60\n")
    os.chmod(path, 0o644)
    old_umask = os.umask(0)
    try:
        save_accounts(tmp_path, add_account([], a("work")))
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_saving_accounts_keeps_the_other_tables_of_the_file(tmp_path: Path) -> None:
    config_path(tmp_path).write_text("[queue]\nfirst_retry_s = 30\nlifetime_s = 3600\n")

    save_accounts(tmp_path, add_account([], a("work")))

    assert queue_settings(tmp_path) == {"first_retry_s": 30, "lifetime_s": 3600}
    assert [x.name for x in load_accounts(tmp_path)] == ["work"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    save_accounts(tmp_path, add_account([], a("work")))
    before = config_path(tmp_path).read_bytes()

    with pytest.raises(RuntimeError), editing_accounts(tmp_path) as accounts:
        accounts[:] = add_account(accounts, a("home"))
        raise RuntimeError("interrupted half-way")

    assert config_path(tmp_path).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.lock", "config.toml"]


def test_settings_left_at_their_defaults_are_not_written(tmp_path: Path) -> None:
    save_accounts(tmp_path, add_account([], a("work")))

    table = tomllib.loads(config_path(tmp_path).read_text())["accounts"]["work"]

    assert table == {"host": "smtp.work.example", "port": 587, "security": "starttls"}


@pytest.mark.parametrize(
    ("security", "port"), [(Security.TLS, 465), (Security.STARTTLS, 587), (Security.NONE, 25)]
)
def test_the_port_defaults_by_security(security: Security, port: int) -> None:
    assert make_account("x", "smtp.example.org", security=security).port == port


def test_the_first_account_added_becomes_the_default() -> None:
    accounts = add_account(add_account([], a("first")), a("second"))

    assert [x.default for x in accounts] == [True, False]


def test_adding_an_account_as_default_takes_it_from_the_old_one() -> None:
    accounts = add_account(add_account([], a("first")), a("second", default=True))

    assert [x.default for x in accounts] == [False, True]


def test_removing_the_default_hands_it_to_the_first_account_left() -> None:
    accounts = [a("one"), a("two"), a("three")]
    accounts = set_default(accounts, "two")

    left = remove_account(accounts, "two")

    assert [(x.name, x.default) for x in left] == [("one", True), ("three", False)]


def test_an_account_name_is_taken_only_once() -> None:
    with pytest.raises(ConfigError, match="already exists"):
        add_account(add_account([], a("work")), a("work"))


def test_update_changes_only_the_fields_given() -> None:
    before = add_account([], a("work", "*@work.example"))

    after = update_account(before, "work", max_connections=9)

    assert after[0] == Account(
        name="work",
        host="smtp.work.example",
        port=587,
        from_patterns=("*@work.example",),
        max_connections=9,
        default=True,
    )


def test_changing_security_moves_a_default_port_but_keeps_a_chosen_one() -> None:
    accounts = add_account([], a("work"))
    accounts = add_account(accounts, make_account("odd", "smtp.odd.example", port=2525))

    accounts = update_account(accounts, "work", security=Security.TLS)
    accounts = update_account(accounts, "odd", security=Security.TLS)

    assert [x.port for x in accounts] == [465, 2525]


def test_the_default_cannot_be_unset_only_moved() -> None:
    accounts = add_account(add_account([], a("one")), a("two"))

    with pytest.raises(ConfigError, match="make another account the default"):
        update_account(accounts, "one", default=False)
    moved = update_account(accounts, "two", default=True)

    assert [x.default for x in moved] == [False, True]


def test_an_unknown_account_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no account 'nope' \(accounts: one\)"):
        update_account(add_account([], a("one")), "nope", port=25)


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": ""}, "the host is empty"),
        ({"host": "   "}, "the host is empty"),
        ({"host": "smtp example"}, "bad host"),
        ({"host": "smtp.example.org:587"}, r"the port goes in its own setting \(--port 587\)"),
        ({"host": "smtp.example\u200b.org"}, "bad host .* only letters, digits"),
        ({"host": "smtp..example.org"}, "bad host .*an empty label"),
        ({"host": "a" * 64 + ".example.org"}, "bad host .*over 63 characters"),
        ({"host": "smtp.example.org/x"}, "bad host"),
        ({"port": 0}, "port must be a whole number, at least 1 and at most 65535, not 0"),
        ({"port": 65536}, "port must be .* not 65536"),
        ({"max_connections": 0}, "max connections must be a whole number, at least 1 .*not 0"),
        ({"max_connections": 10**9}, "max connections must be .*at most 100, not 1000000000"),
        ({"max_messages_per_connection": -1}, "max messages per connection must be .*not -1"),
        ({"connect_timeout_s": 0.0}, "connect timeout must be a number of seconds, more than 0"),
        ({"connect_timeout_s": -5.0}, "connect timeout must be .*not -5.0"),
        ({"data_timeout_s": float("inf")}, "data timeout must be .*not inf"),
        ({"data_timeout_s": float("nan")}, "data timeout must be .*not nan"),
        ({"command_timeout_s": 1e300}, "command timeout must be .*at most 86400, not 1e"),
        ({"ca_file": Path("/no/such/ca.pem")}, "CA file /no/such/ca.pem does not exist"),
        ({"from_patterns": ("",)}, "bad from pattern"),
        ({"from_patterns": ("example.org",)}, "bad from pattern 'example.org': write an address"),
        ({"from_patterns": ("*",)}, "bad from pattern"),
        ({"from_patterns": ("a@b@example.org",)}, "bad from pattern"),
        ({"from_patterns": ("@example.org",)}, "bad from pattern"),
        ({"from_patterns": ("[ab@example.org",)}, "unclosed"),
        ({"name": "-x"}, "bad account name"),
        ({"name": "two words"}, "bad account name"),
    ],
)
def test_an_unusable_account_is_refused_with_a_reason(
    changes: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"name": "work", "host": "smtp.example.org", "port": 587}
    fields.update(changes)

    with pytest.raises(ConfigError, match=message):
        validate_account(Account(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    ["smtp.example.org", "smtp.example.org.", "mail_relay.lan", "smtp.bücher.example",
     "192.0.2.7", "2001:db8::25", "[2001:db8::25]", "fe80::1%eth0", "relay"],
)  # fmt: skip
def test_a_host_name_or_address_of_any_usual_form_is_taken(host: str) -> None:
    validate_account(make_account("work", host))


def test_a_ca_file_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")

    with pytest.raises(ConfigError, match="holds no usable PEM certificate"):
        validate_account(make_account("work", "smtp.example.org", ca_file=junk))


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LocalHost.", "::ffff:127.0.0.1"],
)
def test_a_password_without_tls_is_allowed_to_loopback(host: str) -> None:
    account = make_account("lo", host, security=Security.NONE, user="me")

    assert validate_account(account) is account
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "mail.example.org",
        "10.0.0.1",
        "128.0.0.1",
        "0.0.0.0",
        "::ffff:10.0.0.1",
        "localhost.example.org",
        "127.0.0.1.nip.io",
    ],
)
def test_a_password_without_tls_is_refused_off_loopback(host: str) -> None:
    account = make_account("far", host, security=Security.NONE, user="me")

    with pytest.raises(ConfigError, match="refusing to send the password for 'me' without TLS"):
        validate_account(account)
    assert not is_loopback_host(host)


def test_plain_text_without_a_password_is_allowed_anywhere() -> None:
    account = make_account("mx", "mx.example.org", security=Security.NONE)

    assert validate_account(account) is account


def test_switching_an_account_with_a_user_to_plain_text_is_refused() -> None:
    accounts = add_account([], make_account("work", "smtp.example.org", user="alice"))

    with pytest.raises(ConfigError, match="without TLS"):
        update_account(accounts, "work", security=Security.NONE)


# -- a hand-edited file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[accounts.work\n", "is not valid TOML"),
        ('[accounts.work]\nport = 25\nsecurity = "none"\n', "the host is missing"),
        ('[accounts.work]\nhost = "h"\nport = "25"\n', "port has the wrong type"),
        ('[accounts.work]\nhost = "h"\nport = 25\nsecurity = "ssl"\n', "unknown security 'ssl'"),
        ('[accounts.work]\nhost = "h"\nport = 25\npasword = "x"\n', "unknown setting 'pasword'"),
        ('default_account = "nope"\n[accounts.work]\nhost = "h"\nport = 25\n', "'nope' is not"),
    ],
)
def test_a_broken_config_file_is_named_in_the_error(
    tmp_path: Path, text: str, message: str
) -> None:
    config_path(tmp_path).write_text(text)

    with pytest.raises(ConfigError, match=message) as caught:
        load_accounts(tmp_path)
    assert str(config_path(tmp_path)) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_without_default_account_key_the_first_account_is_the_default(tmp_path: Path) -> None:
    config_path(tmp_path).write_text(
        '[accounts.one]\nhost = "a"\nport = 25\n[accounts.two]\nhost = "b"\nport = 25\n'
    )

    assert [x.default for x in load_accounts(tmp_path)] == [True, False]


# -- which account a message goes through ---------------------------------------------------

BOOK = [
    a("work", "*@work.example", default=True),
    a("club", "*@club.example", "*@*.club.example"),
    a("alice", "alice@work.example"),
    a("catchall", "*"),
]


@pytest.mark.parametrize(
    ("sender", "chosen"),
    [
        ("bob@work.example", "work"),
        ("BOB@Work.Example", "work"),  # case does not matter
        ("<bob@work.example>", "work"),  # angle brackets of an envelope are not part of it
        ("alice@work.example", "alice"),  # an exact address beats *@domain
        ("Alice@WORK.example", "alice"),
        ("x@club.example", "club"),
        ("x@lists.club.example", "club"),
        ("x@elsewhere.example", "catchall"),
    ],
)
def test_the_most_specific_from_pattern_chooses_the_account(sender: str, chosen: str) -> None:
    assert account_for_sender(BOOK, sender).name == chosen


@pytest.mark.parametrize(
    ("sender", "chosen"),
    [
        ("bob@work.example", "work"),
        ("nobody@elsewhere.example", "home"),  # no match: the default
        ("", "home"),  # the null sender of a bounce: the default
        ("<>", "home"),
        ("bob@work.example.evil", "home"),  # a pattern matches the whole address
    ],
)
def test_a_sender_no_pattern_matches_goes_through_the_default(sender: str, chosen: str) -> None:
    accounts = [a("work", "*@work.example"), a("home", default=True)]

    assert account_for_sender(accounts, sender).name == chosen


def test_an_accounts_own_address_is_an_exact_pattern_of_its_own() -> None:
    accounts = [
        a("main", "*@example.org", default=True),
        Account(name="bot", host="h", port=25, address="b*t@example.org"),
    ]
    assert account_for_sender(accounts, "B*T@example.org").name == "bot"
    assert account_for_sender(accounts, "bat@example.org").name == "main"  # '*' is literal


@pytest.mark.parametrize(
    ("sender", "chosen"),
    [
        ("me@xn--bcher-kva.example", "books"),  # the ASCII spelling of the pattern's domain
        ("me@XN--BCHER-KVA.example", "books"),
        ("me@BÜCHER.example", "books"),
        ("me@xn--mnchen-3ya.example", "munich"),  # a pattern written in ASCII
        ("me@münchen.example", "munich"),
        ("me@bu\u0308cher.example", "books"),  # decomposed: u and a combining diaeresis
        ("me@bücher\u3002example", "books"),  # an ideographic full stop for the dot
        ("me@xn--bcher-kva.example.evil", "home"),
    ],
)
def test_a_domain_matches_its_pattern_in_either_spelling(sender: str, chosen: str) -> None:
    accounts = [
        a("home", "*@example.org", default=True),
        a("books", "*@bücher.example"),
        a("munich", "*@xn--mnchen-3ya.example"),
    ]

    assert account_for_sender(accounts, sender).name == chosen


def test_the_first_of_equally_specific_patterns_wins() -> None:
    accounts = [a("one", "*@x.example"), a("two", "*@x.example", default=True)]

    assert account_for_sender(accounts, "me@x.example").name == "one"


def test_without_accounts_the_error_says_how_to_add_one() -> None:
    with pytest.raises(ConfigError, match="outbox account add NAME --host HOST"):
        account_for_sender([], "me@example.org")


def test_without_a_match_or_a_default_the_error_names_the_sender() -> None:
    with pytest.raises(ConfigError, match=r"no account matches sender 'me@example\.org'"):
        account_for_sender([a("work", "*@work.example")], "me@example.org")
