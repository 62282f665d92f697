"""The options of a push: the CLI's flags, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field

from s3sync.cdn_paths import DEFAULT_BUDGET
from s3sync.diff import Compare, DeleteLimit
from s3sync.etags import used_part_size
from s3sync.filters import ENTRY_POINTS
from s3sync.headers import Headers


@dataclass(frozen=True, slots=True, kw_only=True)
class PushOptions:
    """How a push behaves; the CLI's flags with the same defaults."""

    workers: int = 16
    fudge: float = 1200.0
    delete: bool = True
    dry_run: bool = False
    filters: tuple[tuple[bool, str], ...] = ()
    follow_symlinks: bool = True
    index: str | None = None
    ignore_index: bool = False
    allow_empty_source: bool = False
    max_delete: DeleteLimit | None = None
    compare: Compare = Compare.MTIME
    force: bool = False
    ignore_existing: bool = False
    limit: int | None = None
    multipart_threshold: int = 8 * 1024 * 1024
    part_size: int = 8 * 1024 * 1024
    headers: Headers = field(default_factory=Headers)  # what each object is sent with
    order: tuple[str, ...] = ENTRY_POINTS  # upload groups after the rest, one by one
    generate_index_html: bool = False  # a listing page for directories without index.html
    cloudfront: tuple[str, ...] = ()  # distributions to invalidate after a successful push
    invalidation_budget: int = DEFAULT_BUDGET  # paths at most, before wildcards

    def layout(self, size: int) -> int:
        """Return the part size an upload of *size* bytes uses (0: a single part)."""
        return used_part_size(size, self.part_size) if size >= self.multipart_threshold else 0
