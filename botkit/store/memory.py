"""The in-process store, for tests and dry runs. Same promises as the others, minus surviving a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botkit.store.base import DeadLetter, Job, QueueStats, Record, Store, wait_for_wakeup


class MemoryStore(Store):
    def __init__(self, *, dedupe_ttl: float = 24 * 3600, clock: Callable[[], float] = time.time) -> None:
        self.url = "memory://"
        self._ttl = dedupe_ttl
        self._clock = clock
        self._ids = itertools.count(1)
        self._seen: dict[str, float] = {}  # dedupe key -> expiry
        self._lanes: OrderedDict[str, deque[Job]] = OrderedDict()  # lane -> waiting jobs, oldest first
        self._ready_at: dict[str, float] = {}  # job id -> not before
        self._in_flight: dict[str, Job] = {}  # lane -> claimed job
        self._dead: dict[str, DeadLetter] = {}
        self._state: dict[str, str] = {}
        self._journal: dict[str, dict[int, str]] = {}  # event key -> step -> JSON result
        self._records: dict[str, list[tuple[float, str]]] = {}  # kind -> (at, JSON data), in arrival order
        self._wakeup = asyncio.Event()

    async def ping(self) -> None:
        return None

    async def enqueue(
        self, *, keys: Sequence[str], lane: str, event: str, body: bytes, delivery_id: str | None,
        trace: str | None = None,
    ) -> bool:
        now = self._clock()
        if any(self._seen.get(k, 0) > now for k in keys):
            return False
        for k in keys:
            self._seen[k] = now + self._ttl
        self._push(Job(str(next(self._ids)), keys[0], lane, event, body, delivery_id, 0, now, trace))
        return True

    def _push(self, job: Job) -> None:
        self._lanes.setdefault(job.lane, deque()).append(job)
        self._wakeup.set()

    async def claim(self, limit: int) -> list[Job]:
        now = self._clock()
        jobs: list[Job] = []
        for lane, waiting in self._lanes.items():
            if len(jobs) >= limit:
                break
            if lane in self._in_flight or not waiting or self._ready_at.get(waiting[0].id, 0) > now:
                continue
            self._in_flight[lane] = waiting[0]
            jobs.append(waiting[0])
        return sorted(jobs, key=lambda j: int(j.id))

    async def wait(self, timeout: float) -> None:
        await wait_for_wakeup(self._wakeup, timeout)

    def _finish(self, job: Job) -> None:
        self._in_flight.pop(job.lane, None)
        waiting = self._lanes.get(job.lane)
        if waiting and waiting[0].id == job.id:
            waiting.popleft()
            if not waiting:
                del self._lanes[job.lane]
        self._ready_at.pop(job.id, None)
        self._wakeup.set()

    async def done(self, job: Job) -> None:
        self._finish(job)
        self._journal.pop(job.key, None)

    async def retry_later(self, job: Job, delay: float, error: str) -> None:
        waiting = self._lanes[job.lane]
        retried = dataclasses.replace(job, attempts=job.attempts + 1)
        waiting[0] = retried
        self._ready_at[job.id] = self._clock() + delay
        self._in_flight.pop(job.lane, None)
        self._wakeup.set()

    async def dead_letter(self, job: Job, error: str) -> None:
        self._finish(job)
        self._dead[job.id] = DeadLetter(job.id, job.key, job.lane, job.event, job.body, job.delivery_id,
                                        job.attempts + 1, error, self._clock())

    async def release(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if self._in_flight.get(job.lane) == job:
                del self._in_flight[job.lane]
        self._wakeup.set()

    async def stats(self) -> QueueStats:
        queued = [job for waiting in self._lanes.values() for job in waiting]
        oldest = min((job.enqueued_at for job in queued), default=None)
        return QueueStats(
            waiting=len(queued) - len(self._in_flight),
            in_flight=len(self._in_flight),
            oldest_age=0.0 if oldest is None else max(0.0, self._clock() - oldest),
            dead_letters=len(self._dead),
        )

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(self._dead.values())[:limit]

    async def replay(self, dead_letter_id: str) -> bool:
        dead = self._dead.pop(dead_letter_id, None)
        if dead is None:
            return False
        self._push(Job(str(next(self._ids)), dead.key, dead.lane, dead.event, dead.body, dead.delivery_id, 0,
                       self._clock()))
        return True

    async def drop(self, dead_letter_id: str) -> bool:
        dead = self._dead.pop(dead_letter_id, None)
        if dead is not None:
            self._journal.pop(dead.key, None)
        return dead is not None

    async def queued_after(self, job: Job) -> list[tuple[str, bytes]]:
        waiting = self._lanes.get(job.lane) or ()
        return [(queued.event, queued.body) for queued in waiting if int(queued.id) > int(job.id)]

    async def get_state(self, lane: str) -> dict[str, Any]:
        return json.loads(self._state.get(lane, "{}"))  # a copy, as a real backend would give

    async def set_state(self, lane: str, state: dict[str, Any]) -> None:
        self._state[lane] = json.dumps(state)

    async def clear_state(self, lane: str) -> None:
        self._state.pop(lane, None)

    async def journal(self, key: str) -> dict[int, Any]:
        return {step: json.loads(result) for step, result in self._journal.get(key, {}).items()}

    async def record(self, key: str, step: int, result: Any) -> None:
        self._journal.setdefault(key, {})[step] = json.dumps(result)

    async def add_records(self, records: Sequence[Record], *, keep: Mapping[str, int] | None = None) -> None:
        for record in records:
            self._records.setdefault(record.kind, []).append((record.at, json.dumps(record.data)))
        for kind, count in (keep or {}).items():
            kept = self._records.get(kind, [])
            del kept[:max(0, len(kept) - count)]

    async def prune_records(self, kind: str, before: float, *, at_most: int = 1000) -> int:
        kept = self._records.get(kind, [])
        old = sorted((i for i, (at, _) in enumerate(kept) if at < before), key=lambda i: kept[i][0])
        old = old[:max(0, at_most)]
        for i in sorted(old, reverse=True):
            del kept[i]
        return len(old)

    async def records(self, kind: str, *, since: float = 0.0, until: float = float("inf"),
                      limit: int = 10_000) -> list[Record]:
        found = [(at, data) for at, data in self._records.get(kind, []) if since <= at < until]
        found.sort(key=lambda row: row[0])
        return [Record(kind, at, json.loads(data)) for at, data in found[-limit:]] if limit > 0 else []
