"""Deterministic test trees: a website, a huge tree of tiny files, a few large files."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

MTIME = 1_700_000_000  # every generated file's mtime: long before any upload
# extension -> share of a website's files
_KINDS = {
    "html": 0.20,
    "css": 0.05,
    "js": 0.10,
    "json": 0.05,
    "svg": 0.05,
    "png": 0.25,
    "jpg": 0.20,
    "woff2": 0.05,
    "txt": 0.05,
}


def _write(path: Path, data: bytes, *, aged: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if aged:
        os.utime(path, (MTIME, MTIME))


def _dirs(rng: random.Random, count: int) -> list[str]:
    """Return *count* nested directory paths, 1 to 4 levels deep."""
    found: list[str] = [""]
    while len(found) < count:
        parent = rng.choice(found)
        if parent.count("/") < 3:
            found.append(f"{parent}d{len(found)}/" if parent else f"d{len(found)}/")
    return found


def website(root: Path, files: int, *, seed: int = 1, aged: bool = True) -> int:
    """Write a website-like tree of *files* files with log-normal sizes (median 5 KB,
    at most 2 MB) in nested folders, about 50 a folder; return the bytes written.

    *aged* files get an mtime long before any upload; the others keep the time they
    were written (a tree built just before its first push, as a site generator leaves
    it)."""
    rng = random.Random(seed)
    dirs = _dirs(rng, max(1, files // 50))
    kinds, weights = zip(*_KINDS.items(), strict=True)
    total = 0
    for n in range(files):
        size = int(min(2_000_000, max(100, rng.lognormvariate(math.log(5000), 1.3))))
        ext = rng.choices(kinds, weights)[0]
        _write(root / f"{rng.choice(dirs)}f{n}.{ext}", rng.randbytes(size), aged=aged)
        total += size
    return total


def tiny(root: Path, files: int, *, seed: int = 2) -> None:
    """Write *files* files of 100 bytes, 200 a folder (memory and listing, not bytes)."""
    rng = random.Random(seed)
    for n in range(files):
        _write(root / f"g{n // 200:05d}" / f"t{n}.txt", rng.randbytes(100))


def large(root: Path, total_mib: int, *, each_mib: int = 256, seed: int = 3) -> None:
    """Write files of *each_mib* MiB, *total_mib* MiB in all."""
    rng = random.Random(seed)
    chunk = rng.randbytes(1 << 20)
    for n in range(max(1, total_mib // each_mib)):
        path = root / f"large{n}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for i in range(each_mib):
                out.write(chunk[i % 7 :] + chunk[: i % 7])  # no two MiB alike
        os.utime(path, (MTIME, MTIME))


def churn(root: Path, *, percent: float = 1.0, seed: int = 4) -> tuple[int, int, int]:
    """Change, delete and add *percent* % of the files under *root* each; return the
    counts (changed files get new bytes and a current mtime)."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    count = max(1, int(len(files) * percent / 100))
    picked = rng.sample(files, 2 * count)
    for path in picked[:count]:
        path.write_bytes(rng.randbytes(path.stat().st_size + 7))
    for path in picked[count:]:
        path.unlink()
    for n in range(count):
        _write(root / f"added/n{n}.html", rng.randbytes(4000))
        os.utime(root / f"added/n{n}.html")
    return count, count, count
