"""The command's exit: the code sys.exit would give, after flushing what was written."""

from __future__ import annotations

import io
import os
import sys

import pytest

from s3sync import cli


class Left(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class Buffered(io.StringIO):
    """Keeps what was written out of ``getvalue`` until it is flushed, as a pipe would."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = ""

    def flush(self) -> None:
        self.flushed = self.getvalue()


@pytest.mark.parametrize(
    ("leaving", "code", "told"),
    [(None, 0, ""), (0, 0, ""), (5, 5, ""), (130, 130, ""), ("bad usage", 1, "bad usage\n")],
)
def test_run_exits_with_the_code_of_sys_exit_after_flushing(
    monkeypatch: pytest.MonkeyPatch, leaving: object, code: int, told: str
) -> None:
    out, err = Buffered(), Buffered()

    def command() -> None:
        out.write('{"type": "summary"}')  # no newline: only a flush gets it out
        raise SystemExit(leaving)

    def leave(status: int) -> None:
        raise Left(status)

    monkeypatch.setattr(cli, "main", command)
    monkeypatch.setattr(os, "_exit", leave)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)

    with pytest.raises(Left) as left:
        cli.run()

    assert left.value.code == code
    assert out.flushed == '{"type": "summary"}'
    assert err.flushed == told


def test_run_leaves_with_0_when_the_command_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    def leave(status: int) -> None:
        raise Left(status)

    monkeypatch.setattr(cli, "main", lambda: None)
    monkeypatch.setattr(os, "_exit", leave)

    with pytest.raises(Left) as left:
        cli.run()

    assert left.value.code == 0
