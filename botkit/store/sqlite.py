"""The embedded default: one SQLite file in WAL mode, with group commit on the event loop.

Every operation is a small function run inside a transaction. The operations asked for during one turn of
the event loop run in ONE transaction, committed once, before any of their futures resolve: fifty
concurrent acks cost one commit, and no caller hears "done" before its write is on disk. A worker with
several events in hand lets a few more turns add theirs (`_TURNS_TO_GATHER`): a commit writes each page it
changed, and an event's rows sit on pages of their own, so fewer, larger commits are most of a busy
worker's saving. They run on the
loop's own thread: a writer thread cost ~100 µs more per ack, its every SQLite step handing the GIL back and
forth with the loop (bench/ack.py). A transaction blocks the loop for its duration (~50 µs an event), as the
thread's GIL did. When another process holds the file's write lock, the loop does not wait on it: the batch
is tried again a moment later while the loop goes on serving. A committed event survives `kill -9` (WAL,
synchronous=NORMAL); add `?synchronous=full` to the URL to survive power loss too, at the cost of an fsync
per commit, which holds the loop: deliveries arriving meanwhile wait in the socket and join the next commit.

One process owns the file at a time: claims live in this process, so the worker's `recover` at start takes
back whatever claims a killed predecessor left, and those events run again (they were in flight, never
finished). Other processes (`botkit deadletters`) may open the file without touching claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botkit.store.base import (
    AnotherWorker,
    DeadLetter,
    Finish,
    Job,
    QueueStats,
    Record,
    Store,
    StoreUnavailable,
    wait_for_wakeup,
)

T = TypeVar("T")
_BATCH = 256  # operations per transaction at most
# With several events in hand, a transaction waits this many turns of the loop for more operations to join
# it (PostgreSQL's commit_delay with commit_siblings, counted in turns rather than microseconds: an idle loop
# turns in microseconds, a busy one gathers more). In bench/e2e.py's burst, 8 turns cut the worker's CPU per
# event to 0.80x and raised events/s 1.23x (0: 1.00x; 3: 0.88x; 16 and 32: no better than 8).
_TURNS_TO_GATHER = 8
_LOCKED_FOR = 5.0  # seconds another process may hold the write lock before operations fail
_PURGE_EVERY = 1.0  # seconds between sweeps of expired dedupe keys...
_PURGE_AT_MOST = 1000  # ...each bounded, through the expiry index, so no sweep holds the loop for long
_STATES_CACHED = 10_000  # conversations whose state is kept in memory

SCHEMA = """
CREATE TABLE IF NOT EXISTS dedupe (key TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_expires ON dedupe (expires);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL, lane TEXT NOT NULL, event TEXT NOT NULL, body BLOB NOT NULL, delivery_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL DEFAULT 0,
    claimed INTEGER NOT NULL DEFAULT 0, enqueued_at REAL NOT NULL, error TEXT, trace TEXT
);
CREATE INDEX IF NOT EXISTS queue_lane ON queue (lane, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL, lane TEXT NOT NULL, event TEXT NOT NULL, body BLOB NOT NULL, delivery_id TEXT,
    attempts INTEGER NOT NULL, error TEXT NOT NULL, failed_at REAL NOT NULL
);
-- The head (oldest event) of each lane, kept by triggers whoever writes the queue, so a claim reads the
-- claimable heads in order from an index instead of grouping the whole queue by lane (O(claimed), not O(queue)).
CREATE TABLE IF NOT EXISTS lanes (lane TEXT PRIMARY KEY, head INTEGER NOT NULL, claimed INTEGER NOT NULL,
                                  ready REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lanes_claimable ON lanes (claimed, head, ready);
CREATE TRIGGER IF NOT EXISTS queue_head_insert AFTER INSERT ON queue BEGIN
  INSERT OR IGNORE INTO lanes (lane, head, claimed, ready) VALUES (NEW.lane, NEW.seq, NEW.claimed, NEW.not_before);
END;
CREATE TRIGGER IF NOT EXISTS queue_head_update AFTER UPDATE OF claimed, not_before ON queue BEGIN
  UPDATE lanes SET claimed = NEW.claimed, ready = NEW.not_before WHERE lane = NEW.lane AND head = NEW.seq;
END;
CREATE TRIGGER IF NOT EXISTS queue_head_delete AFTER DELETE ON queue BEGIN
  DELETE FROM lanes WHERE lane = OLD.lane AND NOT EXISTS (SELECT 1 FROM queue WHERE lane = OLD.lane);
  UPDATE lanes SET (head, claimed, ready) = (SELECT seq, claimed, not_before FROM queue WHERE lane = OLD.lane
                                              ORDER BY seq LIMIT 1)
    WHERE lane = OLD.lane AND head = OLD.seq;
END;
-- a file from before the lanes table: its queued events get their heads once
INSERT OR IGNORE INTO lanes (lane, head, claimed, ready)
  SELECT lane, seq, claimed, not_before FROM queue WHERE seq IN (SELECT MIN(seq) FROM queue GROUP BY lane);
CREATE TABLE IF NOT EXISTS state (lane TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS journal (key TEXT NOT NULL, step INTEGER NOT NULL, result TEXT NOT NULL,
                                    PRIMARY KEY (key, step)) WITHOUT ROWID;
-- what the bot did (timelines, outcomes): read by time, trimmed by age of insertion
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, at REAL NOT NULL,
                                    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_at ON records (kind, at);
CREATE INDEX IF NOT EXISTS records_seq ON records (kind, seq);
"""

CRASHED = "the worker stopped while handling it (killed or crashed)"
_JOB_COLUMNS = "seq, key, lane, event, body, delivery_id, attempts, enqueued_at, trace"


# The oldest claimable lane heads, up to a limit: (now, limit). {only_mine} narrows it to one partition's lanes;
# the lanes index holds the lane too (the table's key), so the partition is tested on the index.
CLAIM = (f"SELECT {_JOB_COLUMNS} FROM queue WHERE seq IN (SELECT head FROM lanes "  # noqa: S608
         "WHERE claimed = 0 AND ready <= ?{only_mine} ORDER BY head LIMIT ?) ORDER BY seq")


def partition_of(lane: str, workers: int) -> int:
    """Which of `workers` worker processes serves this lane (stable across processes and restarts)."""
    return zlib.crc32(lane.encode()) % workers


def _job(row: tuple[Any, ...]) -> Job:
    seq, key, lane, event, body, delivery_id, attempts, enqueued_at, trace = row
    return Job(str(seq), key, lane, event, bytes(body), delivery_id, attempts, enqueued_at, trace)


class SQLiteStore(Store):
    def __init__(
        self, path: str, *, dedupe_ttl: float = 24 * 3600, synchronous: str = "NORMAL",
        clock: Callable[[], float] = time.time, workers: int = 1, partition: int | None = None,
    ) -> None:
        self.url = f"sqlite:///{path}"
        self._path = self.path = path
        # `workers` processes share the file's lanes by partition_of(lane); a worker's store has its `partition`
        self.workers = workers
        self._partition = partition if workers > 1 else None
        # the SQL that keeps a partition's claims and recovery to its own lanes (two integers of ours)
        self._only_mine = ("" if self._partition is None
                           else f" AND botkit_partition(lane, {workers:d}) = {self._partition:d}")
        self._claim = CLAIM.format(only_mine=self._only_mine)
        self._ttl = dedupe_ttl
        self._synchronous = synchronous.upper()
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []  # operations for the next transaction
        self._in_hand: set[str] = set()  # ids of the jobs this process claimed and has not settled
        self._flush_at: asyncio.Handle | None = None  # the scheduled transaction, if any
        self._locked_since: float | None = None  # when a batch first found the write lock taken
        self._locked_tries = 0
        self._to_wake: set[int | None] = set()  # partitions whose worker hears of new work this turn
        self._wakeup = asyncio.Event()
        self._next_purge = 0.0
        # This process is its lanes' only writer, so the journal (small: unfinished events only) lives in
        # memory too, and recent conversations' state is cached: reads need not queue behind commits.
        self._journal: dict[str, dict[int, str]] = {}  # event key -> step -> JSON result
        self._states: OrderedDict[str, str] = OrderedDict()  # lane -> JSON state, most recent last
        self._untrimmed: dict[str, int] = {}  # kind -> records added since that kind was last trimmed
        # Linux abstract socket names need no file and vanish with the process; one name per database file.
        digest = hashlib.sha1(os.path.realpath(path).encode(), usedforsecurity=False).hexdigest()[:24]
        self._wake_base = f"\0botkit-wake-{digest}"
        self._notifier = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notifier.setblocking(False)
        self._listener: socket.socket | None = None
        self._worker_locks: list[int] = []

    # the transactions ---------------------------------------------------------------------------------
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            _create_private(self._path)
            db = sqlite3.connect(self._path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA busy_timeout=5000")  # the schema, once, may wait for another process's lock
            db.create_function("botkit_partition", 2, partition_of, deterministic=True)
            db.executescript(SCHEMA)
            if "trace" not in {row[1] for row in db.execute("PRAGMA table_info(queue)")}:
                db.execute("ALTER TABLE queue ADD COLUMN trace TEXT")  # a file from before traces were kept
            db.execute("PRAGMA busy_timeout=0")  # from here on a taken lock is retried without blocking (_flush)
            rows = db.execute("SELECT key, step, result FROM journal").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the SQLite store at {self._path}: {exc}") from None
        self._db = db
        for key, step, result in rows:
            self._journal.setdefault(key, {})[step] = result

    async def recover(self) -> int:
        """The worker is starting: claims a previous run left were never finished, so hand them out again,
        each with an attempt counted. Returns how many had been tried before (see Store.recover).

        Only one worker may run on a file, or on a partition of its lanes (claims live in their process): lock
        files say so, and a second one stops with one sentence. The worker then listens for wake-ups.
        """
        self._worker_locks = _lock_files(self._path, self._partition, self.workers)
        mine = f"claimed = 1{self._only_mine}"

        def op(db: sqlite3.Connection) -> int:
            suspects = db.execute(f"SELECT COUNT(*) FROM queue WHERE attempts >= 1 AND {mine}").fetchone()[0]  # noqa: S608
            db.execute(f"UPDATE queue SET claimed = 0, attempts = attempts + 1, error = ? WHERE {mine}",  # noqa: S608
                       (CRASHED,))
            return suspects

        suspects = await self._call(op)
        self._listen_for_wakeups()
        return suspects

    def _listen_for_wakeups(self) -> None:
        """Receivers in other processes (`botkit serve` runs its worker in a process of its own) say "new
        work" with a datagram on a per-file abstract Unix socket; without one, the worker still polls."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(self._wake_address(self._partition))
        except OSError:
            listener.close()
            return
        listener.setblocking(False)
        self._listener = listener
        assert self._loop is not None
        self._loop.add_reader(listener.fileno(), self._on_wakeup)

    def _on_wakeup(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            while self._listener.recv(64):
                pass
        self._wakeup.set()

    def _wake_address(self, partition: int | None) -> str:
        return self._wake_base if partition is None else f"{self._wake_base}-{partition}"

    def _notify(self, lane: str | None = None) -> None:
        """Wake the worker that serves `lane` (every worker when the lane is not known), once per turn of
        the loop however many events arrived in it."""
        self._wakeup.set()
        if self.workers == 1:
            partitions: Sequence[int | None] = [None]
        else:
            partitions = range(self.workers) if lane is None else [partition_of(lane, self.workers)]
        if not self._to_wake and self._loop is not None:
            self._loop.call_soon(self._send_wakeups)
        self._to_wake.update(partitions)

    def _send_wakeups(self) -> None:
        for partition in self._to_wake:
            with contextlib.suppress(OSError):  # no worker listening, or its buffer is full: it polls anyway
                self._notifier.sendto(b"w", self._wake_address(partition))
        self._to_wake.clear()

    async def close(self) -> None:
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for lock in self._worker_locks:
            os.close(lock)
        self._worker_locks = []
        self._notifier.close()
        if self._db is not None:
            self._db.execute("PRAGMA busy_timeout=5000")  # the last operations may wait for the lock now
            while self._pending:
                self._cancel_flush()
                self._flush()
            self._cancel_flush()
            self._db.close()
            self._db = None

    def _cancel_flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T] | _Enqueue | _Done) -> T:
        if self._db is None or self._loop is None:
            raise StoreUnavailable("the SQLite store is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._pending.append((fn, future))
        if self._flush_at is None:  # the first operation of this turn: the rest join its transaction
            # a worker with other events in hand gathers their operations too; an ack or a lone event goes now
            self._flush_at = (self._loop.call_soon(self._gather, _TURNS_TO_GATHER) if len(self._in_hand) > 1
                              else self._loop.call_soon(self._flush))
        return await future

    def _gather(self, turns: int) -> None:
        """Let `turns` more turns of the loop add their operations, then run the transaction."""
        assert self._loop is not None
        self._flush_at = (self._loop.call_soon(self._gather, turns - 1) if turns > 1
                          else self._loop.call_soon(self._flush))

    def _flush(self) -> None:
        """Run the pending operations in one transaction (at most _BATCH; the rest in the next turn)."""
        assert self._db is not None and self._loop is not None
        self._flush_at = None
        batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            locked = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_BUSY
            delay = self._lock_retry_delay() if locked else None
            if delay is not None:  # another process holds the write lock: try again, the loop goes on
                self._pending[:0] = batch
                self._flush_at = self._loop.call_later(delay, self._flush)
                return
            reason = (f"another process has held the write lock on {self._path} for {_LOCKED_FOR:.0f} s"
                      if locked else f"the SQLite store failed: {exc}")
            results = _failed(batch, StoreUnavailable(reason))
        else:
            self._locked_since, self._locked_tries = None, 0
            try:
                results = _run_isolated(self._db, batch)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:  # the disk, not an operation (those fail alone in _run_isolated)
                with contextlib.suppress(sqlite3.Error):
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                results = _failed(batch, StoreUnavailable(f"the SQLite store failed: {exc}"))
        _resolve_all(results)
        if self._pending and self._flush_at is None:
            self._flush_at = self._loop.call_soon(self._flush)

    def _lock_retry_delay(self) -> float | None:
        """How long to wait before trying a locked file again (a worker's claim, `botkit deadletters`): sooner
        at first, since such transactions are short; None once it has been locked for _LOCKED_FOR."""
        now = time.monotonic()
        if self._locked_since is None:
            self._locked_since = now
        if now - self._locked_since > _LOCKED_FOR:
            self._locked_since, self._locked_tries = None, 0
            return None
        self._locked_tries += 1
        return 0.0 if self._locked_tries < 3 else min(0.005, 0.001 * 2 ** (self._locked_tries - 3))

    # the interface ------------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._call(lambda db: db.execute("SELECT 1").fetchone())

    async def enqueue(
        self, *, keys: Sequence[str], lane: str, event: str, body: bytes, delivery_id: str | None,
        trace: str | None = None,
    ) -> bool:
        now = self._clock()
        purge = now >= self._next_purge
        if purge:
            self._next_purge = now + _PURGE_EVERY
        accepted = await self._call(_Enqueue(tuple(keys), lane, event, body, delivery_id, now, now + self._ttl, purge,
                                             trace))
        if accepted:
            self._notify(lane)
        return accepted

    async def claim(self, limit: int) -> list[Job]:
        now = self._clock()

        def op(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(self._claim, (now, limit)).fetchall()
            db.executemany("UPDATE queue SET claimed = 1 WHERE seq = ?", [(r[0],) for r in rows])
            return [_job(r) for r in rows]

        jobs = await self._call(op)
        self._in_hand.update(job.id for job in jobs)
        return jobs

    async def wait(self, timeout: float) -> None:
        await wait_for_wakeup(self._wakeup, timeout)

    async def done(self, job: Job) -> None:
        await self.finish(job, Finish())

    async def finish(self, job: Job, finish: Finish) -> None:
        """The event's done, its lane's state and its records in the transaction of the loop's turn: a run
        of finishes costs a few executemany calls, whatever the number of events (`_enqueues_and_dones`)."""
        state = None if finish.state is None else json.dumps(finish.state)
        records = tuple((r.kind, r.at, json.dumps(r.data)) for r in finish.records)
        trims = self._trims(finish.records, finish.keep)
        with self._caching_state(job.lane, state):
            await self._call(_Done(int(job.id), job.key, job.lane, state, self._clock(), records, trims))
        self._journal.pop(job.key, None)
        self._in_hand.discard(job.id)
        self._wakeup.set()

    async def retry_later(self, job: Job, delay: float, error: str) -> None:
        not_before = self._clock() + delay
        await self._call(lambda db: db.execute(
            "UPDATE queue SET claimed = 0, attempts = attempts + 1, not_before = ?, error = ? WHERE seq = ?",
            (not_before, error, int(job.id))))
        self._in_hand.discard(job.id)
        self._wakeup.set()

    async def dead_letter(self, job: Job, error: str) -> None:
        now = self._clock()

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM queue WHERE seq = ?", (int(job.id),))
            db.execute(
                "INSERT INTO dead_letters (key, lane, event, body, delivery_id, attempts, error, failed_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (job.key, job.lane, job.event, job.body, job.delivery_id, job.attempts + 1, error, now),
            )

        await self._call(op)
        self._in_hand.discard(job.id)
        self._wakeup.set()

    async def release(self, jobs: Sequence[Job]) -> None:
        await self._call(lambda db: db.executemany("UPDATE queue SET claimed = 0 WHERE seq = ?",
                                                   [(int(j.id),) for j in jobs]))
        self._in_hand.difference_update(job.id for job in jobs)
        self._wakeup.set()

    async def stats(self) -> QueueStats:
        now = self._clock()

        def op(db: sqlite3.Connection) -> QueueStats:
            # Index-only, O(1)-ish even under a large backlog (a scan of the queue's rows took ~150 ms at 100k
            # events, on the loop, at every /metrics scrape): claims are only ever lane heads, so the lanes
            # table counts them, and the oldest event is the first in the queue.
            total = db.execute("SELECT COUNT(*) FROM queue").fetchone()[0]
            in_flight = db.execute("SELECT COUNT(*) FROM lanes WHERE claimed = 1").fetchone()[0]
            oldest = db.execute("SELECT enqueued_at FROM queue ORDER BY seq LIMIT 1").fetchone()
            dead = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
            age = 0.0 if oldest is None else max(0.0, now - oldest[0])
            return QueueStats(waiting=total - in_flight, in_flight=in_flight, oldest_age=age, dead_letters=dead)

        return await self._call(op)

    async def queued_after(self, job: Job) -> list[tuple[str, bytes]]:
        # the queue_lane index (lane, seq): the lane's few newer rows, written by the receiver (committed)
        rows = self._read("SELECT event, body FROM queue WHERE lane = ? AND seq > ? ORDER BY seq",
                          (job.lane, int(job.id)))
        return [(event, bytes(body)) for event, body in rows]

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._call(lambda db: db.execute(
            "SELECT seq, key, lane, event, body, delivery_id, attempts, error, failed_at FROM dead_letters "
            "ORDER BY seq LIMIT ?", (limit,)).fetchall())
        return [DeadLetter(str(r[0]), r[1], r[2], r[3], bytes(r[4]), *r[5:]) for r in rows]

    async def replay(self, dead_letter_id: str) -> bool:
        now = self._clock()

        def op(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT key, lane, event, body, delivery_id FROM dead_letters WHERE seq = ?",
                             (int(dead_letter_id),)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM dead_letters WHERE seq = ?", (int(dead_letter_id),))
            db.execute("INSERT INTO queue (key, lane, event, body, delivery_id, enqueued_at) VALUES (?,?,?,?,?,?)",
                       (*row, now))
            return True

        replayed = await self._call(op) if dead_letter_id.isdigit() else False
        if replayed:
            self._notify()
        return replayed

    async def drop(self, dead_letter_id: str) -> bool:
        def op(db: sqlite3.Connection) -> str | None:
            row = db.execute("DELETE FROM dead_letters WHERE seq = ? RETURNING key", (int(dead_letter_id),)).fetchone()
            if row is not None:
                db.execute("DELETE FROM journal WHERE key = ?", (row[0],))
            return row[0] if row else None

        key = await self._call(op) if dead_letter_id.isdigit() else None
        if key is not None:
            self._journal.pop(key, None)
        return key is not None

    async def get_state(self, lane: str) -> dict[str, Any]:
        data = self._states.get(lane)
        if data is None:
            rows = self._read("SELECT data FROM state WHERE lane = ?", (lane,))
            data = rows[0][0] if rows else "{}"
            self._remember_state(lane, data)
        else:
            self._states.move_to_end(lane)
        return json.loads(data)  # a copy: the caller may change it freely

    def _read(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """A read at once, outside the write batch (no commit, no wait for the loop's next turn). A WAL
        reader never waits for a writer, and no transaction is open between the loop's callbacks (`_flush`
        runs whole). What this process asked to write but has not committed yet is not seen: the state
        cache is updated when a write is asked for, and a lane's events run one at a time."""
        if self._db is None:
            raise StoreUnavailable("the SQLite store is not open")
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the SQLite store failed: {exc}") from None

    def _remember_state(self, lane: str, data: str) -> None:
        self._states[lane] = data
        self._states.move_to_end(lane)
        if len(self._states) > _STATES_CACHED:
            self._states.popitem(last=False)

    async def set_state(self, lane: str, state: dict[str, Any]) -> None:
        data, now = json.dumps(state), self._clock()
        with self._caching_state(lane, data):
            await self._call(lambda db: db.execute(
                "INSERT OR REPLACE INTO state (lane, data, updated_at) VALUES (?, ?, ?)", (lane, data, now)))

    async def clear_state(self, lane: str) -> None:
        with self._caching_state(lane, "{}"):
            await self._call(lambda db: db.execute("DELETE FROM state WHERE lane = ?", (lane,)))

    @contextlib.contextmanager
    def _caching_state(self, lane: str, data: str | None) -> Iterator[None]:
        """Around a write of the lane's state (`data`; None: no state in this write): cache it when the write
        is asked for, since reads skip the batch (`_read`), and forget it if the write fails, so the next
        read finds the file's."""
        if data is not None:
            self._remember_state(lane, data)
        try:
            yield
        except BaseException:
            if data is not None:
                self._states.pop(lane, None)
            raise

    async def journal(self, key: str) -> dict[int, Any]:
        return {step: json.loads(result) for step, result in self._journal.get(key, {}).items()}

    async def record(self, key: str, step: int, result: Any) -> None:
        data = json.dumps(result)
        await self._call(lambda db: db.execute(
            "INSERT OR REPLACE INTO journal (key, step, result) VALUES (?, ?, ?)", (key, step, data)))
        self._journal.setdefault(key, {})[step] = data

    async def add_records(self, records: Sequence[Record], *, keep: Mapping[str, int] | None = None) -> None:
        rows = [(r.kind, r.at, json.dumps(r.data)) for r in records]
        trims = self._trims(records, keep)

        def op(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO records (kind, at, data) VALUES (?, ?, ?)", rows)
            _trim(db, trims)

        await self._call(op)

    def _trims(self, records: Sequence[Record], keep: Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
        """The kinds to trim with this write, and how many of each stay. Trimming walks `count` index entries:
        it is done once per count/10 writes (bench/records.py), so at most count + count/10 records of a kind
        stay between trims."""
        trims = []
        for kind, count in (keep or {}).items():
            self._untrimmed[kind] = self._untrimmed.get(kind, 0) + sum(1 for r in records if r.kind == kind)
            if self._untrimmed[kind] > count // 10:
                trims.append((kind, count))
                self._untrimmed[kind] = 0
        return tuple(trims)

    async def prune_records(self, kind: str, before: float, *, at_most: int = 1000) -> int:
        return await self._call(lambda db: db.execute(  # the (kind, at) index finds them: no scan
            "DELETE FROM records WHERE seq IN (SELECT seq FROM records WHERE kind = ? AND at < ? ORDER BY at LIMIT ?)",
            (kind, before, at_most)).rowcount)

    async def records(self, kind: str, *, since: float = 0.0, until: float = float("inf"),
                      limit: int = 10_000) -> list[Record]:
        rows = await self._call(lambda db: db.execute(
            "SELECT at, data FROM records WHERE kind = ? AND at >= ? AND at < ? ORDER BY at DESC, seq DESC LIMIT ?",
            (kind, since, min(until, 1e300), limit)).fetchall())
        return [Record(kind, at, json.loads(data)) for at, data in reversed(rows)]


@dataclass(frozen=True, slots=True)
class _Enqueue:
    """An enqueue, as data: consecutive ones in a batch share one dedupe lookup and two executemany calls
    (the writer thread's Python work per event, not the disk, is what limits the ack rate)."""

    keys: tuple[str, ...]
    lane: str
    event: str
    body: bytes
    delivery_id: str | None
    now: float
    expires: float
    purge: bool
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class _Done:
    """A finish, as data (`SQLiteStore.finish`): the event's done, with its lane's state and its records."""

    seq: int
    key: str
    lane: str = ""
    state: str | None = None  # JSON, when the turn changed the lane's state
    now: float = 0.0
    records: tuple[tuple[str, float, str], ...] = ()  # (kind, at, JSON data)
    trims: tuple[tuple[str, int], ...] = ()


def _failed(batch: list[tuple[Any, asyncio.Future[Any]]], error: Exception) -> list[tuple[Any, bool, Any]]:
    return [(future, False, error) for _, future in batch]


def _run_isolated(db: sqlite3.Connection, batch: list[tuple[Any, asyncio.Future[Any]]],
                  ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
    """Run a batch inside the open transaction. If an operation fails, the batch is undone to its savepoint
    and each operation is run again under a savepoint of its own, so one bad operation fails alone."""
    db.execute("SAVEPOINT batch")
    try:
        values = _run_batch(db, [op for op, _ in batch])
    except Exception as exc:
        db.execute("ROLLBACK TO batch")
        db.execute("RELEASE batch")
        if len(batch) > 1:
            return [result for item in batch for result in _run_isolated(db, [item])]
        error = exc if not isinstance(exc, sqlite3.Error) else StoreUnavailable(f"the SQLite store failed: {exc}")
        return _failed(batch, error)
    db.execute("RELEASE batch")
    return [(future, True, value) for (_, future), value in zip(batch, values, strict=True)]


def _run_batch(db: sqlite3.Connection, ops: list[Any]) -> list[Any]:
    """Run a batch's operations in order. A run of enqueues and dones (which touch different rows, so they
    commute) is done with a few executemany calls instead of several statements per operation."""
    results: list[Any] = []
    run: list[Any] = []
    for op in [*ops, None]:
        if isinstance(op, _Enqueue | _Done):
            run.append(op)
            continue
        if run:
            results.extend(_enqueues_and_dones(db, run))
            run = []
        if op is not None:
            results.append(op(db))
    return results


def _enqueues_and_dones(db: sqlite3.Connection, run: list[Any]) -> list[Any]:
    dones = [op for op in run if isinstance(op, _Done)]
    if dones:
        db.executemany("DELETE FROM queue WHERE seq = ?", [(op.seq,) for op in dones])
        db.executemany("DELETE FROM journal WHERE key = ?", [(op.key,) for op in dones])
        db.executemany("INSERT OR REPLACE INTO state (lane, data, updated_at) VALUES (?, ?, ?)",
                       [(op.lane, op.state, op.now) for op in dones if op.state is not None])
        db.executemany("INSERT INTO records (kind, at, data) VALUES (?, ?, ?)",
                       [record for op in dones for record in op.records])
        _trim(db, [trim for op in dones for trim in op.trims])
    enqueues = [op for op in run if isinstance(op, _Enqueue)]
    accepted = iter(_enqueue_many(db, enqueues) if enqueues else [])
    return [next(accepted) if isinstance(op, _Enqueue) else None for op in run]


def _trim(db: sqlite3.Connection, trims: Sequence[tuple[str, int]]) -> None:
    """Keep the newest `count` records of each (kind, count): everything at or below the (count+1)-th goes."""
    for kind, count in trims:
        db.execute("DELETE FROM records WHERE kind = ? AND seq <= (SELECT seq FROM records WHERE kind = ? "
                   "ORDER BY seq DESC LIMIT 1 OFFSET ?)", (kind, kind, count))


def _enqueue_many(db: sqlite3.Connection, ops: list[_Enqueue]) -> list[bool]:
    now = ops[0].now
    if any(op.purge for op in ops):  # a day of keys is millions of rows: never scan them all
        db.execute("DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires <= ? LIMIT ?)",
                   (now, _PURGE_AT_MOST))
    wanted = [key for op in ops for key in op.keys]
    seen: set[str] = set()
    for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(f"SELECT key FROM dedupe WHERE key IN ({marks}) AND expires > ?",  # noqa: S608
                          (*chunk, now)).fetchall()
        seen.update(row[0] for row in rows)
    accepted: list[bool] = []
    keys: list[tuple[str, float]] = []
    rows: list[tuple[Any, ...]] = []
    for op in ops:
        new = not any(key in seen for key in op.keys)
        accepted.append(new)
        if new:
            seen.update(op.keys)  # a duplicate later in the same batch is caught too
            keys.extend((key, op.expires) for key in op.keys)
            rows.append((op.keys[0], op.lane, op.event, op.body, op.delivery_id, op.now, op.trace))
    if rows:
        db.executemany("INSERT OR REPLACE INTO dedupe (key, expires) VALUES (?, ?)", keys)
        db.executemany("INSERT INTO queue (key, lane, event, body, delivery_id, enqueued_at, trace) "
                       "VALUES (?,?,?,?,?,?,?)", rows)
    return accepted


def _create_private(path: str) -> None:
    """Create a new store file readable by its owner only: it holds every conversation and dead letter.
    SQLite gives the WAL, shared-memory and journal files the database file's mode (its unix VFS,
    `findCreateFileMode`), so they are private too. An existing file keeps the mode its owner chose."""
    if path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _lock_files(db: str, partition: int | None, workers: int) -> list[int]:
    """Hold this worker's locks for the process's lifetime (the kernel drops them when it dies): the file's
    worker lock, exclusive for a lone worker and shared among partitions, and a partition's own."""
    wanted = [(f"{db}.worker.lock", fcntl.LOCK_EX if partition is None else fcntl.LOCK_SH)]
    if partition is not None:
        wanted.append((f"{db}.worker-{partition}-of-{workers}.lock", fcntl.LOCK_EX))
    held: list[int] = []
    for path, mode in wanted:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        held.append(fd)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except OSError:
            for taken in held:
                os.close(taken)
            raise AnotherWorker(f"another botkit worker already runs on {db}; one worker per SQLite file, or one "
                                "per partition of ?workers=N (use a redis:// store for more)") from None
    return held


def hold_server_lock(db: str) -> int:
    """Hold `<db>.server.lock` for this process's lifetime (`botkit serve`): one server per SQLite file.

    Raises AnotherWorker, naming the other server's pid, when a live server holds it. A second server would
    accept deliveries whose worker could never start (the first server's worker holds the file), so its
    events would wait forever or be claimed by a worker that does not know its bot. A killed server's lock
    goes with it: a restart is never refused.
    """
    path = f"{db}.server.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise AnotherWorker(f"another botkit serve (pid {holder}) already serves {db}; stop it, or give this "
                            "server its own file in BOTKIT_STORE (several bots on one server: BOTKIT_BOTS_FILE)"
                            ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _resolve_all(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in results:
        if future.done():  # the caller was cancelled
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
