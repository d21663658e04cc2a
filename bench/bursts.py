"""Burst merging benchmark: contacts who split one question over three quick messages, answered by the OpenAI bot
with burst merging (BOTKIT_BURST_WINDOW=2, the default) and without it (0), in the same run.

    .venv/bin/python bench/bursts.py [--conversations 50] [--gap 0.3] [--model-seconds 1.0]

`botkit serve` runs bots.openai_assistant:bot in its own process (SQLite store); this process runs a
FakeChatwoot, a FakeOpenAI that answers after `--model-seconds`, and the contacts: each conversation sends
"hi" / "my order" / "it hasn't arrived", `--gap` seconds apart. Prints, for each setting: model calls and
replies per conversation, and the time from the contact's last message to the bot's last reply (median and
p90), beside each other and as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ack import start  # noqa: E402

from botkit.security import signed_headers  # noqa: E402
from botkit.testing import factories  # noqa: E402
from botkit.testing.fake_chatwoot import FakeChatwoot  # noqa: E402
from botkit.testing.fake_openai import FakeOpenAI  # noqa: E402

BURST = ["hi", "my order", "it hasn't arrived"]
FIRST = 1000
WARM_UP = 999  # one conversation answered before the measured ones: the first model call of a process is slower


async def contact(client: httpx.AsyncClient, secret: str, conversation_id: int, gap: float,
                  last_sent: dict[int, float], texts: list[str] = BURST) -> None:
    for number, text in enumerate(texts):
        if number:
            await asyncio.sleep(gap)
        last_sent[conversation_id] = time.time()  # when the contact sent it (the ack may take a while under load)
        body = factories.contact_message(text, conversation_id=conversation_id,
                                         message_id=conversation_id * 10 + number)
        raw = httpx.Request("POST", "/", json=body).content
        headers = {**signed_headers(secret, raw), "Content-Type": "application/json",
                   "X-Chatwoot-Delivery": f"{conversation_id}-{number}"}
        (await client.post("/webhook", content=raw, headers=headers)).raise_for_status()


async def run(window: float, conversations: int, gap: float, model_seconds: float) -> dict[str, float]:
    chatwoot = FakeChatwoot(messages_per_minute=10**9)
    ids = range(FIRST, FIRST + conversations)
    for n in (WARM_UP, *ids):
        chatwoot.add_conversation(1, n, status="pending")
    model = FakeOpenAI(api_key="sk-bench", default="Sorry to hear that. Your order number?", delay=model_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        async with chatwoot.serve(), model.serve():
            env = {"BOTKIT_BOT": "bots.openai_assistant:bot", "BOTKIT_STORE": f"sqlite:///{tmp}/bench.db",
                   "BOTKIT_CONCURRENCY": str(conversations), "CHATWOOT_RATE_PER_MINUTE": "1000000000",
                   "CHATWOOT_BASE_URL": chatwoot.url, "CHATWOOT_BOT_TOKEN": chatwoot.bot_token,
                   "CHATWOOT_WEBHOOK_SECRET": chatwoot.bot_secret, "BOTKIT_LOG_LEVEL": "WARNING",
                   "BOTKIT_TEAMS": "billing=3,technical=4", "OPENAI_API_KEY": "sk-bench",
                   "OPENAI_BASE_URL": model.base_url, "BOTKIT_BURST_WINDOW": str(window)}
            server, port = await asyncio.to_thread(start, [sys.executable, "-m", "botkit.cli", "serve"], env, tmp)
            try:
                last_sent: dict[int, float] = {}
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                    while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 (the worker is up)
                        await asyncio.sleep(0.05)
                    await contact(client, chatwoot.bot_secret, WARM_UP, 0, {}, ["hello"])
                    while not chatwoot.messages(WARM_UP):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                    model.requests.clear()
                    await asyncio.gather(*(contact(client, chatwoot.bot_secret, n, gap, last_sent) for n in ids))
                expected = conversations if window else conversations * len(BURST)

                def replies() -> int:
                    return sum(1 for n in ids for m in chatwoot.messages(n) if m["message_type"] == 1)

                deadline = time.monotonic() + 120
                while replies() < expected and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.sleep(window + model_seconds)  # room for anything more to arrive
            finally:
                server.terminate()
                await asyncio.to_thread(server.wait, 30)
    waits = []
    for n in ids:
        posted = [r.time for r in chatwoot.requests_to("POST", f"/api/v1/accounts/1/conversations/{n}/messages")]
        waits.append(max(posted) - last_sent[n])
    waits.sort()
    return {"calls": len(model.requests) / conversations, "replies": replies() / conversations,
            "median": statistics.median(waits), "p90": waits[int(len(waits) * 0.9) - 1]}


async def main(conversations: int, gap: float, model_seconds: float) -> None:
    merged = await run(2.0, conversations, gap, model_seconds)
    each = await run(0.0, conversations, gap, model_seconds)
    print(f"bursts: {conversations} conversations x {len(BURST)} messages {gap:g} s apart, model {model_seconds:g} s "
          f"per answer, {os.cpu_count()} cores")
    for name, r in (("merged (window 2 s)", merged), ("each message (window 0)", each)):
        print(f"{name:>24}: {r['calls']:.2f} model calls and {r['replies']:.2f} replies per conversation; last reply "
              f"{r['median']:.2f} s (median), {r['p90']:.2f} s (p90) after the contact's last message")
    print(f"merging: {merged['calls'] / each['calls']:.2f}x the model calls, "
          f"{merged['replies'] / each['replies']:.2f}x the replies, "
          f"{merged['median'] / each['median']:.2f}x the median time to the last reply")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.3)
    parser.add_argument("--model-seconds", type=float, default=1.0)
    args = parser.parse_args()
    uvloop.run(main(args.conversations, args.gap, args.model_seconds))
