"""s3sync: mirror a directory tree into S3 and back, in parallel."""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from s3sync.api import cat, copy, pipe, push, restore
from s3sync.errors import (
    ConfigError,
    ExitCode,
    FatalError,
    LockHeld,
    NoSuchKey,
    RemoteError,
    S3SyncError,
)
from s3sync.model import Outcome, Reason, Report

if TYPE_CHECKING:
    from s3sync.bucket import Bucket, Object


def __getattr__(name: str) -> Any:
    """Load ``Bucket`` and ``Object`` on first use: the CLI never needs them."""
    if name in ("Bucket", "Object"):
        from s3sync import bucket

        return getattr(bucket, name)
    raise AttributeError(f"module 's3sync' has no attribute '{name}'")


__all__ = [
    "Bucket",
    "ConfigError",
    "ExitCode",
    "FatalError",
    "LockHeld",
    "NoSuchKey",
    "Object",
    "Outcome",
    "Reason",
    "RemoteError",
    "Report",
    "S3SyncError",
    "__version__",
    "cat",
    "copy",
    "pipe",
    "push",
    "restore",
]
