"""Include/exclude rules, rsync style, applied the same way to files, directories and keys.

``*`` matches within one path segment, ``**`` across segments, ``?`` one character,
``[...]`` a character class. A leading ``/`` anchors the pattern at the root; otherwise
it matches any trailing run of whole segments. A trailing ``/`` matches directories only.
The first rule that matches decides; a path no rule matches is included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from s3sync.errors import ConfigError
from s3sync.paths import ancestors


class Rule(NamedTuple):
    """One ``--include`` (*include* True) or ``--exclude`` pattern, compiled."""

    include: bool
    pattern: str
    dir_only: bool
    regex: re.Pattern[str]


def _translate(glob: str) -> str:
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob.startswith(("[!", "[^"), i) else i + 1)
            if end < 0:
                raise ValueError("unclosed '['")
            body = glob[i + 1 : end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_rule(include: bool, pattern: str) -> Rule:
    """Compile one pattern; raise ConfigError naming the pattern when it is malformed."""
    body = pattern
    dir_only = body.endswith("/")
    body = body.rstrip("/") if dir_only else body
    anchored = body.startswith("/")
    body = body.lstrip("/")
    if not body:
        raise ConfigError(f"filter pattern '{pattern}' matches nothing: give a name or glob")
    try:
        regex = _translate(body)
        compiled = re.compile(regex if anchored else f"(?:.*/)?{regex}", re.DOTALL)
    except (ValueError, re.error) as exc:
        raise ConfigError(f"filter pattern '{pattern}' is not a valid glob: {exc}") from None
    return Rule(include, pattern, dir_only, compiled)


class Filter:
    """Decides which relative paths take part in a sync."""

    def __init__(self, rules: Sequence[tuple[bool, str]] = ()) -> None:
        self.rules = tuple(compile_rule(include, pattern) for include, pattern in rules)
        self._dirs: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def _decide(self, path: str, *, is_dir: bool) -> bool:
        for rule in self.rules:
            if (is_dir or not rule.dir_only) and rule.regex.fullmatch(path):
                return rule.include
        return True

    def dir_included(self, reldir: str) -> bool:
        """Return True when the walk should descend into the directory *reldir*."""
        decided = self._dirs.get(reldir)
        if decided is None:
            decided = self._decide(reldir, is_dir=True)
            self._dirs[reldir] = decided
        return decided

    def file_included(self, relpath: str) -> bool:
        """Return True when the file *relpath* is included, its directories aside."""
        return self._decide(relpath, is_dir=False)

    def included(self, relpath: str) -> bool:
        """Return True when the file or key *relpath* is included, directories and all."""
        if not self.rules:
            return True
        return all(self.dir_included(d) for d in ancestors(relpath)) and self.file_included(relpath)


# pages and other entry points: what a visitor or a crawler asks for first
ENTRY_POINTS = (
    "*.html,*.htm,sitemap*.xml,feed*,*.rss,*.atom,sw.js,service-worker.js,*.webmanifest",
)


class Groups:
    """Publish order: which group a path is uploaded in.

    Each group is a comma-separated list of rsync-style globs; a path belongs to the first
    group with a glob that matches it or one of its directories, and a path that matches
    none is in group 0, which goes first.
    """

    def __init__(self, groups: Sequence[str]) -> None:
        self._rules = [
            [compile_rule(True, glob.strip()) for glob in group.split(",") if glob.strip()]
            for group in groups
        ]
        # one pattern per group for file names (directory globs never match those) and
        # one for directories; a directory's group is worked out once, for all below it
        self._files = [_either(r for r in rules if not r.dir_only) for rules in self._rules]
        self._dirs = [_either(rules) for rules in self._rules]
        self._below: dict[str, int] = {"": 0}

    def __len__(self) -> int:
        return len(self._rules) + 1

    def of(self, relpath: str) -> int:
        """Return the group *relpath* is uploaded in (0: before every named group); a glob
        that matches one of its directories takes in all below it, as in --exclude."""
        above = self._directory(relpath.rpartition("/")[0])
        for number, pattern in enumerate(self._files, 1):
            if above and number >= above:
                return above
            if pattern is not None and pattern.fullmatch(relpath):
                return number
        return above

    def _directory(self, reldir: str) -> int:
        """Return the first group matching *reldir* or a directory above it (0: none)."""
        found = self._below.get(reldir)
        if found is None:
            found = self._directory(reldir.rpartition("/")[0])
            for number, pattern in enumerate(self._dirs, 1):
                if found and number >= found:
                    break
                if pattern is not None and pattern.fullmatch(reldir):
                    found = number
                    break
            self._below[reldir] = found
        return found


def _either(rules: Iterable[Rule]) -> re.Pattern[str] | None:
    """Return one pattern matching what any of *rules* matches (None: no rule)."""
    patterns = [f"(?:{rule.regex.pattern})" for rule in rules]
    return re.compile("|".join(patterns), re.DOTALL) if patterns else None


def covers(rule: Rule, relpath: str) -> bool:
    """Return whether *rule*'s glob matches the file *relpath* or one of its directories
    (a directory pattern takes in everything below it, as in --exclude)."""
    dirs = ancestors(relpath)
    names = dirs if rule.dir_only else [*dirs, relpath]
    return any(rule.regex.fullmatch(name) for name in names)
