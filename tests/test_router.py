"""The handler chain's one rule and its order: `False` passes, anything else ends the chain; decorators sit in
the bot's own router ahead of its handler list; routers nest; a handler after a catch-all stops start-up.
Each case goes over real sockets to the fake Chatwoot (BotServer)."""

from __future__ import annotations

import pytest

from botkit import Bot, Context, Handler, KeywordRouter, Router, Rule
from botkit.app import build_app, preflight
from botkit.config import ConfigError
from botkit.testing import factories
from botkit.testing.harness import BotServer

MESSAGES = "/api/v1/accounts/1/conversations/128/messages"


class Server(BotServer):
    async def __aenter__(self):
        await super().__aenter__()
        self.fake.add_conversation(conversation_id=128, status="pending")
        return self


async def said(bot: Bot, *texts: str) -> list[str]:
    """What the bot sent conversation 128 for each of `texts`, in order."""
    async with Server(bot) as server:
        for text in texts:
            await server.deliver(factories.contact_message(text))
            await server.settle()
        return [r.json["content"] for r in server.fake.requests_to("POST", MESSAGES)]


async def test_a_decorated_handler_runs_before_a_keyword_router_with_a_fallback():
    """The order trap: the constructor's catch-all no longer swallows what the decorator was written for."""
    bot = Bot("shop", [KeywordRouter([Rule(keywords=["billing"], reply="Billing it is.")],
                                     fallback="Ask me anything.")])

    @bot.on_message("order")
    async def order(ctx: Context) -> None:
        await ctx.reply("Your order ships tomorrow.")

    assert await said(bot, "where is my order", "billing please", "hello") == [
        "Your order ships tomorrow.", "Billing it is.", "Ask me anything."]


class Replies(Handler):
    """Replies and forgets `return True`: under the one rule, it has handled the event all the same."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def handle(self, ctx: Context) -> None:
        await ctx.reply(self.text)


class Passes(Handler):
    async def handle(self, ctx: Context) -> bool:
        return False


async def test_a_class_handler_that_returns_nothing_ends_the_chain():
    """The forgotten `return True`: one answer to one message, not two."""
    bot = Bot("two", [Replies("first"), Replies("second")])
    assert await said(bot, "hi") == ["first"]


async def test_false_passes_the_event_on_for_functions_and_classes_alike():
    bot = Bot("pass", [Passes(), Replies("the list's answer")])

    @bot.on_message("hi")
    async def not_mine(ctx: Context) -> bool:
        return False

    assert await said(bot, "hi") == ["the list's answer"]


async def test_routers_nest_in_the_order_they_are_included():
    seen: list[str] = []
    menu, inner = Router("menu"), Router("inner")

    @inner.on_message("order")
    async def looks(ctx: Context) -> bool:
        seen.append("inner looked")
        return False

    @inner.on_message("order")
    async def answers(ctx: Context) -> None:
        await ctx.reply("from the inner router")

    @menu.on_message("help")
    async def helps(ctx: Context) -> None:
        await ctx.reply("from the menu")

    menu.include(inner)
    bot = Bot("nested", [menu, Replies("from the last handler")])
    assert [h.label for h in bot._leaves()] == ["helps", "looks", "answers", "Replies"]
    assert await said(bot, "my order", "help", "anything") == [
        "from the inner router", "from the menu", "from the last handler"]
    assert seen == ["inner looked"]


@pytest.mark.parametrize("make", [
    lambda: Bot("shop", [KeywordRouter([], fallback="Ask me anything."), Replies("never")]),
    lambda: Bot("shop", [Router("outer", [KeywordRouter([], fallback="Ask me anything.")]), Replies("never")]),
])
async def test_a_handler_after_a_catch_all_stops_start_up_naming_both(make):
    with pytest.raises(ConfigError) as caught:
        await make().startup()
    message = str(caught.value)
    assert "'Replies' comes after 'keywords'" in message and message.count(".") == 1


async def test_a_decorated_fallback_before_the_handler_list_stops_start_up(tmp_path, monkeypatch):
    """Through the CLI's own check (preflight), as `botkit serve` meets it."""
    monkeypatch.chdir(tmp_path)
    bot = Bot("shop", [Replies("never")])

    @bot.fallback
    async def anything(ctx: Context) -> None:
        await ctx.reply("whatever you say")

    from botkit.config import load_settings

    app = build_app(load_settings(env_file=None, botkit_allow_unsigned=True, botkit_store="memory://"), bot)
    with pytest.raises(ConfigError, match="handler 'Replies' comes after 'anything', which answers every "
                                          "message_created event"):
        await preflight(app)


async def test_events_a_catch_all_does_not_take_may_follow_it():
    bot = Bot("shop", [KeywordRouter([], fallback="Ask me anything.")])
    after = Router("after")

    @after.on_event("conversation_resolved")
    async def resolved(ctx: Context) -> None:
        await ctx.note("resolved")

    bot.handlers.append(after)
    await bot.startup()  # no error: the keyword fallback answers messages, not resolutions
    await bot.shutdown()
