"""Burst merging (botkit/bursts.py): a contact's quick messages answered as one turn, over real sockets, through
a SIGKILL and a restart of a real `botkit serve`, and across two workers on a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3

import httpx
import pytest

from botkit import Bot, KeywordRouter
from botkit.adapters.openai import OpenAIHandler
from botkit.app import DEFAULT_BOT_NAME
from botkit.config import load_settings
from botkit.store import lane_for
from botkit.testing import factories
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.harness import BotServer
from botkit.testing.redis_server import RedisServer, skip_unless_redis_server
from bots.openai_assistant import make_bot as assistant
from bots.support_router import make_bot as support_router
from tests.conftest import signed

KEY = "sk-test-0123456789abcdef"
BURST = ["hi", "my order", "it hasn't arrived"]

pytestmark = pytest.mark.usefixtures("no_openai_env")


def said(fake: FakeChatwoot, conversation_id: int = 128) -> list[str]:
    return [m["content"] for m in fake.messages(conversation_id) if m["message_type"] == 1 and not m.get("private")]


async def until(check, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def model_bot(bot=None, *, botkit_burst_window=2.0, **settings):
    model = FakeOpenAI(api_key=KEY)
    async with model.serve():
        bot = bot or Bot("assistant", [OpenAIHandler(api_key=KEY, base_url=model.base_url, env_file=None)],
                         typing_after=None)
        async with BotServer(bot, teams="billing=3,technical=4", botkit_burst_window=botkit_burst_window,
                             **settings) as server:
            for conversation_id in (128, 129):
                server.fake.add_conversation(conversation_id=conversation_id, status="pending")
            yield server, model


async def test_three_quick_messages_get_one_model_call_and_one_reply():
    async with model_bot() as (server, model):
        model.reply("Sorry to hear that. What is your order number?")
        for text in BURST:
            await server.deliver(factories.contact_message(text))
        await server.settle()
        assert said(server.fake) == ["Sorry to hear that. What is your order number?"]
    [request] = model.requests
    assert request.conversation[-1] == {"role": "user", "content": "hi\nmy order\nit hasn't arrived"}


async def test_the_ready_model_bot_merges_and_the_keyword_bot_does_not(bot_flow):
    assert load_settings(env_file=None).botkit_burst_window == 2.0  # the default window
    async with model_bot(assistant(api_key=KEY, base_url="http://127.0.0.1:9/v1")) as (server, _):
        assert server.bot.bursts is not None and server.bot.bursts.window == 2.0
    flow = await bot_flow(support_router(), botkit_burst_window=2.0)
    assert flow.server.bot.bursts is None
    for text in BURST:
        await flow.server.deliver(factories.contact_message(text))
    await flow.server.settle()
    assert len(said(flow.server.fake)) == 3  # the keyword bot answers each message


async def test_a_burst_is_answered_at_the_latest_after_max_wait_however_long_the_window():
    async with model_bot(botkit_burst_window=600, botkit_burst_max_wait=0.2) as (server, model):
        model.reply("Hello!")
        await server.deliver(factories.contact_message("hi"))
        await server.settle(timeout=30)
        assert said(server.fake) == ["Hello!"]


async def test_each_conversation_has_its_own_burst_and_order():
    async with model_bot() as (server, model):
        model.default = "ok"
        for first, second in [("a1", "b1"), ("a2", "b2")]:
            await server.deliver(factories.contact_message(first, conversation_id=128))
            await server.deliver(factories.contact_message(second, conversation_id=129))
        await server.settle()
    asked = sorted(r.conversation[-1]["content"] for r in model.requests)
    assert asked == ["a1\na2", "b1\nb2"]


async def test_a_reply_made_stale_by_a_newer_message_is_not_sent_and_the_burst_is_answered_with_it():
    async with model_bot(botkit_burst_window=0.1) as (server, model):
        model.reply("Hello! How can I help?", delay=1.0)  # the contact writes again while the model answers
        model.reply("Let me look at your order.")
        await server.deliver(factories.contact_message("hi"))
        await until(lambda: len(model.requests) == 1)
        await server.deliver(factories.contact_message("my order is late"))
        await server.settle()
        assert said(server.fake) == ["Let me look at your order."]
        metrics = (await server.client.get("/metrics")).text
        assert 'botkit_handler_errors_total{handler="openai"}' not in metrics  # a stale turn is no fault
    assert [r.conversation[-1]["content"] for r in model.requests] == ["hi", "hi\nmy order is late"]
    # the dropped answer is not in the model's memory either: the second call sees no earlier turn
    assert [m["role"] for m in model.requests[1].conversation] == ["system", "user"]


async def test_answers_to_menus_and_agent_messages_are_not_merged():
    bot = Bot("kw", [KeywordRouter([], fallback="fallback")], merge_bursts=True, typing_after=None)
    async with BotServer(bot, botkit_burst_window=0.3) as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("one"))
        await server.deliver(factories.agent_reply("an agent's note to the contact"))  # not the contact's
        await server.settle()
        assert said(server.fake).count("fallback") == 1


@pytest.fixture
def redis_server(tmp_path):
    skip_unless_redis_server()
    with RedisServer(tmp_path / "redis") as server:
        yield server


# a real process killed inside the window ---------------------------------------------------------------

def queued(db) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return connection.execute("SELECT COUNT(*) FROM queue").fetchone()[0]


async def test_a_sigkill_inside_the_window_and_a_restart_neither_lose_nor_double_the_turn(tmp_path, botkit_process):
    chatwoot, model = FakeChatwoot(), FakeOpenAI(api_key=KEY)
    chatwoot.add_conversation(conversation_id=128, status="pending")
    model.reply("Sorry about that. Your order number?")
    db = tmp_path / "botkit.db"
    async with chatwoot.serve(), model.serve():
        env = {"BOTKIT_BOT": "bots.openai_assistant:bot", "BOTKIT_STORE": f"sqlite:///{db}",
               "CHATWOOT_BASE_URL": chatwoot.url, "CHATWOOT_BOT_TOKEN": chatwoot.bot_token,
               "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": model.base_url, "BOTKIT_TEAMS": "billing=3,technical=4",
               "BOTKIT_BURST_WINDOW": "4",
               "BOTKIT_BURST_MAX_WAIT": "30"}
        server = await asyncio.to_thread(lambda: botkit_process("serve", **env).ready())
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            for number, text in enumerate(BURST):
                raw, headers = signed(factories.contact_message(text, message_id=80_000 + number),
                                      delivery_id=f"burst-{number}")
                assert (await client.post("/webhook", content=raw, headers=headers)).status_code == 200
        os.killpg(server.pid, signal.SIGKILL)  # the server and its worker child, inside the window
        server.process.wait()
        assert model.requests == [] and said(chatwoot) == [], "the kill came too late to prove anything"

        await asyncio.to_thread(lambda: botkit_process("serve", **env).ready())  # the same store
        await until(lambda: said(chatwoot) != [] and queued(db) == 0, timeout=60)
        await asyncio.sleep(0.5)  # room for a doubled reply to show
    assert said(chatwoot) == ["Sorry about that. Your order number?"]
    [request] = model.requests
    assert request.conversation[-1] == {"role": "user", "content": "hi\nmy order\nit hasn't arrived"}


# two workers on a real redis-server ----------------------------------------------------------------------

async def test_two_workers_on_redis_answer_a_burst_once(tmp_path, botkit_process, redis_server):
    chatwoot, model = FakeChatwoot(), FakeOpenAI(api_key=KEY)
    for conversation_id in (128, 129):
        chatwoot.add_conversation(conversation_id=conversation_id, status="pending")
    model.default = "On it."
    store = redis_server.url
    async with chatwoot.serve(), model.serve():
        env = {"BOTKIT_BOT": "bots.openai_assistant:bot", "BOTKIT_STORE": store, "CHATWOOT_BASE_URL": chatwoot.url,
               "CHATWOOT_BOT_TOKEN": chatwoot.bot_token, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": model.base_url,
               "BOTKIT_TEAMS": "billing=3,technical=4", "BOTKIT_BURST_WINDOW": "1.5"}
        workers = [botkit_process("worker", **env) for _ in range(2)]
        for worker in workers:
            await asyncio.to_thread(worker.ready)
        receiver = await asyncio.to_thread(lambda: botkit_process("serve", **env).ready())
        async with httpx.AsyncClient(base_url=receiver.url, timeout=10) as client:
            for number, text in enumerate(BURST):
                for conversation_id in (128, 129):
                    body = factories.contact_message(f"{text} ({conversation_id})", conversation_id=conversation_id,
                                                     message_id=90_000 + number * 10 + conversation_id)
                    raw, headers = signed(body, delivery_id=f"r-{number}-{conversation_id}")
                    assert (await client.post("/webhook", content=raw, headers=headers)).status_code == 200
        await until(lambda: said(chatwoot, 128) and said(chatwoot, 129), timeout=60)
        await asyncio.sleep(2.0)  # past a second window: room for a doubled answer to show
    assert said(chatwoot, 128) == ["On it."] and said(chatwoot, 129) == ["On it."]
    asked = sorted(r.conversation[-1]["content"] for r in model.requests)
    assert asked == ["\n".join(f"{t} ({c})" for t in BURST) for c in (128, 129)]


async def test_a_burst_left_unanswered_is_dropped_when_humans_take_the_conversation():
    async with model_bot(botkit_burst_window=0.2) as (server, model):
        lane = lane_for(DEFAULT_BOT_NAME, "1:128")
        await server.store.set_state(lane, {"burst": [{"id": 1, "text": "an old message", "at": 0.0}]})
        await server.deliver(factories.conversation_event("conversation_status_changed", status="open"))
        await server.settle()
        assert "burst" not in await server.store.get_state(lane)
        model.reply("Hello again!")
        await server.deliver(factories.contact_message("hello"))
        await server.settle()
    assert model.requests[0].conversation[-1]["content"] == "hello"


async def test_a_photo_then_words_reach_the_model_together():
    async with model_bot() as (server, model):
        url = server.fake.add_file("parcel.jpg", b"\xff\xd8\xff" + b"j" * 100, "image/jpeg")
        model.reply("I'm sorry the parcel arrived damaged.")
        await server.deliver(factories.contact_message("", attachments=[factories.image(url)]))
        await server.deliver(factories.contact_message("it arrived like this"))
        await server.settle()
        assert said(server.fake) == ["I'm sorry the parcel arrived damaged."]
    [request] = model.requests
    assert request.images == [url]
    assert request.conversation[-1]["content"][0]["text"] == "it arrived like this"
