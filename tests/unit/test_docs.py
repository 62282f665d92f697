"""The documentation matches the code: example config, exit codes, CLI defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from s3sync.cli import push
from s3sync.config import SCHEMA, parse, parse_size
from s3sync.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_lists_every_key_with_the_cli_default() -> None:
    path = ROOT / "s3sync.example.toml"
    text = path.read_text()
    values = parse(text, path=str(path), command="push")
    commented = set(re.findall(r"^# ([a-z0-9-]+) = ", text, re.MULTILINE))
    assert set(values) | {k.replace("-", "_") for k in commented} == set(SCHEMA)
    ctx = click.Context(push)
    defaults = {p.name: p.get_default(ctx) for p in push.params if isinstance(p, click.Option)}
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


def test_readme_documents_every_push_option() -> None:
    readme = (ROOT / "README.rst").read_text()
    for param in push.params:
        for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
            if opt.startswith("--") and opt != "--help":
                assert re.search(rf"{re.escape(opt)}(?![\w-])", readme), opt
