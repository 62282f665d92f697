"""Exit codes, the exception tree, and the one place errors are classified."""

from __future__ import annotations

import enum
from typing import ClassVar


class ExitCode(enum.IntEnum):
    """What the process exit status means; README.rst documents each value."""

    OK = 0
    PARTIAL = 1
    USAGE = 2
    FATAL = 3
    LOCKED = 4
    DELETES_WITHHELD = 5
    INTERRUPTED = 130


class S3SyncError(Exception):
    """Base of every error s3sync raises on purpose; the message is one line for the user."""

    exit_code: ClassVar[ExitCode] = ExitCode.FATAL


class ConfigError(S3SyncError):
    """A bad option, argument or config file value."""

    exit_code = ExitCode.USAGE


class LockHeld(S3SyncError):
    """Another run holds the lock."""

    exit_code = ExitCode.LOCKED


class FatalError(S3SyncError):
    """The run cannot start or go on: nothing (more) is changed."""


class SourceError(FatalError):
    """The local source is missing or unreadable."""


class RemoteError(S3SyncError):
    """A failed call to the object store, already translated out of botocore.

    *code* is the S3 error code (``NoSuchBucket``, ``SlowDown``) or a transport name
    (``ConnectionError``, ``ReadTimeout``); *status* the HTTP status when one came back.
    """

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class NoSuchKey(S3SyncError, KeyError):
    """The key is not in the bucket (a KeyError, as a dict would raise)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such key"


class Disposition(enum.Enum):
    """What to do about a failed call."""

    RETRY = "retry"
    FAIL = "fail"
    FATAL = "fatal"


_RETRY_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "ConnectionError",
        "ConnectionRefused",
        "DNSFailure",
        "ReadTimeout",
        "IncompleteRead",
        "BadDigest",
    }
)
_FATAL_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "NoCredentials",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "InvalidBucketName",
        "NotS3",
        "BadRequest",
        "BadConfig",
        "IncompleteListing",
        "TLSError",
    }
)


def classify(exc: BaseException) -> Disposition:
    """Return whether *exc* is worth retrying, fails one action, or stops the run."""
    if isinstance(exc, RemoteError):
        if exc.code in _FATAL_CODES or exc.status in (401, 403):
            return Disposition.FATAL
        if exc.code == "NotImplemented" or exc.status == 501:
            return Disposition.FAIL  # a 5xx no retry can change: the server lacks it
        if exc.code in _RETRY_CODES or exc.status == 429 or (exc.status or 0) >= 500:
            return Disposition.RETRY
        return Disposition.FAIL
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return Disposition.RETRY
    return Disposition.FAIL


def changed_underneath(exc: RemoteError) -> bool:
    """Return True when *exc* says the object changed since the ETag a request was
    conditioned on (412 PreconditionFailed): another version is there now."""
    return exc.code == "PreconditionFailed" or exc.status == 412
