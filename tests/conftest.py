"""Shared fixtures: build local trees with explicit mtimes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAY = 86400
Tree = Callable[..., Path]


def write_tree(root: Path, files: Mapping[str, bytes | str], *, mtime: float | None = None) -> Path:
    """Write *files* (relpath -> content) under *root*, all with *mtime* (default: a day ago)."""
    stamp = time.time() - DAY if mtime is None else mtime
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        os.utime(path, (stamp, stamp))
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """Return a function that writes files under a fresh source directory and returns it."""
    root = tmp_path / "src"
    root.mkdir()

    def make(files: Mapping[str, bytes | str], *, mtime: float | None = None) -> Path:
        return write_tree(root, files, mtime=mtime)

    return make
