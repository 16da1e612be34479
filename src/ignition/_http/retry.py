"""The one retry policy: which answers are worth asking again, how long to wait, when to stop.

Used by every request of the HttpClient and by the download engine's ranged requests, which
count failures their own way (without progress, per file) but wait and classify with this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time

# Worth asking again, and nothing else:
# - 408 Request Timeout and 425 Too Early: the server did not act on the request and says so;
# - 429 Too Many Requests: a rate limit (CivitAI's "too many downloads", usually without a
#   Retry-After);
# - 500, 502, 503, 504: the server or a gateway in front of it had a hiccup.
# Every other status is an answer: 4xx is the user's to fix (login, licence, wrong id) and
# retrying only delays the message; 501/505 and the rest of 5xx will not change on a retry.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryNotice:
    """A request failed and will be tried again: what the display tells the user."""

    what: str  # e.g. "GET civitai.com/api/v1/model-versions/1" (redacted)
    host: str  # the host that failed
    reason: str  # one line: "cannot resolve civitai.com (no network?)", "HTTP 503" …
    attempt: int  # 1 for the first failure
    delay_s: float  # the wait before the next try
    keeps_trying_s: float  # the waits still ahead, in all, before the policy gives up


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff.

    CivitAI answers "too many downloads" with a 429 that usually has no Retry-After: back off
    1 s → 2 s → … → 30 s. A Retry-After (delta-seconds or an HTTP date) is honoured, unless it
    asks for longer than `max_retry_after_s` (then the 429 is handed to the caller, who reports
    it). `statuses` are the answers retried; `on_retry` hears of every retry before its wait.
    """

    attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    statuses: frozenset[int] = RETRYABLE_STATUSES
    # Whether a request that got no answer (refused, reset, timed out) is asked again.
    connection_failures: bool = True
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    on_retry: Callable[[RetryNotice], None] | None = None

    def retryable(self, status: int) -> bool:
        return status in self.statuses

    def backoff_s(self, attempt: int, retry_after: str | None = None) -> float:
        """The wait after failure number `attempt + 1`, however many came before: the server's
        Retry-After when it sends one, else `first_delay_s` doubling up to `max_delay_s`."""
        wait = parse_retry_after(retry_after)
        if wait is None:
            # The exponent is capped: a poll may retry thousands of times (2.0**1024 overflows).
            return min(self.first_delay_s * 2.0 ** min(attempt, 64), self.max_delay_s)
        return wait

    def delay_s(self, attempt: int, retry_after: str | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when it is time to give up."""
        if attempt + 1 >= self.attempts:
            return None
        wait = self.backoff_s(attempt, retry_after)
        return wait if wait <= self.max_retry_after_s else None

    def remaining_s(self, attempt: int, attempts: int | None = None) -> float:
        """The backoff still ahead from failure `attempt + 1` on, if every one of `attempts`
        tries (the policy's own count by default) fails."""
        last = self.attempts if attempts is None else attempts
        return sum(self.backoff_s(n) for n in range(attempt, last - 1))

    def notify(
        self,
        what: str,
        host: str,
        reason: str,
        attempt: int,
        delay_s: float,
        *,
        attempts: int | None = None,
    ) -> None:
        """Tell `on_retry` that failure `attempt + 1` of `what` is retried after `delay_s`;
        `attempts` when the caller counts tries itself (the engine)."""
        if self.on_retry is not None:
            ahead = self.remaining_s(attempt, attempts)
            self.on_retry(RetryNotice(what, host, reason, attempt + 1, delay_s, ahead))


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None
