"""The store: dedupe keys, the event queue, dead letters and per-conversation state, behind one interface.

Backends: `memory` (tests), `sqlite` (the embedded default) and `redis` (many hosts). Every backend keeps
the same promises, checked by one parametrised test suite:

- `enqueue` is atomic and durable: when it returns True the event is queued and its dedupe keys are
  remembered (for `dedupe_ttl` seconds); when any key was already known it queues nothing and returns False.
- A *lane* is one conversation. `claim` hands out only the oldest waiting event of each lane, and only while
  nothing of that lane is in flight, so one conversation's events run one at a time in arrival order while
  different conversations run concurrently.
- A claimed job ends in exactly one of `done` (or `finish`: done, with the turn's last writes in the same
  transaction where the backend can), `retry_later` (stays at the head of its lane until ready),
  `dead_letter`, or `release` (handed back untouched, on shutdown). A claim left by a dead process is
  handed out again: by `open` for a single-process store, after a lease for a shared one.
- `add_records` appends what the bot did (`Record`: the timeline of a delivery, an outcome of a turn) and
  `records` reads them back by kind and time, oldest first; `keep` bounds how many of a kind stay, and
  `prune_records` deletes those older than a time, a bounded batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LANE_SEPARATOR = "/"


def lane_for(bot_name: str, conversation_lane: str) -> str:
    """The store lane of one bot's view of one conversation: `<bot>/<account>:<conversation>`."""
    return f"{bot_name}{LANE_SEPARATOR}{conversation_lane}"


def bot_of(lane: str) -> str:
    """The bot whose lane this is (the inverse of `lane_for`)."""
    return lane.split(LANE_SEPARATOR, 1)[0]


@dataclass(frozen=True, slots=True)
class Job:
    """One queued delivery, as a worker sees it."""

    id: str  # the store's id for this queue entry
    key: str  # the event's identity (its dedupe key): stable across retries, reclaims and replays
    lane: str  # lane_for(bot, "<account>:<conversation>"): events of one lane never run concurrently
    event: str  # Chatwoot's event name
    body: bytes  # the raw body, exactly as received
    delivery_id: str | None  # X-Chatwoot-Delivery, for logs
    attempts: int  # attempts already made before this claim
    enqueued_at: float  # unix time the receiver accepted it
    trace: str | None = None  # the webhook span's W3C traceparent, when tracing is on (botkit/tracing.py)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    key: str
    lane: str
    event: str
    body: bytes
    delivery_id: str | None
    attempts: int
    error: str
    failed_at: float


@dataclass(frozen=True, slots=True)
class Record:
    """What the bot did, kept for the console and `botkit report`: `kind` is "delivery" (one delivery's
    timeline, botkit/timeline.py) or "outcome" (a fact about a conversation, botkit/outcomes.py)."""

    kind: str
    at: float  # unix time
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finish:
    """What a turn writes last, saved with its event's `done` (`Store.finish`): the conversation's `state`
    (under the job's lane; None when it did not change) and the delivery's `records` (`add_records`, with
    its `keep`). Writing them with the done makes the turn's end one transaction: the state a turn leaves
    is never saved without its event being finished, and a turn makes two store writes instead of four."""

    state: dict[str, Any] | None = None
    records: Sequence[Record] = ()
    keep: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    waiting: int  # queued, not in flight
    in_flight: int
    oldest_age: float  # seconds the oldest queued event has waited (0 when empty)
    dead_letters: int


async def wait_for_wakeup(wakeup: asyncio.Event, timeout: float) -> None:
    """`Store.wait` for a single-process store: until `wakeup` is set (then cleared) or `timeout` passes."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wakeup.wait(), timeout)
    wakeup.clear()


class AnotherWorker(Exception):
    """A single-worker store (SQLite) already has a worker in another process; this one must not run."""


class StoreUnavailable(Exception):
    """The store cannot take or give work right now (the receiver answers 500 so Chatwoot retries)."""


class Store(ABC):
    """See the module docstring for the promises every backend keeps."""

    url: str = ""
    lease: float | None = None  # seconds a claim is held without a heartbeat (shared stores); None: until open

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, create what is missing, and take back claims a previous run left (single-process stores)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and disconnect."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    # ingest -------------------------------------------------------------------------------------------
    @abstractmethod
    async def enqueue(
        self, *, keys: Sequence[str], lane: str, event: str, body: bytes, delivery_id: str | None,
        trace: str | None = None,
    ) -> bool:
        """Queue the event unless any of `keys` was seen within the dedupe TTL. `keys[0]` is its identity.
        `trace` (a traceparent) comes back as the claimed job's `trace`."""

    # worker -------------------------------------------------------------------------------------------
    @abstractmethod
    async def claim(self, limit: int) -> list[Job]:
        """Up to `limit` ready jobs, each the head of a lane with nothing in flight."""

    @abstractmethod
    async def wait(self, timeout: float) -> None:
        """Return when new work may be claimable, or after `timeout` seconds."""

    @abstractmethod
    async def done(self, job: Job) -> None: ...

    async def finish(self, job: Job, finish: Finish) -> None:
        """`done`, with the turn's last writes (`Finish`). SQLite does it in one transaction, Redis in one
        MULTI; this default (the memory store's, whose writes never wait) writes the state, then the
        records, then the done, so a crash between them leaves the event to run again (its journal skips
        what it already did)."""
        if finish.state is not None:
            await self.set_state(job.lane, finish.state)
        if finish.records:
            await self.add_records(finish.records, keep=finish.keep)
        await self.done(job)

    @abstractmethod
    async def retry_later(self, job: Job, delay: float, error: str) -> None:
        """Count an attempt; the job stays at the head of its lane and is claimable after `delay` seconds."""

    @abstractmethod
    async def dead_letter(self, job: Job, error: str) -> None:
        """Move the job out of the queue into the dead letters; its lane goes on."""

    @abstractmethod
    async def release(self, jobs: Sequence[Job]) -> None:
        """Hand claimed jobs back untouched (no attempt counted), e.g. on shutdown."""

    async def recover(self) -> int:
        """Called by the worker when it starts: take back claims a killed previous run left, counting an
        attempt for each (single-process stores; shared stores take claims back after their lease instead).

        Returns how many of them had been tried before (a second death with them in hand, or a failure and a
        death): the worker runs that many one at a time, to tell an event that kills it from its neighbours.
        """
        return 0

    async def heartbeat(self, jobs: Sequence[Job]) -> list[Job]:
        """Keep the claims of jobs whose handlers still run; returns the jobs no longer held.

        Only a shared store with a lease (`lease` seconds) needs it; single-process stores hold claims until
        the next `open`, so the default does nothing.
        """
        return []

    async def queued_after(self, job: Job) -> list[tuple[str, bytes]] | None:
        """The events of the job's lane queued after it, oldest first, as (event name, body): did the contact
        write again while it runs? (botkit/bursts.py) Did a human take the conversation? (botkit/turn.py)
        A store that cannot tell says None: each message is then answered on its own, and an event that
        waited GETs its conversation before acting."""
        return None

    @abstractmethod
    async def stats(self) -> QueueStats: ...

    # dead letters -------------------------------------------------------------------------------------
    @abstractmethod
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    @abstractmethod
    async def replay(self, dead_letter_id: str) -> bool:
        """Queue a dead letter again, bypassing dedupe on purpose. False if there is no such dead letter."""

    @abstractmethod
    async def drop(self, dead_letter_id: str) -> bool: ...

    # per-conversation state and the action journal ----------------------------------------------------
    @abstractmethod
    async def get_state(self, lane: str) -> dict[str, Any]: ...

    @abstractmethod
    async def set_state(self, lane: str, state: dict[str, Any]) -> None: ...

    @abstractmethod
    async def clear_state(self, lane: str) -> None: ...

    @abstractmethod
    async def journal(self, key: str) -> dict[int, Any]:
        """The results of the actions an event already applied, by step number (see Context)."""

    @abstractmethod
    async def record(self, key: str, step: int, result: Any) -> None:
        """Remember that step `step` of event `key` succeeded, so a retry of the event skips it."""

    # what the bot did: timelines and outcomes ---------------------------------------------------------
    @abstractmethod
    async def add_records(self, records: Sequence[Record], *, keep: Mapping[str, int] | None = None) -> None:
        """Append `records` in one write; then keep the newest `keep[kind]` records of each kind named (a
        backend may trim in batches: at most `keep + keep // 10` stay)."""

    async def prune_records(self, kind: str, before: float, *, at_most: int = 1000) -> int:
        """Delete the oldest records of `kind` with `at < before`, at most `at_most` of them (one short write);
        returns how many went. The three backends do; this default, for a store written before retention
        existed, keeps everything (returns 0) rather than failing to start."""
        return 0

    @abstractmethod
    async def records(self, kind: str, *, since: float = 0.0, until: float = float("inf"),
                      limit: int = 10_000) -> list[Record]:
        """Records of `kind` with `since <= at < until`, oldest first, at most the newest `limit` of them."""
