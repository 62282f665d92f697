"""The README's Python example runs, as written, against the real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tree
from tests.integration.conftest import keys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_python_api_example(
    server: Any,
    s3: Any,
    bucket: str,
    tree: Tree,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    readme = (ROOT / "README.rst").read_text()
    section = readme.split("Python API\n==========", 1)[1]
    code = re.search(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section)
    assert code is not None
    source = "\n".join(line[3:] for line in code.group(1).splitlines())
    source = source.replace("http://127.0.0.1:8333", server.endpoint)
    source = source.replace("s3://bucket/www", f"s3://{bucket}/www")
    src = tree({"index.html": "home", "draft.tmp": "excluded"})
    monkeypatch.chdir(src.parent)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    src.rename(src.parent / "site")

    exec(compile(source, "README.rst", "exec"), {})

    assert keys(s3, bucket) == {"www/index.html"}
    out = capsys.readouterr().out
    assert "www/index.html new" in out
    assert "1 0 0 0" in out  # uploaded, deleted, failed, exit code
