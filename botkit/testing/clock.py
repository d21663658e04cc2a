"""A clock a test sets and moves: `Bot(..., clock=clock)`, then `clock.set(...)` or `clock.advance(hours=60)`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Callable like the bot's clock: returns the aware datetime it was set to."""

    def __init__(self, now: datetime) -> None:
        self.set(now)

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("the clock needs an aware datetime, e.g. datetime(..., tzinfo=ZoneInfo('Europe/Paris'))")
        self.now = now.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        """Move forward by timedelta(**delta), e.g. advance(hours=60)."""
        self.now += timedelta(**delta)
