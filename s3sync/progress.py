"""Everything a run shows: the terminal bar, cron-quiet text, JSON lines. The only tqdm importer.

Reporters are called from the main thread only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from s3sync.errors import ConfigError
from s3sync.model import (
    Action,
    Copy,
    Delete,
    Download,
    Invalidation,
    Outcome,
    Problem,
    RemoveLocal,
    Report,
    Settled,
    Severity,
    Upload,
)

if TYPE_CHECKING:
    from tqdm import tqdm


class Reporter(Protocol):
    """What a run tells as it goes."""

    def planned(self, action: Action) -> None:
        """An action was decided and will be performed."""

    def scanned(self) -> None:
        """Both scans have ended: every action of the run but its deletes is planned."""

    def done(self, outcome: Outcome) -> None:
        """An action finished (or failed)."""

    def problem(self, problem: Problem) -> None:
        """A scan found something it did not transfer."""

    def finish(self, report: Report, command: str) -> None:
        """The run ended; show the summary."""


class NullReporter:
    """Shows nothing; the API's default."""

    def planned(self, action: Action) -> None:
        pass

    def scanned(self) -> None:
        pass

    def done(self, outcome: Outcome) -> None:
        pass

    def problem(self, problem: Problem) -> None:
        pass

    def finish(self, report: Report, command: str) -> None:
        pass


class CallbackReporter(NullReporter):
    """Calls *callback* with every outcome; the API's ``progress=`` argument."""

    def __init__(self, callback: Callable[[Outcome], None]) -> None:
        self._callback = callback

    def done(self, outcome: Outcome) -> None:
        self._callback(outcome)


def human_bytes(n: float) -> str:
    """Return *n* bytes as a short decimal string (``1.2 MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


_VERBS = {
    Upload: "upload",
    Delete: "delete",
    Download: "download",
    Copy: "copy",
    RemoveLocal: "remove",
}


def _status(outcome: Outcome) -> str:
    if not outcome.ok:
        return "failed"
    if outcome.unchanged:
        return "unchanged"
    return "dry-run" if outcome.dry_run else "ok"


def action_record(outcome: Outcome) -> dict[str, Any]:
    """Return the JSON object ``--json`` prints for *outcome*."""
    action = outcome.action
    record: dict[str, Any] = {
        "type": _VERBS[type(action)],
        "key": action.key,
        "reason": action.reason.value,
        "status": _status(outcome),
    }
    if isinstance(action, (Upload, Download)):
        record["path"] = action.path
        record["size"] = action.stat.size
    elif isinstance(action, Copy):
        record["source"] = action.source_key
        record["size"] = action.stat.size
    if outcome.error is not None:
        record["error"] = outcome.error
    if outcome.retries:
        record["retries"] = outcome.retries
    return record


def _moved(report: Report) -> tuple[str, int, int]:
    if report.command in ("restore", "cat"):
        return "downloaded", report.downloaded, report.downloaded_bytes
    if report.command == "copy":
        return "copied", report.copied, report.copied_bytes
    return "uploaded", report.uploaded, report.uploaded_bytes


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {
    ord("\n"): "\\n",
    ord("\t"): "\\t",
    ord("\r"): "\\r",
}


def shown(name: str) -> str:
    """Return *name* fit for a terminal or a log line: control characters (a newline, an
    escape sequence) escaped, and bytes that are not UTF-8 as ``\\xNN``."""
    if name.isprintable():
        return name
    escaped = name.translate(_CONTROLS)
    return escaped.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def action_line(outcome: Outcome) -> str:
    """Return the ``-v`` line for *outcome*: verb (``unchanged`` for a pair a check
    found the same), key, reason and size."""
    action = outcome.action
    verb = ("would " if outcome.dry_run else "") + _VERBS[type(action)]
    if outcome.unchanged:
        verb = "unchanged"
    size = ""
    if isinstance(action, (Upload, Download, Copy)):
        size = f" ({human_bytes(action.stat.size)})"
    return f"{verb} {shown(action.key)} [{action.reason.value}]{size}"


def summary_record(report: Report) -> dict[str, Any]:
    """Return the JSON summary object of *report*."""
    verb, count, size = _moved(report)
    return {
        "type": "summary",
        verb: count,
        f"{verb}_bytes": size,
        **({"headers_fixed": report.headers_fixed} if report.command == "push" else {}),
        "deleted": report.deleted,
        "unchanged": report.unchanged,
        "hashed_bytes": report.hashed_bytes,
        "settled": {by.value: report.settled.get(by.value, 0) for by in Settled},
        "limited": report.limited,
        "failed": report.failed,
        "warnings": len(report.warnings),
        "retries": report.retries,
        "throttled": report.throttled,
        "narrowest_in_flight": report.narrowest,
        "withheld_deletes": report.withheld_deletes,
        "withheld_reason": report.withheld_reason,
        "dry_run": report.dry_run,
        "interrupted": report.interrupted,
        "fatal": report.fatal,
        "remote": report.remote,
        **(
            {"invalidations": [_invalidation_record(i) for i in report.invalidations]}
            if report.command == "push"
            else {}
        ),
        "duration": round(report.duration, 3),
        "exit_code": int(report.exit_code),
    }


def _invalidation_record(made: Invalidation) -> dict[str, Any]:
    return {
        "distribution": made.distribution,
        "ids": list(made.ids),
        "paths": list(made.paths),
        "error": made.error,
    }


def _invalidation_text(made: Invalidation, dry_run: bool) -> str:
    paths = " ".join(shown(p) for p in made.paths)
    if dry_run:
        return f"would invalidate on {made.distribution}: {paths}"
    if made.error is not None:
        return f"invalidation on {made.distribution} failed"
    return f"invalidated on {made.distribution} ({', '.join(made.ids)}): {paths}"


_SETTLED_TEXT = {
    Settled.CONTENT.value: "content",
    Settled.METADATA.value: "recorded mtime",
    Settled.UNSETTLED.value: "nothing (transferred)",
}


def summary_line(report: Report, command: str) -> str:
    """Return the one-line human summary of *report*."""
    would = "would be " if report.dry_run else ""
    verb, count, size = _moved(report)
    parts = [
        f"{count} {would}{verb} ({human_bytes(size)})",
        *([f"{report.headers_fixed} {would}fixed in place"] if report.headers_fixed else []),
        f"{report.deleted} {would}deleted",
        f"{report.unchanged} unchanged",
        f"{report.failed} failed",
    ]
    if report.warnings:
        parts.append(f"{len(report.warnings)} warnings")
    if report.retries:
        parts.append(f"{report.retries} retries")
    if report.throttled:
        parts.append(f"{report.throttled} throttled (in flight down to {report.narrowest})")
    if report.hashed_bytes:
        parts.append(f"{human_bytes(report.hashed_bytes)} hashed")
    checked = [f"{n} by {_SETTLED_TEXT[by]}" for by, n in report.settled.items() if n]
    if checked:
        parts.append(f"{sum(report.settled.values())} compared ({', '.join(checked)})")
    if report.limited:
        parts.append(f"{report.limited} left by --limit")
    line = f"s3sync {command}: " + ", ".join(parts) + f" in {report.duration:.1f}s"
    if report.remote == "index":
        line += " (from the index)"
    if report.withheld_deletes:
        line += f"; {report.withheld_deletes} deletes withheld: {report.withheld_reason}"
    for made in report.invalidations:
        line += "; " + _invalidation_text(made, report.dry_run)
    if report.interrupted:
        line += "; interrupted"
    return line


class ConsoleReporter:
    """The CLI's reporter.

    *verbosity*: -1 errors only, 0 errors and the summary, 1 every action and warning.
    With *as_json*, stdout carries only JSON lines; human text goes to stderr.
    With *bar* (a terminal), a progress bar runs on stderr.
    """

    def __init__(
        self,
        *,
        verbosity: int,
        as_json: bool,
        bar: bool,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.verbosity = verbosity
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._text = self.err if as_json else self.out
        self._bar: tqdm[Any] | None = None
        if bar and verbosity >= 0:
            from tqdm import tqdm  # here: a run under cron never spends the time to load it

            # no total while the scans run: a total that grows with the walk would show
            # a percentage and an ETA that mean nothing (67% when a tenth is done)
            self._bar = tqdm(
                total=None, unit="file", file=self.err, dynamic_ncols=True, leave=False, delay=0.5
            )
        self._bytes = 0
        self._planned = 0
        self._scanned = False

    def _say(self, text: str, stream: TextIO) -> None:
        if self._bar is not None:
            self._bar.write(text, file=stream)
        else:
            print(text, file=stream, flush=True)

    def _json(self, record: dict[str, Any]) -> None:
        import json  # here: only --json needs it

        print(json.dumps(record, ensure_ascii=False), file=self.out, flush=True)

    def planned(self, action: Action) -> None:
        self._planned += 1
        if self._bar is not None and self._scanned:  # deletes, once the totals are known
            self._bar.total = self._planned
            self._bar.refresh()

    def scanned(self) -> None:
        """From now on the bar has its exact total: a percentage and an ETA."""
        self._scanned = True
        if self._bar is not None:
            self._bar.total = self._planned
            self._bar.refresh()

    def done(self, outcome: Outcome) -> None:
        action = outcome.action
        if self.as_json:
            self._json(action_record(outcome))
        if not outcome.ok:
            self._say(f"error: {shown(action.key)}: {outcome.error}", self.err)
        elif self.verbosity > 0 and not self.as_json and (
            not outcome.unchanged or outcome.settled is not None
        ):
            self._say(action_line(outcome), self._text)
        if self._bar is not None:
            if (
                isinstance(action, (Upload, Download, Copy))
                and outcome.ok
                and not outcome.unchanged
            ):
                self._bytes += action.stat.size
                self._bar.set_postfix_str(human_bytes(self._bytes), refresh=False)
            self._bar.update(1)

    def problem(self, problem: Problem) -> None:
        if self.as_json:
            self._json(
                {"type": problem.severity.value, "path": problem.path, "message": problem.message}
            )
        if problem.severity is Severity.ERROR:
            self._say(f"error: {shown(problem.path)}: {problem.message}", self.err)
        elif self.verbosity > 0:
            self._say(f"warning: {shown(problem.path)}: {problem.message}", self.err)

    def finish(self, report: Report, command: str) -> None:
        if self._bar is not None:
            self._bar.close()
        if report.fatal is not None:
            self._say(f"s3sync {command}: {report.fatal}", self.err)
        if self.as_json:
            self._json(summary_record(report))
        elif self.verbosity >= 0 and report.fatal is None:
            self._say(summary_line(report, command), self._text)


class LogFileReporter(NullReporter):
    """Appends timestamped lines to a log file: actions, warnings, errors, the summary."""

    def __init__(self, path: str, *, now: Callable[[], float] | None = None) -> None:
        self._now = now or time.time
        try:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish
        except OSError as exc:
            raise ConfigError(f"cannot open log file '{path}': {exc.strerror}") from None

    def _line(self, text: str) -> None:
        """Append *text* as one line: a newline or escape in a key (or in a message that
        quotes one) is escaped as on the console, so no line can be forged."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self._now()))
        self._file.write(f"{stamp} {shown(text)}\n")
        self._file.flush()

    def done(self, outcome: Outcome) -> None:
        record = action_record(outcome)
        detail = f": {outcome.error}" if outcome.error else ""
        self._line(
            f"{record['status']} {record['type']} {record['key']} [{record['reason']}]" + detail
        )

    def problem(self, problem: Problem) -> None:
        self._line(f"{problem.severity.value}: {shown(problem.path)}: {problem.message}")

    def fail(self, message: str) -> None:
        """Log an error that ended the run before it started, and close the log."""
        self._line(f"error: {message}")
        self._file.close()

    def finish(self, report: Report, command: str) -> None:
        if report.fatal is not None:
            self._line(f"error: s3sync {command}: {report.fatal}")
        self._line(summary_line(report, command) + f" [exit {int(report.exit_code)}]")
        self._file.close()


class TeeReporter:
    """Tells several reporters the same things, in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self._reporters = reporters

    def planned(self, action: Action) -> None:
        for r in self._reporters:
            r.planned(action)

    def scanned(self) -> None:
        for r in self._reporters:
            r.scanned()

    def done(self, outcome: Outcome) -> None:
        for r in self._reporters:
            r.done(outcome)

    def problem(self, problem: Problem) -> None:
        for r in self._reporters:
            r.problem(problem)

    def finish(self, report: Report, command: str) -> None:
        for r in self._reporters:
            r.finish(report, command)
