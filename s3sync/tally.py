"""The reporting thread's side of a run: the report, the reporter, --limit, the stop flags."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from s3sync import engine
from s3sync.errors import RemoteError, S3SyncError
from s3sync.model import Action, Outcome, Reason, Report
from s3sync.window import Window

if TYPE_CHECKING:
    from concurrent.futures import Future

    from s3sync.progress import Reporter

A = TypeVar("A", bound=Action)


class Tally:
    """Counts and tells everything one run plans and does; use from the main thread only.

    *cancel* is the user's interrupt (a signal handler may set it); *halt* stops the run
    for a fatal error. ``limit`` caps how many transfers are planned.
    """

    def __init__(
        self,
        report: Report,
        reporter: Reporter,
        *,
        limit: int | None = None,
        cancel: threading.Event | None = None,
        halt: threading.Event | None = None,
        on_done: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.report = report
        self.reporter = reporter
        self.cancel = cancel or threading.Event()
        self.halt = halt or threading.Event()
        self._limit = limit
        self._planned = 0
        self._on_done = on_done

    def stopping(self) -> bool:
        """Return True once the run must take no new work."""
        return self.cancel.is_set() or self.halt.is_set()

    def interrupted(self) -> None:
        """Record a Ctrl-C that reached the main thread and stop taking work."""
        self.report.interrupted = True
        self.cancel.set()

    def planned(self, action: A | None) -> tuple[A, ...]:
        """Return *action* to be performed, unless it is None or --limit was reached.

        A tuple, not a generator: a no-op run asks once per file on each side.
        """
        if action is None:
            return ()
        if self._limit is not None and self._planned >= self._limit:
            self.report.limited += 1
            return ()
        self._planned += 1
        self.reporter.planned(action)
        return (action,)

    def gate(
        self, perform: Callable[[A], Outcome], *, dry_run: bool
    ) -> Callable[[A], Outcome | None]:
        """Return *perform* behind the one dry-run gate of a run.

        Once the run is stopping nothing new starts (None). In a dry run an action is
        answered without I/O, except an UNVERIFIED or HEADERS one: its read-only check must
        run to know whether it would transfer, and *perform* honours the dry run after it.
        """

        def gated(action: A) -> Outcome | None:
            if self.stopping():
                return None
            if dry_run and action.reason not in (Reason.UNVERIFIED, Reason.HEADERS):
                return Outcome(action, dry_run=True)
            return perform(action)

        return gated

    def again(
        self, transfer: Callable[[A, RemoteError], Outcome], action: A, failed: RemoteError
    ) -> Outcome:
        """Retry, on a worker, *action*, whose first attempt off the workers *failed* in a
        way that may pass; once the run is stopping, tell it failed instead (the next run
        tries again), so that no action planned goes untold."""
        return Outcome(action, str(failed)) if self.stopping() else transfer(action, failed)

    def cleared(self, deletes: Sequence[Action], withheld: str | None) -> bool:
        """Return whether *deletes* may go ahead: when a guard or an error *withheld* them,
        record how many and why; else tell each one planned (never limited: a run cut
        short by --limit deletes nothing at all)."""
        if withheld is not None:
            self.report.withheld_deletes = len(deletes) if self.report.fatal is None else 0
            self.report.withheld_reason = withheld if self.report.withheld_deletes else None
            return False
        for action in deletes:
            self.reporter.planned(action)
        return bool(deletes)

    def record(self, outcome: Outcome | None) -> None:
        """Count *outcome* (None: skipped because the run was stopping) and tell it."""
        if outcome is None:
            return
        self.report.record(outcome)
        if self._on_done is not None:  # before telling: what is told done must be kept
            self._on_done(outcome)
        self.reporter.done(outcome)
        if outcome.fatal:
            self.report.fatal = outcome.error
            self.halt.set()

    def stream(
        self,
        sources: Sequence[Callable[[], Iterable[object]]],
        handle: Callable[[int, object], Iterable[A]],
        finish: Callable[[], Iterable[A]],
        perform: Callable[[A], Outcome | None],
        *,
        workers: int,
        in_flight: int | Window | None = None,
        start: engine.Start[A, Outcome | None] | None = None,
        inline: bool = False,
        hold: Callable[[int], bool] | None = None,
    ) -> bool:
        """Run the scans and their actions through the engine, recording every outcome.
        *start* may begin actions off the workers (see ``engine.stream``); once the run
        is stopping, it is not asked, and *perform* skips what is left. *inline* runs the
        sources in this thread, and *hold* pauses one on its thread (see ``engine.stream``).

        Return True when the scans got to their end; a scan that failed makes the run
        fatal (its message in ``report.fatal``) and returns False.
        """

        def started(
            action: A, runners: engine.Runners[Outcome | None]
        ) -> Future[Outcome | None] | None:
            assert start is not None
            return None if self.stopping() else start(action, runners)

        def scanned() -> Iterable[A]:
            self.reporter.scanned()  # the totals are known: the bar can show them
            return finish()

        try:
            engine.drive(
                engine.stream(
                    sources,
                    handle,
                    scanned,
                    perform,
                    workers=workers,
                    in_flight=in_flight,
                    cancel=self.stopping,
                    start=started if start is not None else None,
                    inline=inline,
                    hold=hold,
                ),
                self.record,
                self.interrupted,
            )
        except engine.SourceFailed as exc:
            error = exc.error
            self.report.fatal = (
                str(error) if isinstance(error, S3SyncError) else f"scan failed: {error!r}"
            )
            return False
        finally:
            if isinstance(in_flight, Window) and in_flight.throttled:  # shared by streams
                self.report.throttled = in_flight.throttled
                self.report.narrowest = in_flight.narrowest
        return not self.stopping()

    def finish(self) -> None:
        """Mark an interrupted run and tell the summary."""
        self.report.interrupted = self.report.interrupted or self.cancel.is_set()
