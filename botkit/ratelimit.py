"""Client-side rate limits, so a burst of replies does not earn a wall of 429s from Chatwoot.

Chatwoot allows 3000 requests per minute per IP by default (Rack::Attack, `config/initializers/rack_attack.rb`);
the client's default of 2400 stays below it. Each caller reserves the next free slot and sleeps until it comes,
so waiting callers are served in arrival order without a lock.

- `TokenBucket`: one process's budget. The clock and the sleep are injectable for tests.
- `SharedBudget`: one budget for every process and host on a Redis store (`botkit worker` on N hosts): the
  GCRA script `botkit/lua/gcra.lua` reserves each slot atomically on Redis's clock. When Redis does not
  answer, the process falls back to its own bucket (logged once) rather than stopping its replies.

`refill` is the one token-bucket formula, shared with the receiver's limiter of failed authentications
(botkit.receiver).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

log = logging.getLogger("botkit.ratelimit")


def lua_script(name: str) -> str:
    """The text of `botkit/lua/<name>.lua` (scripts live in files, read and linted as Lua)."""
    return (resources.files("botkit") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


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


class SharedBudget:
    """`rate_per_minute` requests per minute, at most `burst` at once, for all processes sharing `key` on Redis.

    `redis_url` is the store's URL (`redis://host:port/db`, botkit's own `?prefix=` and `?lease=` removed).
    `key` names the budget: one per Chatwoot (its base URL), since Chatwoot limits per client IP.
    """

    def __init__(self, redis_url: str, key: str, rate_per_minute: float, *, burst: float | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.local = TokenBucket(rate_per_minute, burst=burst, sleep=sleep)  # the fallback, and the figures
        self.key = key
        self._url = redis_url
        self._sleep = sleep
        self._interval_us = round(1_000_000 / self.local.rate_per_second)
        self._tolerance_us = round(self._interval_us * (self.local.burst - 1))
        self._script: Any = None
        self._redis: Any = None
        self._warned = False

    def _open(self) -> Any:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(self._url, socket_connect_timeout=1.0, socket_timeout=1.0)
        self._script = self._redis.register_script(lua_script("gcra"))
        return self._script

    async def acquire(self) -> None:
        from redis.exceptions import RedisError

        script = self._script or self._open()
        try:
            wait_us = await script(keys=[self.key], args=[self._interval_us, self._tolerance_us])
        except (RedisError, OSError) as exc:
            if not self._warned:
                log.warning("the shared Chatwoot rate budget on Redis is unavailable (%s); this process keeps "
                            "its own budget until Redis answers again", type(exc).__name__)
                self._warned = True
            await self.local.acquire()
            return
        self._warned = False
        if wait_us > 0:
            await self._sleep(wait_us / 1_000_000)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._script = None

    def __repr__(self) -> str:
        return f"SharedBudget(key={self.key!r}, rate_per_minute={self.local.rate_per_second * 60:g})"


def shared_budget_for(store_url: str, chatwoot_url: str, rate_per_minute: float) -> SharedBudget | None:
    """The shared budget of a Chatwoot on a Redis store (keyed by the store's prefix and Chatwoot's URL), or
    None when the store is not Redis (one process, or one SQLite file: its own bucket is the whole budget)."""
    if not store_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    from botkit.store.redis import split_options

    redis_url, options = split_options(store_url)
    return SharedBudget(redis_url, f"{options.get('prefix', 'botkit:')}chatwoot-budget:{chatwoot_url}",
                        rate_per_minute)
