"""One Chatwoot budget across workers: processes on a Redis store share CHATWOOT_RATE_PER_MINUTE.

Chatwoot limits requests per client IP (3000 a minute by default), so N workers behind one address must
together stay under the budget, not each of them. Each process below builds its Chatwoot client exactly as
`botkit worker` does (`app.chatwoot_for`), waits for the others, then sends its requests as fast as its
limiter lets it; the fake Chatwoot records when each arrived.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from botkit.ratelimit import SharedBudget
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.redis_server import RedisServer, skip_unless_redis_server
from tests.conftest import ROOT

PROCESSES = 3
REQUESTS = 20  # per process
RATE = 600  # per minute: 10 a second, and a burst of 10

WORKER = """
import asyncio, os, sys, time
from pathlib import Path
from botkit.config import load_settings
from botkit.app import chatwoot_for

async def main():
    client = chatwoot_for(load_settings(env_file=None))
    go = Path(os.environ["GO_FILE"])
    print("ready", flush=True)
    while not go.exists():
        await asyncio.sleep(0.005)
    async with client:
        for _ in range(int(os.environ["REQUESTS"])):
            await client.get_conversation(1, int(os.environ["CONVERSATION"]))

asyncio.run(main())
"""


def most_in_any_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    start, most = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
def redis_server(tmp_path):
    skip_unless_redis_server()
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_workers_on_redis_share_one_chatwoot_budget(tmp_path, redis_server):
    fake = FakeChatwoot()
    conversation = fake.add_conversation(status="pending")
    go = tmp_path / "go"
    with fake.serve_in_thread():
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CHATWOOT_BASE_URL": fake.url,
               "CHATWOOT_BOT_TOKEN": fake.bot_token, "CHATWOOT_RATE_PER_MINUTE": str(RATE),
               "BOTKIT_STORE": redis_server.url, "GO_FILE": str(go),
               "REQUESTS": str(REQUESTS), "CONVERSATION": str(conversation.id)}
        workers = [subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True)
                   for _ in range(PROCESSES)]
        try:
            for worker in workers:
                assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            go.touch()
            for worker in workers:
                assert worker.wait(60) == 0
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
    arrivals = [r.time for r in fake.requests_to("GET", f"/api/v1/accounts/1/conversations/{conversation.id}")]
    assert len(arrivals) == PROCESSES * REQUESTS
    rate, burst = RATE / 60, RATE / 60
    # Any two seconds hold at most one burst plus two seconds' worth (and a little for scheduling noise);
    # three processes each spending a whole budget would send all 60 within about one second.
    allowed = burst + 2 * rate + 4
    most = most_in_any_window(arrivals, 2.0)
    assert most <= allowed, f"{most} requests reached Chatwoot within 2 s; the shared budget allows {allowed:.0f}"


async def test_the_budget_falls_back_to_the_process_own_when_redis_is_down(caplog):
    budget = SharedBudget("redis://127.0.0.1:9/0", "botkit:chatwoot-budget:test", 6000)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    budget.local._sleep = sleep
    try:
        for _ in range(3):
            await budget.acquire()  # never raises: the replies go on at this process's own pace
    finally:
        await budget.aclose()
    assert sum("shared Chatwoot rate budget on Redis is unavailable" in r.message for r in caplog.records) == 1

