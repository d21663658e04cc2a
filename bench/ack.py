"""Ack benchmark: (a) a bare Starlette app answering 200 beside (b) `botkit serve` with signatures and the
SQLite store, same load generator, same run, one uvicorn worker each (uvloop + httptools).

    .venv/bin/python bench/ack.py [--seconds 5] [--connections 50] [--rounds 3] [--floor]

Prints acks/s, p50 and p99 for both and the ratio b/a (with --rounds N, each round and the medians), and the
CPU botkit's processes spent per ack. Target: ratio >= 0.4, p99 <= 25 ms at 50 connections.
Every request to (b) is a new, correctly signed message_created, so each one is verified, deduped and
committed (group commit) before its 200. The worker runs too, handing each event to a bot that does nothing.
--floor adds (m): the least an ack can do (Starlette, HMAC, JSON, one SQLite insert per event in a group
commit; no dedupe, no worker), so the gap between (b) and what any such design can do here is measured too.

The load generator is `wrk` when it is installed (`apt-get install wrk`), else bench/loadgen.py, which is
Python and needs a core of its own at these rates, CPU taken from the servers measured (--generator).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import wrk  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def webhook(request):
    await request.body()
    return Response(b'{"status":"accepted"}', media_type="application/json")

app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
"""
FLOOR_APP = """
import asyncio, hashlib, hmac, os, sqlite3
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

db = sqlite3.connect(os.environ["FLOOR_DB"], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, body BLOB)")
pending = []

def commit():
    batch = pending[:]
    pending.clear()
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT OR IGNORE INTO queue (key, body) VALUES (?, ?)", [(k, b) for k, b, _ in batch])
    db.execute("COMMIT")
    for _, _, done in batch:
        done.set_result(None)

async def webhook(request):
    body = await request.body()
    stamp = request.headers["x-chatwoot-timestamp"].encode()
    mac = hmac.new(b"%s", stamp + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest("sha256=" + mac, request.headers["x-chatwoot-signature"]):
        return Response(status_code=401)
    event = orjson.loads(body)
    loop = asyncio.get_running_loop()
    if not pending:
        loop.call_soon(commit)
    done = loop.create_future()
    pending.append((str(event["id"]), body, done))
    await done
    return Response(b'{"status":"accepted"}', media_type="application/json")

app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
"""
NOOP_BOT = """
class NoopBot:
    async def handle(self, event, job):
        return None

bot = NoopBot()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early with {process.returncode}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/webhook", content=b"{}", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def start(command: list[str], env: dict[str, str], cwd: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    full_env = {**os.environ, **env, "BOTKIT_PORT": str(port), "PYTHONPATH": f"{cwd}:{ROOT}"}
    command = [c.replace("{port}", str(port)) for c in command]
    process = subprocess.Popen(command, env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, process)
    return process, port


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds used so far by `botkit serve` (the receiver) and its children (the worker)."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    return {"receiver": process_cpu(pid), "worker": sum(process_cpu(c) for c in children)}


def message_factory():
    from botkit.security import signed_headers
    from botkit.testing.factories import contact_message

    template = contact_message("I have a billing question about my last invoice", conversation_id=1)
    counter = itertools.count(1)

    def make() -> bytes:
        n = next(counter)
        template["id"] = n
        template["conversation"]["id"] = n % 500 + 1  # 500 conversations
        body = json.dumps(template).encode()
        headers = signed_headers(SECRET, body)
        headers["X-Chatwoot-Delivery"] = f"bench-{n}"
        return loadgen.http_post("/webhook", body, headers)

    return make, len(json.dumps(template))


class Load:
    """One load generator for the whole run: wrk with a feed built before each round, or bench/loadgen.py."""

    def __init__(self, generator: str, make, args, tmp: str) -> None:
        self.use_wrk = wrk.chosen(generator)
        self.make, self.args = make, args
        self.feed = Path(tmp, "feed.bin")

    @property
    def name(self) -> str:
        return "wrk" if self.use_wrk else "bench/loadgen.py (Python)"

    def new_round(self) -> None:
        """wrk: sign a fresh feed (signatures are good for 300 s), enough for botkit's rate over the run."""
        if self.use_wrk:
            wrk.write_feed(self.feed, self.make, int(self.args.seconds * 8000))

    def run(self, port: int) -> loadgen.Result | wrk.Result:
        if self.use_wrk:
            return wrk.run(port, self.feed, connections=self.args.connections, seconds=self.args.seconds)
        return uvloop.run(loadgen.run(port, self.make, connections=self.args.connections, seconds=self.args.seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="alternate (a) and (b) this many times; medians")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                        help="wrk if installed (auto), or bench/loadgen.py")
    parser.add_argument("--floor", action="store_true", help="also run (m), the least an ack can do")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for botkit serve")
    parser.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                        help="also run (c): botkit serve with these settings on top, e.g. BOTKIT_METRICS=false")
    args = parser.parse_args()

    make, size = message_factory()
    uvicorn_args = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    with tempfile.TemporaryDirectory() as tmp:
        load = Load(args.generator, make, args, tmp)
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        Path(tmp, "floor_app.py").write_text(FLOOR_APP % SECRET)
        Path(tmp, "noop_bot.py").write_text(NOOP_BOT)
        bare, bare_port = start([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", "{port}", *uvicorn_args],
                                {}, tmp)
        botkit_env = {"CHATWOOT_WEBHOOK_SECRET": SECRET, "BOTKIT_STORE": f"sqlite:///{tmp}/bench.db",
                      "BOTKIT_BOT": "noop_bot:bot", "BOTKIT_LOG_LEVEL": "WARNING",
                      **dict(e.split("=", 1) for e in args.env)}
        compare_result = None
        rounds: list[tuple[Any, Any, Any, dict[str, float]]] = []
        try:
            for n in range(args.rounds):  # alternating, so drift on a noisy machine hits both sides alike
                load.new_round()
                bare_result = load.run(bare_port)
                botkit_result, cpu = measure_botkit(botkit_env, tmp, f"bench{n}.db", load)
                floor_result = None
                if args.floor:
                    floor, floor_port = start([sys.executable, "-m", "uvicorn", "floor_app:app", "--port", "{port}",
                                               *uvicorn_args], {"FLOOR_DB": f"{tmp}/floor{n}.db"}, tmp)
                    try:
                        floor_result = load.run(floor_port)
                    finally:
                        floor.terminate()
                        floor.wait(30)
                rounds.append((bare_result, botkit_result, floor_result, cpu))
            if args.compare:
                compare_env = {**botkit_env, **dict(e.split("=", 1) for e in args.compare)}
                load.new_round()
                compare_result, _ = measure_botkit(compare_env, tmp, "compare.db", load)
        finally:
            bare.terminate()
            bare.wait(30)
    print(f"ack benchmark: {args.connections} connections, {args.seconds:.0f} s each, {size} B signed bodies, "
          f"{os.cpu_count()} cores, {args.rounds} round(s), load from {load.name}")
    ratios, p99s, floors = [], [], []
    for bare_result, botkit_result, floor_result, cpu in rounds:
        print(bare_result.line("(a) bare Starlette, 200"))
        print(botkit_result.line("(b) botkit serve, HMAC + SQLite") +
              f"   CPU per ack: receiver {cpu['receiver']:.0f} µs, worker {cpu['worker']:.0f} µs")
        if floor_result is not None:
            print(floor_result.line("(m) floor: HMAC + JSON + insert"))
            floors.append(floor_result.rate / bare_result.rate)
        ratios.append(botkit_result.rate / bare_result.rate)
        p99s.append(botkit_result.percentile(0.99) * 1000)
    ratio, p99 = statistics.median(ratios), statistics.median(p99s)
    spread = f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    print(f"ratio b/a = {ratio:.2f}{spread} (target >= 0.40)   botkit p99 = {p99:.1f} ms (target <= 25 ms)")
    if floors:
        print(f"ratio m/a = {statistics.median(floors):.2f} (rounds: {', '.join(f'{r:.2f}' for r in floors)})   "
              f"b/m = {statistics.median(r / f for r, f in zip(ratios, floors, strict=True)):.2f}")
    if compare_result is not None:
        print(compare_result.line(f"(c) botkit serve, {' '.join(args.compare)}"[:34]))
        print(f"ratio b/c = {botkit_result.rate / compare_result.rate:.2f}   "
              f"(c/a = {compare_result.rate / bare_result.rate:.2f})")


def measure_botkit(env: dict[str, str], tmp: str, db: str, load: Load) -> tuple[Any, dict[str, float]]:
    """(b)'s result, and the CPU its receiver and worker spent per ack during the run (µs)."""
    env = {**env, "BOTKIT_STORE": f"sqlite:///{tmp}/{db}"}
    process, port = start([sys.executable, "-m", "botkit.cli", "serve"], env, tmp)
    try:
        before = cpu_seconds(process.pid)
        result = load.run(port)
        after = cpu_seconds(process.pid)
        acks = max(1, int(result.rate * result.seconds))
        return result, {name: (after[name] - before[name]) / acks * 1e6 for name in after}
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
