"""The shared store: Redis, for many receivers and workers on many hosts (`redis://host:port/db`).

How one conversation runs one event at a time, in arrival order, across every worker on every host:

- **One Redis Stream per lane** (`<prefix>lane:<lane>`), each with the consumer group `workers`. An event is an
  entry of its lane's stream; the stream's first entry is the lane's head. A worker takes a head with
  `XREADGROUP ... COUNT 1` only when the lane's pending list (PEL) is empty, so the PEL of a lane holds at most
  the one event in flight. `done` is `XACK` + `XDEL`; an emptied lane's stream is deleted.
- **The lease is the PEL's idle time**, kept by Redis's own clock. A crashed worker leaves its entry pending;
  once it has been idle for `lease` seconds, the next `claim` takes it over with `XAUTOCLAIM`, so a dead worker
  blocks its lane for at most the lease. A worker running a long handler calls `heartbeat(jobs)`, which resets
  the idle time (`XCLAIM ... JUSTID`, only for entries it still owns).
- **A sorted set `<prefix>ready`** holds each lane with work, scored by the time to look at it next: its arrival,
  a retry's not-before time, or the end of the current holder's lease. `claim` reads the due lanes from it, so it
  never scans idle conversations.

Why this and not one stream for all lanes: a consumer group hands out entries in stream order, whatever their
lane, so a single stream needs a second structure to park entries whose lane is busy, and the parked entries
would then sit idle in the PEL and be taken by `XAUTOCLAIM` as if their worker had died. A stream per lane makes
"the PEL is what is in flight" exactly true, and needs no separate lock key: the lease cannot drift from the
entry it guards. Streams are a few hundred bytes each and live only while their conversation has work.

Every step that touches more than one key is one Lua script (module constants below), so it is atomic: dedupe
and enqueue happen together, and a claim cannot race another claim. Scripts touch keys they build from the
prefix, which is fine on one Redis (or a primary with replicas) but not on Redis Cluster.

Other keys: `seen:<key>` dedupe keys (`SET NX PX`, the dedupe TTL), `seq` the job-id counter (ids are global,
increasing, and the entries' stream ids are `<id>-0`), `queued` (job id -> enqueued time, for stats),
`inflight` (lane -> job id), `attempts` (job id -> attempts made), `dead` + `dead:<id>` the dead letters,
`state:<lane>` per-conversation state (a JSON string, `state_ttl`, refreshed on each write),
`journal:<key>` an event's action journal (a hash, the dedupe TTL; kept without TTL while dead-lettered),
`records:<kind>` what the bot did (a sorted set scored by time; each member `<id> <JSON>`, the id from
`records_seq` so equal records stay apart).

Times: not-before times and enqueued times come from this host's clock (injectable, as in the other backends),
so hosts should run NTP; a skew only shifts retry delays and `oldest_age`. The lease and the dedupe TTL run on
Redis's clock.

`wait` listens on the pub/sub channel `<prefix>wakeup` (published by every step that may make a lane
claimable) and also wakes when the earliest due lane (a retry or a lease running out) comes due: a blocking
read would cost one connection per waiting worker and only wake one of them, polling would cost latency.

Durability is Redis's: run it with `appendonly yes`. With the default `appendfsync everysec` a crash of Redis
itself (not of botkit) can lose up to a second of acked events; `appendfsync always` closes that gap.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry  # the asyncio one: the sync Retry never awaits, so never retries
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from botkit.store.base import DeadLetter, Finish, Job, QueueStats, Record, Store, StoreUnavailable

log = logging.getLogger("botkit.store.redis")

P = ParamSpec("P")
T = TypeVar("T")

GROUP = "workers"
_MIN_WAIT = 0.05  # seconds: wait never spins faster than this on a lane that is due but not claimable
# Replies that mean "Redis cannot take work right now" rather than a bug in a command.
_UNAVAILABLE_REPLIES = ("OOM", "READONLY", "MISCONF", "LOADING", "BUSY", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN")

# push(prefix, lane, fields, now): append an event to its lane's stream under the next global job id,
# creating the stream and its group if the lane was empty; mark the lane ready (an earlier time wins),
# count it for stats and wake the workers. Returns the job id. Shared by ENQUEUE and REPLAY.
_PUSH = """
local function push(prefix, lane, fields, now)
  local id = redis.call('INCR', prefix .. 'seq')
  local stream = prefix .. 'lane:' .. lane
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, 'workers', '0', 'MKSTREAM')
  end
  redis.call('XADD', stream, id .. '-0', unpack(fields))
  redis.call('ZADD', prefix .. 'ready', 'NX', now, lane)
  redis.call('ZADD', prefix .. 'queued', now, id)
  redis.call('PUBLISH', prefix .. 'wakeup', lane)
  return id
end
"""

# ENQUEUE. KEYS: the event's dedupe keys. ARGV: prefix, ttl_ms, lane, now, then the entry's field/value pairs.
# Dedupe and enqueue in one step: if any key exists, nothing is set and 0 is returned; otherwise every key is
# set for ttl_ms and the event is queued (returns its job id).
ENQUEUE = _PUSH + """
if redis.call('EXISTS', unpack(KEYS)) > 0 then return 0 end
for _, key in ipairs(KEYS) do redis.call('SET', key, '1', 'PX', ARGV[2]) end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
return push(ARGV[1], ARGV[3], fields, ARGV[4])
"""

# CLAIM. ARGV: prefix, consumer, now, lease_ms, limit. Walks the due lanes of `ready`, oldest first, until
# `limit` heads are claimed or no lane is due. A lane with nothing pending gives its head (XREADGROUP after
# rewinding the group, so the read is always the stream's first entry); a lane whose pending entry has been
# idle for the lease gives it over (XAUTOCLAIM: its worker died); a lane held by a live worker is looked at
# again when that lease could run out. Every claimed lane is also rescheduled for the end of its lease.
# Returns {job_id, fields, attempts} per claimed job.
CLAIM = """
local prefix, consumer = ARGV[1], ARGV[2]
local now, lease_ms, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ready, inflight = prefix .. 'ready', prefix .. 'inflight'
local out = {}
while #out < limit do
  local lanes = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, limit - #out)
  if #lanes == 0 then break end
  for _, lane in ipairs(lanes) do
    local stream = prefix .. 'lane:' .. lane
    local entry, pending = nil, {}
    if redis.call('EXISTS', stream) == 1 then
      pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1)
      if #pending == 0 then
        redis.call('XGROUP', 'SETID', stream, 'workers', '0')
        local got = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', 1, 'STREAMS', stream, '>')
        if got then entry = got[1][2][1] end
      elseif tonumber(pending[1][3]) >= lease_ms then
        entry = redis.call('XAUTOCLAIM', stream, 'workers', consumer, lease_ms, '0-0', 'COUNT', 1)[2][1]
      end
    end
    if entry then
      local id = string.sub(entry[1], 1, -3)
      redis.call('ZADD', ready, now + lease_ms / 1000, lane)
      redis.call('HSET', inflight, lane, id)
      out[#out + 1] = {id, entry[2], redis.call('HGET', prefix .. 'attempts', id) or '0'}
    elseif #pending > 0 then
      local left_ms = math.max(lease_ms - tonumber(pending[1][3]), 10)
      redis.call('ZADD', ready, now + left_ms / 1000, lane)
    else
      redis.call('ZREM', ready, lane)
      redis.call('DEL', stream)
    end
  end
end
return out
"""

# finish(prefix, lane, id, now): take a finished job (done or dead-lettered) off its lane: ack and delete its
# entry, forget its attempts and its in-flight mark, then free the lane for its next event, or drop the lane
# when it is empty. Returns false when the entry was already gone (another worker finished it after a reclaim).
# Shared by DONE and DEAD_LETTER.
_FINISH = """
local function finish(prefix, lane, id, now, consumer)
  local stream = prefix .. 'lane:' .. lane
  -- A worker whose lease ran out no longer owns the entry: its late finish must not free the lane while
  -- the worker that took the entry over still runs it (that would let the lane's next event overtake it).
  local pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1)
  if #pending == 0 or pending[1][1] ~= id .. '-0' or pending[1][2] ~= consumer then return false end
  redis.call('XACK', stream, 'workers', id .. '-0')
  if redis.call('XDEL', stream, id .. '-0') == 0 then return false end
  redis.call('HDEL', prefix .. 'attempts', id)
  redis.call('ZREM', prefix .. 'queued', id)
  if redis.call('HGET', prefix .. 'inflight', lane) == id then redis.call('HDEL', prefix .. 'inflight', lane) end
  if redis.call('XLEN', stream) == 0 then
    redis.call('DEL', stream)
    redis.call('ZREM', prefix .. 'ready', lane)
  else
    redis.call('ZADD', prefix .. 'ready', now, lane)
    redis.call('PUBLISH', prefix .. 'wakeup', lane)
  end
  return true
end
"""

# DONE. ARGV: prefix, lane, job id, now, event key, consumer. Finishes the job and deletes its action journal.
# Returns 1, or 0 when this consumer no longer holds the job.
DONE = _FINISH + """
if not finish(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]) then return 0 end
redis.call('DEL', ARGV[1] .. 'journal:' .. ARGV[5])
return 1
"""

# DEAD_LETTER. ARGV: prefix, lane, job id, now, event key, consumer, then the dead letter's field/value pairs. Finishes
# the job and files it under the next dead-letter id; its journal is kept (without TTL) for a replay.
# Returns the dead-letter id, or 0 when the job was already finished elsewhere.
DEAD_LETTER = _FINISH + """
local prefix = ARGV[1]
if not finish(prefix, ARGV[2], ARGV[3], ARGV[4], ARGV[6]) then return 0 end
local dead_id = redis.call('INCR', prefix .. 'dead_seq')
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', prefix .. 'dead:' .. dead_id, unpack(fields))
redis.call('ZADD', prefix .. 'dead', dead_id, dead_id)
redis.call('PERSIST', prefix .. 'journal:' .. ARGV[5])
return dead_id
"""

# HAND_BACK. ARGV: prefix, lane, job id, consumer, ready_at, count_attempt ('1' or '0'). Puts a claimed job
# back, still at the head of its lane, claimable from ready_at (retry_later counts an attempt, release does
# not). Only the consumer that holds the entry may do so: after a reclaim the new holder decides. Returns 1/0.
HAND_BACK = """
local prefix, lane, id, consumer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local stream = prefix .. 'lane:' .. lane
if redis.call('EXISTS', stream) == 0 then return 0 end
local pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1)
if #pending == 0 or pending[1][1] ~= id .. '-0' or pending[1][2] ~= consumer then return 0 end
redis.call('XACK', stream, 'workers', id .. '-0')
if ARGV[6] == '1' then redis.call('HINCRBY', prefix .. 'attempts', id, 1) end
if redis.call('HGET', prefix .. 'inflight', lane) == id then redis.call('HDEL', prefix .. 'inflight', lane) end
redis.call('ZADD', prefix .. 'ready', ARGV[5], lane)
redis.call('PUBLISH', prefix .. 'wakeup', lane)
return 1
"""

# HEARTBEAT. ARGV: prefix, consumer, now, lease_ms, then lane/job id pairs. Restarts the lease of each entry
# this consumer still holds (XCLAIM JUSTID resets the idle time without counting a delivery) and reschedules
# its lane's check. Returns the ids it no longer holds.
HEARTBEAT = """
local prefix, consumer, now, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lost = {}
for i = 5, #ARGV, 2 do
  local lane, id = ARGV[i], ARGV[i + 1]
  local stream = prefix .. 'lane:' .. lane
  local pending = {}
  if redis.call('EXISTS', stream) == 1 then pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1) end
  if #pending == 1 and pending[1][1] == id .. '-0' and pending[1][2] == consumer then
    redis.call('XCLAIM', stream, 'workers', consumer, 0, id .. '-0', 'JUSTID')
    redis.call('ZADD', prefix .. 'ready', 'XX', now + lease_ms / 1000, lane)
  else
    lost[#lost + 1] = id
  end
end
return lost
"""

# REPLAY. ARGV: prefix, dead-letter id, now. Queues a dead letter again at the tail of its lane, with no
# dedupe check (on purpose) and no attempts; returns the new job id, or 0 if there is no such dead letter.
REPLAY = _PUSH + """
local prefix, now = ARGV[1], ARGV[3]
local dead = prefix .. 'dead:' .. ARGV[2]
local d = redis.call('HMGET', dead, 'key', 'lane', 'event', 'body', 'delivery_id')
if not d[1] then return 0 end
local fields = {'key', d[1], 'lane', d[2], 'event', d[3], 'body', d[4], 'enqueued_at', now}
if d[5] then fields[#fields + 1] = 'delivery_id'; fields[#fields + 1] = d[5] end
redis.call('DEL', dead)
redis.call('ZREM', prefix .. 'dead', ARGV[2])
return push(prefix, d[2], fields, now)
"""

# DROP. ARGV: prefix, dead-letter id. Deletes a dead letter and its journal; returns 1, or 0 if there was none.
DROP = """
local prefix = ARGV[1]
local dead = prefix .. 'dead:' .. ARGV[2]
local key = redis.call('HGET', dead, 'key')
if not key then return 0 end
redis.call('DEL', dead, prefix .. 'journal:' .. key)
redis.call('ZREM', prefix .. 'dead', ARGV[2])
return 1
"""


def _unavailable_on_redis_errors(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn "Redis is unreachable or cannot take writes" into StoreUnavailable (the receiver answers 500)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
            store = args[0]
            assert isinstance(store, RedisStore)
            raise StoreUnavailable(f"Redis at {store.url} is unreachable ({type(exc).__name__}): "
                                   "check that it runs and that BOTKIT_STORE points at it") from exc
        except ResponseError as exc:
            if str(exc).startswith(_UNAVAILABLE_REPLIES):
                raise StoreUnavailable(f"Redis refused the write: {exc}") from exc
            raise

    return wrapper


class RedisStore(Store):
    """See the module docstring. `url` may carry `?prefix=mybot:&lease=20` besides redis-py's own options."""

    def __init__(
        self, url: str, *, dedupe_ttl: float = 24 * 3600, lease: float = 30.0, prefix: str = "botkit:",
        state_ttl: float = 7 * 24 * 3600, clock: Callable[[], float] = time.time, consumer: str | None = None,
    ) -> None:
        self._client_url, options = split_options(url)
        self.url = _public_url(self._client_url)
        self.prefix = options.get("prefix", prefix)
        self.lease = float(options.get("lease", lease))
        if self.lease <= 0 or dedupe_ttl <= 0:
            raise ValueError("the lease and the dedupe TTL must be positive")
        self._ttl_ms = max(1, round(dedupe_ttl * 1000))
        self._state_ttl_ms = max(1, round(state_ttl * 1000))
        self._clock = clock
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._redis: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._scripts: dict[str, Any] = {}

    # connection -----------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the client; it connects on first use, so a Redis that is down makes calls fail, not `open`."""
        if self._redis is not None:
            return
        self._redis = aioredis.from_url(
            self._client_url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=30,
            retry=Retry(EqualJitterBackoff(cap=0.2, base=0.01), retries=2),
        )
        for name, source in (("enqueue", ENQUEUE), ("claim", CLAIM), ("done", DONE), ("dead_letter", DEAD_LETTER),
                             ("hand_back", HAND_BACK), ("heartbeat", HEARTBEAT), ("replay", REPLAY),
                             ("drop", DROP)):
            self._scripts[name] = self._redis.register_script(source)

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._redis = self._redis, None
        if pubsub is not None:
            await pubsub.aclose()
        if client is not None:
            await client.aclose()

    @property
    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise StoreUnavailable("the Redis store is not open")
        return self._redis

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _run(self, script: str, *args: Any, keys: Sequence[str] = ()) -> Any:
        self._client  # noqa: B018 - raises when not open
        return await self._scripts[script](keys=list(keys), args=[self.prefix, *args])

    @_unavailable_on_redis_errors
    async def ping(self) -> None:
        await self._client.ping()

    # ingest ---------------------------------------------------------------------------------------------
    @_unavailable_on_redis_errors
    async def enqueue(
        self, *, keys: Sequence[str], lane: str, event: str, body: bytes, delivery_id: str | None,
        trace: str | None = None,
    ) -> bool:
        if not keys:
            raise ValueError("an event needs at least one dedupe key")
        now = self._clock()
        fields = _entry_fields(keys[0], lane, event, body, delivery_id, now, trace)
        job_id = await self._run("enqueue", self._ttl_ms, lane, repr(now), *fields,
                                 keys=[self._key("seen", k) for k in keys])
        return bool(job_id)

    # worker ---------------------------------------------------------------------------------------------
    @_unavailable_on_redis_errors
    async def claim(self, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        rows = await self._run("claim", self.consumer, repr(self._clock()), round(self.lease * 1000), limit)
        return [_job(row) for row in rows]

    @_unavailable_on_redis_errors
    async def heartbeat(self, jobs: Sequence[Job]) -> list[Job]:
        """Restart the lease of claimed jobs; call it well within the lease while a handler runs.

        Returns the jobs this store no longer holds (their lease ran out and another worker took them over,
        or they are finished): their outcome is now the other worker's to report.
        """
        if not jobs:
            return []
        pairs = [part for job in jobs for part in (job.lane, job.id)]
        lost = {_text(i) for i in await self._run("heartbeat", self.consumer, repr(self._clock()),
                                                  round(self.lease * 1000), *pairs)}
        return [job for job in jobs if job.id in lost]

    async def wait(self, timeout: float) -> None:
        """A Redis that does not answer is no error here: sit out the timeout and let `claim` report it, so a
        worker backs off in one place and never spins on a broken subscription."""
        try:
            await self._wait(timeout)
        except StoreUnavailable:
            await asyncio.sleep(timeout)

    @_unavailable_on_redis_errors
    async def _wait(self, timeout: float) -> None:
        pubsub = await self._subscription()
        deadline = time.monotonic() + min(timeout, await self._until_next_due())
        try:
            while (left := deadline - time.monotonic()) > 0:
                if await pubsub.get_message(ignore_subscribe_messages=True, timeout=left) is not None:
                    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
                        pass  # one wake-up covers every message already here
                    return
        except BaseException:
            self._pubsub = None  # broken or cancelled mid-read: subscribe afresh next time
            await pubsub.aclose()
            raise

    async def _subscription(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self._client.pubsub()
            await pubsub.subscribe(self._key("wakeup"))
            self._pubsub = pubsub
        return self._pubsub

    async def _until_next_due(self) -> float:
        """Seconds until the earliest lane with work comes due (a retry, or a lease that may run out)."""
        first = await self._client.zrange(self._key("ready"), 0, 0, withscores=True)
        if not first:
            return float("inf")
        return max(_MIN_WAIT, first[0][1] - self._clock())

    @_unavailable_on_redis_errors
    async def queued_after(self, job: Job) -> list[tuple[str, bytes]]:
        # the lane's stream holds its queued events, this one (its head, in flight) first
        entries = await self._client.xrange(self._key("lane", job.lane), f"({job.id}-0", "+")
        return [(fields[b"event"].decode(), fields[b"body"]) for _, fields in entries]

    @_unavailable_on_redis_errors
    async def done(self, job: Job) -> None:
        if not await self._run("done", job.lane, job.id, repr(self._clock()), job.key, self.consumer):
            self._taken_over(job)

    @_unavailable_on_redis_errors
    async def finish(self, job: Job, finish: Finish) -> None:
        """The state, the records and the done in one MULTI (two round trips with records: their numbers
        come first) instead of one round trip each."""
        first = await self._number(finish.records)
        async with self._client.pipeline(transaction=True) as pipe:
            if finish.state is not None:
                pipe.set(self._key("state", job.lane), json.dumps(finish.state), px=self._state_ttl_ms)
            self._add_records(pipe, finish.records, first, finish.keep)
            await self._scripts["done"](args=[self.prefix, job.lane, job.id, repr(self._clock()), job.key,
                                              self.consumer], client=pipe)
            finished = (await pipe.execute())[-1]
        if not finished:
            self._taken_over(job)

    @staticmethod
    def _taken_over(job: Job) -> None:
        log.warning("finished an event another worker took over after this one's lease ran out; it may "
                    "run twice (raise the lease or heartbeat more often)", extra={"delivery_id": job.delivery_id})

    @_unavailable_on_redis_errors
    async def retry_later(self, job: Job, delay: float, error: str) -> None:
        await self._run("hand_back", job.lane, job.id, self.consumer, repr(self._clock() + delay), "1")

    @_unavailable_on_redis_errors
    async def dead_letter(self, job: Job, error: str) -> None:
        now = self._clock()
        fields = [*_entry_fields(job.key, job.lane, job.event, job.body, job.delivery_id, job.enqueued_at),
                  "attempts", job.attempts + 1, "error", error, "failed_at", repr(now)]
        await self._run("dead_letter", job.lane, job.id, repr(now), job.key, self.consumer, *fields)

    @_unavailable_on_redis_errors
    async def release(self, jobs: Sequence[Job]) -> None:
        now = repr(self._clock())
        for job in jobs:
            await self._run("hand_back", job.lane, job.id, self.consumer, now, "0")

    @_unavailable_on_redis_errors
    async def stats(self) -> QueueStats:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zcard(self._key("queued"))
            pipe.zrange(self._key("queued"), 0, 0, withscores=True)
            pipe.hlen(self._key("inflight"))
            pipe.zcard(self._key("dead"))
            queued, oldest, in_flight, dead = await pipe.execute()
        age = max(0.0, self._clock() - oldest[0][1]) if oldest else 0.0
        return QueueStats(waiting=queued - in_flight, in_flight=in_flight, oldest_age=age, dead_letters=dead)

    # dead letters ---------------------------------------------------------------------------------------
    @_unavailable_on_redis_errors
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        ids = [_text(i) for i in await self._client.zrange(self._key("dead"), 0, limit - 1)] if limit > 0 else []
        if not ids:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for dead_id in ids:
                pipe.hgetall(self._key("dead", dead_id))
            rows = await pipe.execute()
        return [_dead_letter(dead_id, row) for dead_id, row in zip(ids, rows, strict=True) if row]

    @_unavailable_on_redis_errors
    async def replay(self, dead_letter_id: str) -> bool:
        return bool(await self._run("replay", dead_letter_id, repr(self._clock())))

    @_unavailable_on_redis_errors
    async def drop(self, dead_letter_id: str) -> bool:
        return bool(await self._run("drop", dead_letter_id))

    # per-conversation state and the action journal ------------------------------------------------------
    @_unavailable_on_redis_errors
    async def get_state(self, lane: str) -> dict[str, Any]:
        data = await self._client.get(self._key("state", lane))
        return json.loads(data) if data else {}

    @_unavailable_on_redis_errors
    async def set_state(self, lane: str, state: dict[str, Any]) -> None:
        await self._client.set(self._key("state", lane), json.dumps(state), px=self._state_ttl_ms)

    @_unavailable_on_redis_errors
    async def clear_state(self, lane: str) -> None:
        await self._client.delete(self._key("state", lane))

    @_unavailable_on_redis_errors
    async def journal(self, key: str) -> dict[int, Any]:
        rows = await self._client.hgetall(self._key("journal", key))
        return {int(step): json.loads(result) for step, result in rows.items()}

    @_unavailable_on_redis_errors
    async def record(self, key: str, step: int, result: Any) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._key("journal", key), str(step), json.dumps(result))
            pipe.pexpire(self._key("journal", key), self._ttl_ms)
            await pipe.execute()

    # what the bot did: timelines and outcomes -----------------------------------------------------------
    @_unavailable_on_redis_errors
    async def add_records(self, records: Sequence[Record], *, keep: Mapping[str, int] | None = None) -> None:
        if not records:
            return
        first = await self._number(records)
        async with self._client.pipeline(transaction=True) as pipe:
            self._add_records(pipe, records, first, keep)
            await pipe.execute()

    async def _number(self, records: Sequence[Record]) -> int:
        """The first of `len(records)` numbers that keep records apart (two equal records are both kept)."""
        if not records:
            return 0
        return await self._client.incrby(self._key("records_seq"), len(records)) - len(records) + 1

    def _add_records(self, pipe: Any, records: Sequence[Record], first: int, keep: Mapping[str, int] | None) -> None:
        for number, record in enumerate(records, start=first):
            pipe.zadd(self._key("records", record.kind), {f"{number:012d} {json.dumps(record.data)}": record.at})
        for kind, count in (keep or {}).items() if records else ():  # by time: the oldest go
            pipe.zremrangebyrank(self._key("records", kind), 0, -count - 1)

    @_unavailable_on_redis_errors
    async def prune_records(self, kind: str, before: float, *, at_most: int = 1000) -> int:
        if at_most <= 0:
            return 0
        key = self._key("records", kind)
        old = await self._client.zrangebyscore(key, "-inf", f"({before}", start=0, num=at_most)
        return int(await self._client.zrem(key, *old)) if old else 0

    @_unavailable_on_redis_errors
    async def records(self, kind: str, *, since: float = 0.0, until: float = float("inf"),
                      limit: int = 10_000) -> list[Record]:
        if limit <= 0:
            return []
        rows = await self._client.zrevrangebyscore(self._key("records", kind), f"({until}" if until != float("inf")
                                                   else "+inf", since, start=0, num=limit, withscores=True)
        return [Record(kind, at, json.loads(_text(member).split(" ", 1)[1])) for member, at in reversed(rows)]


# helpers ------------------------------------------------------------------------------------------------
def _entry_fields(
    key: str, lane: str, event: str, body: bytes, delivery_id: str | None, enqueued_at: float,
    trace: str | None = None,
) -> list[Any]:
    fields: list[Any] = ["key", key, "lane", lane, "event", event, "body", body, "enqueued_at", repr(enqueued_at)]
    if delivery_id is not None:
        fields += ["delivery_id", delivery_id]
    if trace is not None:
        fields += ["trace", trace]
    return fields


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: Sequence[bytes]) -> dict[str, bytes]:
    return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _job(row: Sequence[Any]) -> Job:
    job_id, flat, attempts = row
    f = _pairs(flat)
    delivery_id, trace = f.get("delivery_id"), f.get("trace")
    return Job(_text(job_id), _text(f["key"]), _text(f["lane"]), _text(f["event"]), bytes(f["body"]),
               None if delivery_id is None else _text(delivery_id), int(attempts), float(f["enqueued_at"]),
               None if trace is None else _text(trace))


def _dead_letter(dead_id: str, row: dict[bytes, bytes]) -> DeadLetter:
    f = {_text(k): v for k, v in row.items()}
    delivery_id = f.get("delivery_id")
    return DeadLetter(dead_id, _text(f["key"]), _text(f["lane"]), _text(f["event"]), bytes(f["body"]),
                      None if delivery_id is None else _text(delivery_id), int(f["attempts"]), _text(f["error"]),
                      float(f["failed_at"]))


def split_options(url: str) -> tuple[str, dict[str, str]]:
    """Take botkit's own options (prefix, lease) out of the URL's query; the rest is redis-py's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("prefix", "lease")}
    rest = urlencode([(k, v) for k, v in query if k not in ours])
    return urlunsplit(parts._replace(query=rest)), ours


def _public_url(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=user + host))
