"""The bot API end to end: decorators, middleware, rich messages and answers, channels, state, plugins, and
several bots on one server. Every test goes over real sockets to the fake Chatwoot."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import httpx
import pytest

from botkit import Bot, Context, Handler, KeywordRouter, Policies, Rule
from botkit.app import build_app
from botkit.config import ConfigError, load_settings
from botkit.rich import InputSelect, Option
from botkit.security import signed_headers
from botkit.testing import factories
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.harness import BotServer
from botkit.testing.server import serve_app
from tests.conftest import ROOT

MESSAGES = "/api/v1/accounts/1/conversations/128/messages"


class Server(BotServer):
    """BotServer with the conversations these tests write in."""

    async def __aenter__(self):
        await super().__aenter__()
        for conversation_id in (128, 129):
            self.fake.add_conversation(conversation_id=conversation_id, status="pending")
        return self


def replies(fake, path=MESSAGES):
    return [r.json for r in fake.requests_to("POST", path)]


def menu_bot() -> Bot:
    bot = Bot("menu")
    seen: list[str] = []
    bot.seen = seen  # type: ignore[attr-defined]

    @bot.on_message("order")
    async def menu(ctx: Context) -> None:
        await ctx.reply(InputSelect("What would you like to do?",
                                    [Option("Track my order", "track"), Option("Talk to a human", "human")]))

    @bot.on_answer("track")
    async def track(ctx: Context) -> None:
        seen.append(ctx.text)
        await ctx.reply("Your order is on its way.")

    @bot.on_answer("human")
    async def human(ctx: Context) -> None:
        await ctx.handoff(note="Asked for a human from the menu.")

    return bot


async def test_a_rich_message_then_the_contacts_answer_runs_the_matching_handler_once():
    async with Server(menu_bot()) as server:
        await server.deliver(factories.contact_message("where is my order?"))
        await server.settle()
        sent = replies(server.fake)[0]
        assert sent["content_type"] == "input_select"
        assert sent["content_attributes"]["items"] == [{"title": "Track my order", "value": "track"},
                                                       {"title": "Talk to a human", "value": "human"}]
        answer = factories.answer("track", message_id=server.fake.messages(128)[0]["id"],
                                  options=sent["content_attributes"]["items"])
        assert await server.deliver(answer) == "accepted"
        assert await server.deliver(answer) == "duplicate"  # Chatwoot's second copy
        await server.settle()
        assert server.bot.seen == ["track"]
        assert replies(server.fake)[-1]["content"] == "Your order is on its way."


@pytest.mark.parametrize(("channel", "kind"), [
    ("Channel::WebWidget", "input_select"), ("Channel::Whatsapp", "input_select"),
    ("Channel::Telegram", "input_select"),
    ("Channel::Email", "text"), ("Channel::Sms", "text"),
])
async def test_rich_messages_degrade_to_numbered_text_where_the_channel_cannot_show_them(channel, kind):
    async with Server(menu_bot()) as server:
        await server.deliver(factories.contact_message("my order", channel=channel))
        await server.settle()
        sent = replies(server.fake)[0]
    assert sent["content_type"] == kind
    if kind == "text":
        assert sent["content"] == ("What would you like to do?\n1. Track my order\n2. Talk to a human\n"
                                   "Reply with the number of your choice.")


@pytest.mark.parametrize(("setting", "expected"), [("skip", []), ("handoff", ["open"])])
async def test_no_free_form_reply_outside_whatsapps_window(setting, expected):
    bot = Bot("w", [KeywordRouter([], fallback="hello")], when_cannot_reply=setting)
    async with Server(bot) as server:
        await server.deliver(factories.contact_message("hi", channel="Channel::Whatsapp", can_reply=False))
        await server.settle()
        assert replies(server.fake) == [] or all(r["private"] for r in replies(server.fake))
        statuses = [r.json["status"] for r in server.fake.requests_to(
            "POST", "/api/v1/accounts/1/conversations/128/toggle_status")]
    assert statuses == expected


async def test_middleware_wraps_the_chain_in_order_and_can_short_circuit():
    calls: list[str] = []
    bot = Bot("mw", [KeywordRouter([], fallback="from the chain")])

    @bot.use
    async def outer(ctx, call_next):
        calls.append("outer in")
        handled = await call_next(ctx)
        calls.append(f"outer out {handled}")
        return handled

    @bot.use
    async def gate(ctx, call_next):
        if "secret" in ctx.text:
            calls.append("gate stops")
            await ctx.note("held back by middleware")
            return True
        return await call_next(ctx)

    async with Server(bot) as server:
        await server.deliver(factories.contact_message("hello"))
        await server.settle()
        await server.deliver(factories.contact_message("a secret"))
        await server.settle()
        sent = replies(server.fake)
    assert calls == ["outer in", "outer out True", "outer in", "gate stops", "outer out True"]
    assert [(m["content"], m["private"]) for m in sent] == [("from the chain", False),
                                                            ("held back by middleware", True)]


async def test_state_persists_per_conversation_and_is_forgotten_when_resolved():
    bot = Bot("count")

    @bot.fallback
    async def count(ctx: Context) -> None:
        ctx.state.setdefault("seen", {"n": 0})["n"] += 1  # a change inside a nested value is saved too
        await ctx.reply(f"message {ctx.state['seen']['n']}")

    async with Server(bot) as server:
        for text in ("a", "b"):
            await server.deliver(factories.contact_message(text))
            await server.settle()
        await server.deliver(factories.contact_message("other conversation", conversation_id=129))
        await server.deliver(factories.conversation_event("conversation_resolved", status="resolved"))
        await server.settle()
        await server.deliver(factories.contact_message("c"))
        await server.settle()
        sent = [m["content"] for m in replies(server.fake)]
    assert sent == ["message 1", "message 2", "message 1"]


async def test_event_handlers_and_policies_can_be_switched_off():
    bot = Bot("events", policies=Policies(pending_only=False))
    seen: list[str] = []

    @bot.on_event("conversation_resolved", "webwidget_triggered")
    async def on_event(ctx: Context) -> None:
        seen.append(ctx.event.name)

    @bot.fallback
    async def any_status(ctx: Context) -> None:
        seen.append(ctx.conversation.status)

    async with Server(bot) as server:
        await server.deliver(factories.conversation_event("conversation_resolved", status="resolved"))
        await server.deliver(factories.template("webwidget_triggered"))
        await server.deliver(factories.contact_message("hi", status="open"))
        await server.settle()
    assert sorted(seen) == ["conversation_resolved", "open", "webwidget_triggered"]
    with pytest.raises(ValueError, match="no event named conversation_created_typo"):
        bot.on_event("conversation_created_typo")


def test_keyword_rules_match_whole_words_ignoring_case_and_accents(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(textwrap.dedent("""
        [[rule]]
        keywords = ["facturación", "invoice"]
        reply = "billing"
        [[rule]]
        regex = "order\\\\s*#?\\\\d+"
        reply = "order"
        [fallback]
        reply = "?"
    """))
    router = KeywordRouter.from_toml(rules)
    first = router.rules[0]
    assert first.matches("Tengo una pregunta de FACTURACION") and first.matches("my Invoice!")
    assert not first.matches("invoices") and not first.matches("reinvoice")
    assert router.rules[1].matches("where is Order #123") and router.fallback == "?"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nkeywords = ["x"]\nreplyy = "typo"\n')
    with pytest.raises(ConfigError, match="bad rule .*unknown keys replyy"):
        KeywordRouter.from_toml(bad)


async def test_keyword_rules_apply_labels_and_a_team_without_handoff():
    router = KeywordRouter([Rule(keywords=["refund"], reply="On it.", labels=["refund"], team="billing")])
    async with Server(Bot("r", [router]), teams="billing=3") as server:
        server.fake.add_team(1, 3, "billing")
        await server.deliver(factories.contact_message("I want a refund"))
        await server.settle()
        paths = [(r.method, r.path.rsplit("/", 1)[-1]) for r in server.fake.requests]
        conversation = server.fake.conversation(128)
    assert ("POST", "labels") in paths and ("POST", "assignments") in paths
    assert ("POST", "toggle_status") not in paths
    assert conversation.labels == ["refund"] and conversation.status == "pending"


def test_a_handler_registered_through_an_entry_point_is_found_and_used(tmp_path):
    package = tmp_path / "faqplugin"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from botkit import Handler

        class FAQ(Handler):
            name = "faq"

            async def handle(self, ctx):
                if "hours" in ctx.text:
                    await ctx.reply("We are open 9 to 5.")
                    return True
                return False
    """))
    dist = tmp_path / "faqplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: faqplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[botkit.handlers]\nfaq = faqplugin:FAQ\n")
    script = textwrap.dedent("""
        import asyncio, sys
        from botkit.config import load_settings
        from botkit.app import bot_from_settings
        from botkit.testing import factories
        from botkit.testing.harness import BotServer

        async def main():
            settings = load_settings(env_file=None, botkit_handlers="faq,keywords")
            bot = bot_from_settings(settings)
            print([h.label for h in bot.handlers])
            async with BotServer(bot, teams="billing=3,technical=4") as server:
                server.fake.add_conversation(conversation_id=128)
                server.fake.add_conversation(conversation_id=5)
                server.fake.add_team(1, 3, "billing")
                await server.deliver(factories.contact_message("what are your hours?"))
                await server.deliver(factories.contact_message("billing", conversation_id=5))
                await server.settle()
                print([r.json["content"] for r in server.fake.requests if r.path.endswith("/messages")])

        asyncio.run(main())
    """)
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "botkit.cli", "handlers"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert "faq" in listed.stdout and "faqplugin:FAQ" in listed.stdout and "keywords" in listed.stdout
    ran = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    labels, contents = ran.stdout.splitlines()
    assert labels == "['faq', 'keywords']"
    # the reply, then the hand-off summary note
    assert contents.startswith("['We are open 9 to 5.', \"I'm transferring you to our billing team.\", "
                               "\"Hand-off summary")


def test_an_unknown_plugin_is_one_sentence():
    from botkit.app import bot_from_settings

    with pytest.raises(ConfigError, match=r"^BOTKIT_HANDLERS names 'nope', which no installed package registers"):
        bot_from_settings(load_settings(env_file=None, botkit_handlers="keywords,nope"))


async def test_several_bots_on_one_server_each_with_its_own_token_and_secret(tmp_path):
    fake = FakeChatwoot()
    sales_inbox = fake.add_inbox(1, 2, "Sales")  # an inbox has one bot: the sales bot gets its own
    sales_bot = fake.add_agent_bot(1, name="sales", inbox_ids=[sales_inbox.id])
    fake.add_team(1, 3, "billing")
    bots_file = tmp_path / "bots.toml"
    bots_file.write_text(textwrap.dedent(f"""
        [bots.support]
        bot = "bots.support_router:make_bot"
        token = "{fake.bot_token}"
        secret = "{fake.bot_secret}"
        teams = "billing=3,technical=4"

        [bots.sales]
        handlers = "keywords"
        token = "{sales_bot.access_token}"
        secret = "{sales_bot.secret}"
        teams = "billing=3,technical=4"
    """))
    fake.add_conversation(conversation_id=128)
    async with fake.serve():
        settings = load_settings(env_file=None, chatwoot_base_url=fake.url, botkit_store="memory://",
                                 botkit_bots_file=str(bots_file))
        app = build_app(settings)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
            async def deliver(path, secret, body):
                raw = json.dumps(body).encode()
                return await client.post(path, content=raw, headers=signed_headers(secret, raw))

            body = factories.contact_message("billing")
            assert (await deliver("/webhooks/support", fake.bot_secret, body)).json()["status"] == "accepted"
            # the same message reaches the other bot too (an inbox bot and an assigned bot): not a duplicate
            assert (await deliver("/webhooks/sales", sales_bot.secret, body)).json()["status"] == "accepted"
            # each bot checks its own secret
            assert (await deliver("/webhooks/sales", fake.bot_secret, body)).status_code == 401
            # plain /webhook is for the single-bot case only
            assert (await deliver("/webhook", fake.bot_secret, body)).status_code == 404
            for _ in range(500):
                if len(fake.requests_to("POST", MESSAGES)) == 4:  # each bot's reply and hand-off summary
                    break
                import asyncio
                await asyncio.sleep(0.01)
    tokens = sorted(r.token for r in fake.requests_to("POST", MESSAGES))
    assert tokens == sorted([fake.bot_token, sales_bot.access_token] * 2)
    assert {r.token for r in fake.requests} == {fake.bot_token, sales_bot.access_token}


def test_a_bad_bots_file_is_one_sentence(tmp_path):
    bots_file = tmp_path / "bots.toml"
    bots_file.write_text('[bots.Support]\nsecret = "x"\n')
    settings = load_settings(env_file=None, botkit_store="memory://", botkit_bots_file=str(bots_file))
    with pytest.raises(ConfigError, match=r"^BOTKIT_BOTS_FILE \[bots.Support\]: a bot's name must be lowercase"):
        build_app(settings)
    bots_file.write_text('[bots.a]\nsecret = "x"\nbot = "bots.support_router:bot"\n'
                         '[bots.b]\nsecret = "y"\nbot = "bots.support_router:bot"\n')
    with pytest.raises(ConfigError, match="reuses another bot's object; name a factory"):
        build_app(settings)


class Greeter(Handler):
    events = frozenset({"webwidget_triggered"})

    async def handle(self, ctx: Context) -> bool:
        await ctx.reply(f"Hi {ctx.contact.name}!")
        return True


async def test_a_class_handler_on_the_widget_event():
    async with Server(Bot("greet", [Greeter()])) as server:
        await server.deliver(factories.template("webwidget_triggered"))
        await server.settle()
        sent = replies(server.fake)
    assert [m["content"] for m in sent] == ["Hi Jane Doe!"]


async def test_typing_is_shown_only_while_a_handler_runs_longer_than_a_moment():
    import asyncio

    bot = Bot("slow", typing_after=0.3)

    @bot.fallback
    async def answer(ctx: Context) -> None:
        if "slow" in ctx.text:
            await asyncio.sleep(0.9)
        await ctx.reply("done")

    typing_path = "/api/v1/accounts/1/conversations/128/toggle_typing_status"
    async with Server(bot) as server:
        await server.deliver(factories.contact_message("quick one"))
        await server.settle()
        assert server.fake.requests_to("POST", typing_path) == []
        await server.deliver(factories.contact_message("a slow one"))
        await server.settle()
        order = [(r.path.rsplit("/", 1)[-1], (r.json or {}).get("typing_status")) for r in server.fake.requests]
    assert order == [("messages", None), ("toggle_typing_status", "on"), ("messages", None),
                     ("toggle_typing_status", "off")]
