"""The default bot end to end: signed delivery -> botkit serve -> worker -> bot -> real client -> fake Chatwoot."""

from __future__ import annotations

import pytest

from botkit.testing import factories
from botkit.testing.harness import BotServer
from bots.support_router import make_bot

TEAMS = "billing=3,technical=4"


def chatwoot_calls(fake, conversation_id=128):
    """What the bot asked of Chatwoot, in order, as (method, path suffix, body)."""
    prefix = f"/api/v1/accounts/1/conversations/{conversation_id}"
    return [(r.method, r.path.removeprefix(prefix), r.json) for r in fake.requests if r.path.startswith(prefix)]


@pytest.fixture
async def server():
    bot = make_bot()
    async with BotServer(bot, teams=TEAMS) as server:
        server.fake.add_team(1, 3, "billing")
        server.fake.add_team(1, 4, "technical")
        server.fake.add_conversation(conversation_id=128, status="pending")
        yield server


@pytest.mark.parametrize("text", ["I have a billing question", "PAYMENT failed"])
async def test_billing_goes_to_the_billing_team(server, text):
    await server.deliver(factories.contact_message(text))
    await server.settle()
    assert chatwoot_calls(server.fake) == [
        ("POST", "/messages", {"content": "I'm transferring you to our billing team.", "message_type": "outgoing",
                               "private": False, "content_type": "text"}),
        ("POST", "/assignments", {"team_id": 3}),
        ("POST", "/toggle_status", {"status": "open"}),
    ]
    assert server.fake.conversation(128).status == "open"


@pytest.mark.parametrize("text", ["There's a bug in checkout", "technical problem"])
async def test_technical_goes_to_the_technical_team(server, text):
    await server.deliver(factories.contact_message(text))
    await server.settle()
    calls = chatwoot_calls(server.fake)
    assert calls[0][2]["content"] == "Let me connect you with our technical support team."
    assert calls[1:] == [("POST", "/assignments", {"team_id": 4}), ("POST", "/toggle_status", {"status": "open"})]


@pytest.mark.parametrize("text", ["I want a human", "agent please", "a real person"])
async def test_human_hands_off_without_a_team(server, text):
    await server.deliver(factories.contact_message(text))
    await server.settle()
    calls = chatwoot_calls(server.fake)
    assert [c[2] for c in calls] == [
        {"content": "Let me connect you with a human agent.", "message_type": "outgoing", "private": False,
         "content_type": "text"},
        {"status": "open"},
    ]


async def test_anything_else_gets_the_prompt(server):
    await server.deliver(factories.contact_message("hello there"))
    await server.settle()
    assert [c[2]["content"] for c in chatwoot_calls(server.fake)] == [
        "How can I help you today? You can ask about billing or technical issues."]


@pytest.mark.parametrize("body", [
    factories.bot_echo("How can I help you today?"),
    factories.agent_reply("Hi, I'm Alex"),
    factories.private_note("customer is VIP, billing"),
    factories.template_message("Please rate the conversation"),
    factories.status_update(9812),
], ids=["bot echo", "agent reply", "private note", "template", "delivery status"])
async def test_no_loops_the_bot_ignores_what_is_not_the_contact(server, body):
    assert await server.deliver(body) == "accepted"
    await server.settle()
    assert server.fake.requests == []


async def test_after_a_handoff_the_bot_is_silent_until_the_conversation_is_pending_again(server):
    await server.deliver(factories.contact_message("billing please"))
    await server.settle()
    handoff_calls = len(server.fake.requests)
    # the conversation is open now: the contact's next messages are the humans' business
    await server.deliver(factories.conversation_event("conversation_opened", status="open"))
    await server.deliver(factories.contact_message("hello?", status="open"))
    await server.deliver(factories.contact_message("billing again", status="pending", assignee_type="User"))
    await server.settle()
    assert len(server.fake.requests) == handoff_calls
    # resolved, then the contact writes again: Chatwoot makes it pending, the bot answers again
    await server.deliver(factories.conversation_event("conversation_resolved", status="resolved"))
    await server.deliver(factories.contact_message("hi again", status="pending"))
    await server.settle()
    assert server.fake.messages(128)[-1]["content"].startswith("How can I help you today?")


async def test_a_transient_failure_of_a_later_action_does_not_repeat_the_earlier_ones():
    bot = make_bot()
    async with BotServer(bot, teams=TEAMS, chatwoot_retry_deadline=0.1, botkit_max_attempts=6) as server:
        server.fake.add_team(1, 3, "billing")
        server.fake.add_conversation(conversation_id=128, status="pending")
        # the hand-off fails for a while (the client gives up, the event is retried), then works
        server.fake.fail_next("POST", "/api/v1/accounts/1/conversations/128/toggle_status", status=503, times=3)
        await server.deliver(factories.contact_message("billing"))
        await server.settle(timeout=30)
        path = "/api/v1/accounts/1/conversations/128"
        assert len(server.fake.requests_to("POST", f"{path}/toggle_status")) == 4
        assert len(server.fake.requests_to("POST", f"{path}/messages")) == 1  # the reply went once
        assert len(server.fake.requests_to("POST", f"{path}/assignments")) == 1
        assert server.fake.conversation(128).status == "open"


async def test_dry_run_prints_the_actions(capsys):
    from botkit.dryrun import ConsoleChatwoot

    async with BotServer(make_bot(), teams=TEAMS) as server:
        server.bot.runtime.chatwoot = ConsoleChatwoot()
        await server.deliver(factories.contact_message("I have a billing question"))
        await server.settle()
    out = capsys.readouterr().out
    assert "reply: I'm transferring you to our billing team." in out
    assert "assign team 3" in out and "hand-off to humans" in out
    assert server.fake.requests == []
