"""Deleting objects in DeleteObjects batches on the worker pool, one outcome per key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from s3sync import engine
from s3sync.model import Delete, Outcome

if TYPE_CHECKING:
    from s3sync.store.remote import ObjectStore

BATCH = 1000


def delete_objects(
    deletes: list[Delete],
    store: ObjectStore,
    *,
    dry_run: bool,
    workers: int,
    record: Callable[[Outcome | None], None],
    interrupted: Callable[[], None],
    stopping: Callable[[], bool],
) -> None:
    """Delete *deletes* 1000 at a time, passing each key's outcome to *record*."""
    batches = [deletes[i : i + BATCH] for i in range(0, len(deletes), BATCH)]

    def perform(batch: list[Delete]) -> list[Outcome]:
        if dry_run:
            return [Outcome(d, dry_run=True) for d in batch]
        retried: list[BaseException] = []
        failures = dict(store.delete_many([d.key for d in batch], on_retry=retried.append))
        return [
            Outcome(d, failures.get(d.key), len(retried) if i == 0 else 0)
            for i, d in enumerate(batch)
        ]

    def record_all(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            record(outcome)

    engine.drive(
        engine.apply(batches, perform, workers=min(workers, 4), cancel=stopping),
        record_all,
        interrupted,
    )
