"""A client-side token bucket, so a burst of replies does not earn a wall of 429s from Chatwoot.

Chatwoot allows 3000 requests per minute per IP by default; the client's default of 2400 stays below it.
Each caller reserves the next free slot and sleeps until it comes, so waiting callers are served in
arrival order without a lock. The clock and the sleep are injectable for tests. `refill` is the one
token-bucket formula, shared with the receiver's limiter of failed authentications (botkit.receiver).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


def refill(tokens: float, updated: float, now: float, per_second: float, burst: float) -> float:
    """The tokens a bucket holds at `now` (seconds) that held `tokens` at `updated`: `per_second` more each
    second since, never above `burst`."""
    return min(burst, tokens + (now - updated) * per_second)


class TokenBucket:
    """`rate_per_minute` requests per minute on average, at most `burst` at once."""

    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive.")
        self.rate_per_second = rate_per_minute / 60.0
        # One second's worth by default: 2400/min allows 40 at once, and 40 + 2400 stays under 3000 a minute.
        self.burst = float(burst) if burst is not None else max(1.0, self.rate_per_second)
        if self.burst < 1:
            raise ValueError("burst must be at least 1.")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token now and return how many seconds to wait before using it."""
        now = self._clock()
        self._tokens = refill(self._tokens, self._updated, now, self.rate_per_second, self.burst)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_second

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_minute={self.rate_per_second * 60:g}, burst={self.burst:g})"
