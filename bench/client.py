"""Requests per second of ChatwootClient.send_message beside a bare httpx POST loop, same fake, same run.

    .venv/bin/python bench/client.py [--seconds 5] [--concurrency 16]

Both loops post the same message body to the same FakeChatwoot on a loopback uvicorn, with the same
concurrency and connection pool size. The client's token bucket is set far above the offered load so
the figure measures the client's own cost (retry wrapper, error mapping, JSON), not the rate limit.
Prints both figures and their ratio (target: client/bare >= 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from botkit.chatwoot import ChatwootClient
from botkit.testing.fake_chatwoot import FakeChatwoot

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
        async with httpx.AsyncClient(base_url=fake.url, limits=limits, timeout=10,
                                     headers={"api_access_token": fake.bot_token}) as bare:

            async def bare_send(n: int) -> None:
                response = await bare.post(PATH.format(id=100 + n), json=body)
                response.raise_for_status()
                response.json()

            async with ChatwootClient(fake.url, fake.bot_token, rate_per_minute=10**9,
                                      max_connections=concurrency) as client:

                async def client_send(n: int) -> None:
                    await client.send_message(1, 100 + n, "Hello")

                # warm up both pools, then alternate the two measurements twice to even out drift
                await run_for(0.5, concurrency, bare_send)
                await run_for(0.5, concurrency, client_send)
                totals = {"bare": 0, "client": 0}
                for _ in range(2):
                    totals["bare"] += await run_for(seconds / 2, concurrency, bare_send)
                    totals["client"] += await run_for(seconds / 2, concurrency, client_send)
    bare_rps = totals["bare"] / seconds
    client_rps = totals["client"] / seconds
    print(f"concurrency {concurrency}, {seconds:g} s each, FakeChatwoot on loopback uvicorn")
    print(f"bare httpx.AsyncClient POST : {bare_rps:8.0f} req/s")
    print(f"ChatwootClient.send_message : {client_rps:8.0f} req/s")
    print(f"ratio client/bare           : {client_rps / bare_rps:8.2f}  (target >= 0.8)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=16)
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.concurrency))
