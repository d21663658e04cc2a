"""The store's promises (botkit/store/base.py), checked against every backend, then each backend's own.

Every backend gets the same injected clock, so not-before times, ages and failure times are exact. Only what
runs on Redis's own clock (the dedupe TTL and the lease) needs real time to pass: those tests sleep past a
short TTL or lease, and assert only what must hold once that much time has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botkit.store.base import AnotherWorker, Finish, Job, QueueStats, Store, StoreUnavailable
from botkit.store.memory import MemoryStore
from botkit.store.sqlite import SQLiteStore
from botkit.testing.redis_server import RedisServer, free_port, skip_unless_redis_server

BACKENDS = ["memory", "sqlite", "redis"]
T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeStore = Callable[..., Awaitable[Store]]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    skip_unless_redis_server()
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_server").url if backend == "redis" else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_store(backend: str, clock: FakeClock, tmp_path: Path, redis_url: str | None) -> AsyncIterator[MakeStore]:
    """Open a store of this test's backend; every store made here shares one database (file, or Redis prefix)."""
    opened: list[Store] = []
    prefix = f"test-{uuid.uuid4().hex[:8]}:"  # one Redis serves the module: each test has its own keys

    async def make(**options: Any) -> Store:
        options.setdefault("clock", clock)
        store: Store
        if backend == "memory":
            store = MemoryStore(**options)
        elif backend == "sqlite":
            store = SQLiteStore(str(tmp_path / "store.db"), **options)
        else:
            from botkit.store.redis import RedisStore

            assert redis_url is not None
            store = RedisStore(redis_url, prefix=prefix, **options)
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> Store:
    return await make_store()


async def put(store: Store, key: str, lane: str = "1:10", *, extra_keys: tuple[str, ...] = (),
              delivery_id: str | None = None) -> bool:
    return await store.enqueue(keys=[key, *extra_keys], lane=lane, event="message_created",
                               body=f'{{"key": "{key}"}}'.encode(), delivery_id=delivery_id)


def count_commits(store: SQLiteStore) -> Callable[[], int]:
    """Count the SQLite store's transactions from now on; returns what reads the count."""
    count = 0
    flush = store._flush

    def counting_flush() -> None:
        nonlocal count
        count += 1
        flush()

    store._flush = counting_flush  # type: ignore[method-assign]
    return lambda: count


def keys(jobs: list[Job]) -> set[str]:
    return {job.key for job in jobs}


# enqueue and dedupe ---------------------------------------------------------------------------------------
async def test_enqueued_event_is_claimed_as_it_was_received(store: Store, clock: FakeClock) -> None:
    body = b'{"content": "hello \xc3\xa9", "raw": "\x00\xff"}'
    assert await store.enqueue(keys=["k1", "alt1"], lane="3:77", event="message_created", body=body,
                               delivery_id="d-1")
    [job] = await store.claim(10)
    assert (job.key, job.lane, job.event, job.body, job.delivery_id) == ("k1", "3:77", "message_created", body, "d-1")
    assert job.attempts == 0
    assert job.enqueued_at == pytest.approx(T0)
    assert await put(store, "k2", "3:78")  # no delivery id
    [job2] = await store.claim(10)
    assert job2.delivery_id is None and job2.id != job.id


async def test_any_known_key_refuses_the_event_and_remembers_nothing(store: Store) -> None:
    assert await put(store, "a", extra_keys=("shared",))
    assert not await put(store, "a")  # its identity again
    assert not await put(store, "b", "1:11", extra_keys=("shared",))  # a new identity, but one known key
    assert (await store.stats()).waiting == 1
    assert keys(await store.claim(10)) == {"a"}
    assert await put(store, "b", "1:11")  # the refused event's keys were not set
    assert keys(await store.claim(10)) == {"b"}


async def test_concurrent_duplicates_are_queued_once(make_store: MakeStore, backend: str) -> None:
    stores = [await make_store()]
    if backend == "redis":
        stores.append(await make_store())  # two receivers on two hosts
    results = await asyncio.gather(*(put(stores[i % len(stores)], "same", extra_keys=(f"alt{i}",))
                                     for i in range(20)))
    assert sum(results) == 1
    assert (await stores[0].stats()).waiting == 1


async def test_dedupe_keys_expire_after_the_ttl(make_store: MakeStore, clock: FakeClock, backend: str) -> None:
    store = await make_store(dedupe_ttl=1.0)
    assert await put(store, "a")
    assert not await put(store, "a")
    clock.advance(1.5)
    if backend == "redis":
        await asyncio.sleep(1.5)  # Redis expires keys on its own clock
    assert await put(store, "a")
    assert (await store.stats()).waiting == 2


# lanes: heads only, one at a time, arrival order, lanes in parallel ---------------------------------------
async def test_claim_gives_only_lane_heads_and_never_two_of_one_lane(store: Store) -> None:
    for key, lane in [("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A"), ("c1", "C")]:
        assert await put(store, key, lane)
    first = await store.claim(10)
    assert keys(first) == {"a1", "b1", "c1"}
    assert len({job.lane for job in first}) == 3
    assert await store.claim(10) == []  # every lane has its head in flight
    assert (await store.stats()).in_flight == 3


async def test_claim_respects_its_limit_and_the_rest_stays_claimable(store: Store) -> None:
    for lane in "ABC":
        assert await put(store, f"{lane}1", lane)
    two = await store.claim(2)
    assert len(two) == 2 and len({job.lane for job in two}) == 2
    rest = await store.claim(2)
    assert len(rest) == 1 and rest[0].lane not in {job.lane for job in two}
    assert await store.claim(0) == []


async def test_each_lane_runs_in_arrival_order_while_lanes_interleave(store: Store) -> None:
    sent = {"A": ["a1", "a2", "a3", "a4"], "B": ["b1", "b2"], "C": ["c1", "c2", "c3"]}
    for i in range(4):
        for lane, lane_keys in sent.items():
            if i < len(lane_keys):
                assert await put(store, lane_keys[i], lane)
    ran: dict[str, list[str]] = {lane: [] for lane in sent}
    rounds = 0
    while jobs := await store.claim(10):
        rounds += 1
        assert len({job.lane for job in jobs}) == len(jobs)
        for job in jobs:
            ran[job.lane].append(job.key)
            await store.done(job)
    assert ran == sent
    assert rounds == 4  # each round ran every lane that had work: lanes go in parallel


async def test_queued_after_shows_the_events_behind_a_job_in_its_lane_only(store: Store) -> None:
    assert await put(store, "a1", "A")
    assert await put(store, "b1", "B")
    [a1, b1] = sorted(await store.claim(10), key=lambda job: job.lane)
    assert await store.queued_after(a1) == []
    assert await put(store, "a2", "A")
    assert await store.enqueue(keys=["a3"], lane="A", event="conversation_updated", body=b"{}", delivery_id=None)
    assert await store.queued_after(a1) == [("message_created", b'{"key": "a2"}'), ("conversation_updated", b"{}")]
    assert await store.queued_after(b1) == []
    await store.done(a1)
    [a2] = [job for job in await store.claim(10) if job.lane == "A"]
    assert await store.queued_after(a2) == [("conversation_updated", b"{}")]


async def test_done_frees_the_lane_for_its_next_event(store: Store) -> None:
    assert await put(store, "a1", "A")
    assert await put(store, "a2", "A")
    [a1] = await store.claim(10)
    assert await store.claim(10) == []
    await store.done(a1)
    assert keys(await store.claim(10)) == {"a2"}


async def test_finish_saves_the_state_and_records_with_the_done(store: Store) -> None:
    from botkit.store.base import Finish, Record

    assert await put(store, "a1", "A")
    assert await put(store, "a2", "A")
    assert await put(store, "b1", "B")
    a1, b1 = sorted(await store.claim(10), key=lambda j: j.key)
    await store.set_state("B", {"kept": True})
    await store.record("a1", 0, {"id": 7})
    await asyncio.gather(  # two finishes asked for in one turn of the loop (one transaction on SQLite)
        store.finish(a1, Finish(state={"menu": [1, 2]}, records=[Record("outcome", T0, {"n": 1})],
                                keep={"delivery": 5})),
        store.finish(b1, Finish(records=[Record("delivery", T0, {"d": 1})])))
    assert await store.get_state("A") == {"menu": [1, 2]}
    assert await store.get_state("B") == {"kept": True}  # no state in its Finish: left as it was
    assert [r.data for r in await store.records("outcome")] == [{"n": 1}]
    assert [r.data for r in await store.records("delivery")] == [{"d": 1}]
    assert await store.journal("a1") == {}  # done clears the journal
    assert keys(await store.claim(10)) == {"a2"}  # the lane goes on
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight) == (0, 1)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_failed_finish_leaves_the_event_and_its_state_as_they_were(make_store: MakeStore) -> None:
    """The state is written in the done's transaction: when that fails, neither is saved, and a read of the
    state (which skips the write batch) does not see the unsaved one."""
    from botkit.store.base import Finish

    store = await make_store()
    assert await put(store, "a1", "A")
    await store.recover()
    await store.set_state("A", {"step": 1})
    [job] = await store.claim(10)
    holder = sqlite3.connect(store.path, timeout=0)  # another process holds the write lock past the limit
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("botkit.store.sqlite._LOCKED_FOR", 0.05)
            with pytest.raises(StoreUnavailable):
                await store.finish(job, Finish(state={"step": 2}))
            assert await store.get_state("A") == {"step": 1}
    finally:
        holder.rollback()
        holder.close()
    assert (await store.stats()).in_flight == 1  # still claimed: it runs again after a restart


async def test_an_emptied_lane_takes_new_events(store: Store) -> None:
    assert await put(store, "a1", "A")
    [a1] = await store.claim(10)
    await store.done(a1)
    assert await store.claim(10) == []
    assert await put(store, "a2", "A")
    assert keys(await store.claim(10)) == {"a2"}


# retry_later, dead_letter, release ------------------------------------------------------------------------
async def test_retry_later_counts_an_attempt_and_keeps_the_head_until_the_delay_passes(
    store: Store, clock: FakeClock
) -> None:
    assert await put(store, "a1", "A")
    assert await put(store, "a2", "A")
    [a1] = await store.claim(10)
    await store.retry_later(a1, 10.0, "handler failed")
    assert await put(store, "b1", "B")
    assert keys(await store.claim(10)) == {"b1"}  # a2 waits behind its retrying head; other lanes go on
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight) == (2, 1)
    clock.advance(9.0)
    assert await store.claim(10) == []
    clock.advance(1.0)
    [again] = await store.claim(10)
    assert (again.id, again.key, again.body, again.attempts) == (a1.id, "a1", a1.body, 1)
    await store.retry_later(again, 0.0, "failed again")
    [third] = await store.claim(10)
    assert (third.key, third.attempts) == ("a1", 2)
    await store.done(third)
    assert keys(await store.claim(10)) == {"a2"}


async def test_dead_letter_moves_the_job_out_and_the_lane_goes_on(store: Store, clock: FakeClock) -> None:
    assert await put(store, "a1", "A", delivery_id="d-1")
    assert await put(store, "a2", "A")
    [a1] = await store.claim(10)
    await store.retry_later(a1, 0.0, "first failure")
    [a1] = await store.claim(10)
    clock.advance(3.0)
    await store.dead_letter(a1, "second failure")
    assert keys(await store.claim(10)) == {"a2"}
    [dead] = await store.dead_letters()
    assert (dead.key, dead.lane, dead.event, dead.body, dead.delivery_id) == (
        "a1", "A", "message_created", a1.body, "d-1")
    assert (dead.attempts, dead.error) == (2, "second failure")
    assert dead.failed_at == pytest.approx(T0 + 3.0)
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight, stats.dead_letters) == (0, 1, 1)


async def test_release_hands_back_without_counting_an_attempt(store: Store) -> None:
    assert await put(store, "a1", "A")
    assert await put(store, "b1", "B")
    jobs = await store.claim(10)
    await store.release(jobs)
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight) == (2, 0)
    again = await store.claim(10)
    assert sorted((j.id, j.key, j.attempts) for j in again) == sorted((j.id, j.key, 0) for j in jobs)


# stats ------------------------------------------------------------------------------------------------------
async def test_stats_count_waiting_in_flight_age_and_dead_letters(store: Store, clock: FakeClock) -> None:
    assert await store.stats() == QueueStats(waiting=0, in_flight=0, oldest_age=0.0, dead_letters=0)
    assert await put(store, "a1", "A")
    clock.advance(2.0)
    assert await put(store, "a2", "A")
    assert await put(store, "b1", "B")
    clock.advance(5.0)
    [a1] = await store.claim(1)
    assert a1.key == "a1"
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight, stats.dead_letters) == (2, 1, 0)
    assert stats.oldest_age == pytest.approx(7.0)
    await store.dead_letter(a1, "boom")
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight, stats.dead_letters) == (2, 0, 1)
    assert stats.oldest_age == pytest.approx(5.0)


# dead letters: list, replay, drop ---------------------------------------------------------------------------
async def dead_letter_all(store: Store, *pairs: tuple[str, str]) -> None:
    for key, lane in pairs:
        assert await put(store, key, lane)
    for job in await store.claim(10):
        await store.dead_letter(job, f"failed {job.key}")


async def test_dead_letters_are_listed_oldest_first_up_to_the_limit(store: Store) -> None:
    await dead_letter_all(store, ("a1", "A"))
    await dead_letter_all(store, ("b1", "B"))
    await dead_letter_all(store, ("c1", "C"))
    assert [d.key for d in await store.dead_letters()] == ["a1", "b1", "c1"]
    assert [d.key for d in await store.dead_letters(limit=2)] == ["a1", "b1"]
    assert len({d.id for d in await store.dead_letters()}) == 3


async def test_replay_requeues_a_dead_letter_bypassing_dedupe(store: Store) -> None:
    await dead_letter_all(store, ("a1", "A"))
    [dead] = await store.dead_letters()
    assert not await put(store, "a1", "A")  # still a duplicate for the receiver
    assert await store.replay(dead.id)
    assert await store.dead_letters() == []
    [job] = await store.claim(10)
    assert (job.key, job.lane, job.body, job.attempts) == ("a1", "A", dead.body, 0)
    assert not await store.replay(dead.id)  # already replayed
    assert not await store.replay("999999")
    assert not await store.replay("not-an-id")
    assert (await store.stats()).dead_letters == 0


async def test_drop_deletes_a_dead_letter(store: Store) -> None:
    await dead_letter_all(store, ("a1", "A"), ("b1", "B"))
    dead = {d.key: d for d in await store.dead_letters()}
    assert await store.drop(dead["a1"].id)
    assert [d.key for d in await store.dead_letters()] == ["b1"]
    assert not await store.drop(dead["a1"].id)
    assert not await store.drop("999999")
    assert not await store.drop("not-an-id")
    assert (await store.stats()).dead_letters == 1
    assert await store.claim(10) == []  # dropping queues nothing


# per-conversation state ---------------------------------------------------------------------------------
async def test_state_is_kept_per_lane_as_copies(store: Store) -> None:
    assert await store.get_state("A") == {}
    given = {"step": "ask_email", "tries": [1]}
    await store.set_state("A", given)
    await store.set_state("B", {"other": True})
    given["tries"].append(2)  # changing what was given changes nothing stored
    got = await store.get_state("A")
    assert got == {"step": "ask_email", "tries": [1]}
    got["step"] = "changed"  # nor does changing what was read
    assert await store.get_state("A") == {"step": "ask_email", "tries": [1]}
    await store.set_state("A", {"step": "done"})
    assert await store.get_state("A") == {"step": "done"}
    await store.clear_state("A")
    assert await store.get_state("A") == {}
    assert await store.get_state("B") == {"other": True}


# the action journal ---------------------------------------------------------------------------------------
async def test_the_trace_context_comes_back_with_the_job_and_its_retry(store: Store, clock: FakeClock) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert await store.enqueue(keys=["t"], lane="1:1", event="message_created", body=b"{}", delivery_id=None,
                               trace=parent)
    assert await put(store, "u", "1:2")  # no trace given
    jobs = {job.key: job for job in await store.claim(10)}
    assert {key: job.trace for key, job in jobs.items()} == {"t": parent, "u": None}
    await store.retry_later(jobs["t"], 1.0, "again")
    clock.advance(2)
    [again] = await store.claim(10)
    assert (again.key, again.trace) == ("t", parent)


async def test_sqlite_file_from_before_traces_gets_the_column(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE queue DROP COLUMN trace")
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.enqueue(keys=["k"], lane="1:1", event="message_created", body=b"{}", delivery_id=None,
                                   trace="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        [job] = await store.claim(1)
        assert job.trace == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    finally:
        await store.close()


async def test_journal_records_steps_and_done_clears_it(store: Store) -> None:
    assert await put(store, "a1", "A")
    [job] = await store.claim(10)
    assert await store.journal("a1") == {}
    await store.record("a1", 0, {"message_id": 5})
    await store.record("a1", 1, None)
    await store.record("a1", 1, "replaced")
    await store.record("other", 0, 1)
    assert await store.journal("a1") == {0: {"message_id": 5}, 1: "replaced"}
    await store.retry_later(job, 0.0, "failed after step 1")
    assert await store.journal("a1") == {0: {"message_id": 5}, 1: "replaced"}  # a retry skips what was done
    [job] = await store.claim(10)
    await store.done(job)
    assert await store.journal("a1") == {}
    assert await store.journal("other") == {0: 1}


async def test_journal_survives_dead_letter_and_replay_until_done_or_drop(store: Store) -> None:
    assert await put(store, "a1", "A")
    assert await put(store, "b1", "B")
    for job in await store.claim(10):
        await store.record(job.key, 0, "sent")
        await store.dead_letter(job, "failed after step 0")
    dead = {d.key: d for d in await store.dead_letters()}
    assert await store.journal("a1") == {0: "sent"}
    assert await store.replay(dead["a1"].id)
    assert await store.journal("a1") == {0: "sent"}
    [job] = await store.claim(10)
    await store.done(job)
    assert await store.journal("a1") == {}
    assert await store.drop(dead["b1"].id)
    assert await store.journal("b1") == {}


# wait -------------------------------------------------------------------------------------------------------
async def test_wait_returns_when_an_event_arrives(store: Store) -> None:
    await store.wait(0)  # settle: after this, a wait sees anything enqueued
    waiter = asyncio.create_task(store.wait(60))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    assert await put(store, "a1")
    await asyncio.wait_for(waiter, 10)  # far below its own 60 s timeout: it was woken


async def test_wait_returns_after_its_timeout_with_no_work(store: Store) -> None:
    await store.wait(0)
    await asyncio.wait_for(store.wait(0.05), 10)


# SQLite -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_survives_reopen_and_takes_back_claims_of_the_previous_run(make_store: MakeStore) -> None:
    first = await make_store()
    assert await put(first, "a1", "A")
    assert await put(first, "a2", "A")
    assert await put(first, "b1", "B")
    claimed = await first.claim(10)
    assert keys(claimed) == {"a1", "b1"}
    await first.set_state("A", {"x": 1})
    await first.record("a1", 0, "sent")
    await first.close()  # the "crash": claims never finished

    second = await make_store()
    assert not await put(second, "a1", "A")  # dedupe keys survived
    assert await second.claim(10) == []  # another process (the dead-letter CLI) touches no claim...
    # ...until a worker starts and takes them back, each with an attempt counted; none was tried before
    assert await second.recover() == 0
    again = await second.claim(10)
    assert sorted((j.id, j.key, j.attempts) for j in again) == sorted((j.id, j.key, 1) for j in claimed)
    assert await second.get_state("A") == {"x": 1}
    assert await second.journal("a1") == {0: "sent"}
    stats = await second.stats()
    assert (stats.waiting, stats.in_flight) == (1, 2)
    await second.close()  # a second death with the same two in hand: now they are suspects
    third = await make_store()
    assert await third.recover() == 2


# Redis ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_claim_of_a_dead_worker_is_taken_over_after_the_lease(make_store: MakeStore) -> None:
    lease = 1.0
    survivor = await make_store(lease=lease, clock=time.time)
    assert await put(survivor, "a1", "A")
    assert await put(survivor, "a2", "A")
    assert await put(survivor, "b1", "B")
    doomed = await make_store(lease=lease, clock=time.time)
    [held] = await doomed.claim(1)
    assert held.key == "a1"
    [b1] = await survivor.claim(10)
    assert b1.key == "b1"  # lane A is held: neither a1 nor a2
    await survivor.done(b1)
    await asyncio.sleep(lease + 0.2)
    [taken] = await survivor.claim(10)
    assert (taken.id, taken.key, taken.attempts) == (held.id, "a1", 0)

    # the doomed worker wakes up late: it has lost the job and can no longer hand it back, nor finish it
    # (a late finish would free lane A while the survivor still runs a1, letting a2 overtake it)
    assert await doomed.heartbeat([held]) == [held]
    await doomed.retry_later(held, 0.0, "late")
    assert await survivor.claim(10) == []
    await doomed.done(held)
    await doomed.finish(held, Finish(state={"late": True}))
    await doomed.dead_letter(held, "late")
    assert await survivor.claim(10) == []
    assert (await survivor.stats()).dead_letters == 0
    await survivor.done(taken)
    assert keys(await survivor.claim(10)) == {"a2"}


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_heartbeat_restarts_the_lease(make_store: MakeStore) -> None:
    lease = 1.0
    worker = await make_store(lease=lease, clock=time.time)
    other = await make_store(lease=lease, clock=time.time)
    assert await put(worker, "a1", "A")
    [job] = await worker.claim(1)
    await asyncio.sleep(lease + 0.2)  # without a heartbeat, `other` could take it now
    assert await worker.heartbeat([job]) == []
    assert await other.claim(10) == []
    await worker.done(job)
    assert await worker.heartbeat([job]) == [job]


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_lane_held_by_a_live_worker_is_skipped_even_when_clocks_disagree(
    make_store: MakeStore, clock: FakeClock
) -> None:
    worker = await make_store()
    other = await make_store()
    assert await put(worker, "a1", "A")
    assert await put(worker, "a2", "A")
    [a1] = await worker.claim(1)
    assert a1.key == "a1"
    clock.advance(60)
    assert await put(worker, "b1", "B")  # lane B is due after lane A's lease check, so A is looked at first
    clock.advance(3600)  # this host's clock says the lease ran out; Redis's clock says the holder is alive
    assert keys(await other.claim(1)) == {"b1"}
    assert await other.claim(10) == []


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_wait_wakes_when_a_retry_comes_due(make_store: MakeStore) -> None:
    worker = await make_store()
    assert await put(worker, "a1", "A")
    [job] = await worker.claim(1)
    await worker.retry_later(job, 0.3, "try again soon")
    waiter = await make_store()  # subscribes in its first wait, after the retry's own wake-up message
    await asyncio.wait_for(waiter.wait(60), 10)  # woken by the due time, not its 60 s timeout


async def test_redis_keeps_acked_events_across_a_server_restart(tmp_path: Path) -> None:
    skip_unless_redis_server()
    from botkit.store.redis import RedisStore

    with RedisServer(tmp_path / "redis") as server:
        store = RedisStore(server.url)
        await store.open()
        await dead_letter_all(store, ("c1", "C"))
        assert await put(store, "a1", "A")
        assert await put(store, "a2", "A")
        assert await put(store, "b1", "B")
        await store.set_state("A", {"x": 1})
        await store.close()

        server.restart()

        store = RedisStore(server.url)
        await store.open()
        try:
            assert not await put(store, "a1", "A")  # dedupe keys are back
            assert keys(await store.claim(10)) == {"a1", "b1"}
            assert [d.key for d in await store.dead_letters()] == ["c1"]
            assert await store.get_state("A") == {"x": 1}
            assert await put(store, "d1", "D")  # ids go on from where they were
        finally:
            await store.close()


async def test_redis_prefixes_keep_bots_apart(redis_server: RedisServer) -> None:
    from botkit.store.redis import RedisStore

    one = RedisStore(redis_server.url, prefix=f"one-{uuid.uuid4().hex[:6]}:")
    two = RedisStore(redis_server.url + f"?prefix=two-{uuid.uuid4().hex[:6]}:")
    async with one, two:
        assert await put(one, "a1", "A")
        assert await put(two, "a1", "A")  # same key, other bot
        assert keys(await one.claim(10)) == {"a1"}
        assert (await two.stats()).waiting == 1


async def test_redis_unreachable_raises_store_unavailable_without_the_password() -> None:
    skip_unless_redis_server()
    from botkit.store.redis import RedisStore

    store = RedisStore(f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")  # nothing listens there
    async with store:
        for call in (store.ping(), put(store, "a1"), store.claim(1), store.stats(), store.get_state("A")):
            with pytest.raises(StoreUnavailable) as caught:
                await call
            assert "hunter2secret" not in str(caught.value)


async def test_redis_wait_sits_out_an_outage_and_claim_reports_it() -> None:
    skip_unless_redis_server()
    from botkit.store.redis import RedisStore

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    async with store:
        await asyncio.wait_for(store.wait(0.2), 10)  # no exception: the worker backs off on claim alone
        with pytest.raises(StoreUnavailable):
            await store.claim(1)


async def test_redis_store_reconnects_after_a_restart_without_failing_a_call(tmp_path: Path) -> None:
    skip_unless_redis_server()
    from botkit.store.redis import RedisStore

    with RedisServer(tmp_path / "redis") as server:
        async with RedisStore(server.url) as store:
            assert await put(store, "a1", "A")
            server.restart()  # the pooled connection is now dead: the client's retry must reconnect
            assert await put(store, "a2", "A")
            assert keys(await store.claim(10)) == {"a1"}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_allows_one_worker_per_file(make_store: MakeStore) -> None:
    from botkit.store.base import AnotherWorker

    first = await make_store()
    second = await make_store()  # the same file
    await first.recover()
    with pytest.raises(AnotherWorker, match="another botkit worker already runs on"):
        await second.recover()
    assert await put(second, "a1", "A")  # a second process may still receive (enqueue) into the file
    await first.close()
    await second.recover()  # the first worker is gone: the lock is free


def lane_heads(path: Path) -> tuple[set[tuple], set[tuple]]:
    """(the `lanes` table, the heads derived from the queue itself): a claim reads the first, so they must agree."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        table = set(db.execute("SELECT lane, head, claimed, ready FROM lanes"))
        derived = set(db.execute("SELECT lane, seq, claimed, not_before FROM queue "
                                 "WHERE seq IN (SELECT MIN(seq) FROM queue GROUP BY lane)"))
    return table, derived


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_lane_heads_follow_every_queue_operation(make_store: MakeStore, clock: FakeClock,
                                                              tmp_path: Path) -> None:
    store = await make_store()
    await store.recover()
    rng = random.Random(7)
    held: list[Job] = []
    for step in range(400):
        action = rng.choice(["enqueue", "enqueue", "claim", "done", "retry", "dead", "release", "tick"])
        if action == "enqueue":
            await put(store, f"e{step}", f"1:{rng.randrange(12)}")
        elif action == "claim":
            held += await store.claim(rng.randrange(1, 5))
        elif action == "tick":
            clock.advance(rng.choice([0.5, 2.0]))
        elif held:
            job = held.pop(rng.randrange(len(held)))
            if action == "done":
                await store.done(job)
            elif action == "retry":
                await store.retry_later(job, rng.choice([0.0, 1.0]), "again")
            elif action == "dead":
                await store.dead_letter(job, "gave up")
            else:
                await store.release([job])
        table, derived = lane_heads(tmp_path / "store.db")
        assert table == derived, f"after step {step} ({action})"
    # and what a claim hands out is exactly the claimable heads, oldest first
    claimable = sorted(seq for _, seq, claimed, ready in lane_heads(tmp_path / "store.db")[1]
                       if not claimed and ready <= clock())
    assert [int(j.id) for j in await store.claim(100)] == claimable


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_claims_read_an_index_not_the_whole_queue(make_store: MakeStore, tmp_path: Path) -> None:
    store = await make_store()
    assert await put(store, "a1", "A")
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:
        plan = " | ".join(row[-1] for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM queue WHERE seq IN (SELECT head FROM lanes "
            "WHERE claimed = 0 AND ready <= 0 ORDER BY head LIMIT 10) ORDER BY seq"))
    assert "USING COVERING INDEX lanes_claimable" in plan and "SCAN queue" not in plan


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_file_from_before_the_lanes_table_gets_its_heads(make_store: MakeStore, tmp_path: Path) -> None:
    first = await make_store()
    assert await put(first, "a1", "A")
    assert await put(first, "a2", "A")
    assert await put(first, "b1", "B")
    await first.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:  # as an older botkit left it
        db.executescript("DROP TRIGGER queue_head_insert; DROP TRIGGER queue_head_update; "
                         "DROP TRIGGER queue_head_delete; DROP TABLE lanes;")
    second = await make_store()
    await second.recover()
    assert keys(await second.claim(10)) == {"a1", "b1"}
    table, derived = lane_heads(tmp_path / "store.db")
    assert table == derived and len(table) == 2


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_partitions_split_the_lanes_and_their_recovery(make_store: MakeStore, clock: FakeClock,
                                                                    tmp_path: Path) -> None:
    from botkit.store.sqlite import SQLiteStore, partition_of

    receiver = SQLiteStore(str(tmp_path / "store.db"), workers=2, clock=clock)
    await receiver.open()
    lanes = [f"1:{n}" for n in range(20)]
    for lane in lanes:
        assert await put(receiver, f"k-{lane}", lane)
    parts = [SQLiteStore(str(tmp_path / "store.db"), workers=2, partition=p, clock=clock) for p in (0, 1)]
    for part in parts:
        await part.open()
        assert await part.recover() == 0
    claimed = [await part.claim(100) for part in parts]
    for p, jobs in enumerate(claimed):
        assert jobs and {partition_of(job.lane, 2) for job in jobs} == {p}
    assert sorted(job.lane for jobs in claimed for job in jobs) == sorted(lanes)
    with pytest.raises(AnotherWorker):  # one worker per partition...
        await SQLiteStore(str(tmp_path / "store.db"), workers=2, partition=0).recover()
    with pytest.raises(AnotherWorker):  # ...and no lone worker beside them
        await SQLiteStore(str(tmp_path / "store.db")).recover()
    await parts[0].close()  # partition 0's worker dies with its claims; partition 1's goes on
    again = SQLiteStore(str(tmp_path / "store.db"), workers=2, partition=0, clock=clock)
    await again.open()
    await again.recover()
    assert {job.lane for job in await again.claim(100)} == {job.lane for job in claimed[0]}
    assert await parts[1].claim(100) == []  # its own claims were left alone
    for store in (again, parts[1], receiver):
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_waits_out_another_process_lock_without_blocking_the_loop(make_store: MakeStore,
                                                                             tmp_path: Path) -> None:
    store = await make_store()
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock (`botkit deadletters`, a worker)
        enqueue = asyncio.create_task(put(store, "a1"))
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.3:  # the loop keeps turning while the enqueue waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not enqueue.done()
        assert ticks >= 15
        other.execute("COMMIT")
        assert await asyncio.wait_for(enqueue, 5) is True
    assert keys(await store.claim(10)) == {"a1"}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_fails_its_operations_when_the_lock_is_held_too_long(
        make_store: MakeStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import botkit.store.sqlite

    monkeypatch.setattr(botkit.store.sqlite, "_LOCKED_FOR", 0.2)
    store = await make_store()
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="held the write lock"):
            await asyncio.wait_for(put(store, "a1"), 5)
        other.execute("ROLLBACK")
    assert await put(store, "a1") is True  # the store goes on once the lock is free


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_operations_of_one_turn_share_a_commit_and_a_bad_one_fails_alone(
        make_store: MakeStore, tmp_path: Path) -> None:
    store = await make_store()
    assert isinstance(store, SQLiteStore)
    commits = count_commits(store)
    bad = store._call(lambda db: db.execute("INSERT INTO no_such_table VALUES (1)"))
    results = await asyncio.gather(put(store, "a1", "A"), bad, put(store, "b1", "B"), put(store, "a1", "A"),
                                   return_exceptions=True)
    assert results[0] is True and results[2] is True and results[3] is False  # the duplicate in the same batch
    assert isinstance(results[1], StoreUnavailable)
    assert commits() == 1
    assert keys(await store.claim(10)) == {"a1", "b1"}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_worker_with_several_events_in_hand_commits_their_steps_together(
        make_store: MakeStore) -> None:
    """Operations asked for in successive turns of the loop share a transaction while other events are in
    hand (their steps join it); with one event in hand each goes at once, so a lone event never waits."""
    store = await make_store()
    assert isinstance(store, SQLiteStore)
    await store.recover()
    for lane in "ABC":
        assert await put(store, f"{lane}1", lane)
    a, b, c = sorted(await store.claim(10), key=lambda job: job.key)
    commits = count_commits(store)

    async def journal_then_finish(job: Job, turns: int) -> None:
        for _ in range(turns):  # each event's steps come in a turn of the loop of their own
            await asyncio.sleep(0)
        await store.record(job.key, 0, {"id": 1})

    await asyncio.gather(journal_then_finish(a, 0), journal_then_finish(b, 1), journal_then_finish(c, 2))
    assert commits() == 1
    await store.finish(a, Finish())
    await store.finish(b, Finish())
    commits = count_commits(store)  # one event in hand now: its steps go at once, one transaction each
    await store.record(c.key, 1, {"id": 2})
    await store.finish(c, Finish())
    assert commits() == 2
    assert await store.claim(10) == [] and (await store.stats()).in_flight == 0


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_stats_cost_does_not_grow_with_the_backlog(make_store: MakeStore) -> None:
    """/readyz and /metrics read the stats on the loop: they must not walk the queue's rows."""
    store = await make_store()
    assert isinstance(store, SQLiteStore) and store._db is not None
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    async def stats_steps() -> int:
        nonlocal steps
        assert store._db is not None
        store._db.set_progress_handler(count, 1)  # one call per SQLite VM instruction
        steps = 0
        await store.stats()
        store._db.set_progress_handler(None, 1)
        return steps

    for n in range(20):
        await put(store, f"a{n}", f"1:{n}")
    small = await stats_steps()
    for n in range(2000):
        await put(store, f"b{n}", f"2:{n % 50}")
    await store.claim(10)
    large = await stats_steps()
    assert small > 0 and large < small * 3, (small, large)
    stats = await store.stats()
    assert (stats.waiting, stats.in_flight) == (2010, 10)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_sweep_of_expired_keys_reads_the_expiry_index(make_store: MakeStore, clock: FakeClock) -> None:
    """A day of dedupe keys is millions of rows: the sweep must touch the expired ones only."""
    store = await make_store(dedupe_ttl=100)
    assert isinstance(store, SQLiteStore) and store._db is not None
    for n in range(3):
        await put(store, f"old{n}")
    clock.advance(200)  # those three have expired
    for n in range(1500):
        await put(store, f"new{n}", f"2:{n % 50}")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    async def put_counting(key: str, purge: bool) -> int:
        nonlocal steps
        assert store._db is not None
        store._next_purge = 0.0 if purge else float("inf")
        store._db.set_progress_handler(count, 1)  # one call per SQLite VM instruction
        steps = 0
        await put(store, key, "3:1")
        store._db.set_progress_handler(None, 1)
        return steps

    plain = await put_counting("p1", purge=False)
    sweeping = await put_counting("p2", purge=True)
    assert sweeping < plain + 300, (plain, sweeping)  # not the 3,000 live keys' rows
    rows = {row[0] for row in store._db.execute("SELECT key FROM dedupe")}
    assert not rows & {"old0", "old1", "old2"} and {"new0", "p1", "p2"} <= rows


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_failing_transaction_fails_its_callers_and_the_store_goes_on(
        make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import botkit.store.sqlite

    store = await make_store()
    real = botkit.store.sqlite._run_isolated

    def disk_error(db: sqlite3.Connection, batch: list[Any]) -> list[Any]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(botkit.store.sqlite, "_run_isolated", disk_error)
    results = await asyncio.wait_for(asyncio.gather(put(store, "a1"), put(store, "b1", "2:1"),
                                                    return_exceptions=True), 5)  # no caller left waiting
    assert all(isinstance(r, StoreUnavailable) and "disk I/O error" in str(r) for r in results)
    monkeypatch.setattr(botkit.store.sqlite, "_run_isolated", real)
    assert await put(store, "a1") is True  # nothing was kept, and the next transaction works
    assert keys(await store.claim(10)) == {"a1"}


# what the bot did: records ---------------------------------------------------------------------------------
async def test_records_come_back_by_kind_and_time_oldest_first(store: Store) -> None:
    from botkit.store.base import Record

    await store.add_records([Record("outcome", T0 + 2, {"n": 2}), Record("outcome", T0, {"n": 0}),
                             Record("delivery", T0 + 1, {"d": 1})])
    await store.add_records([Record("outcome", T0 + 1, {"n": 1}), Record("outcome", T0 + 1, {"n": 1})])
    assert [r.data["n"] for r in await store.records("outcome")] == [0, 1, 1, 2]  # equal records both kept
    assert [r.data for r in await store.records("delivery")] == [{"d": 1}]
    assert [r.data["n"] for r in await store.records("outcome", since=T0 + 1, until=T0 + 2)] == [1, 1]
    assert [r.at for r in await store.records("outcome", limit=2)] == [T0 + 1, T0 + 2]  # the newest two
    assert await store.records("nothing") == []


async def test_records_keep_only_the_newest_of_a_kind(store: Store) -> None:
    from botkit.store.base import Record

    for n in range(5):
        await store.add_records([Record("delivery", T0 + n, {"n": n}), Record("outcome", T0 + n, {"n": n})],
                                keep={"delivery": 3})
    assert [r.data["n"] for r in await store.records("delivery")] == [2, 3, 4]
    assert len(await store.records("outcome")) == 5  # a kind not named keeps everything


async def test_prune_records_deletes_the_oldest_before_a_time_a_bounded_batch_at_a_time(store: Store) -> None:
    from botkit.store.base import Record

    await store.add_records([Record("outcome", T0 + n, {"n": n}) for n in (3, 0, 4, 1, 2)]
                            + [Record("delivery", T0, {"d": 0})])
    assert await store.prune_records("outcome", T0 + 2, at_most=1) == 1  # the oldest first
    assert [r.data["n"] for r in await store.records("outcome")] == [1, 2, 3, 4]
    assert await store.prune_records("outcome", T0 + 2, at_most=10) == 1  # `at` == before stays
    assert await store.prune_records("outcome", T0 + 2) == 0
    assert [r.data["n"] for r in await store.records("outcome")] == [2, 3, 4]
    assert len(await store.records("delivery")) == 1  # other kinds untouched
    assert await store.prune_records("nothing", T0 + 10) == 0


async def test_records_trimmed_in_batches_keep_the_newest_and_at_most_a_tenth_more(store: Store) -> None:
    from botkit.store.base import Record

    for n in range(57):
        await store.add_records([Record("delivery", T0 + n, {"n": n})], keep={"delivery": 20})
    kept = [r.data["n"] for r in await store.records("delivery")]
    assert 20 <= len(kept) <= 22 and kept[-20:] == list(range(37, 57))


async def test_a_custom_store_from_before_finish_and_retention_still_works() -> None:
    """`finish`, `queued_after` and `prune_records` came after custom stores could exist: each has a default,
    so a backend that implements only the older methods still instantiates, finishes jobs and prunes nothing."""
    from botkit.store.base import Finish

    older = {name for name in Store.__abstractmethods__}
    assert not older & {"finish", "queued_after", "prune_records"}

    class Older(MemoryStore):
        finish = Store.finish  # the base's defaults, as a backend written before them gets
        queued_after = Store.queued_after
        prune_records = Store.prune_records

    store = Older()
    assert await put(store, "a1", "A")
    [job] = await store.claim(10)
    assert await store.queued_after(job) is None
    await store.finish(job, Finish(state={"x": 1}))
    assert await store.get_state("A") == {"x": 1} and await store.claim(10) == []
    assert await store.prune_records("outcome", time.time()) == 0
