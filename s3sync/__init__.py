"""s3sync: mirror a directory tree into S3 and back, in parallel."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # "as" re-exports them to type checkers
    from s3sync.api import cat as cat
    from s3sync.api import copy as copy
    from s3sync.api import pipe as pipe
    from s3sync.api import push as push
    from s3sync.api import restore as restore
    from s3sync.bucket import Bucket as Bucket
    from s3sync.bucket import Object as Object
    from s3sync.errors import ConfigError as ConfigError
    from s3sync.errors import ExitCode as ExitCode
    from s3sync.errors import FatalError as FatalError
    from s3sync.errors import LockHeld as LockHeld
    from s3sync.errors import NoSuchKey as NoSuchKey
    from s3sync.errors import RemoteError as RemoteError
    from s3sync.errors import S3SyncError as S3SyncError
    from s3sync.model import Outcome as Outcome
    from s3sync.model import Reason as Reason
    from s3sync.model import Report as Report

# each name and the module it comes from: loaded on first use, so a command loads only
# what it runs (the CLI's no-op push with an index spends a third of its time importing)
_HOMES = {
    "cat": "api",
    "copy": "api",
    "pipe": "api",
    "push": "api",
    "restore": "api",
    "Bucket": "bucket",
    "Object": "bucket",
    "ConfigError": "errors",
    "ExitCode": "errors",
    "FatalError": "errors",
    "LockHeld": "errors",
    "NoSuchKey": "errors",
    "RemoteError": "errors",
    "S3SyncError": "errors",
    "Outcome": "model",
    "Reason": "model",
    "Report": "model",
}

__all__ = ["__version__", *sorted(_HOMES)]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 's3sync' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"s3sync.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
