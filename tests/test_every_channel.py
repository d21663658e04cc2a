"""Every channel end to end, over real sockets: the README's menu bot on each channel of Chatwoot's table, menus
past each provider's limits, delivery failures, Chatwoot's own template messages, keywords in addresses,
Liquid in a model's answer, and an e-mail delivery of 1.1 MB (the four cases of the issue first)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from botkit import Bot, Context
from botkit.adapters.openai import OpenAIHandler
from botkit.channels import CHANNELS
from botkit.rich import InputSelect, Option
from botkit.testing import factories
from botkit.testing.fake_openai import FakeOpenAI
from botkit.testing.flow import BotFlow
from botkit.testing.harness import BotServer
from bots.support_router import make_bot as default_bot

pytestmark = pytest.mark.usefixtures("no_openai_env")
CHANNEL_KEYS = [c.key for c in CHANNELS]
ASKED = re.compile(r"^Hand-off summary .*\nNote: Asked for a human from the order menu\.", re.DOTALL)
NUMBERED = ("What would you like to do?\n1. Track my order\n2. Talk to a human\n"
            "Reply with the number of your choice.")


def readme_bot() -> Bot:
    """The menu bot of the README, as written there."""
    bot = Bot("shop", typing_after=None)

    @bot.on_message("order", "tracking")
    async def track(ctx: Context) -> None:
        await ctx.reply(InputSelect("What would you like to do?",
                                    [Option("Track my order", "track"), Option("Talk to a human", "human")]))

    @bot.on_answer("human")
    async def to_human(ctx: Context) -> None:
        await ctx.handoff(team="support", note="Asked for a human from the order menu.")

    @bot.fallback
    async def fallback(ctx: Context) -> None:
        await ctx.reply("Ask me about your order.")

    return bot


def menu_bot(menu: InputSelect) -> Bot:
    bot = Bot("menus", typing_after=None)

    @bot.on_answer()
    async def picked(ctx: Context) -> None:
        await ctx.reply(f"You picked {ctx.text}.")

    @bot.fallback
    async def ask(ctx: Context) -> None:
        await ctx.reply(menu)

    return bot


# The four cases ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["whatsapp", "telegram"])
async def test_case_1_a_tap_on_whatsapp_or_telegram_answers_the_menu(channel):
    async with BotFlow.start(readme_bot(), teams="support=5", channel=channel) as flow:
        await flow.send("Where is my order?")
        flow.expect_reply("What would you like to do?", options=["Track my order", "Talk to a human"])
        await flow.choose("Talk to a human")  # WhatsApp: the title, with in_reply_to; Telegram: the value "human"
        flow.expect_note(ASKED).expect_team("support").expect_handoff()
        flow.expect_no_action()
        assert flow.status == "open"


async def test_case_1_tapping_track_does_not_loop_back_to_the_menu():
    async with BotFlow.start(readme_bot(), teams="support=5", channel="whatsapp") as flow:
        await flow.send("Where is my order?")
        await flow.choose("Track my order")  # its title has "order" in it: a keyword, were it ordinary text
        flow.expect_reply("Ask me about your order.").expect_no_action()  # the same as on the widget
        await flow.send("Track my order")  # typed again: no open menu, so an ordinary message
        flow.expect_reply("What would you like to do?").expect_no_action()


@pytest.mark.parametrize("menu, limit", [
    (InputSelect("How can I help?", [Option(t, str(n)) for n, t in enumerate(
        ["I want to track my order!", "I would like to get a refund", "Please talk to a human now",
         "Change my delivery address now"])]), "24 characters"),
    (InputSelect("Pick a store", [Option(f"Store {n}", f"s{n}") for n in range(11)]), "at most 10 options"),
    (InputSelect(None, [Option("Yes", "yes"), Option("No", "no")]), None),
])
async def test_case_2_menus_whatsapp_refuses_are_never_sent_as_they_are(menu, limit, caplog):
    async with BotFlow.start(menu_bot(menu), channel="whatsapp") as flow:
        with caplog.at_level(logging.WARNING, "botkit.channels"):
            await flow.send("hello")
        reply = flow.expect_reply().last
        assert flow.fake.failures == [] and flow.fake.dropped == []
        assert reply.body["content"].strip()  # a body, always
        flow.expect_no_action()  # the provider refused nothing, so nothing was sent again
        warnings = [r.getMessage() for r in caplog.records if r.name == "botkit.channels"]
        if limit is None:
            assert warnings == [] and reply.body["content_type"] == "input_select"
        else:
            assert len(warnings) == 1 and limit in warnings[0] and reply.body["content_type"] == "text"
        await flow.choose(menu.options[1].title)
        flow.expect_reply(f"You picked {menu.options[1].value}.")


async def test_case_3_chatwoots_email_collect_answer_is_not_the_contacts_answer_to_the_bot():
    async with BotFlow.start(default_bot(), teams="billing=3,technical=4") as flow:
        await flow.deliver(factories.email_collected("billing.desk@example.net", **flow._ids()))
        flow.expect_no_action()
        assert flow.status == "pending"


async def test_case_4_a_reply_on_a_long_email_thread_is_accepted_and_answered():
    thread = "\n".join(f"> On day {n}, Jane wrote: about my invoice and the billing details we discussed"
                       for n in range(1250))
    async with BotFlow.start(default_bot(), teams="billing=3,technical=4", channel="email") as flow:
        body = factories.message("Thanks! One more question about billing.\n" + thread, **flow._ids())
        size = len(json.dumps(body).encode())
        assert 1_000_000 < size < 2_000_000, size
        assert await flow.server.deliver(body) == "accepted"
        await flow.server.settle()
        flow.expect_reply("I'm transferring you to our billing team.").expect_note(re.compile("^Hand-off summary"))
        flow.expect_team("billing").expect_handoff()


async def test_a_body_over_the_cap_is_refused_with_one_warning_naming_the_setting(caplog):
    async with BotServer(default_bot(), teams="billing=3,technical=4", botkit_max_body_bytes=64 * 1024) as server:
        big = factories.message("x" * 100_000, channel="email")
        with caplog.at_level(logging.WARNING, "botkit.receiver"), pytest.raises(Exception, match="413"):
            await server.deliver(big)
        [warning] = [r.getMessage() for r in caplog.records if r.name == "botkit.receiver"]
        assert "BOTKIT_MAX_BODY_BYTES=65536" in warning and str(len(json.dumps(big))) in warning


# The README's bot on every channel -----------------------------------------------------------------------------

@pytest.mark.parametrize("channel", CHANNEL_KEYS)
async def test_the_readme_menu_bot_works_on_every_channel(channel):
    async with BotFlow.start(readme_bot(), teams="support=5", channel=channel) as flow:
        await flow.send("Where is my order?")
        menu = flow.expect_reply().last.body
        if menu["content_type"] == "input_select":
            assert [i["title"] for i in menu["content_attributes"]["items"]] == ["Track my order", "Talk to a human"]
        else:  # text-only channels: numbered text the contact answers by number
            assert menu["content"] == NUMBERED
        await flow.choose("Talk to a human")
        flow.expect_note(ASKED).expect_team("support").expect_handoff()
        flow.expect_no_action()
        assert flow.fake.failures == [] and flow.fake.dropped == []


async def test_an_instagram_chat_on_a_facebook_page_inbox_gets_numbered_text_not_quick_replies():
    """Chatwoot sends such a conversation's messages with Instagram's sender, which posts `content` alone: quick
    replies would reach the contact as the bare question with nothing to tap."""
    async with BotFlow.start(readme_bot(), teams="support=5", channel="facebook") as flow:
        flow.conversation.additional_attributes["type"] = "instagram_direct_message"
        await flow.send("Where is my order?")
        flow.expect_reply(NUMBERED)
        await flow.choose("Talk to a human")  # typed back as its number
        flow.expect_note(ASKED).expect_team("support").expect_handoff().expect_no_action()
        assert flow.fake.failures == [] and flow.fake.dropped == []
    async with BotFlow.start(readme_bot(), teams="support=5", channel="facebook") as flow:  # Messenger itself
        await flow.send("Where is my order?")
        assert flow.expect_reply().last.body["content_type"] == "input_select"


@pytest.mark.parametrize("channel", ["whatsapp", "facebook", "line", "sms"])
async def test_titles_typed_back_answer_a_numbered_menu_and_other_text_is_ordinary(channel):
    over = InputSelect("Pick a plan", [Option(f"Plan number {n} with extras", f"plan-{n}-" + "x" * 70)
                                       for n in range(15)])
    async with BotFlow.start(menu_bot(over), channel=channel) as flow:
        await flow.send("hi")
        assert flow.expect_reply().last.body["content_type"] == "text"
        await flow.send("Something else entirely")
        flow.expect_reply(lambda text: text.startswith("Pick a plan\n1. Plan number 0"))  # the menu again
        await flow.send("plan NUMBER 3 with extras")  # a title, typed in another case
        flow.expect_reply(f"You picked plan-3-{'x' * 70}.")
        await flow.send("3")  # that menu was answered; the newest one is still open
        flow.expect_reply(f"You picked plan-2-{'x' * 70}.")


async def test_telegram_keeps_the_keyboard_for_values_over_64_bytes_and_a_tap_answers_with_the_value():
    """callback_data is 1-64 bytes (the fake's Telegram refuses more); the tap comes back as the key sent."""
    long = [Option(f"Plan {n}", f"plan-{n}-" + "x" * 70) for n in range(3)]
    async with BotFlow.start(menu_bot(InputSelect("Pick a plan", long)), channel="telegram") as flow:
        await flow.send("hi")
        menu = flow.expect_reply("Pick a plan", options=["Plan 0", "Plan 1", "Plan 2"]).last.body
        assert menu["content_type"] == "input_select"
        assert all(len(i["value"].encode()) <= 64 for i in menu["content_attributes"]["items"])
        assert flow.fake.failures == [] and flow.fake.dropped == []
        await flow.choose("Plan 1")  # Telegram delivers the button's callback_data: the key
        assert flow._delivered[-1][0]["content"] == menu["content_attributes"]["items"][1]["value"]
        flow.expect_reply(f"You picked plan-1-{'x' * 70}.").expect_no_action()
        await flow.choose("Plan 2")  # the keyboard stays: a second tap answers too, never a key as text
        flow.expect_reply(f"You picked plan-2-{'x' * 70}.").expect_no_action()


# Delivery failures ---------------------------------------------------------------------------------------------

async def test_a_refused_menu_is_logged_counted_and_sent_again_as_numbered_text(caplog):
    async with BotFlow.start(readme_bot(), teams="support=5", channel="whatsapp") as flow:
        flow.fake.refuse_next("(#131000) Something went wrong")
        with caplog.at_level(logging.WARNING, "botkit.bot"):
            await flow.send("Where is my order?")
        flow.expect_reply("What would you like to do?", options=["Track my order", "Talk to a human"])
        flow.expect_reply(NUMBERED).expect_no_action()
        [warning] = [r.getMessage() for r in caplog.records if r.name == "botkit.bot"]
        assert "WhatsApp refused message" in warning and "(#131000) Something went wrong" in warning
        scrape = flow.server.app.state.metrics.registry.get_sample_value(
            "botkit_delivery_failures_total", {"channel": "whatsapp", "reason": "refused"})
        assert scrape == 1
        await flow.choose("2")
        flow.expect_note(ASKED).expect_team("support").expect_handoff()


async def test_a_refused_text_is_not_sent_again_and_the_hook_sees_every_failure():
    bot = readme_bot()
    seen = []

    @bot.on_delivery_failed
    async def failed(ctx: Context) -> None:
        seen.append((ctx.failure.message_id, ctx.failure.error))

    async with BotFlow.start(bot, teams="support=5", channel="telegram") as flow:
        flow.fake.refuse_next("403, Forbidden: bot was blocked by the user")
        await flow.send("hello")
        flow.expect_reply("Ask me about your order.").expect_no_action()
        assert seen == [(flow.fake.messages(128)[-1]["id"], "403, Forbidden: bot was blocked by the user")]


async def test_a_failure_outside_the_window_applies_when_cannot_reply_until_the_contact_writes():
    bot = readme_bot()
    bot.when_cannot_reply = "handoff"
    async with BotFlow.start(bot, teams="support=5", channel="whatsapp") as flow:
        flow.fake.refuse_next("Template not found or invalid template name")
        await flow.send("Where is my order?")
        flow.expect_reply("What would you like to do?")
        flow.expect_note(re.compile(r"Note: The bot could not reply: the channel's reply window is closed\."))
        flow.expect_handoff()
        flow.expect_no_action()


async def test_a_closed_window_skips_replies_by_default_and_reopens_when_the_contact_writes():
    async with BotFlow.start(readme_bot(), teams="support=5", channel="whatsapp") as flow:
        flow.fake.refuse_next("Template not found or invalid template name")
        await flow.send("Where is my order?")
        flow.expect_reply("What would you like to do?").expect_no_action()  # refused, and not sent again
        await flow.send("hello?")  # the contact wrote: the window is open again
        flow.expect_reply("Ask me about your order.").expect_no_action()


# Chatwoot's own template messages -------------------------------------------------------------------------------

def templates(ids: dict) -> list[dict]:
    """Greeting, out of office, e-mail collect (two messages and the answer), CSAT (the survey and the answer)."""
    return [
        factories.template_message("Hi there! We usually reply in a few minutes.", **ids),
        factories.template_message("We are away right now; we will be back at 9:00.", **ids),
        factories.template_message("Give the team a way to reach you.", **ids),
        {**factories.template_message("Get notified by email", **ids), "content_type": "input_email"},
        factories.email_collected("billing.desk@example.net", **ids),
        factories.csat_survey(**ids),
        factories.csat_answer(2, "Billing took too long, I want a human", **ids),
    ]


@pytest.mark.parametrize("channel", ["web", "whatsapp"])
async def test_no_template_message_or_answer_reaches_a_handler_uninvited(channel):
    async with BotFlow.start(default_bot(), teams="billing=3,technical=4", channel=channel) as flow:
        for body in templates(flow._ids()):  # on WhatsApp the survey is an outgoing message with no sender
            await flow.deliver(body)
            flow.expect_no_action()
        assert flow.status == "pending"


async def test_a_handler_subscribes_to_csat_on_purpose():
    bot = default_bot()
    ratings = []

    @bot.on_csat
    async def rated(ctx: Context) -> None:
        ratings.append(ctx.csat)
        await ctx.add_labels("csat-low" if ctx.csat["rating"] <= 2 else "csat-ok")

    async with BotFlow.start(bot, teams="billing=3,technical=4") as flow:
        await flow.deliver(*templates(flow._ids()))
        flow.expect_labels("csat-low").expect_no_action()
        assert ratings == [{"rating": 2, "feedback_message": "Billing took too long, I want a human"}]


# Words and text -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Write to billing.desk@example.net", "see https://acme.example/billing/faq",
                                  "my account is technical.support.acme.example"])
async def test_keywords_do_not_match_inside_addresses(text):
    async with BotFlow.start(default_bot(), teams="billing=3,technical=4") as flow:
        await flow.send(text)
        flow.expect_reply(lambda t: t.startswith("How can I help you today?")).expect_no_action()
        await flow.send("A billing question, please.")
        flow.expect_reply("I'm transferring you to our billing team.")


async def test_a_models_answer_with_liquid_arrives_as_written():
    answer = "Your e-mail is {{contact.email}}? {% if true %}Write `{{ code }}` to {{ agent.name }}.{% endif %}"
    openai = FakeOpenAI(api_key="sk-test")
    async with openai.serve():
        bot = Bot("assistant", [OpenAIHandler(api_key="sk-test", base_url=openai.base_url, env_file=None)],
                  typing_after=None)
        async with BotFlow.start(bot) as flow:
            openai.reply(answer)
            await flow.send("what do you know about me?")
            flow.expect_reply()
            assert flow.fake.messages(128)[-1]["content"] == answer  # what Chatwoot saved, after its Liquid


async def test_liquid_on_purpose():
    bot = Bot("greeter", typing_after=None)

    @bot.fallback
    async def hello(ctx: Context) -> None:
        await ctx.reply("Hello {{contact.name}}!", liquid=True)
        await ctx.reply("Literally {{contact.name}}")

    async with BotFlow.start(bot) as flow:
        await flow.send("hi")
        flow.expect_reply()
        assert [m["content"] for m in flow.fake.messages(128)] == ["Hello Jane Doe!", "Literally {{contact.name}}"]
