"""The default bot end to end: signed delivery -> botkit serve -> worker -> bot -> real client -> fake Chatwoot.

Written with the testing kit bot authors use (botkit.testing.flow through the `bot_flow` fixture), so the kit
is proven by use; exact request bodies are checked where the wire format matters.
"""

from __future__ import annotations

import re

import pytest

from botkit.testing import factories
from bots.support_router import make_bot

TEAMS = "billing=3,technical=4"
PROMPT = "How can I help you today? You can ask about billing or technical issues."


def calls(flow):
    """What the bot asked of Chatwoot in the last step, in order, as (method, path suffix, body)."""
    prefix = f"/api/v1/accounts/1/conversations/{flow.conversation_id}"
    return [(r.method, r.path.removeprefix(prefix), r.json) for r in flow.requests]


@pytest.fixture
async def flow(bot_flow):
    return await bot_flow(make_bot(), teams=TEAMS)


@pytest.mark.parametrize("text", ["I have a billing question", "PAYMENT failed"])
async def test_billing_goes_to_the_billing_team(flow, text):
    await flow.send(text)
    flow.expect_reply("I'm transferring you to our billing team.").expect_summary("Wants: ")
    flow.expect_team("billing").expect_handoff()
    flow.expect_no_action()
    assert calls(flow) == [
        ("POST", "/messages", {"content": "I'm transferring you to our billing team.", "message_type": "outgoing",
                               "private": False, "content_type": "text"}),
        ("POST", "/messages", {"content": flow.fake.messages(128)[-2]["content"], "message_type": "outgoing",
                               "private": True, "content_type": "text"}),
        ("POST", "/assignments", {"team_id": 3}),
        ("POST", "/toggle_status", {"status": "open"}),
    ]
    assert flow.status == "open"


@pytest.mark.parametrize("text", ["There's a bug in checkout", "technical problem"])
async def test_technical_goes_to_the_technical_team(flow, text):
    await flow.send(text)
    flow.expect_reply("Let me connect you with our technical support team.")
    flow.expect_summary("Why: a keyword rule").expect_team(4).expect_handoff().expect_no_action()


@pytest.mark.parametrize("text", ["I want a human", "agent please", "a real person"])
async def test_human_hands_off_without_a_team(flow, text):
    await flow.send(text)
    flow.expect_reply("Let me connect you with a human agent.").expect_summary().expect_handoff().expect_no_action()
    assert [c[2] for c in calls(flow)] == [
        {"content": "Let me connect you with a human agent.", "message_type": "outgoing", "private": False,
         "content_type": "text"},
        {"content": flow.fake.messages(128)[-2]["content"], "message_type": "outgoing", "private": True,
         "content_type": "text"},
        {"status": "open"},
    ]


async def test_anything_else_gets_the_prompt(flow):
    await flow.send("hello there")
    flow.expect_reply(PROMPT).expect_no_action()
    assert flow.status == "pending"


@pytest.mark.parametrize("body", [
    factories.bot_echo("How can I help you today?"),
    factories.agent_reply("Hi, I'm Alex"),
    factories.private_note("customer is VIP, billing"),
    factories.template_message("Please rate the conversation"),
    factories.status_update(9812),
], ids=["bot echo", "agent reply", "private note", "template", "delivery status"])
async def test_no_loops_the_bot_ignores_what_is_not_the_contact(flow, body):
    assert await flow.server.deliver(body) == "accepted"
    await flow.server.settle()
    assert flow.fake.requests == []


async def test_after_a_handoff_the_bot_is_silent_until_the_conversation_is_pending_again(flow):
    await flow.send("billing please")
    flow.expect_reply().expect_summary().expect_team("billing").expect_handoff()
    # the conversation is open now: the contact's next messages are the humans' business
    await flow.deliver(factories.conversation_event("conversation_opened", status="open"))
    await flow.send("hello?")
    flow.expect_no_action()
    assert flow.requests == []
    await flow.send("billing again", status="pending", assignee_type="User")
    flow.expect_no_action()
    assert flow.requests == []
    # resolved, then the contact writes again: Chatwoot makes it pending, the bot answers again
    await flow.resolve()
    flow.expect_no_action()
    await flow.send("hi again")
    flow.expect_reply(re.compile(r"^How can I help you today\?")).expect_no_action()


async def test_a_transient_failure_of_a_later_action_does_not_repeat_the_earlier_ones(bot_flow):
    flow = await bot_flow(make_bot(), teams=TEAMS, chatwoot_retry_deadline=0.1, botkit_max_attempts=6)
    # the hand-off fails for a while (the client gives up, the event is retried), then works
    flow.fake.fail_next("POST", "/api/v1/accounts/1/conversations/128/toggle_status", status=503, times=3)
    await flow.send("billing")
    flow.expect_reply("I'm transferring you to our billing team.").expect_summary("Wants: ")
    flow.expect_team("billing").expect_handoff()
    flow.expect_no_action()  # the reply and the assignment went once
    assert [(m, p) for m, p, _ in calls(flow)].count(("POST", "/toggle_status")) == 4
    assert [(m, p) for m, p, _ in calls(flow)].count(("POST", "/messages")) == 2  # the reply, the summary
    assert flow.status == "open"


async def test_dry_run_prints_the_actions(bot_flow, capsys):
    from botkit.dryrun import ConsoleChatwoot

    flow = await bot_flow(make_bot(), teams=TEAMS)
    flow.server.bot.runtime.chatwoot = ConsoleChatwoot()
    await flow.send("I have a billing question")
    out = capsys.readouterr().out
    assert "reply: I'm transferring you to our billing team." in out
    assert "assign team 3" in out and "hand-off to humans" in out
    flow.expect_no_action()
    assert flow.fake.requests == []
