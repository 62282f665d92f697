"""Bounded retries with exponential backoff and full jitter; sleep and randomness injected."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from s3sync.errors import Disposition

T = TypeVar("T")


class RetryPolicy(NamedTuple):
    """At most *attempts* calls; before retry n the wait is uniform in [0, min(cap, base*2**n))."""

    attempts: int = 5
    base: float = 0.25
    cap: float = 20.0

    def delay(self, retry: int, rand: Callable[[], float]) -> float:
        """Return the seconds to wait before retry number *retry* (0 for the first retry)."""
        return rand() * min(self.cap, self.base * 2.0**retry)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Callable[[BaseException], Disposition],
    sleep: Callable[[float], None],
    rand: Callable[[], float],
    on_retry: Callable[[BaseException], None] | None = None,
    failed: Exception | None = None,
) -> T:
    """Return ``fn()``, calling it again after errors *classify* calls RETRY.

    Errors classified FAIL or FATAL, and the last error once the attempts are used up,
    propagate unchanged. *on_retry* is told of every error that is retried. *failed* is
    the error of a first attempt made elsewhere: this call goes on as its retries, within
    the same attempts.
    """
    retry = 0
    error = failed
    while True:
        if error is not None:
            if classify(error) is not Disposition.RETRY or retry + 1 >= policy.attempts:
                raise error
            if on_retry is not None:
                on_retry(error)
            sleep(policy.delay(retry, rand))
            retry += 1
        try:
            return fn()
        except Exception as exc:
            error = exc


class Retrier(NamedTuple):
    """call_with_retry with its policy, classifier, clock and randomness bound once."""

    policy: RetryPolicy
    classify: Callable[[BaseException], Disposition]
    sleep: Callable[[float], None]
    rand: Callable[[], float]

    def __call__(
        self,
        fn: Callable[[], T],
        on_retry: Callable[[BaseException], None] | None = None,
        failed: Exception | None = None,
    ) -> T:
        """Return ``fn()``, retried as the policy allows (see ``call_with_retry``)."""
        return call_with_retry(
            fn,
            policy=self.policy,
            classify=self.classify,
            sleep=self.sleep,
            rand=self.rand,
            on_retry=on_retry,
            failed=failed,
        )
