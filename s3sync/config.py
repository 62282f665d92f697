"""The TOML config file: defaults for every option, validated with the key and line named."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from s3sync.errors import ConfigError
from s3sync.headers import rule_from_table

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)

# key -> the Python type(s) its value must have; one table for every command.
SCHEMA: Mapping[str, tuple[type, ...]] = {
    "workers": (int,),
    "max_requests": (int,),
    "fudge": (int, float),
    "no_delete": (bool,),
    "dry_run": (bool,),
    "include": (list,),
    "exclude": (list,),
    "follow_symlinks": (bool,),
    "endpoint_url": (str,),
    "region": (str,),
    "profile": (str,),
    "retries": (int,),
    "timeout": (int, float),
    "multipart_threshold": (int, str),
    "part_size": (int, str),
    "json": (bool,),
    "verbose": (bool,),
    "quiet": (bool,),
    "index": (str,),
    "ignore_index": (bool,),
    "lock": (str,),
    "lock_s3": (str,),
    "allow_empty_source": (bool,),
    "max_delete": (int, str),
    "log_file": (str,),
    "delete": (bool,),
    "compare": (str,),
    "force": (bool,),
    "ignore_existing": (bool,),
    "limit": (int,),
    "content_type": (str,),
    "header": (list,),
    "order": (list,),
    "gzip": (bool,),
    "generate_index_html": (bool,),
    "cloudfront": (list, str),
    "invalidation_budget": (int,),
    "source_endpoint_url": (str,),
    "source_region": (str,),
    "source_profile": (str,),
}
COMMANDS = ("push", "restore", "copy")
_LISTS = ("cloudfront",)  # repeatable options that also take one string
_RULES_TABLE = re.compile(r"^[ \t]*\[\[[ \t]*rules[ \t]*\]\]", re.MULTILINE)


def parse_size(value: int | str) -> int:
    """Return a byte count from an int or a string such as ``8MiB``, ``64M`` or ``100k``.

    Units are powers of 1024 with or without the ``i`` (as aws-cli reads them).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"size {value} is negative")
        return value
    match = _SIZE.match(str(value))
    if match is None:
        raise ValueError(f"'{value}' is not a size (write e.g. 8MiB, 64M or 1048576)")
    number, unit, _binary = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _where(path: str, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{path}, line {line}" if line else path


def _check(path: str, text: str, table: Mapping[str, Any], scope: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        where = _where(path, text, raw_key)
        if key not in SCHEMA:
            known = ", ".join(sorted(SCHEMA))
            raise ConfigError(f"{where}: unknown key '{scope}{raw_key}' (known keys: {known})")
        types = SCHEMA[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{where}: '{scope}{raw_key}' must be {wanted}, not {value!r}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: '{scope}{raw_key}' must be a list of strings")
        checker = _VALUE_CHECKS.get(key)
        if checker is not None:
            try:
                checker(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: '{scope}{raw_key}': {exc}") from None
        values[key] = [value] if key in _LISTS and isinstance(value, str) else value
    return values


def parse(text: str, *, path: str, command: str) -> dict[str, Any]:
    """Return the option defaults *text* gives *command*: top-level keys, then its table."""
    import tomllib  # on first use: most runs read no config file

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    tables = data.pop("rules", [])
    top = {k: v for k, v in data.items() if not (k in COMMANDS and isinstance(v, dict))}
    values = _check(path, text, top, "")
    section = data.get(command)
    if isinstance(section, dict):
        values.update(_check(path, text, section, f"{command}."))
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{_where(path, text, 'rules')}: write header rules as [[rules]] tables")
    starts = [text.count("\n", 0, m.start()) + 1 for m in _RULES_TABLE.finditer(text)]
    for n, table in enumerate(tables):
        where = f"{path}, line {starts[n]}" if n < len(starts) else path
        rule_from_table(table, where)  # every command checks them; push uses them
    if tables and command == "push":
        values["header_rules"] = tables
    return values


def load(path: str, *, command: str) -> dict[str, Any]:
    """Read the config file at *path* and return the defaults it gives *command*."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text") from None
    return parse(text, path=path, command=command)


def parse_max_delete(value: int | str) -> tuple[int, bool]:
    """Return ``(limit, is_percent)`` from ``N`` or ``N%``."""
    text = str(value).strip()
    percent = text.endswith("%")
    number = text[:-1].strip() if percent else text
    if not number.isdigit() or (percent and int(number) > 100):
        raise ValueError(f"'{value}' is not a count or a percentage (write 100 or 10%)")
    return int(number), percent


def _compare_mode(value: str) -> str:
    if value not in ("mtime", "checksum", "size"):
        raise ValueError(f"'{value}' is not mtime, checksum or size")
    return value


_VALUE_CHECKS: Mapping[str, Callable[[Any], object]] = {
    "compare": _compare_mode,
    "multipart_threshold": parse_size,
    "part_size": parse_size,
    "max_delete": parse_max_delete,
}
