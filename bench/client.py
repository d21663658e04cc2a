"""Requests per second of ChatwootClient.send_message beside a bare httpx POST loop, same fake, same run.

    .venv/bin/python bench/client.py [--seconds 5] [--concurrency 16] [--cpu]

The loops post the same message body to the same FakeChatwoot on a loopback uvicorn, with the same
concurrency and connection pool size: bare httpx on its own transport, bare httpx on botkit's
AiohttpTransport (what the client uses), and the client. The client's token bucket is set far above the offered load so
the figure measures the client's own cost (retry wrapper, error mapping, JSON), not the rate limit.
Prints the three figures, the client's ratio to bare httpx on the same transport (target >= 0.8),
and the transport's gain.

--cpu measures instead the client-side CPU per request, with the fake in a process of its own: raw aiohttp
(the floor under any client on this transport), bare httpx on AiohttpTransport, and ChatwootClient. This is
what a worker spends per Chatwoot call, and it bounds events/s per worker process (bench/e2e.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

import aiohttp
import httpx

from botkit.chatwoot import ChatwootClient
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.transport import AiohttpTransport

PATH = "/api/v1/accounts/1/conversations/{id}/messages"


async def run_for(seconds: float, concurrency: int, send) -> int:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await send(n)
            done += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done


async def main(seconds: float, concurrency: int) -> None:
    fake = FakeChatwoot(messages_per_minute=10**9)
    for n in range(concurrency):
        fake.add_conversation(1, 100 + n)
    body = {"message_type": "outgoing", "private": False, "content_type": "text", "content": "Hello"}
    async with fake.serve():
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        common = {"base_url": fake.url, "timeout": 10, "headers": {"api_access_token": fake.bot_token}}
        async with httpx.AsyncClient(limits=limits, **common) as plain, \
                httpx.AsyncClient(transport=AiohttpTransport(max_connections=concurrency), **common) as over_aiohttp, \
                ChatwootClient(fake.url, fake.bot_token, rate_per_minute=10**9, max_connections=concurrency) as client:

            def bare(http: httpx.AsyncClient):
                async def send(n: int) -> None:
                    response = await http.post(PATH.format(id=100 + n), json=body)
                    response.raise_for_status()
                    response.json()
                return send

            async def client_send(n: int) -> None:
                await client.send_message(1, 100 + n, "Hello")

            loops = {"httpx": bare(plain), "aiohttp": bare(over_aiohttp), "client": client_send}
            # warm up every pool, then alternate the measurements twice to even out drift
            for send in loops.values():
                await run_for(0.5, concurrency, send)
            totals = dict.fromkeys(loops, 0)
            for _ in range(2):
                for name, send in loops.items():
                    totals[name] += await run_for(seconds / 2, concurrency, send)
    rps = {name: total / seconds for name, total in totals.items()}
    print(f"concurrency {concurrency}, {seconds:g} s each, FakeChatwoot on loopback uvicorn")
    print(f"bare httpx.AsyncClient POST, httpx's own transport     : {rps['httpx']:8.0f} req/s")
    print(f"bare httpx.AsyncClient POST, botkit's AiohttpTransport : {rps['aiohttp']:8.0f} req/s")
    print(f"ChatwootClient.send_message (AiohttpTransport)         : {rps['client']:8.0f} req/s")
    print(f"ratio client/bare, same transport: {rps['client'] / rps['aiohttp']:.2f} (target >= 0.8); "
          f"transport aiohttp/httpx: {rps['aiohttp'] / rps['httpx']:.2f}")


FAKE = """
import sys, uvicorn
from botkit.testing.fake_chatwoot import FakeChatwoot
fake = FakeChatwoot(messages_per_minute=10**9)
for n in range(64):
    fake.add_conversation(1, 100 + n)
print(fake.bot_token, flush=True)
uvicorn.run(fake.app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            log_level="warning", access_log=False)
"""


def start_fake() -> tuple[subprocess.Popen, str, str]:
    """The fake Chatwoot in a process of its own (so its CPU is not counted): the process, its URL, the token."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fake = subprocess.Popen([sys.executable, "-c", FAKE, str(port)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": root})
    assert fake.stdout is not None
    token = fake.stdout.readline().strip()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return fake, url, token


async def cpu(url: str, token: str, concurrency: int, requests: int = 3000, rounds: int = 3) -> None:
    body = {"message_type": "outgoing", "private": False, "content_type": "text", "content": "Hello"}
    async with aiohttp.ClientSession(url) as raw, \
            httpx.AsyncClient(base_url=url, transport=AiohttpTransport(max_connections=concurrency),
                              headers={"api_access_token": token}) as http, \
            ChatwootClient(url, token, rate_per_minute=10**9, max_connections=concurrency) as client:

        async def raw_send(n: int) -> None:
            async with raw.post(PATH.format(id=100 + n), json=body, headers={"api_access_token": token}) as r:
                r.raise_for_status()
                await r.json()

        async def httpx_send(n: int) -> None:
            response = await http.post(PATH.format(id=100 + n), json=body)
            response.raise_for_status()
            response.json()

        async def client_send(n: int) -> None:
            await client.send_message(1, 100 + n, "Hello")

        loops = {"raw aiohttp": raw_send, "httpx on AiohttpTransport": httpx_send,
                 "ChatwootClient.send_message": client_send}
        figures: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(rounds):  # alternating, medians
            for name, send in loops.items():
                pending = iter(range(requests))

                async def sender(n: int, send=send, pending=pending) -> None:
                    for _ in pending:
                        await send(n)

                started = time.process_time()
                await asyncio.gather(*(sender(n) for n in range(concurrency)))
                figures[name].append((time.process_time() - started) / requests * 1e6)
    print(f"client CPU per request: {requests} POSTs x {rounds} rounds, concurrency {concurrency}, "
          "FakeChatwoot in its own process")
    for name, values in figures.items():
        print(f"{name:<28} {statistics.median(values):6.0f} µs   (rounds: {', '.join(f'{v:.0f}' for v in values)})")
    floor = statistics.median(figures["raw aiohttp"])
    print(f"ChatwootClient / raw aiohttp: {statistics.median(figures['ChatwootClient.send_message']) / floor:.1f}x   "
          f"httpx / raw aiohttp: {statistics.median(figures['httpx on AiohttpTransport']) / floor:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cpu", action="store_true", help="client-side CPU per request instead (see above)")
    options = parser.parse_args()
    if options.cpu:
        import uvloop

        fake, url, token = start_fake()
        try:
            uvloop.run(cpu(url, token, options.concurrency))
        finally:
            fake.terminate()
            fake.wait(30)
    else:
        asyncio.run(main(options.seconds, options.concurrency))
