"""Requests per second of ChatwootClient.send_message beside a bare httpx POST loop, same fake, same run.

    .venv/bin/python bench/client.py [--seconds 5] [--concurrency 16]

The loops post the same message body to the same FakeChatwoot on a loopback uvicorn, with the same
concurrency and connection pool size: bare httpx on its own transport, bare httpx on botkit's
AiohttpTransport (what the client uses), and the client. The client's token bucket is set far above the offered load so
the figure measures the client's own cost (retry wrapper, error mapping, JSON), not the rate limit.
Prints the three figures, the client's ratio to bare httpx on the same transport (target >= 0.8),
and the transport's gain.
"""

from __future__ import annotations

import argparse
import asyncio
import time

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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=16)
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.concurrency))
