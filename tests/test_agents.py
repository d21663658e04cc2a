"""Suggest mode and agents' commands, over real sockets: the receiver, worker and client against the fake Chatwoot."""

from __future__ import annotations

import re

import pytest

from botkit import Bot, Context, KeywordRouter
from botkit.adapters.keywords import GUIDE_FALLBACK, GUIDE_RULES
from botkit.agents import Agents
from botkit.bots_file import read_bots_file
from botkit.config import ConfigError, load_settings
from botkit.testing import factories

TEAMS = "billing=3,technical=4"


def support_bot(**options: object) -> Bot:
    return Bot("support", [KeywordRouter(GUIDE_RULES, fallback=GUIDE_FALLBACK)], **options)  # type: ignore[arg-type]


def public(flow) -> list[str]:
    """What the contact can see: the conversation's public outgoing messages in the fake."""
    return [m["content"] for m in flow.fake.messages(flow.conversation_id)
            if m["message_type"] == 1 and not m["private"]]


async def test_suggest_mode_posts_a_private_suggestion_and_nothing_public(bot_flow):
    flow = await bot_flow(support_bot(mode="suggest"), teams=TEAMS)
    await flow.send("hello there")
    flow.expect_note(re.compile(r"^Suggestion 1 \(/send 1 to send it\):\nHow can I help you today\?"))
    flow.expect_summary("Why: suggest mode").expect_handoff().expect_no_action()  # left to the agents
    assert public(flow) == []
    # the conversation is the agents' now, and the bot goes on suggesting for the contact's next message
    await flow.send("and a billing question")
    flow.expect_note(re.compile(r"^Suggestion 1 .*\nI'm transferring you to our billing team\.$"))
    flow.expect_team("billing").expect_no_action()
    assert public(flow) == []


async def test_an_agents_send_posts_the_suggestion_once(bot_flow):
    flow = await bot_flow(support_bot(mode="suggest"), teams=TEAMS)
    await flow.send("hello there")
    await flow.agent_note("/send")
    flow.expect_reply(re.compile(r"^How can I help you today\?")).expect_no_action()
    assert flow.statuses == ["accepted"]
    # Chatwoot retries the delivery of that note: deduped, nothing posted again
    await flow.redeliver()
    assert flow.statuses == ["duplicate"]
    flow.expect_no_action()
    # the same note delivered under another delivery id (Chatwoot issue #11901): deduped too
    await flow.deliver(flow._delivered[0][0])
    assert flow.statuses == ["duplicate"]
    flow.expect_no_action()
    # another agent's /send of the same suggestion is told it went already
    await flow.agent_note("/send 1")
    flow.expect_note("Suggestion 1 was already sent.").expect_no_action()
    assert len(public(flow)) == 1


async def test_a_sent_suggestion_arrives_as_written_and_its_menu_is_answered(bot_flow):
    """`/send` posts a suggestion as the reply would have gone: Liquid in a model's words is not rendered by
    Chatwoot, and the contact's answer to a sent menu reaches on_answer."""
    bot = Bot("support", mode="suggest")

    @bot.on_answer("human")
    async def human(ctx: Context) -> None:
        await ctx.reply("A person will answer.")

    @bot.on_message("menu")
    async def menu(ctx: Context) -> None:
        from botkit.rich import InputSelect, Option
        await ctx.reply(InputSelect("Pick one", [Option("Talk to a human", "human"), Option("Track", "track")]))

    @bot.fallback
    async def answer(ctx: Context) -> None:
        await ctx.reply("Your address is {{contact.email}}, {% if true %}right{% endif %}?")

    flow = await bot_flow(bot, teams=TEAMS)
    await flow.send("what is my address")
    await flow.agent_note("/send")
    assert public(flow) == ["Your address is {{contact.email}}, {% if true %}right{% endif %}?"]
    await flow.send("menu")
    await flow.agent_note("/send")
    await flow.choose("Talk to a human")  # in suggest mode the answer is a suggestion again
    notes = [m["content"] for m in flow.fake.messages(flow.conversation_id) if m["private"]]
    assert notes[-1].endswith("\nA person will answer.")


async def test_send_picks_one_of_several_suggestions(bot_flow):
    bot = Bot("two", mode="suggest")

    @bot.fallback
    async def answer(ctx: Context) -> None:
        await ctx.reply("Short answer.")
        await ctx.reply("A longer answer with details.")

    flow = await bot_flow(bot)
    await flow.send("question")
    flow.expect_note(re.compile(r"^Suggestion 1 .*\nShort answer\.$"))
    flow.expect_note(re.compile(r"^Suggestion 2 \(/send 2 to send it\):\nA longer answer with details\.$"))
    await flow.agent_note("/send 2")
    flow.expect_reply("A longer answer with details.").expect_no_action()
    await flow.agent_note("/send 3")
    flow.expect_note("There is no suggestion 3 to send; there are 2.").expect_no_action()


async def test_the_contacts_message_slash_send_is_not_a_command(bot_flow):
    flow = await bot_flow(support_bot(mode="suggest"), teams=TEAMS)
    await flow.send("hello there")
    await flow.send("/send")  # the contact typed it: a message like any other, answered with a suggestion
    flow.expect_note(re.compile(r"^Suggestion 1 ")).expect_no_action()
    assert public(flow) == []


async def test_the_bots_own_note_and_an_agents_public_reply_are_not_commands(bot_flow):
    flow = await bot_flow(support_bot(mode="suggest"), teams=TEAMS)
    await flow.send("hello there")
    own = factories.private_note("/send", sender={"id": flow.fake.bot.id, "name": "botkit", "type": "agent_bot"},
                                 status="open")
    await flow.deliver(own, factories.agent_reply("/send", status="open"))
    flow.expect_no_action()
    assert public(flow) == []


async def test_pause_and_resume(bot_flow):
    flow = await bot_flow(support_bot(), teams=TEAMS)
    await flow.agent_note("/pause")
    flow.expect_note("The bot is paused in this conversation; /resume lets it answer again.").expect_no_action()
    await flow.send("hello there")
    flow.expect_no_action()  # pending, but paused: the bot stays silent
    await flow.agent_note("/resume")
    flow.expect_note("The bot answers again in this conversation.").expect_no_action()
    await flow.send("hello there")
    flow.expect_reply(re.compile(r"^How can I help you today\?")).expect_no_action()


async def test_an_unknown_command_gets_the_list_of_known_ones(bot_flow):
    flow = await bot_flow(support_bot(), teams=TEAMS)
    await flow.agent_note("/frobnicate now")
    flow.expect_note(re.compile(r"^Unknown command /frobnicate\. Commands:\n/send \[n\]: .*\n/pause: .*"
                                r"\n/resume: .*\n/bot: .*\n/summary: .*\n/mode .*\n/help: ")).expect_no_action()
    await flow.agent_note("just a note between agents, no command")
    flow.expect_no_action()


async def test_the_prefix_is_a_setting(bot_flow):
    flow = await bot_flow(support_bot(), teams=TEAMS, botkit_command_prefix="!")
    await flow.agent_note("/pause")
    flow.expect_no_action()  # not this bot's prefix: an ordinary note
    await flow.agent_note("!pause")
    flow.expect_note("The bot is paused in this conversation; !resume lets it answer again.")


async def test_hand_the_conversation_back_to_the_bot(bot_flow):
    flow = await bot_flow(support_bot(), teams=TEAMS)
    await flow.send("I want a human")
    flow.expect_reply().expect_summary().expect_handoff()
    await flow.send("hello?")
    flow.expect_no_action()  # open: the humans'
    await flow.agent_note("/bot")
    flow.expect_note("The conversation is back with the bot.").expect_status("pending").expect_no_action()
    await flow.send("hello there")
    flow.expect_reply(re.compile(r"^How can I help you today\?"))


async def test_mode_per_conversation_and_summary_on_request(bot_flow):
    flow = await bot_flow(support_bot(), teams=TEAMS)
    await flow.agent_note("/mode suggest")
    flow.expect_note("The bot is in suggest mode in this conversation.")
    await flow.send("hello there")
    flow.expect_note(re.compile(r"^Suggestion 1 ")).expect_summary().expect_handoff()
    other = flow.new_conversation()
    await other.send("hello there")
    other.expect_reply(re.compile(r"^How can I help you today\?"))  # other conversations still answered
    await flow.agent_note("/summary")
    flow.expect_summary("Why: an agent asked for a summary", "Wants: hello there").expect_no_action()
    await flow.agent_note("/mode loud")
    flow.expect_note("/mode takes suggest or answer.")


async def test_suggest_mode_per_inbox(bot_flow):
    flow = await bot_flow(support_bot(), teams=TEAMS, botkit_suggest_inboxes="1")
    await flow.send("hello there")
    flow.expect_note(re.compile(r"^Suggestion 1 "))
    elsewhere = flow.new_conversation(inbox_id=2)
    await elsewhere.send("hello there")
    elsewhere.expect_reply(re.compile(r"^How can I help you today\?"))


async def test_suggestions_go_on_while_agents_answer_until_an_agent_pauses_the_bot(bot_flow):
    flow = await bot_flow(support_bot(mode="suggest"), teams=TEAMS)
    await flow.send("hello there")
    # an agent edits the suggestion and sends it themselves: humans hold the conversation (botkit/turn.py)
    await flow.deliver(factories.agent_reply("Hi! How can I help?", status="open"))
    flow.expect_no_action()
    await flow.send("a billing problem")
    flow.expect_note(re.compile(r"^Suggestion 1 .*\nI'm transferring you to our billing team\.$"))
    await flow.agent_note("/pause")
    flow.expect_note(re.compile("^The bot is paused"))
    await flow.send("hello?")
    flow.expect_no_action()
    assert public(flow) == []


@pytest.mark.parametrize(("overrides", "sentence"), [
    ({"botkit_mode": "loud"}, "BOTKIT_MODE must be answer or suggest (it is 'loud')."),
    ({"botkit_summary": "maybe"}, "BOTKIT_SUMMARY must be auto, model, built or off (it is 'maybe')."),
    ({"botkit_hours": "Europe/Paris; mon-fry 09:00-17:00"},
     "BOTKIT_HOURS 'mon-fry' is not a day or days; use mon..sun, e.g. mon-fri or sat,sun "
     "(it is 'Europe/Paris; mon-fry 09:00-17:00')."),
    ({"botkit_outside_hours": "later"}, "BOTKIT_OUTSIDE_HOURS must be wait (pending until opening time) or open "
                                        "(open now, with a note) (it is 'later')."),
    ({"botkit_suggest_inboxes": "web"}, "BOTKIT_SUGGEST_INBOXES must be inbox ids separated by commas, e.g. 3,5 "
                                        "(it is 'web')."),
])
def test_a_wrong_setting_is_one_sentence(overrides, sentence):
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None, **overrides)
    assert str(caught.value) == sentence


def test_each_bot_of_a_bots_file_has_its_own_mode_summary_and_hours(tmp_path):
    path = tmp_path / "bots.toml"
    path.write_text('[bots.copilot]\nmode = "suggest"\nsummary = "built"\nhours = "UTC; mon-fri 09:00-17:00"\n'
                    'outside_hours = "open"\n\n[bots.support]\nhandlers = "keywords"\n')
    copilot, support = read_bots_file(str(path), load_settings(env_file=None))
    assert (copilot.settings.botkit_mode, copilot.settings.botkit_summary) == ("suggest", "built")
    assert copilot.settings.botkit_outside_hours == "open" and copilot.settings.botkit_hours
    assert (support.settings.botkit_mode, support.settings.botkit_hours) == ("answer", None)


def test_hours_from_chatwoot_need_an_administrators_token():
    with pytest.raises(ConfigError, match="BOTKIT_HOURS=chatwoot reads each inbox's working hours with an "
                                          "administrator's token: set CHATWOOT_ADMIN_TOKEN and CHATWOOT_BASE_URL."):
        Agents.from_settings(load_settings(env_file=None, botkit_hours="chatwoot"))


async def test_a_reply_with_files_in_suggest_mode_sends_nothing_public(bot_flow):
    from botkit.files import File

    bot = Bot("files", mode="suggest")

    @bot.fallback
    async def invoice(ctx: Context) -> None:
        await ctx.reply("Here is your invoice.", files=[File("invoice.pdf", b"%PDF-1.4", "application/pdf")])

    flow = await bot_flow(bot)
    await flow.send("my invoice please")
    flow.expect_note("Suggestion 1 (/send 1 to send it):\nHere is your invoice.\n"
                     "(with the files invoice.pdf: attach them yourself)")
    assert public(flow) == []


async def test_a_handoff_to_a_team_with_no_id_fails_before_the_bot_says_anything(bot_flow):
    # The README's shop bot hands off to team "support", which a function's code names and start-up cannot
    # check: the hand-off wrote its summary note and the contact's message, then failed on the team, and the
    # dead letter's fallback wrote a second summary. Now the team is looked up first: one summary, the fallback's.
    bot = Bot("shop")

    @bot.fallback
    async def to_support(ctx: Context) -> None:
        await ctx.handoff(team="support", message="A person will answer you.", note="Asked for a human.")

    flow = await bot_flow(bot, teams=TEAMS)
    await flow.send("a human please")
    flow.expect_summary("Why: the bot failed on this conversation", "ActionRefused").expect_handoff()
    flow.expect_no_action()
    assert public(flow) == []


def test_a_bare_function_in_the_chain_is_one_sentence():
    async def helper(ctx: Context) -> None:
        await ctx.reply("hi")

    with pytest.raises(TypeError, match=r"^Bot\('shop', \[...\]\) takes handlers: <function .*helper.* is not one; "
                                        r"register a function with a router's decorator"):
        Bot("shop", [helper])  # type: ignore[list-item]
