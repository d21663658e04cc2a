"""CPU per ack of botkit's receiver, without sockets: the ASGI apps are called directly, 50 deliveries at a time.

    .venv/bin/python bench/ack_cpu.py [--deliveries 20000] [--rounds 3]

HTTP and the load generator are left out, so the figure is botkit's own code (verify, parse, route, dedupe,
the store's group commit) and moves far less with the machine's noise than bench/ack.py. Prints CPU µs
per delivery for (a) a bare Starlette app answering 200 (the baseline) and botkit with (b) the SQLite store
and (c) the memory store, each a new signed message_created, and the ratios b/a and c/a: the medians of
--rounds rounds, which alternate the three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ack import BARE_APP, NOOP_BOT, SECRET  # noqa: E402

SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
         "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "scheme": "http", "method": "POST",
         "root_path": "", "path": "/webhook", "raw_path": b"/webhook", "query_string": b""}


def deliveries(count: int) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    from botkit.security import signed_headers
    from botkit.testing.factories import contact_message

    template = contact_message("I have a billing question about my last invoice", conversation_id=1)
    built = []
    for n in range(1, count + 1):
        template["id"] = n
        template["conversation"]["id"] = n % 500 + 1
        body = json.dumps(template).encode()
        headers = {**signed_headers(SECRET, body), "X-Chatwoot-Delivery": f"bench-{n}"}
        raw = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
        built.append((raw + [(k.lower().encode(), v.encode()) for k, v in headers.items()], body))
    return built


async def cpu_per_delivery(app: Any, feed: list[tuple[list[tuple[bytes, bytes]], bytes]],
                           concurrency: int = 50) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}

    async def deliver(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # no disconnect while the app works
            raise AssertionError  # pragma: no cover

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app({**SCOPE, "headers": headers, "state": {}}, receive, send)

    pending = iter(feed)

    async def connection() -> None:
        for headers, body in pending:
            await deliver(headers, body)

    started = time.process_time()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return (time.process_time() - started) / len(feed) * 1e6, statuses


async def measure(store: str, feed) -> tuple[float, dict[int, int]]:
    os.environ.update(CHATWOOT_WEBHOOK_SECRET=SECRET, BOTKIT_BOT="noop_bot:bot", BOTKIT_LOG_LEVEL="WARNING",
                      BOTKIT_RUN_WORKER="0", BOTKIT_STORE=store)
    from botkit.app import app_from_env

    app = app_from_env()
    async with app.router.lifespan_context(app):
        return await cpu_per_delivery(app, feed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        Path(tmp, "noop_bot.py").write_text(NOOP_BOT)
        sys.path.insert(0, tmp)
        import bare_app

        feed = deliveries(args.deliveries)
        for n in range(args.rounds):
            for label, run in [("(a) bare Starlette, 200", lambda: cpu_per_delivery(bare_app.app, feed)),
                               ("(b) botkit, SQLite store", lambda n=n: measure(f"sqlite:///{tmp}/bench{n}.db", feed)),
                               ("(c) botkit, memory store", lambda: measure("memory://", feed))]:
                us, statuses = uvloop.run(run())
                if statuses != {200: len(feed)}:
                    raise SystemExit(f"{label} answered {statuses}")
                runs.setdefault(label, []).append(us)
    print(f"ack CPU, no sockets: {args.deliveries} signed message_created deliveries, 50 at a time, "
          f"{args.rounds} round(s), every answer 200")
    for label, values in runs.items():
        print(f"{label:<26} {statistics.median(values):7.1f} µs CPU per delivery   "
              f"(rounds: {', '.join(f'{v:.0f}' for v in values)})")
    bare, sqlite, memory = (statistics.median(values) for values in runs.values())
    print(f"b/a = {sqlite / bare:.1f}x   c/a = {memory / bare:.1f}x   (the SQLite store's share: b - c = "
          f"{sqlite - memory:.0f} µs)")

if __name__ == "__main__":
    main()
