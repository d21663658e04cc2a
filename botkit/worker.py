"""The worker: claims queued events and runs them through their bot.

The store hands out only the head of each lane (one conversation), so one conversation's events run one at a
time in arrival order while up to `concurrency` conversations run at once. A failing event is retried with
exponential backoff; after `max_attempts` (or at once, when retrying cannot help: the one rule of
`botkit.errors.fails_for_good`) it becomes a dead letter and its bot's `on_dead_letter` runs, which hands the
conversation to a human so no customer is left waiting on a broken bot.

An event in flight when its worker died counts an attempt too (`Store.recover`, SQLite), so an event that
kills its worker ends as a dead letter instead of a crash loop. After one death the worker goes on at full
speed (a deploy's kill -9 must not slow it down). After a second death with the same events in hand, it runs
those one at a time: if it dies then, the one event in hand was the cause, and the events that were merely
beside it are not counted again (with the default BOTKIT_MAX_ATTEMPTS=3 they never run out).

Each event runs in its own task with its identity (delivery id, lane, event) bound to the logs, so every line
written while it runs carries them; `on_outcome(outcome, job, seconds)` reports `done`, `retry` or
`dead_letter` (the metrics hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from botkit import events, logs, tracing
from botkit.errors import GiveUp, fails_for_good
from botkit.runtime import ServedBot
from botkit.store.base import AnotherWorker, Finish, Job, Store, StoreUnavailable, bot_of

log = logging.getLogger("botkit.worker")

class NoSuchBot(GiveUp):
    """The event's lane names a bot this server does not serve."""


class OutOfAttempts(GiveUp):
    """An event was in flight each time its worker died (`Store.recover` counts those): a dead letter now,
    rather than a crash loop."""


class Worker:
    def __init__(
        self,
        store: Store,
        bots: Mapping[str, ServedBot],
        *,
        concurrency: int = 64,
        max_attempts: int = 3,
        backoff: float = 1.0,
        poll_interval: float = 0.5,
        on_outcome: Callable[[str, Job, float], None] | None = None,
    ) -> None:
        self.store = store
        self.bots = bots
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.poll_interval = poll_interval
        self._on_outcome = on_outcome
        self._in_flight: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def finished(self) -> None:
        """Return when the worker no longer claims: stopped, or it could not run (another worker holds the store)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="botkit-worker")

    async def stop(self, timeout: float = 10.0) -> None:
        """Take no new work; give in-flight events `timeout` seconds; hand the rest back to the store.

        Never waits much longer than `timeout`: a claim stuck on the store is cancelled too.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=timeout)
            self._task.cancel()
            self._task = None
        tasks = [task for _, task in self._in_flight.values()]
        if tasks:
            log.info("stopping: waiting up to %.1f s for %d events in flight", timeout, len(tasks))
            await asyncio.wait(tasks, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        unfinished = [(job, task) for job, task in self._in_flight.values() if not task.done()]
        for _, task in unfinished:
            task.cancel()
        if unfinished:
            # Let the cancelled handlers unwind before the store and the client close under them.
            await asyncio.wait([task for _, task in unfinished], timeout=1.0)
            log.warning("shutdown deadline passed; handing %d unfinished events back to the queue", len(unfinished))
            with contextlib.suppress(StoreUnavailable):
                await self.store.release([job for job, _ in unfinished])
        self._in_flight.clear()

    async def _run(self) -> None:
        failures = 0
        one_at_a_time = 0  # events a worker died with twice: run alone, so one that kills it is told apart
        while not self._stopping.is_set():  # claims left by a killed run must be taken back before any claim
            try:
                one_at_a_time = await self.store.recover() or 0  # a custom store may still return None
                if one_at_a_time:
                    log.warning("%d events were in flight when a worker stopped, not for the first time; "
                                "running them one at a time first", one_at_a_time)
                break
            except AnotherWorker as exc:
                log.error("this worker does not run: %s", exc)
                return
            except StoreUnavailable as exc:
                failures += 1
                log.error("could not take back the claims of a previous run (%s); retrying", exc)
                await self._sleep(min(30.0, self.poll_interval * 2**failures))
        while not self._stopping.is_set():
            free = (1 if one_at_a_time > 0 else self.concurrency) - len(self._in_flight)
            try:
                jobs = await self.store.claim(free) if free > 0 else []
                one_at_a_time = max(0, one_at_a_time - len(jobs))
                failures = 0
            except StoreUnavailable as exc:
                failures += 1
                delay = min(30.0, self.poll_interval * 2**failures)
                log.error("the store is unavailable (%s); retrying in %.1f s", exc, delay)
                await self._sleep(delay)
                continue
            for job in jobs:
                task = asyncio.create_task(self._process(job), name=f"botkit-job-{job.id}")
                self._in_flight[job.id] = (job, task)
                task.add_done_callback(lambda _, job_id=job.id: self._in_flight.pop(job_id, None))
            # Claim again when an event arrives or a lane frees up (the store wakes us), or after the poll.
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        waiter = asyncio.create_task(self.store.wait(self.poll_interval))
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stop):
            task.cancel()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _process(self, job: Job) -> None:
        extra = {"delivery_id": job.delivery_id, "lane": job.lane, "event": job.event}
        # the webhook's trace, stored with the event, goes on here (botkit/tracing.py)
        with tracing.continued(job.trace), logs.bind(**extra), tracing.span("botkit.event", **extra):
            await self._run_job(job, extra)

    async def _run_job(self, job: Job, extra: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        bot = self.bots.get(bot_of(job.lane))
        log.debug("handling (attempt %d)", job.attempts + 1)
        try:
            if bot is None:
                raise NoSuchBot(f"no bot named {bot_of(job.lane)!r} is served here")
            if job.attempts >= self.max_attempts:  # failures never get here: a worker died with it in hand
                raise OutOfAttempts(f"its worker stopped (killed or crashed) while handling it, and its "
                                    f"{job.attempts} attempts are used up; it is not run again")
            event = events.parse_json(job.body, job.delivery_id)
            finish = await self._handle(bot, event, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = await self._failed(job, bot, exc, extra)
        else:
            # the turn's last writes go with its done, in one transaction where the store can
            step = self.store.finish(job, finish) if isinstance(finish, Finish) else self.store.done(job)
            await self._settle(step, job)
            outcome = "done"
        seconds = loop.time() - started
        log.debug("%s in %.1f ms", outcome, seconds * 1000)
        if self._on_outcome is not None:
            self._on_outcome(outcome, job, seconds)

    async def _handle(self, bot: ServedBot, event: events.Event, job: Job) -> Finish | None:
        """Run the bot; with a shared store, renew the claim every lease/3 so a live worker never loses it."""
        if not self.store.lease:
            return await bot.handle(event, job)
        keeper = asyncio.create_task(self._keep_lease(job, self.store.lease / 3))
        try:
            return await bot.handle(event, job)
        finally:
            keeper.cancel()

    async def _keep_lease(self, job: Job, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                lost = await self.store.heartbeat([job])
            except StoreUnavailable as exc:  # keep handling: the next beat may get through within the lease
                log.warning("could not renew the claim of an event (%s)", exc, extra={"delivery_id": job.delivery_id})
                continue
            if lost:
                log.warning("an event's lease ran out and another worker took it over; it may run twice",
                            extra={"delivery_id": job.delivery_id, "lane": job.lane})
                return

    async def _failed(self, job: Job, bot: ServedBot | None, exc: Exception, extra: dict[str, Any]) -> str:
        """Schedule a retry or make a dead letter; returns which ("retry" or "dead_letter")."""
        ran = not isinstance(exc, OutOfAttempts)  # an event out of attempts was not run this time
        attempt = job.attempts + 1 if ran else job.attempts
        reason = _describe(exc)
        if attempt < self.max_attempts and not fails_for_good(exc):
            delay = self.backoff * 2 ** job.attempts * random.uniform(0.5, 1.0)
            log.warning("event failed (attempt %d of %d, retrying in %.1f s): %s",
                        attempt, self.max_attempts, delay, reason, extra=extra)
            await self._settle(self.store.retry_later(job, delay, reason), job)
            return "retry"
        unreadable = isinstance(exc, events.MalformedEvent)  # its line says which field; no conversation to hand over
        log.error("event failed for good after %d attempts; it is now a dead letter: %s", attempt, reason,
                  extra=extra, exc_info=exc if ran and not unreadable else None)
        await self._settle(self.store.dead_letter(job, reason), job)
        if bot is not None and not unreadable:
            try:
                await bot.on_dead_letter(events.parse_json(job.body, job.delivery_id), job, exc)
            except Exception as fallback_exc:  # the fallback itself failed: the dead letter stays for replay
                log.error("the dead-letter fallback failed too: %s", _describe(fallback_exc), extra=extra)
        return "dead_letter"

    async def _settle(self, step: Any, job: Job) -> None:
        try:
            await step
        except StoreUnavailable as exc:
            # The claim stays in the store: a single-process store takes it back at the next start, a shared
            # one after its lease, so the event runs again rather than being lost.
            log.error("could not record the outcome of an event (%s); it will run again", exc,
                      extra={"delivery_id": job.delivery_id})


def _describe(exc: BaseException) -> str:
    """A one-line description safe for logs and dead letters: the type and the message, cut short."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
