"""bots/openai_assistant.py end to end: the support router's keywords first, the model for everything else."""

from __future__ import annotations

import contextlib

import pytest

from botkit.adapters.keywords import KeywordRouter
from botkit.adapters.openai import OpenAIHandler
from botkit.testing import factories
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.harness import BotServer
from bots.openai_assistant import make_bot

PATH = "/api/v1/accounts/1/conversations/128"


pytestmark = pytest.mark.usefixtures("no_openai_env")


@contextlib.asynccontextmanager
async def assistant():
    fake = FakeOpenAI(api_key="sk-test")
    async with fake.serve():
        bot = make_bot(api_key="sk-test", base_url=fake.base_url, env_file=None)
        async with BotServer(bot, teams="billing=3,technical=4") as server:
            server.fake.add_team(1, 3, "billing")
            server.fake.add_team(1, 4, "technical")
            server.fake.add_conversation(conversation_id=128, status="pending")
            yield server, fake


def test_the_bot_is_the_router_without_its_fallback_then_the_model():
    router, handler = make_bot(env_file=None).handlers
    assert isinstance(router, KeywordRouter) and router.fallback is None and len(router.rules) == 3
    assert isinstance(handler, OpenAIHandler)


async def test_keywords_are_routed_without_asking_the_model():
    async with assistant() as (server, fake):
        await server.deliver(factories.contact_message("I have a billing question"))
        await server.settle()
        assert fake.requests == []
        assert server.fake.messages(128)[0]["content"] == "I'm transferring you to our billing team."
        assert server.fake.conversation(128).team_id == 3 and server.fake.conversation(128).status == "open"


async def test_anything_else_is_answered_by_the_model_with_its_memory():
    async with assistant() as (server, fake):
        fake.reply("Our shop opens at 9.")
        fake.reply("And closes at 6.")
        for text in ("when do you open?", "and close?"):
            await server.deliver(factories.contact_message(text))
            await server.settle()
        assert [m["content"] for m in server.fake.messages(128) if m["message_type"] == 1] == [
            "Our shop opens at 9.", "And closes at 6."]
        assert [m["content"] for m in fake.requests[1].conversation[1:]] == [
            "when do you open?", "Our shop opens at 9.", "and close?"]
