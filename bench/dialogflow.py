"""Events per second through the Dialogflow bot beside the keyword bot, same harness, same run.

    .venv/bin/python bench/dialogflow.py [--events 1500] [--conversations 50] [--rounds 2]

Both bots run inside `BotServer` (signed deliveries over loopback HTTP -> receiver -> memory store -> worker ->
bot -> real ChatwootClient -> FakeChatwoot). Each event is a contact's message in a pending conversation and
each bot answers it with one text reply, so the Chatwoot work is the same; the Dialogflow bot also makes one
DetectIntent call with the real SessionsAsyncClient over a loopback gRPC channel to FakeDialogflow. The rate
is events delivered / time until the queue is empty. Everything shares one process and one event loop, so
the ratio (dialogflow/keywords) is the cost of the Dialogflow round trip, not an absolute figure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

from botkit.testing import factories
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.fake_dialogflow import FakeDialogflow
from botkit.testing.harness import BotServer

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
TEXT = "hello there"


async def run(bot: Any, events: int, conversations: int, senders: int = 16) -> float:
    bot.typing_after = None  # cosmetic and timing-dependent; off for both bots
    fake = FakeChatwoot(messages_per_minute=10**9)
    async with BotServer(bot, fake=fake, teams="billing=3,technical=4", chatwoot_rate_per_minute=10**9) as server:
        for n in range(conversations):
            fake.add_conversation(conversation_id=1000 + n, status="pending")
        bodies = [factories.contact_message(TEXT, conversation_id=1000 + i % conversations) for i in range(events)]
        queue = iter(bodies)
        started = time.perf_counter()

        async def sender() -> None:
            for body in queue:
                await server.deliver(body)

        await asyncio.gather(*(sender() for _ in range(senders)))
        await server.settle(timeout=300)
        elapsed = time.perf_counter() - started
        replies = sum(1 for r in fake.requests if r.path.endswith("/messages"))
        assert replies == events, f"{replies} replies for {events} events"
    return events / elapsed


async def detect_rate(client: Any, calls: int, concurrency: int = 16) -> float:
    """DetectIntent round trips alone (real client, loopback gRPC, same fake): the handler's added cost."""
    from google.cloud.dialogflow_v2 import types

    request = types.DetectIntentRequest(session="projects/bench/agent/sessions/s", query_input=types.QueryInput(
        text=types.TextInput(text=TEXT, language_code="en-US")))
    left = iter(range(calls))
    started = time.perf_counter()

    async def caller() -> None:
        for _ in left:
            await client.detect_intent(request=request, retry=None, timeout=10)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def main(events: int, conversations: int, rounds: int) -> None:
    from bots.dialogflow_agent import make_bot as dialogflow_bot
    from bots.support_router import make_bot as keyword_bot

    logging.disable(logging.WARNING)
    dialogflow = FakeDialogflow()
    dialogflow.on(TEXT, "How can I help you today? You can ask about billing or technical issues.")
    rates: dict[str, list[float]] = {"keywords": [], "dialogflow": []}
    async with dialogflow.serve():
        await run(keyword_bot(), 100, 10)  # warm up imports, pools and the loop
        await run(dialogflow_bot(project_id="bench", client=dialogflow.es_client()), 100, 10)
        for _ in range(rounds):  # alternate, to even out the machine's drift
            rates["keywords"].append(await run(keyword_bot(), events, conversations))
            rates["dialogflow"].append(
                await run(dialogflow_bot(project_id="bench", client=dialogflow.es_client()), events, conversations))
        grpc_rate = await detect_rate(dialogflow.es_client(), events)
    keywords = sum(rates["keywords"]) / rounds
    dialogflow_rate = sum(rates["dialogflow"]) / rounds
    print(f"{events} events over {conversations} conversations, {rounds} alternating rounds, one process")
    print(f"keyword bot (bots.support_router)       : {keywords:8.0f} events/s  {_each(rates['keywords'])}")
    print(f"Dialogflow bot (ES client -> gRPC fake) : {dialogflow_rate:8.0f} events/s  {_each(rates['dialogflow'])}")
    print(f"ratio dialogflow/keywords               : {dialogflow_rate / keywords:8.2f}")
    print(f"(DetectIntent round trips alone         : {grpc_rate:8.0f} calls/s, 16 concurrent)")


def _each(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in values) + ")"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(main(options.events, options.conversations, options.rounds))
