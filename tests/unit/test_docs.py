"""The documentation matches the code: example config, exit codes, CLI defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from s3sync.cli import main, push, restore
from s3sync.config import SCHEMA, parse, parse_size
from s3sync.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_lists_every_key_with_the_cli_default() -> None:
    path = ROOT / "s3sync.example.toml"
    text = path.read_text()
    values = parse(text, path=str(path), command="push")
    values |= parse(text, path=str(path), command="restore")
    commented = set(re.findall(r"^# ([a-z0-9-]+) = ", text, re.MULTILINE))
    assert set(values) | {k.replace("-", "_") for k in commented} == set(SCHEMA)
    defaults = {
        p.name: p.get_default(click.Context(command))
        for command in (push, restore)
        for p in command.params
        if isinstance(p, click.Option)
    }
    defaults["json"] = defaults.pop("as_json")
    defaults["include"] = defaults["exclude"] = []
    for key, value in values.items():
        expected: Any = defaults[key]
        if key in ("multipart_threshold", "part_size"):
            value, expected = parse_size(value), parse_size(expected)
        assert value == expected or (expected in ((), None) and value in ([], None)), key


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.rst").read_text()
    table = readme.split("Exit codes\n----------", 1)[1]
    documented = {int(code) for code in re.findall(r"^(\d+)\s{2,}", table, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def test_readme_documents_every_option() -> None:
    readme = (ROOT / "README.rst").read_text()
    for command in main.commands.values():
        for param in command.params:
            for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
                if opt.startswith("--") and opt not in ("--help", "--version"):
                    assert re.search(rf"{re.escape(opt)}(?![\w-])", readme), (command.name, opt)
    for param in (*push.params, *restore.params):
        for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
            if opt.startswith("--") and opt != "--help":
                assert re.search(rf"{re.escape(opt)}(?![\w-])", readme), opt


def test_readme_and_changes_are_valid_restructuredtext() -> None:
    import docutils.core

    for name in ("README.rst", "CHANGES.rst"):
        docutils.core.publish_string(
            (ROOT / name).read_text(),
            writer="null",
            settings_overrides={"report_level": 2, "halt_level": 2},
        )
