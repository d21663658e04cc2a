"""Whose turn it is (botkit.turn), over real sockets: the real receiver and worker (`BotServer`), the real
Chatwoot client, the fake Chatwoot answering as Chatwoot does.

1. A human's public message hands the conversation to humans; the bot is silent there until it comes back.
2. A conversation assigned to the bot with the contact's message waiting: answered once.
3. Stale turns (a retry, a replayed dead letter, an event that waited, a slow call) look before acting.
4. A message POST with an unclear answer (fault before or after the save): exactly one reply.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from botkit import Bot, Handler, cli
from botkit.testing import factories
from botkit.testing.fake_chatwoot import FakeChatwoot
from botkit.testing.harness import BotServer
from botkit.turn import Turns
from bots.support_router import make_bot
from tests.support.fails_once import FailsOnce

CONVERSATION = 128


def echo_bot(name: str = "helper", **kwargs) -> Bot:
    bot = Bot(name, **kwargs)

    @bot.fallback
    async def answer(ctx):
        await ctx.reply(f"Answer to: {ctx.text}")

    return bot


def pending_fake() -> FakeChatwoot:
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=CONVERSATION, status="pending")
    return fake


def contact_writes(fake: FakeChatwoot, text: str, **overrides) -> dict:
    """The contact's message, saved in the fake (so a GET sees it) and delivered as Chatwoot would."""
    saved = fake.add_message(CONVERSATION, text)
    return factories.contact_message(text, message_id=saved["id"], conversation_id=CONVERSATION, **overrides)


def replies(fake: FakeChatwoot) -> list[str]:
    return [m["content"] for m in fake.messages(CONVERSATION)
            if m["sender_type"] == "AgentBot" and not m["private"] and m["message_type"] == 1]


def external_echo(text: str) -> dict:
    """The agent answered from the WhatsApp Business app on the phone (coexistence): no sender, external_echo."""
    return factories._message("message_created", text, message_type="outgoing", sender=None,
                              conversation_id=CONVERSATION, source_id="wamid.HBgLMzE2",
                              content_attributes={"external_echo": True})


def phone_app(text: str) -> dict:
    """Sent from the Telegram app of a business account: outgoing, no sender, the provider's id, no echo flag."""
    return factories._message("message_created", text, message_type="outgoing", sender=None,
                              conversation_id=CONVERSATION, source_id="4711")


HUMANS = {
    "agent in Chatwoot": lambda: factories.agent_reply("Hi, Alex here, let me check.", conversation_id=CONVERSATION),
    "WhatsApp Business app": lambda: external_echo("I'm on it from my phone."),
    "Telegram app": lambda: phone_app("On it."),
}


# 1. Yield to humans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("human", HUMANS)
async def test_the_bot_does_not_talk_over_a_human(human):
    """CE changes neither status nor assignee when a human replies: every delivery still says `pending`."""
    fake = pending_fake()
    fake.add_team(1, 3, "billing")
    async with BotServer(make_bot(), fake=fake, teams="billing=3,technical=4") as server:
        await server.deliver(contact_writes(fake, "hello"))
        await server.settle()
        answered = len(replies(fake))
        assert answered == 1  # the bot's greeting
        await server.deliver(HUMANS[human]())
        if human == "agent in Chatwoot":  # and the agent's second answer, from the phone
            await server.deliver(external_echo("Sent from my phone too."))
        await server.deliver(contact_writes(fake, "ok thanks, and the other payment?"))
        await server.settle()
    assert len(replies(fake)) == answered, "the bot answered over the human"
    assert fake.requests_to("POST", "*/assignments") == [] and fake.requests_to("POST", "*/toggle_status") == []
    assert fake.conversation(CONVERSATION).status == "pending"


async def test_silent_after_a_human_reply_and_answering_again_once_resolved_and_back(caplog):
    fake = pending_fake()
    async with BotServer(echo_bot(), fake=fake) as server:
        await server.deliver(contact_writes(fake, "first"))
        await server.deliver(factories.agent_reply("I'll take this one.", conversation_id=CONVERSATION))
        with caplog.at_level(logging.INFO, logger="botkit"):
            await server.deliver(contact_writes(fake, "second"))
            await server.settle()
        assert replies(fake) == ["Answer to: first"]
        assert any("humans hold this conversation (an agent replied); the bot stays silent" in r.getMessage()
                   for r in caplog.records)

        # the agent resolves it; the contact writes again, the conversation is pending again: the bot's turn
        fake.conversation(CONVERSATION).status = "resolved"
        await server.deliver(factories.conversation_event("conversation_resolved", status="resolved",
                                                          conversation_id=CONVERSATION))
        fake.conversation(CONVERSATION).status = "pending"
        await server.deliver(contact_writes(fake, "third"))
        await server.settle()
    assert replies(fake) == ["Answer to: first", "Answer to: third"]


async def test_the_policy_can_be_switched_off_per_bot():
    fake = pending_fake()
    bot = echo_bot()
    bot.policies.yield_to_humans = False
    async with BotServer(bot, fake=fake) as server:
        await server.deliver(factories.agent_reply("I'll take this one.", conversation_id=CONVERSATION))
        await server.deliver(contact_writes(fake, "still there?"))
        await server.settle()
    assert replies(fake) == ["Answer to: still there?"]


# 2. A turn that starts without a message ----------------------------------------------------------------


def assigned_to_bot(fake: FakeChatwoot, waiting: dict) -> dict:
    """conversation_updated as Chatwoot sends it when an agent assigns the conversation to the bot (v4.13+):
    the status is unchanged (open), `messages[0]` is the contact's waiting message."""
    body = factories.conversation_event(
        "conversation_updated", status="open", conversation_id=CONVERSATION, assignee_type="AgentBot",
        changed_attributes=[{"assignee_agent_bot_id": {"previous_value": None, "current_value": fake.bot.id}},
                            {"updated_at": {"previous_value": 1781691340.1, "current_value": 1781691351.9}}])
    body["meta"]["assignee"] = {"id": fake.bot.id, "name": fake.bot.name, "avatar_url": "", "type": "agent_bot"}
    body["meta"]["team"] = None
    body["messages"] = [{
        "id": waiting["id"], "content": waiting["content"], "account_id": 1, "inbox_id": 1,
        "conversation_id": CONVERSATION, "message_type": 0, "created_at": waiting["created_at"],
        "private": False, "content_type": "text", "content_attributes": {}, "source_id": None,
        "sender_type": "Contact", "sender_id": 42,
        "sender": {"id": 42, "name": "Jane Doe", "email": "jane@example.com", "type": "contact"},
    }]
    return body


async def test_a_conversation_assigned_to_the_bot_gets_its_waiting_message_answered_once():
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=CONVERSATION, status="open")
    waiting = fake.add_message(CONVERSATION, "I have a billing question")
    async with BotServer(echo_bot(), fake=fake) as server:
        conversation = fake.conversation(CONVERSATION)
        conversation.assignee_id, conversation.assignee_type = fake.bot.id, "AgentBot"  # the agent's assignment
        assert await server.deliver(assigned_to_bot(fake, waiting)) == "accepted"
        await server.settle()
        assert replies(fake) == ["Answer to: I have a billing question"]
        # the same message arriving later as message_created is not answered twice
        late = factories.contact_message("I have a billing question", message_id=waiting["id"],
                                         conversation_id=CONVERSATION, status="open", assignee_type="AgentBot")
        late["conversation"]["meta"]["assignee"] = {"id": fake.bot.id, "type": "agent_bot"}
        await server.deliver(late)
        await server.settle()
    assert replies(fake) == ["Answer to: I have a billing question"]


@pytest.mark.parametrize("first", ["message_created", "conversation_status_changed"])
async def test_a_contact_reopening_a_resolved_conversation_is_answered_once(first):
    """The contact writes in a resolved conversation: Chatwoot saves the message, makes the conversation pending
    (`Message#reopen_conversation`) and delivers both events, in either order."""
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=CONVERSATION, status="pending")
    message = contact_writes(fake, "me again")
    reopened = factories.conversation_event(
        "conversation_status_changed", status="pending", conversation_id=CONVERSATION,
        changed_attributes=[{"status": {"previous_value": "resolved", "current_value": "pending"}}])
    reopened["messages"] = [{**message["conversation"]["messages"][0], "sender": {"id": 42, "type": "contact"}}]
    async with BotServer(echo_bot(), fake=fake) as server:
        for body in ([message, reopened] if first == "message_created" else [reopened, message]):
            await server.deliver(body)
        await server.settle()
    assert replies(fake) == ["Answer to: me again"]


async def test_an_assignment_whose_snapshot_predates_the_bots_reply_is_not_answered_twice():
    """The contact wrote as the agent assigned the bot: the message_created was answered first, then the
    assignment's `messages[0]` (built before that reply) still shows the contact's message. The waiting turn
    looks first, sees the bot's own newer reply, and does nothing."""
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=CONVERSATION, status="pending")
    async with BotServer(echo_bot(), fake=fake) as server:
        body = contact_writes(fake, "I have a billing question")
        waiting = fake.messages(CONVERSATION)[-1]
        await server.deliver(body)
        await server.settle()
        conversation = fake.conversation(CONVERSATION)
        conversation.assignee_id, conversation.assignee_type = fake.bot.id, "AgentBot"
        await server.deliver(assigned_to_bot(fake, waiting))
        await server.settle()
    assert replies(fake) == ["Answer to: I have a billing question"]


# 3. Look before acting ---------------------------------------------------------------------------------



async def test_a_retried_event_drops_its_actions_when_a_human_replied_meanwhile(caplog):
    fake = pending_fake()
    handler = FailsOnce()
    async with BotServer(Bot("helper", [handler]), fake=fake) as server:
        body = contact_writes(fake, "my order is late")
        fake.add_message(CONVERSATION, "Hi, Alex here.", message_type="outgoing", sender_type="User", sender_id=7)
        with caplog.at_level(logging.INFO, logger="botkit"):
            await server.deliver(body)  # the human's reply is saved, its delivery has not come yet
            await server.settle()
        assert handler.attempts == 2
        assert replies(fake) == []
        assert any("dropping this turn's actions: a human replied in the conversation since" in r.getMessage()
                   for r in caplog.records)
        # and the bot stays silent there after
        await server.deliver(contact_writes(fake, "hello?"))
        await server.settle()
    assert replies(fake) == [] and fake.conversation(CONVERSATION).status == "pending"


async def test_an_event_that_waited_is_told_by_the_deliveries_queued_behind_it():
    """An inbox bot hears of every change as a delivery, so an event that waited reads the ones queued behind
    it instead of GETting (botkit/turn.py). An agent takes the conversation while the contact's message
    waits: nothing is posted, and Chatwoot is not asked. With nothing behind it, a waited event acts without
    a GET, as a fresh one does."""
    fake = pending_fake()
    fake.add_agent(1, 7, "Alex")
    entered, go = asyncio.Event(), asyncio.Event()
    bot = Bot("helper")

    @bot.fallback
    async def answer(ctx):
        entered.set()
        await go.wait()  # the message waits here; the agent's assignment is delivered behind it
        await ctx.reply(f"Answer to: {ctx.text}")

    async with BotServer(bot, fake=fake, botkit_look_after=0.001) as server:
        await server.deliver(contact_writes(fake, "anyone?"))
        await asyncio.wait_for(entered.wait(), 10)
        conversation = fake.conversation(CONVERSATION)
        conversation.assignee_id, conversation.assignee_type, conversation.status = 7, "User", "open"
        await server.deliver(factories.conversation_event(
            "conversation_updated", status="open", assignee_type="User", conversation_id=CONVERSATION,
            changed_attributes=[{"assignee_id": {"previous_value": None, "current_value": 7}}]))
        go.set()
        await server.settle()
        assert replies(fake) == []
        assert fake.requests_to("GET", f"*/conversations/{CONVERSATION}") == []
        assert (await Turns(server.store).get(f"default/1:{CONVERSATION}")).held_by_humans  # the served bot's lane

    nothing_behind = pending_fake()
    async with BotServer(echo_bot(), fake=nothing_behind, botkit_look_after=0.001) as server:
        await server.deliver(contact_writes(nothing_behind, "hello"))
        await server.settle()
    assert replies(nothing_behind) == ["Answer to: hello"] and nothing_behind.requests_to("GET", "*") == []


async def test_an_event_that_waited_in_a_conversation_assigned_to_the_bot_looks():
    """A bot assigned to the conversation (not as its inbox's bot) gets no delivery once a human takes it
    (app/listeners/agent_bot_listener.rb#agent_bots_for), so its waited event GETs: Chatwoot shows a human
    assignee, and nothing is posted."""
    fake = FakeChatwoot()
    fake.add_agent(1, 7, "Alex")
    fake.add_conversation(conversation_id=CONVERSATION, status="open", assignee_id=7)
    message = contact_writes(fake, "anyone?", assignee_type="AgentBot")
    message["conversation"]["meta"]["assignee"] = {"id": fake.bot.id, "name": "helper", "type": "agent_bot"}
    async with BotServer(echo_bot(), fake=fake, botkit_look_after=0.001) as server:
        await server.deliver(message)
        await server.settle()
    assert replies(fake) == [] and len(fake.requests_to("GET", f"*/conversations/{CONVERSATION}")) == 1


async def test_an_answer_that_took_a_slow_call_looks_before_it_is_posted():
    fake = pending_fake()
    fake.add_agent(1, 7, "Alex")
    bot = Bot("helper")

    @bot.fallback
    async def slow_model(ctx):
        answer = await ctx.once("model", slow_answer)  # a slow model call; an agent takes over meanwhile
        await ctx.reply(answer)

    async def slow_answer():
        conversation = fake.conversation(CONVERSATION)
        conversation.assignee_id, conversation.assignee_type, conversation.status = 7, "User", "open"
        await asyncio.sleep(0.3)
        return "Here is what I found."

    async with BotServer(bot, fake=fake, botkit_look_after=0.2) as server:
        await server.deliver(contact_writes(fake, "what is my balance?"))
        await server.settle()
    assert replies(fake) == []
    assert fake.requests_to("GET", f"*/conversations/{CONVERSATION}") != []


class Fixable(Handler):
    def __init__(self) -> None:
        self.broken = True

    async def handle(self, ctx) -> bool:
        if self.broken:
            raise ValueError("the price list is missing")
        await ctx.reply(f"fixed: {ctx.text}")
        return True



async def test_a_replayed_dead_letter_does_not_post_into_a_conversation_humans_took(tmp_path, capsys):
    fake = pending_fake()
    fake.add_agent(1, 7, "Alex")
    handler = Fixable()
    store = f"sqlite:///{tmp_path}/botkit.db"
    async with BotServer(Bot("helper", [handler], handoff_on_failure=False), fake=fake, store=store,
                         botkit_max_attempts=1) as server:
        await server.deliver(contact_writes(fake, "how much is gold?"))
        await server.settle()
        [dead] = await server.store.dead_letters()
        # meanwhile an agent took the conversation in Chatwoot
        conversation = fake.conversation(CONVERSATION)
        conversation.assignee_id, conversation.assignee_type, conversation.status = 7, "User", "open"
        handler.broken = False
        assert await asyncio.to_thread(cli.main, ["deadletters", "replay", dead.id, "--store", store]) == 0
        deadline = time.monotonic() + 10
        while not fake.requests_to("GET", f"*/conversations/{CONVERSATION}"):
            assert time.monotonic() < deadline, "the replay never looked at the conversation"
            await asyncio.sleep(0.02)
        await server.settle()
    assert replies(fake) == []


# 4. Ambiguous creates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["before the save (502)", "after the save (500)", "after the save (502)"])
async def test_an_unclear_answer_to_a_reply_ends_with_exactly_one_reply(fault):
    fake = pending_fake()
    if fault.startswith("before"):
        fake.fail_next("POST", f"*/conversations/{CONVERSATION}/messages", status=502,
                       body="<html>502 Bad Gateway</html>")
    else:
        fake.fail_after_next("POST", f"*/conversations/{CONVERSATION}/messages",
                             status=500 if "500" in fault else 502)
    async with BotServer(echo_bot(), fake=fake) as server:
        await server.deliver(contact_writes(fake, "where is my parcel?"))
        await server.settle()
        assert await server.store.dead_letters() == []
    assert replies(fake) == ["Answer to: where is my parcel?"]
    assert fake.conversation(CONVERSATION).status == "pending"  # not handed off


async def test_an_unclear_answer_to_a_reply_with_liquid_braces_is_not_sent_twice():
    """The reply holds `{{`: botkit posts it escaped, Chatwoot saves it rendered; the look still finds it."""
    fake = pending_fake()
    fake.fail_after_next("POST", f"*/conversations/{CONVERSATION}/messages", status=500)
    async with BotServer(echo_bot(), fake=fake) as server:
        await server.deliver(contact_writes(fake, "is {{contact.email}} right?"))
        await server.settle()
        assert await server.store.dead_letters() == []
    assert replies(fake) == ["Answer to: is {{contact.email}} right?"]
    assert fake.conversation(CONVERSATION).status == "pending"  # not handed off


# The same, through a real `botkit serve` (its worker a child process, SQLite) --------------------------


def test_botkit_serve_is_silent_after_a_human_and_answers_once_the_conversation_is_back(tmp_path, server_process):
    from tests.conftest import signed

    fake = pending_fake()
    with fake.serve_in_thread():
        server = server_process(BOTKIT_BOT="tests.support.echo_bot:make_bot", BOTKIT_STORE=f"sqlite:///{tmp_path}/b.db",
                                CHATWOOT_BASE_URL=fake.url, CHATWOOT_BOT_TOKEN=fake.bot_token)

        def deliver(body: dict) -> None:
            raw, headers = signed(body, delivery_id=f"d-{time.monotonic_ns()}")
            assert httpx.post(f"{server.url}/webhook", content=raw, headers=headers, timeout=10).status_code == 200

        def wait_for_replies(count: int) -> None:
            deadline = time.monotonic() + 20
            while len(replies(fake)) < count:
                assert time.monotonic() < deadline, f"replies so far: {replies(fake)}"
                time.sleep(0.05)

        deliver(contact_writes(fake, "first"))
        wait_for_replies(1)
        deliver(factories.agent_reply("I'll take this one.", conversation_id=CONVERSATION))
        deliver(contact_writes(fake, "second"))
        fake.conversation(CONVERSATION).status = "resolved"
        deliver(factories.conversation_event("conversation_resolved", status="resolved", conversation_id=CONVERSATION))
        fake.conversation(CONVERSATION).status = "pending"
        deliver(contact_writes(fake, "third"))
        wait_for_replies(2)
        server.terminate()
    assert replies(fake) == ["Answer to: first", "Answer to: third"]  # never "second": a human held it then


def test_botkit_serve_says_once_at_start_up_that_an_older_chatwoot_turns_the_check_off(tmp_path, server_process):
    from botkit.testing.fake_chatwoot import BOT_ENDPOINTS_BEFORE_4_14_2

    fake = FakeChatwoot(bot_endpoints=BOT_ENDPOINTS_BEFORE_4_14_2)
    fake.version = "4.13.0"
    with fake.serve_in_thread():
        server = server_process(BOTKIT_BOT="tests.support.echo_bot:make_bot", BOTKIT_STORE=f"sqlite:///{tmp_path}/b.db",
                                CHATWOOT_BASE_URL=fake.url, CHATWOOT_BOT_TOKEN=fake.bot_token)
        deadline = time.monotonic() + 20
        while "looking before acting is off" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.05)
        server.terminate()
    said = [line for line in server.log.read_text().splitlines() if "looking before acting is off" in line]
    assert len(said) == 1 and "Chatwoot 4.13.0 does not let a bot token GET a conversation (4.14.2+ does)" in said[0]
