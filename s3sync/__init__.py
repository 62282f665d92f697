"""s3sync: mirror a directory tree into S3 and back, in parallel."""

__version__ = "0.1.0"

from s3sync.api import cat, copy, pipe, push, restore
from s3sync.bucket import Bucket, Object
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
