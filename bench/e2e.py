"""End-to-end benchmark: signed deliveries -> `botkit serve` (default bot, SQLite) -> the real client ->
the fake Chatwoot, each in its own process on 127.0.0.1.

    .venv/bin/python bench/e2e.py [--events 3000] [--paced-seconds 10]

Prints, from one run:
- the ack-only rate: the same server and load, a bot that does nothing (the baseline);
- end-to-end events/s: a burst of `--events` contact messages, until the last reply reaches the fake;
- p50/p99 from POST to the reply reaching the fake, at a steady 100 events/s.
Targets: >= 1,000 events/s end to end on one process, p50 <= 10 ms at 100 events/s.

The load comes from `wrk` when it is installed (bench/wrk.py), else from bench/loadgen.py, which is Python
and takes ~0.3 ms of the 2 cores' CPU per event from the processes measured (--generator).

The client's rate limiter is lifted for the run (CHATWOOT_RATE_PER_MINUTE): by default it keeps a bot under
Chatwoot's 3,000 requests a minute per IP, i.e. 40 requests/s, which would be the figure measured otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import wrk  # noqa: E402
from ack import cpu_seconds, free_port, process_cpu, start  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = 3000

FAKE = textwrap.dedent("""
    import asyncio, sys, json, uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from botkit.testing.fake_chatwoot import FakeChatwoot

    fake = FakeChatwoot()
    for n in range(1, (int(sys.argv[2]) if len(sys.argv) > 2 else %(conversations)d) + 1):
        fake.add_conversation(conversation_id=n, status="pending")

    async def replies(request):
        sent = [[r.path.split("/")[-2], r.time] for r in fake.requests
                if r.method == "POST" and r.path.endswith("/messages") and r.status == 200
                and not (r.json or {}).get("private")]
        return JSONResponse(len(sent) if "count" in request.query_params else sent)

    async def credentials(request):
        return JSONResponse({"token": fake.bot_token, "secret": fake.bot_secret})

    async def webhook(request):  # answers ack.py's readiness probe
        return JSONResponse({})

    async def model(request):  # bench/peers.py: a language model that takes ?seconds= to answer
        await asyncio.sleep(float(request.query_params.get("seconds", "1")))
        return JSONResponse({"text": "Here is what I found about that."})

    fake.app.router.routes[:0] = [Route("/__bench/replies", replies), Route("/__bench/credentials", credentials),
                                  Route("/webhook", webhook, methods=["POST"]),
                                  Route("/__bench/model", model, methods=["POST"])]
    uvicorn.run(fake.app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
""") % {"conversations": CONVERSATIONS}


def factory(secret: str, conversation_of, first_id: int):
    from botkit.security import signed_headers
    from botkit.testing.factories import contact_message

    body = contact_message("hello, is anyone there?")
    sent: dict[int, float] = {}
    state = {"n": 0}

    def make() -> bytes:
        state["n"] += 1
        n = state["n"]
        conversation = conversation_of(n)
        body["id"] = first_id + n
        body["conversation"]["id"] = conversation
        raw = json.dumps(body).encode()
        headers = signed_headers(secret, raw)
        headers["X-Chatwoot-Delivery"] = f"e2e-{first_id + n}"
        sent[n] = time.time()
        return loadgen.http_post("/webhook", raw, headers)

    return make, sent


def replies(fake_port: int) -> list[tuple[int, float]]:
    answer = httpx.get(f"http://127.0.0.1:{fake_port}/__bench/replies", timeout=30).json()
    return [(int(conversation), at) for conversation, at in answer]


def wait_for_replies(fake_port: int, count: int, timeout: float = 120) -> list[tuple[int, float]]:
    """Poll the count (cheap, so polling takes little CPU from what is measured), then fetch the replies once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"http://127.0.0.1:{fake_port}/__bench/replies?count", timeout=30).json() >= count:
            return replies(fake_port)
        time.sleep(0.2)
    raise RuntimeError(f"only {len(replies(fake_port))} of {count} replies arrived")


def profile(server_pid: int, path: str) -> subprocess.Popen:
    """py-spy recording the server's worker children (not the receiver) until SIGINT; collapsed stacks."""
    children = [c for task in Path(f"/proc/{server_pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install -e '.[bench]'")
    command = [str(spy), "record", "--format", "raw", "--rate", "500", "--nonblocking", "-o", path]
    for child in children:
        command += ["--pid", child]
        break  # py-spy records one process; with ?workers=N the first worker speaks for the others
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches before the burst begins
    return process


def warm_up(port: int, fake_port: int, make) -> None:
    """One delivery, waited for until its reply reaches the fake: the server's worker process has started
    (imports, store, bot) before anything is timed, as it has in a server that has been up a while. Without
    it the burst's first second and the worker's start-up CPU counted against the events."""
    already = httpx.get(f"http://127.0.0.1:{fake_port}/__bench/replies?count", timeout=30).json()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(make())
        connection.recv(65536)
    wait_for_replies(fake_port, already + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (the store's ?workers=N)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                        help="wrk if installed (auto), or bench/loadgen.py")
    parser.add_argument("--fake-from", metavar="CHECKOUT", default=str(ROOT),
                        help="run the fake Chatwoot from another checkout's botkit.testing, so that two versions of "
                             "botkit are timed against the same fake (it shares the cores)")
    parser.add_argument("--profile", metavar="FILE", help="record the worker process(es) during the burst with "
                        "py-spy (the bench extra) into FILE, collapsed stacks (flamegraph.pl, speedscope)")
    args = parser.parse_args()
    use_wrk = wrk.chosen(args.generator)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "fake.py").write_text(FAKE)
        Path(tmp, "noop_bot.py").write_text("class B:\n    async def handle(self, e, j):\n        pass\nbot = B()\n")
        fake_port = free_port()
        env = {**os.environ, "PYTHONPATH": args.fake_from}
        fake_log = Path(tmp, "fake.log").open("wb")
        fake = subprocess.Popen([sys.executable, "fake.py", str(fake_port)], cwd=tmp, env=env, stdout=fake_log,
                                stderr=subprocess.STDOUT)
        processes = [fake]
        try:
            for _ in range(300):
                try:
                    creds = httpx.get(f"http://127.0.0.1:{fake_port}/__bench/credentials").json()
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            common = {"CHATWOOT_WEBHOOK_SECRET": creds["secret"], "BOTKIT_LOG_LEVEL": "WARNING",
                      "CHATWOOT_BASE_URL": f"http://127.0.0.1:{fake_port}", "CHATWOOT_BOT_TOKEN": creds["token"],
                      "CHATWOOT_RATE_PER_MINUTE": "100000000", "BOTKIT_CONCURRENCY": "256",
                      "BOTKIT_TEAMS": "billing=1,technical=2"}

            # (a) the ack-only baseline: same server, same load, a bot that does nothing
            noop_env = {**common, "BOTKIT_STORE": f"sqlite:///{tmp}/noop.db", "BOTKIT_BOT": "noop_bot:bot"}
            noop, noop_port = start([sys.executable, "-m", "botkit.cli", "serve"], noop_env, tmp)
            processes.append(noop)
            make, _ = factory(creds["secret"], lambda n: n % CONVERSATIONS + 1, 1_000_000)
            if use_wrk:
                wrk.write_feed(Path(tmp, "ack.feed"), make, 4 * 8000)
                ack = wrk.run(noop_port, Path(tmp, "ack.feed"), connections=args.connections, seconds=4)
            else:
                ack = uvloop.run(loadgen.run(noop_port, make, connections=args.connections, seconds=4))
            noop.terminate()
            noop.wait(30)

            # (b) end to end: a burst, timed until the last reply reaches the fake
            bot, bot_port = start([sys.executable, "-m", "botkit.cli", "serve"],
                                  {**common, "BOTKIT_STORE": f"sqlite:///{tmp}/bot.db?workers={args.workers}"}, tmp)
            processes.append(bot)
            warm_up(bot_port, fake_port, factory(creds["secret"], lambda n: CONVERSATIONS, 1_900_000)[0])
            make, _ = factory(creds["secret"], lambda n: n % CONVERSATIONS + 1, 2_000_000)
            profiler = profile(bot.pid, args.profile) if args.profile else None
            if use_wrk:
                wrk.write_feed(Path(tmp, "burst.feed"), make, args.events)
                before = {**cpu_seconds(bot.pid), "fake Chatwoot": process_cpu(fake.pid), "load generator": 0.0}
                begin = time.time()
                sender = wrk.burst(bot_port, Path(tmp, "burst.feed"), connections=args.connections)
                processes.append(sender)
                got = wait_for_replies(fake_port, 1 + args.events)
                end_to_end = args.events / (max(at for _, at in got) - begin)
                after = {**cpu_seconds(bot.pid), "fake Chatwoot": process_cpu(fake.pid),
                         "load generator": process_cpu(sender.pid)}
                sender.terminate()
            else:
                requests = [make() for _ in range(args.events)]
                feed = iter(requests)
                before = {**cpu_seconds(bot.pid), "fake Chatwoot": process_cpu(fake.pid),
                          "load generator": time.process_time()}
                begin = time.time()
                uvloop.run(loadgen.run(bot_port, lambda: next(feed), connections=args.connections,
                                       seconds=3600, warmup=0))
                got = wait_for_replies(fake_port, 1 + args.events)
                end_to_end = args.events / (max(at for _, at in got) - begin)
                after = {**cpu_seconds(bot.pid), "fake Chatwoot": process_cpu(fake.pid),
                         "load generator": time.process_time()}
            cpu = {name: (after[name] - before[name]) / args.events * 1e6 for name in before}
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
                profiler.wait(60)

            # (c) latency at a steady 100 events/s, one new conversation per event
            already = len(got)
            count = int(100 * args.paced_seconds)
            make, sent = factory(creds["secret"], lambda n: n, 3_000_000)
            latencies_ack = uvloop.run(loadgen.paced(bot_port, make, rate=100, count=count))
            got = wait_for_replies(fake_port, already + count)[already:]
            arrival = dict(got)
            latencies = sorted(arrival[n] - sent[n] for n in range(1, count + 1) if n in arrival)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(30)
    p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    print(f"e2e benchmark: default bot, SQLite, {args.workers} worker process(es), {os.cpu_count()} cores, "
          f"load from {'wrk' if use_wrk else 'bench/loadgen.py (Python)'}")
    print(ack.line("(a) ack only (bot does nothing)"))
    print(f"(b) end to end, burst of {args.events:<6}    {end_to_end:9.0f} events/s   "
          f"ratio b/a = {end_to_end / ack.rate:.2f}   (target >= 1000 events/s)")
    print("    CPU per event in (b): " + ", ".join(f"{name} {us:.0f} µs" for name, us in cpu.items())
          + f" (the {os.cpu_count()} cores can give {os.cpu_count() * 1e6 / sum(cpu.values()):.0f} events/s)")
    print(f"(c) POST -> reply at 100 events/s       p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
          f"(ack p50 {loadgen.median(latencies_ack) * 1000:.2f} ms; target p50 <= 10 ms)")


if __name__ == "__main__":
    main()
