"""Scale-out benchmark: one receiver on Redis with 1 and with 2 `botkit worker` processes, beside the SQLite
single process (`botkit serve`, receiver and worker in one), same load generator, same run.

    .venv/bin/python bench/scale.py [--seconds 3] [--connections 50]

For each setup: acks/s (signed message_created over 500 conversations, 50 keep-alive connections, while the
workers run) and end-to-end events/s (every acked event handled: acked events / time from the first request
until the queue is empty). The bot does nothing, so this is botkit's own cost per event. Prints the ratios:
Redis with 2 workers over Redis with 1, and each Redis setup over SQLite. Redis runs with appendonly on
(appendfsync everysec). Compare only figures from one run: these machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
from ack import NOOP_BOT, SECRET, free_port, message_factory  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from botkit.testing.redis_server import RedisServer  # noqa: E402


@dataclass
class Figures:
    label: str
    acks: float  # acks/s under load
    end_to_end: float  # handled events/s, first request to empty queue
    p99_ms: float


def spawn(args: list[str], env: dict[str, str], cwd: str, port: int | None = None) -> subprocess.Popen:
    full_env = {**os.environ, **env, "PYTHONPATH": f"{cwd}:{ROOT}"}
    if port is not None:
        full_env["BOTKIT_PORT"] = str(port)
    return subprocess.Popen([sys.executable, "-m", "botkit.cli", *args], env=full_env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def queue_empty(port: int) -> bool:
    try:
        queue = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()["queue"]
    except (httpx.TransportError, ValueError, KeyError):
        return False
    return queue["waiting"] == 0 and queue["in_flight"] == 0


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


def measure(label: str, store: str, workers: int, tmp: str, args: argparse.Namespace) -> Figures:
    env = {"CHATWOOT_WEBHOOK_SECRET": SECRET, "BOTKIT_STORE": store, "BOTKIT_BOT": "noop_bot:bot",
           "BOTKIT_LOG_LEVEL": "WARNING"}
    port = free_port()
    processes = [spawn(["serve"] if workers == 0 else ["serve", "--no-worker"], env, tmp, port)]
    processes += [spawn(["worker"], env, tmp) for _ in range(workers)]
    try:
        wait_until(lambda: answers(port), "the receiver")
        time.sleep(1.0)  # let the worker processes finish importing before the load starts
        make, _ = message_factory()
        started = time.perf_counter()
        result = uvloop.run(loadgen.run(port, make, connections=args.connections, seconds=args.seconds, warmup=0))
        wait_until(lambda: queue_empty(port), "the queue to drain")
        elapsed = time.perf_counter() - started
        accepted = result.statuses.get(200, 0)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    return Figures(label, result.rate, accepted / elapsed, result.percentile(0.99) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "noop_bot.py").write_text(NOOP_BOT)
        sqlite = measure("SQLite, botkit serve (+ worker child)", f"sqlite:///{tmp}/bench.db", 0, tmp, args)
        runs = [sqlite]
        for workers in (1, 2):
            with RedisServer(Path(tmp, f"redis-{workers}")) as redis_server:
                runs.append(measure(f"Redis, 1 receiver + {workers} worker{'s' if workers > 1 else ''}",
                                    redis_server.url, workers, tmp, args))
    _, one, two = runs
    print(f"scale benchmark: {args.connections} connections, {args.seconds:.0f} s of load each, no-op bot, "
          f"{os.cpu_count()} cores")
    for f in runs:
        print(f"{f.label:<36} acks {f.acks:>7.0f}/s (p99 {f.p99_ms:5.1f} ms)   "
              f"end-to-end {f.end_to_end:>7.0f} events/s")
    print(f"Redis 2 workers / 1 worker:  acks {two.acks / one.acks:.2f}   "
          f"end-to-end {two.end_to_end / one.end_to_end:.2f}")
    for f in (one, two):
        print(f"{f.label} / SQLite:  acks {f.acks / sqlite.acks:.2f}   "
              f"end-to-end {f.end_to_end / sqlite.end_to_end:.2f}")


if __name__ == "__main__":
    main()
