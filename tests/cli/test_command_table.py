"""The command line imports only the module of the command it runs, and reads the same.

``relay.cli.parser_for`` stands in for every other command with its name and
help line from ``COMMANDS``: these tests hold it to ``build_parser()``, which
imports every command's module, help text by help text.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay.cli import COMMANDS, build_parser, parser_for


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command path of ``parser`` (``("account", "add")`` …)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name != "sendmail":  # dispatched before argparse: no parser of its own
                    found.append((*path, name))
                    found += _commands(sub, (*path, name))
    return found


def _subparser(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for word in path:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = action.choices[word]
    return parser


FULL = build_parser()
PATHS = _commands(FULL)


def test_the_table_names_every_command_in_the_order_help_lists_them() -> None:
    assert [path[0] for path in PATHS if len(path) == 1] == list(COMMANDS)


def test_outbox_help_and_an_unknown_command_read_as_with_every_module_imported() -> None:
    light = parser_for(["--help"])
    assert light.format_help() == FULL.format_help()
    (full_commands,) = [a for a in FULL._actions if isinstance(a, argparse._SubParsersAction)]
    (light_commands,) = [a for a in light._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(light_commands.choices) == list(full_commands.choices)  # "invalid choice" lists
    assert [(a.dest, a.help) for a in light_commands._choices_actions] == [
        (a.dest, a.help) for a in full_commands._choices_actions
    ]


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_each_command_reads_its_options_as_with_every_module_imported(
    path: tuple[str, ...],
) -> None:
    light = _subparser(parser_for([*path, "--help"]), path)
    assert light.format_help() == _subparser(FULL, path).format_help()
    assert light.format_usage() == _subparser(FULL, path).format_usage()


def test_a_command_is_found_after_the_flags_before_it() -> None:
    args = parser_for(["-h", "flush", "--due"])
    assert _subparser(args, ("flush",)).format_help() == _subparser(FULL, ("flush",)).format_help()


PROBE = """
import contextlib, io, json, sys
from relay.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(["--home", sys.argv[1], *json.loads(sys.argv[2])])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

#: Packages no listing and no help text needs: the window's, SMTP's, OAuth2's.
HEAVY = ("PySide6", "qasync", "gui", "aiosmtplib", "authlib", "httpx", "keyring")


@pytest.mark.parametrize(
    ("args", "own"),
    [
        (["flush", "--help"], "relay.commands.flush"),
        (["list"], "relay.commands.manage"),
        (["list", "--help"], "relay.commands.manage"),
        (["--help"], None),
    ],
    ids=["flush --help", "list", "list --help", "--help"],
)
def test_a_command_imports_no_other_command_and_nothing_heavy(
    tmp_path: Path, args: list[str], own: str | None
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "home"), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["code"] == 0
    modules = set(report["modules"])
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    commands = {module for module, _ in COMMANDS.values()}
    assert commands & modules == ({own} if own else set())
    # The default home is worked out without platformdirs in the everyday Linux cases
    # (relay.home), even for the one help text that names it.
    assert "platformdirs" not in modules


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["list", "--bogus"], "unrecognized arguments: --bogus"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["show"], "the following arguments are required: ID"),
        (["list", "--state", "nope"], "invalid choice: 'nope'"),
        (["show", "--json", "--raw", "1"], "not allowed with argument --json"),
        (["purge", "--sent", "--older-than", "nan"], "not a number of days"),
        (["account"], "the following arguments are required: ACTION"),
        (["--home"], "expected one argument"),
    ],
    ids=[
        "unknown flag",
        "unknown command",
        "missing id",
        "bad choice",
        "exclusive",
        "bad days",
        "no action",
        "--home without DIR",
    ],
)
def test_bad_usage_exits_64_as_documented(tmp_path: Path, args: list[str], said: str) -> None:
    """The documented 64 (EX_USAGE) for every kind of bad usage, not argparse's 2."""
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OUTBOX_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 64, done.stderr
    assert said in done.stderr and done.stderr.startswith("usage: outbox")
    assert "Traceback" not in done.stderr and done.stdout == ""
