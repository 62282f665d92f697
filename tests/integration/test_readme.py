"""The README's Python examples run, as written, against the real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import keys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    """Return the Python code blocks of the README's "Python API" section, dedented."""
    readme = (ROOT / "README.rst").read_text()
    section = readme.split("Python API\n==========", 1)[1].split("\nDevelopment\n", 1)[0]
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    return ["\n".join(line[3:] for line in block.splitlines()) for block in blocks]


def test_python_api_examples(
    server: Any,
    s3: Any,
    bucket: str,
    tree: Tree,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocks = python_blocks()
    assert len(blocks) == 2
    src = tree({"index.html": "home", "draft.tmp": "excluded"})
    monkeypatch.chdir(src.parent)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    src.rename(src.parent / "site")

    for source in blocks:
        source = source.replace("http://127.0.0.1:8333", server.endpoint)
        source = source.replace("s3://bucket/", f"s3://{bucket}/")
        exec(compile(source, "README.rst", "exec"), {})

    assert keys(s3, bucket) == {"www/index.html", "notes/report.json"}
    out = capsys.readouterr().out.splitlines()
    assert "www/index.html new" in out
    assert "1 0 0 0" in out  # uploaded, deleted, failed, exit code
    assert "['hello.txt', 'report.json']" in out
    assert "2 {'owner': 'ops'} application/json; charset=utf-8 b'{}'" in out
    assert any(line.startswith(server.endpoint) and "Signature" in line for line in out)
    assert out[-1] == "False"
