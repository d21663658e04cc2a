"""botkit beside what people write instead, in one run, on this machine, against the same fake Chatwoot (in
its own process), with the same keyword bot logic (the Agent Bots guide's):

  (a) flask    the guide's Flask bot as deployed: gunicorn, 5 sync workers (2 x cores + 1), Chatwoot called
               inside the request (bench/peers/flask_app.py)
  (b) fastapi  the same bot inline in FastAPI with httpx, one uvicorn process (bench/peers/fastapi_app.py)
  (c) express  the guide's Express bot on Node (bench/peers/express_app.js)
  (d) botkit   `botkit serve`: signature check, dedupe, SQLite store, worker process (the default bot)

    .venv/bin/pip install -e '.[bench]'     # flask, gunicorn, fastapi, requests (not in `make test`)
    .venv/bin/python bench/peers.py [--systems flask,fastapi,express,botkit] [--events 2000]

Node's `express` is installed on first use with `npm install --prefix bench/peers/node express@5` (that
folder is ignored by git); Node itself is Debian's `nodejs`.

Per system, each round against a fresh start of it:
- burst: `--events` contact messages, one conversation each, 50 connections; events/s from the first POST to
  the last reply reaching the fake Chatwoot (the peers reply before they ack, botkit after);
- ack p50/p99: a steady 100 deliveries/s for 5 s, POST to its answer;
- model 1 s / model 6 s: the bot asks a model that takes that long before replying; 10 deliveries/s for 10 s,
  each given 5 s as Chatwoot does (`WEBHOOK_TIMEOUT`, lib/webhooks/trigger.rb): the share not answered 200 in
  time is what Chatwoot counts as failed and hands to humans; "late" counts the replies the bot sent anyway,
  after the hand-off (talking over the humans);
- SIGKILL: the 1 s model, `--kill-events` deliveries at 50 connections; the whole process group is killed
  once a third are answered, then started again on the same store; "lost" are deliveries sent before the
  kill that never got a reply, "acked+lost" those of them that had been answered 200;
- duplicates: 200 messages each delivered twice at once with two delivery ids (Chatwoot issue #11901);
  "doubled" counts conversations that got two replies.

botkit's Chatwoot client rate limit is lifted for the run (CHATWOOT_RATE_PER_MINUTE), as in bench/e2e.py:
the peers have none. The peers check no signature (the guide's examples do not); botkit checks each one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import wrk  # noqa: E402
from ack import free_port  # noqa: E402
from e2e import FAKE, factory, replies, wait_for_replies, warm_up  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
NODE = PEERS / "node"
SYSTEMS = ["flask", "fastapi", "express", "botkit"]
TIMEOUT = 5.0  # Chatwoot's WEBHOOK_TIMEOUT
# conversation ranges per round, so one fake serves them all; the bursts' come last, one range per round
PACED, MODEL_1, MODEL_6, KILL, DUPES, BURSTS = 1, 601, 801, 1001, 4001, 5001


@dataclass
class Figures:
    burst: float = 0.0
    ack_p50: float = 0.0
    ack_p99: float = 0.0
    failed: dict[float, float] = field(default_factory=dict)  # model seconds -> share failed
    late: dict[float, int] = field(default_factory=dict)  # model seconds -> replies sent after the hand-off
    unanswered: dict[float, int] = field(default_factory=dict)  # model seconds -> deliveries never replied to
    lost: int = 0
    acked_lost: int = 0
    kill_sent: int = 0
    doubled: int = 0


class System:
    """One of the four, started fresh for each round in its own process group, so a SIGKILL takes it all."""

    def __init__(self, name: str, tmp: str, fake_url: str, creds: dict[str, str]) -> None:
        self.name, self.tmp, self.fake_url, self.creds = name, tmp, fake_url, creds
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.store = ""

    def command(self) -> list[str]:
        bin_dir = Path(sys.executable).parent
        return {
            "flask": [str(bin_dir / "gunicorn"), "--workers", "5", "--bind", f"127.0.0.1:{self.port}",
                      "--timeout", "60", "flask_app:app"],
            "fastapi": [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--port", str(self.port),
                        "--log-level", "warning", "--no-access-log"],
            "express": ["node", "express_app.js"],
            "botkit": [sys.executable, "-m", "botkit.cli", "serve"],
        }[self.name]

    def start(self, model_seconds: float = 0, *, new_store: bool = True) -> None:
        self.stop()  # never two at once: the cleanup stops only the newest
        self.port = free_port()
        if new_store:
            self.store = f"sqlite:///{self.tmp}/{self.name}-{time.monotonic_ns()}.db"
        env = {**os.environ, "PYTHONPATH": f"{PEERS}:{ROOT}", "NODE_PATH": str(NODE / "node_modules"),
               "PORT": str(self.port), "CHATWOOT_BASE_URL": self.fake_url, "CHATWOOT_BOT_TOKEN": self.creds["token"],
               "MODEL_SECONDS": str(model_seconds),
               # botkit's own settings
               "BOTKIT_PORT": str(self.port), "CHATWOOT_WEBHOOK_SECRET": self.creds["secret"],
               "BOTKIT_LOG_LEVEL": "WARNING", "CHATWOOT_RATE_PER_MINUTE": "100000000", "BOTKIT_CONCURRENCY": "256",
               "BOTKIT_TEAMS": "billing=1,technical=2", "BOTKIT_STORE": self.store,
               "BOTKIT_BOT": "model_bot:bot" if model_seconds else "bots.support_router:bot"}
        log = open(Path(self.tmp, f"{self.name}.log"), "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(self.command(), cwd=PEERS, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = Path(log.name).read_text().splitlines()[-15:]
                raise SystemExit(f"{self.name} exited at start:\n" + "\n".join(tail))
            try:  # an empty JSON object: every system answers it 200 without acting
                httpx.post(f"http://127.0.0.1:{self.port}/webhook", json={}, timeout=0.5)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise SystemExit(f"{self.name} did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


# load --------------------------------------------------------------------------------------------------


async def send_one(port: int, request: bytes, timeout: float) -> bool:
    """One delivery on a connection of its own, as Chatwoot's Sidekiq job sends it: True when answered 200
    within `timeout` seconds."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(request)
        status = await asyncio.wait_for(reader.readline(), timeout)
        return status.split()[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        writer.close()


async def paced_outcomes(port: int, requests: list[bytes], rate: float) -> list[bool]:
    begin = time.perf_counter()

    async def at(i: int, request: bytes) -> bool:
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        return await send_one(port, request, TIMEOUT)

    return list(await asyncio.gather(*(at(i, r) for i, r in enumerate(requests))))


async def burst_until_killed(system: System, requests: list[bytes], connections: int) -> tuple[set[int], set[int]]:
    """Send `requests` (their index is their number), `connections` at a time, each on a new connection as
    Chatwoot's jobs do; kill the system once a third are acked. Returns (sent, acked): what went out before
    the kill, and what was answered 200."""
    queue = collections.deque(enumerate(requests))
    sent: set[int] = set()
    acked: set[int] = set()
    killed = asyncio.Event()

    async def sender() -> None:
        while queue and not killed.is_set():
            n, request = queue.popleft()
            sent.add(n)
            if await send_one(system.port, request, 60):
                acked.add(n)
            if len(acked) >= len(requests) // 3 and not killed.is_set():
                killed.set()
                system.kill()

    await asyncio.gather(*(sender() for _ in range(connections)))
    return sent, acked


def replied(fake_port: int, first: int, count: int) -> collections.Counter:
    """How many replies each conversation in [first, first + count) has got so far."""
    return collections.Counter(c for c, _ in replies(fake_port) if first <= c < first + count)


def settle(fake_port: int, first: int, count: int, expect: int, quiet: float = 3.0, limit: float = 90) -> None:
    """Wait until `expect` conversations have replies, or no new reply came for `quiet` seconds."""
    deadline, last, last_change = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        got = sum(replied(fake_port, first, count).values())
        if got >= expect:
            return
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return
        time.sleep(0.3)


# rounds ------------------------------------------------------------------------------------------------


def speed(system: System, fake_port: int, events: int, first: int, ids: int) -> tuple[float, float, float]:
    """One start: a burst of `events` (conversations from `first`), then 5 s at 100/s. Returns the burst's
    events/s end to end, and the paced acks' p50 and p99 in seconds."""
    system.start()
    try:
        warm_up(system.port, fake_port, factory(system.creds["secret"], lambda n: first, ids - 1)[0])
        already = httpx.get(f"http://127.0.0.1:{fake_port}/__bench/replies?count", timeout=30).json()
        make, _ = factory(system.creds["secret"], lambda n: first + n - 1, ids)
        feed = Path(system.tmp, "burst.feed")
        wrk.write_feed(feed, make, events)
        begin = time.time()
        sender = wrk.burst(system.port, feed, connections=50)
        try:
            got = wait_for_replies(fake_port, already + events)
        finally:
            sender.terminate()
            sender.wait()
        rate = events / (max(at for c, at in got if first <= c < first + events) - begin)
        make, _ = factory(system.creds["secret"], lambda n: PACED + n - 1, ids + 500_000)
        latencies = sorted(uvloop.run(loadgen.paced(system.port, make, rate=100, count=500)))
        return rate, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    finally:
        system.stop()


def behaviour(system: System, fake_port: int, args: argparse.Namespace, figures: Figures) -> None:
    """The rounds whose figures are counts, not speeds: slow models, SIGKILL, duplicates."""
    secret = system.creds["secret"]
    seq = iter(range(10_000_000, 100_000_000, 1_000_000))  # message ids: a fresh range per round

    # a slow model: 10 deliveries/s for 10 s, 5 s each
    for seconds, first in ((1.0, MODEL_1), (6.0, MODEL_6)):
        system.start(seconds)
        make, _ = factory(secret, lambda n, first=first: first + n - 1, next(seq))
        outcomes = uvloop.run(paced_outcomes(system.port, [make() for _ in range(100)], rate=10))
        settle(fake_port, first, 100, 100, quiet=seconds + 3)
        answered = replied(fake_port, first, 100)
        figures.failed[seconds] = outcomes.count(False) / len(outcomes)
        figures.late[seconds] = sum(1 for i, ok in enumerate(outcomes) if not ok and answered[first + i])
        figures.unanswered[seconds] = sum(1 for i in range(len(outcomes)) if not answered[first + i])
        system.stop()

    # SIGKILL mid-burst with the 1 s model, then a restart on the same store
    system.start(1.0)
    make, _ = factory(secret, lambda n: KILL + n - 1, next(seq))
    requests = [make() for _ in range(args.kill_events)]
    sent, acked = uvloop.run(burst_until_killed(system, requests, 50))
    if system.process.poll() is None:
        raise SystemExit(f"{system.name}: the SIGKILL round ended before a third of it was acked ({len(acked)})")
    system.start(1.0, new_store=False)
    # botkit's restarted worker takes back what was in flight; give it time (its first replies came ~7 s in)
    settle(fake_port, KILL, args.kill_events, len(sent), quiet=20)
    answered = replied(fake_port, KILL, args.kill_events)
    figures.kill_sent = len(sent)
    figures.lost = sum(1 for n in sent if not answered[KILL + n])
    figures.acked_lost = sum(1 for n in acked if not answered[KILL + n])
    system.stop()

    # duplicate deliveries: each message twice, at once, with two delivery ids
    system.start()
    make, _ = factory(secret, lambda n: DUPES + (n - 1) // 2, next(seq))
    pairs = []
    for _ in range(200):
        first_copy = make()
        pairs += [first_copy, first_copy.replace(b"X-Chatwoot-Delivery: e2e-", b"X-Chatwoot-Delivery: again-")]
        make()  # keep the factory's numbering: two deliveries per conversation
    uvloop.run(paced_outcomes(system.port, pairs, rate=400))
    settle(fake_port, DUPES, 200, 200, quiet=3)
    figures.doubled = sum(1 for count in replied(fake_port, DUPES, 200).values() if count > 1)
    system.stop()


def credentials(fake_port: int) -> dict[str, str]:
    for _ in range(600):
        try:
            return httpx.get(f"http://127.0.0.1:{fake_port}/__bench/credentials").json()
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the fake Chatwoot did not start")


def ensure_peers(systems: list[str]) -> None:
    missing = [name for name, module in (("flask", "flask"), ("flask", "gunicorn"), ("fastapi", "fastapi"))
               if name in systems and shutil.which(module) is None and not _importable(module)]
    if missing:
        raise SystemExit("install the peers first: .venv/bin/pip install -e '.[bench]'")
    if "express" in systems and not (NODE / "node_modules" / "express").exists():
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise SystemExit("the express peer needs Node: apt-get install nodejs npm")
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE), "express@5"],
                       check=True)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def table(results: dict[str, Figures]) -> str:
    botkit = results.get("botkit")
    rows = ["| system | burst events/s | botkit's ratio | ack p50 | ack p99 | failed, 1 s model | failed, 6 s model "
            "| late replies (1 s / 6 s) | lost on SIGKILL (acked) | doubled of 200 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, f in results.items():
        ratio = f"{botkit.burst / f.burst:.2f}x" if botkit and f.burst and name != "botkit" else "-"
        speed = f"| {name} | {f.burst:,.0f} | {ratio} | {f.ack_p50 * 1000:.1f} ms | {f.ack_p99 * 1000:.1f} ms "
        if not f.failed:  # --speed-only
            rows.append(speed + "| - " * 5 + "|")
            continue
        rows.append(speed + f"| {f.failed[1.0]:.0%} | {f.failed[6.0]:.0%} | {f.late[1.0]} / {f.late[6.0]} "
                    f"| {f.lost} of {f.kill_sent} ({f.acked_lost}) | {f.doubled} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--events", type=int, default=2000, help="the burst's deliveries")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per system, taken in turns (median)")
    parser.add_argument("--kill-events", type=int, default=1500, help="deliveries of the SIGKILL round")
    parser.add_argument("--speed-only", action="store_true",
                        help="the bursts and acks only (no model, SIGKILL or duplicate rounds): a quick comparison")
    args = parser.parse_args()
    # a SIGTERM (`timeout`, a CI step's end) unwinds like Ctrl-C, so the servers, each in its own session, are
    # stopped by the cleanup below instead of being left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    systems = args.systems.split(",")
    if shutil.which("wrk") is None:
        raise SystemExit("the burst needs wrk: apt-get install wrk")
    ensure_peers(systems)
    results = {name: Figures() for name in systems}
    conversations = BURSTS + args.rounds * args.events
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        Path(tmp, "fake.py").write_text(FAKE)
        running = {}
        for name in systems:  # one fake Chatwoot each, in its own process
            fake_port = free_port()
            fake = subprocess.Popen([sys.executable, "fake.py", str(fake_port), str(conversations)], cwd=tmp,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            stack.callback(fake.wait, 30)
            stack.callback(fake.terminate)
            running[name] = (System(name, tmp, f"http://127.0.0.1:{fake_port}", credentials(fake_port)), fake_port)
            stack.callback(running[name][0].stop)
        # speeds: the systems take turns, round after round, so the machine's noise falls on all of them
        speeds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in systems}
        for r in range(args.rounds):
            for name, (system, fake_port) in running.items():
                print(f"round {r + 1}: {name} burst ...", file=sys.stderr, flush=True)
                speeds[name].append(speed(system, fake_port, args.events, BURSTS + r * args.events,
                                          100_000_000 + r * 1_000_000))
        for name, figures in results.items():
            rates, p50s, p99s = zip(*speeds[name], strict=True)
            figures.burst, figures.ack_p50, figures.ack_p99 = map(statistics.median, (rates, p50s, p99s))
        for name, (system, fake_port) in running.items():
            if args.speed_only:
                break
            print(f"{name}: slow models, SIGKILL, duplicates ...", file=sys.stderr, flush=True)
            behaviour(system, fake_port, args, results[name])
    print(f"peers benchmark: {os.cpu_count()} cores, bursts of {args.events} from wrk at 50 connections "
          f"(median of {args.rounds}, systems in turns), SIGKILL round of {args.kill_events}")
    print(table(results))
    for name, f in results.items():
        if any(f.unanswered.values()):
            print(f"{name}: deliveries never replied to in the model rounds (1 s / 6 s): "
                  f"{f.unanswered[1.0]} / {f.unanswered[6.0]} of 100")


if __name__ == "__main__":
    main()
