"""LLM concurrency benchmark: 500 conversations each send one message while the model takes 1 s per answer.

    .venv/bin/python bench/llm_concurrency.py [--conversations 500] [--model-seconds 1.0] [--connections 50]

`botkit serve` runs bots.openai_assistant:bot in its own process (uvloop, SQLite store with two worker
processes, `?workers=2`: how an LLM bot on a machine with 2+ cores should run; `--workers 1` for one);
this process runs a FakeChatwoot, a FakeOpenAI that answers after `--model-seconds`, and the sender.
Prints:
- the time from the first delivery until every conversation got its reply (expect ~1-2 s, not N x 1 s);
- the webhook ack p99 measured during that run beside the ack p99 with no model running (same server, same
  sender, same number of deliveries: messages the bot ignores), and their ratio (target <= 2).

BOTKIT_CONCURRENCY (default 64) caps the conversations in flight, so 500 slow model calls would take
500/64 x 1 s; the benchmark sets it to the number of conversations. CHATWOOT_RATE_PER_MINUTE (default 2400,
below Chatwoot's own 3000/min) would space the 500 replies over 12 s; it is raised too, as the fake has no limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
from ack import cpu_seconds, start  # noqa: E402

from botkit.security import signed_headers  # noqa: E402
from botkit.testing import factories  # noqa: E402
from botkit.testing.fake_chatwoot import FakeChatwoot  # noqa: E402
from botkit.testing.fake_openai import FakeOpenAI  # noqa: E402

FIRST = 1000  # the first conversation id
IGNORED = 999  # where the bot's own echoes go: acked, queued, then dropped by the bot's policies


timeline: dict[str, float] = {}  # wall-clock marks of run (b), beside the fakes' request times


cpu_used: dict[str, float] = {}  # CPU seconds of run (b): the receiver and its worker child


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def post_all(port: int, secret: str, bodies: list[dict], connections: int) -> list[float]:
    """Post signed deliveries over `connections` keep-alive sockets (raw HTTP/1.1: httpx costs more per request
    than the server measured); the ack latency of each."""
    latencies: list[float] = []
    queue = list(reversed(bodies))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                raw = json.dumps(queue.pop()).encode()
                request = loadgen.http_post("/webhook", raw, {**signed_headers(secret, raw),
                                                              "Content-Type": "application/json"})
                started = time.perf_counter()
                writer.write(request)
                status = (await reader.readline()).split()[1]
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if status != b"200":
                    raise SystemExit(f"the receiver answered {status.decode()}")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(min(connections, len(bodies)))))
    return latencies


def replies(fake: FakeChatwoot, conversations: int) -> int:
    return sum(1 for n in range(FIRST, FIRST + conversations)
               for m in fake.messages(n) if m["message_type"] == 1 and not m.get("private"))


async def probe(port: int, secret: str, until: asyncio.Event) -> list[float]:
    """Deliveries the bot ignores, one at a time, until `until` is set: acks sampled across the whole run."""
    latencies: list[float] = []
    while not until.is_set():
        latencies += await post_all(port, secret, [factories.bot_echo("probe", conversation_id=IGNORED)], 1)
        await asyncio.sleep(0.005)
    return latencies


async def drained(port: int) -> None:
    """Return when /readyz shows no event waiting or in flight."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(600):
            queue = (await client.get("/readyz")).json()["queue"]
            if queue["waiting"] == 0 and queue["in_flight"] == 0:
                return
            await asyncio.sleep(0.1)
    raise SystemExit("the worker did not drain its queue in a minute")


async def measure(port: int, server_pid: int, chatwoot: FakeChatwoot, conversations: int, connections: int,
                  idle_seconds: float) -> tuple[list[float], list[float], float]:
    secret = chatwoot.bot_secret
    # (a) no model running: as many deliveries, of messages the bot ignores, then probes for a while
    done = asyncio.Event()
    prober = asyncio.create_task(probe(port, secret, done))
    echoes = [factories.bot_echo(f"echo {n}", conversation_id=IGNORED) for n in range(conversations)]
    idle = await post_all(port, secret, echoes, connections)
    await asyncio.sleep(idle_seconds)
    done.set()
    idle += await prober
    await drained(port)  # the worker has handled every echo (and finished starting): (b) starts on an idle worker
    # (b) every conversation asks the model at once; the same probes run until the last reply arrives
    done = asyncio.Event()
    prober = asyncio.create_task(probe(port, secret, done))
    messages = [factories.contact_message(f"question {n}", conversation_id=FIRST + n) for n in range(conversations)]
    started = time.perf_counter()
    timeline["start"] = time.time()
    cpu_before = {**cpu_seconds(server_pid), "fakes": time.process_time()}
    busy = await post_all(port, secret, messages, connections)
    timeline["acked"] = time.time()
    while replies(chatwoot, conversations) < conversations:
        if time.perf_counter() - started > 120:
            raise SystemExit(f"only {replies(chatwoot, conversations)} replies after two minutes")
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu_after = {**cpu_seconds(server_pid), "fakes": time.process_time()}
    cpu_used.update({k: v - cpu_before[k] for k, v in cpu_after.items()})
    done.set()
    busy += await prober
    return idle, busy, elapsed


async def main(conversations: int, model_seconds: float, connections: int, workers: int) -> None:
    chatwoot = FakeChatwoot(messages_per_minute=10**9)
    for n in range(FIRST - 1, FIRST + conversations):
        chatwoot.add_conversation(1, n, status="pending")
    model = FakeOpenAI(api_key="sk-bench", default="Thanks, we are on it.", delay=model_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        async with chatwoot.serve(), model.serve():
            env = {
                "BOTKIT_BOT": "bots.openai_assistant:bot", "BOTKIT_STORE": f"sqlite:///{tmp}/bench.db?workers={workers}",
                "BOTKIT_CONCURRENCY": str(conversations), "CHATWOOT_RATE_PER_MINUTE": "1000000000",
                "CHATWOOT_BASE_URL": chatwoot.url, "CHATWOOT_BOT_TOKEN": chatwoot.bot_token,
                "CHATWOOT_WEBHOOK_SECRET": chatwoot.bot_secret, "BOTKIT_LOG_LEVEL": "WARNING",
                "BOTKIT_TEAMS": "billing=3,technical=4",  # the keyword rules' teams (no message here matches them)
                "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": model.base_url,
                "BOTKIT_BURST_WINDOW": "0",  # one message per conversation: measured without a window (bursts.py)
            }
            server, port = await asyncio.to_thread(start, [sys.executable, "-m", "botkit.cli", "serve"], env, tmp)
            try:
                idle, busy, elapsed = await measure(port, server.pid, chatwoot, conversations, connections,
                                                    idle_seconds=model_seconds * 1.5)
            finally:
                server.terminate()
                await asyncio.to_thread(server.wait, 30)
    spread = max(r.time for r in model.requests) - min(r.time for r in model.requests)
    begin = timeline["start"]
    asked = sorted(r.time - begin for r in model.requests)
    answered = sorted(r.time - begin for n in range(FIRST, FIRST + conversations)
                      for r in chatwoot.requests_to("POST", f"/api/v1/accounts/1/conversations/{n}/messages"))
    notes = sum(1 for n in range(FIRST, FIRST + conversations) for m in chatwoot.messages(n) if m.get("private"))
    typing = len(chatwoot.requests_to("POST", "/api/v1/accounts/1/conversations/*/toggle_typing_status"))
    print(f"llm concurrency: {conversations} conversations x 1 message, model {model_seconds:g} s per answer, "
          f"BOTKIT_CONCURRENCY={conversations}, {workers} worker process(es), {connections} sender connections, "
          f"{os.cpu_count()} cores")
    serial = conversations * model_seconds
    print(f"all {conversations} replies in {elapsed:.2f} s (one at a time would be {serial:.0f} s); "
          f"{len(model.requests)} model requests, arriving over {spread:.2f} s; {notes} hand-off notes")
    print(f"timeline: deliveries acked by +{timeline['acked'] - begin:.2f} s; model asked from +{asked[0]:.2f} to "
          f"+{asked[-1]:.2f} s; replies posted from +{answered[0]:.2f} to +{answered[-1]:.2f} s")
    print(f"Chatwoot requests: {len(answered)} replies, {typing} typing indicators")
    print(f"CPU while answering: receiver {cpu_used['receiver']:.2f} s, worker {cpu_used['worker']:.2f} s, "
          f"this process (fake model, fake Chatwoot, sender) {cpu_used['fakes']:.2f} s, "
          f"in {elapsed:.2f} s on {os.cpu_count()} cores (worker: "
          f"{cpu_used['worker'] / conversations * 1000:.1f} ms per conversation)")
    ratio = p99(busy) / p99(idle)
    print(f"ack p99: {p99(idle) * 1000:.1f} ms with no model running ({len(idle)} acks), {p99(busy) * 1000:.1f} ms "
          f"while the model works ({len(busy)} acks); ratio {ratio:.2f} (target <= 2)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--model-seconds", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (the store's ?workers=N; 2, as an LLM bot on 2+ cores should run)")
    args = parser.parse_args()
    uvloop.run(main(args.conversations, args.model_seconds, args.connections, args.workers))
