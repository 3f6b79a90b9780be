"""Every option of every subcommand has help text, shows its default at most once, and ``--device`` is the same."""

from __future__ import annotations

import argparse

import pytest

from quag.cli import COMMANDS, command_parser


def _options(name: str) -> list[tuple[str, argparse.Action, str]]:
    """(option name, action, help as printed) of every argument of subcommand ``name`` except ``--help``."""
    parser, _ = command_parser(name)
    formatter = parser._get_formatter()
    return [
        ("/".join(action.option_strings) or action.dest, action, formatter._expand_help(action) if action.help else "")
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
    ]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help(name: str) -> None:
    missing = [option for option, action, _ in _options(name) if not (action.help or "").strip()]
    assert not missing, f"quag {name}: options without help: {missing}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_defaults_are_printed_once(name: str) -> None:
    for option, _, text in _options(name):
        assert text.count("(default") <= 1, f"quag {name} {option}: {text}"
        assert "(default: None)" not in text and "(default: False)" not in text, f"quag {name} {option}: {text}"


def test_device_defaults_to_auto_everywhere() -> None:
    devices = {
        name: action.default for name in COMMANDS for option, action, _ in _options(name) if option == "--device"
    }
    assert len(devices) >= 6 and set(devices.values()) == {"auto"}, devices
