"""The flow API and the pytest fixtures of botkit.testing, as a bot author uses them."""

from __future__ import annotations

import re

import httpx
import pytest

import botkit.testing as kit
from botkit import Bot
from botkit.security import signed_headers
from botkit.testing import factories
from botkit.testing.flow import BotFlow, teams_used_by
from bots.support_router import make_bot as make_router
from tests.support.menu_bot import make_bot as make_menu


@pytest.fixture
async def menu(bot_flow):
    return await bot_flow(make_menu(), teams="billing=3")


async def test_the_public_names():
    assert kit.FakeChatwoot.__module__ == "botkit.testing.fake_chatwoot"
    assert kit.signed_headers is signed_headers  # re-exported, not a second copy
    assert kit.factories.contact_message("hi")["content"] == "hi"
    with pytest.raises(AttributeError):
        kit.NoSuchThing  # noqa: B018


async def test_fake_chatwoot_fixture_serves_on_loopback(fake_chatwoot):
    assert fake_chatwoot.url.startswith("http://127.0.0.1:")
    fake_chatwoot.add_conversation(conversation_id=5)
    async with httpx.AsyncClient(base_url=fake_chatwoot.url) as http:
        answer = await http.get("/api/v1/accounts/1/conversations/5",
                                headers={"api_access_token": fake_chatwoot.bot_token})
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
    assert [(r.method, r.status) for r in fake_chatwoot.requests] == [("GET", 200)]


async def test_teams_default_to_the_names_the_bot_uses(bot_flow):
    assert teams_used_by(make_router()) == ["billing", "technical"]
    flow = await bot_flow(make_router())  # no teams given: each name gets an id, the fake knows them
    await flow.send("billing question")
    flow.expect_reply().expect_summary().expect_team("billing")
    assert flow.last.value == 1
    flow.expect_handoff().expect_no_action()
    assert {t.name: t.id for t in flow.fake.teams.values()} == {"billing": 1, "technical": 2}


async def test_input_select_and_choose_sends_what_chatwoot_sends(menu):
    await menu.send("hello")
    menu.expect_reply("What can I help with?", options=["Track my order", "Get a refund"]).expect_no_action()
    assert menu.last.body["content_type"] == "input_select"
    await menu.choose("Track my order")  # by title, or by value
    menu.expect_reply("Your order is on its way.").expect_labels("orders", exact=True).expect_no_action()
    # the answer was recorded on the bot's own message, as Chatwoot does
    select = menu.last_input_select()
    assert select["content_attributes"]["submitted_values"] == [{"title": "Track my order", "value": "track"}]


async def test_choose_delivers_message_updated_on_the_bots_message(menu):
    await menu.send("hello")
    sent = menu.last_input_select()
    delivered: list[dict] = []
    original = menu.server.deliver

    async def spy(body, **kwargs):
        delivered.append(body)
        return await original(body, **kwargs)

    menu.server.deliver = spy
    await menu.choose("refund")
    assert len(delivered) == 1
    body = delivered[0]
    assert body["event"] == "message_updated" and body["id"] == sent["id"]
    assert body["message_type"] == "outgoing" and body["sender"]["type"] == "agent_bot"
    assert body["content_attributes"]["submitted_values"] == [{"title": "Get a refund", "value": "refund"}]
    menu.expect_summary("Note: The contact asked for a refund.").expect_team("billing").expect_handoff()
    menu.expect_no_action()


async def test_choose_without_a_menu_or_with_an_unknown_option_says_why(menu):
    with pytest.raises(AssertionError, match="has sent no menu"):
        await menu.choose("track")
    await menu.send("hello")
    with pytest.raises(AssertionError, match=r"offers only 'Track my order' \('track'\), 'Get a refund'"):
        await menu.choose("cancel")


async def test_reply_matchers_regex_and_predicate(menu):
    await menu.send("done")
    menu.expect_reply(re.compile(r"help"))
    await menu.send("done")
    menu.expect_reply(lambda text: text.startswith("Glad")).expect_status("resolved").expect_no_action()
    assert menu.status == "resolved"


async def test_a_wrong_expectation_lists_what_happened(menu):
    await menu.send("hello")
    with pytest.raises(AssertionError) as failure:
        menu.expect_reply("Hi!")
    message = str(failure.value)
    assert "expected a reply 'Hi!', but the next action was reply 'What can I help with?'" in message
    assert "input_select: 'Track my order', 'Get a refund'" in message
    assert "what the bot did after send('hello'):" in message
    # the failed expectation consumed nothing: the right one still passes
    menu.expect_reply("What can I help with?")
    with pytest.raises(AssertionError, match="expected a hand-off .*, but the bot did nothing more"):
        menu.expect_handoff()


async def test_expectations_are_in_order(menu):
    await menu.send("hello")
    await menu.choose("refund")
    with pytest.raises(AssertionError, match=r"expected assignment to team 'billing', but the next action was "
                                             r"note \"Hand-off summary"):
        menu.expect_team("billing")
    with pytest.raises(AssertionError, match="(?s)expected assignment to team 'support'.*✓ 1. note"):
        menu.expect_note().expect_team("support")


async def test_expect_no_action_fails_on_a_leftover(menu):
    await menu.send("note")
    with pytest.raises(AssertionError, match="expected no more actions, but the bot did note 'The contact wants"):
        menu.expect_no_action()
    menu.expect_note("The contact wants a note.").expect_no_action()


async def test_after_a_handoff_the_bot_is_silent_and_resolve_gives_it_back(menu):
    await menu.send("hello")
    await menu.choose("refund")
    menu.expect_note().expect_team(3).expect_handoff()
    assert menu.status == "open"
    await menu.send("anyone there?")  # delivered as Chatwoot would: status open
    menu.expect_no_action()
    await menu.resolve()
    menu.expect_no_action()
    assert [r.path for r in menu.requests] == []
    await menu.send("hello again")  # a contact writing in a resolved conversation makes it pending
    assert menu.status == "pending"
    menu.expect_reply("What can I help with?")


async def test_failed_requests_are_not_actions_but_are_listed(bot_flow):
    flow = await bot_flow(make_menu(), teams="billing=3", botkit_max_attempts=1, chatwoot_retry_deadline=0.1)
    flow.fake.fail_next("POST", "*/labels", status=422, body={"error": "Invalid label"})
    await flow.send("hello")
    await flow.choose("track")
    flow.expect_reply("Your order is on its way.")
    with pytest.raises(AssertionError) as failure:
        flow.expect_labels("orders")
    assert "(failed: POST /api/v1/accounts/1/conversations/128/labels answered 422)" in str(failure.value)


async def test_two_conversations_are_apart(menu):
    other = menu.new_conversation()
    assert other.conversation_id != menu.conversation_id
    await menu.send("hello")
    await other.send("done")
    other.expect_reply("Glad I could help.").expect_status("resolved").expect_no_action()
    assert menu.status == "pending"


async def test_start_as_a_context_manager_without_pytest_fixtures():
    bot = Bot("echo", typing_after=None)

    @bot.fallback
    async def echo(ctx):
        await ctx.reply(f"you said {ctx.text}")

    async with BotFlow.start(bot, conversation_id=7, channel="Channel::Api") as flow:
        await flow.send("ping")
        flow.expect_reply("you said ping").expect_no_action()
        await flow.deliver(factories.agent_reply("I'm here", conversation_id=7))
        flow.expect_no_action()
    assert flow.fake.url is None  # stopped
