"""s3sync: mirror a directory tree into S3 and back, in parallel."""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# name -> the module that defines it, loaded on first use: the command sets the run up
# (see __main__) before anything heavy is imported, and never needs Bucket or Object
_HOMES = {
    **dict.fromkeys(("cat", "copy", "pipe", "push", "restore"), "s3sync.api"),
    **dict.fromkeys(("Bucket", "Object"), "s3sync.bucket"),
    **dict.fromkeys(
        (
            "ConfigError",
            "ExitCode",
            "FatalError",
            "LockHeld",
            "NoSuchKey",
            "RemoteError",
            "S3SyncError",
        ),
        "s3sync.errors",
    ),
    **dict.fromkeys(("Outcome", "Reason", "Report"), "s3sync.model"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 's3sync' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(home), name)


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
